// A-out through the integer code Gram (uniform, with the chain form) or directly; see act_out.h.
#include "search/act_out.h"

#include <dnnl.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "quant/codes.h"
#include "quant/error.h"
#include "quant/float_order.h"
#include "quant/uniform.h"
#include "search/axpy.h"
#include "search/gram.h"
#include "search/objective_common.h"
#include "search/psort.h"
#include "search/scan_kernels.h"

namespace adalog::search {
namespace {

// Uniform A-out chain form: update the code Gram incrementally when at most this fraction of the
// codes changed (about 2 K integer multiply-adds per change against K^2 / (T K) per element for
// the VNNI GEMM, at a much lower rate per operation).
constexpr double kUniformChainFraction = 0.03;

}  // namespace

ActOutObjective::ActOutObjective(const float* x, int64_t T, int K, const float* y,
                                 const float* bias, int N)
    : x_(x), y_(y), bias_(bias), T_(T), K_(K), N_(N) {
  ADALOG_CHECK(T > 0 && K > 0 && N > 0, "A-out: empty operands");
}

void ActOutObjective::SetWeight(const float* wq) {
  wq_.assign(wq, wq + static_cast<int64_t>(N_) * K_);
  H_.clear();
  R_.clear();
}

void ActOutObjective::EvalUniform(const UniformCandidates& c, std::vector<double>* err) const {
  ADALOG_CHECK(c.groups == 1, "A-out: per-tensor candidates expected");
  ADALOG_CHECK(!wq_.empty(), "A-out: SetWeight not called");
  if (H_.empty()) {  // once per weight state: H = Wq^T Wq, R = (Y - b) Wq, ||Y - b||^2
    double yy = 0;
    for (int64_t t = 0; t < T_; ++t)
      for (int o = 0; o < N_; ++o) {
        const double d = static_cast<double>(y_[t * N_ + o]) - (bias_ ? bias_[o] : 0.0f);
        yy += d * d;
      }
    H_.resize(static_cast<size_t>(K_) * K_);
    GramAtB(wq_.data(), K_, K_, wq_.data(), K_, K_, N_, H_.data(), K_, /*symmetric=*/true);
    // R = (Y - b) Wq = Y Wq - 1 (b^T Wq): exact products summed in double (search/gram.h).
    R_.resize(static_cast<size_t>(T_) * K_);
    {
      std::vector<float> yt(static_cast<size_t>(T_) * N_);
      for (int64_t t = 0; t < T_; ++t)
        for (int o = 0; o < N_; ++o) yt[static_cast<size_t>(o) * T_ + t] = y_[t * N_ + o];
      GramAtB(yt.data(), T_, static_cast<int>(T_), wq_.data(), K_, K_, N_, R_.data(), K_, false);
      if (bias_) {
        std::vector<double> bw(static_cast<size_t>(K_), 0.0);
        for (int o = 0; o < N_; ++o)
          for (int k = 0; k < K_; ++k)
            bw[static_cast<size_t>(k)] += static_cast<double>(bias_[o]) * wq_[static_cast<size_t>(o) * K_ + k];
        for (int64_t t = 0; t < T_; ++t)
          for (int k = 0; k < K_; ++k) R_[static_cast<size_t>(t * K_ + k)] -= bw[static_cast<size_t>(k)];
      }
    }
    yy_ = yy;
    if (xs_.empty() && T_ * K_ < (int64_t{1} << 32)) {  // once: X sorted (no NaN)
      const int64_t n = T_ * K_;
      bool nan = false;
      std::vector<uint64_t> keys(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        nan = nan || std::isnan(x_[i]);
        keys[static_cast<size_t>(i)] = (static_cast<uint64_t>(OrderedFloatKey(x_[i])) << 32) | static_cast<uint64_t>(i);
      }
      if (!nan) {
        ParallelSortDistinct(&keys);  // (value, index) keys are distinct
        xs_.resize(static_cast<size_t>(n));
        xidx_.resize(static_cast<size_t>(n));
        for (int64_t p = 0; p < n; ++p) {
          const uint32_t i = static_cast<uint32_t>(keys[static_cast<size_t>(p)] & 0xffffffffu);
          xidx_[static_cast<size_t>(p)] = i;
          xs_[static_cast<size_t>(p)] = x_[i];
        }
      }
    }
    if (!xs_.empty()) {
      rpre_.resize(xs_.size() + 1);
      rpre_[0] = 0;
      for (size_t p = 0; p < xs_.size(); ++p) rpre_[p + 1] = rpre_[p] + R_[xidx_[p]];
    }
  }
  err->assign(static_cast<size_t>(c.count), 0.0);
  const int64_t TK = T_ * K_;
  const int K = K_;
  const int32_t levels = 1 << c.bits;
  // le[code] = number of sorted elements with a code <= code (the code is non-decreasing in x):
  // each code's elements are the range [le[code - 1], le[code]), found by bisection with the
  // quantizer's own Encode.
  auto bounds = [&](const UniformQuantizer& q, std::vector<int64_t>* le) {
    le->assign(static_cast<size_t>(levels), TK);
    int64_t start = 0;
    for (int32_t code = 0; code < levels - 1 && start < TK; ++code) {
      start = std::partition_point(xs_.data() + start, xs_.data() + TK,
                                   [&](float v) { return q.Encode(v) <= code; }) - xs_.data();
      (*le)[static_cast<size_t>(code)] = start;
    }
  };
  // <C - z, R>: sum over codes of (code - z) * (sum of R over the code's range).
  auto linear = [&](const std::vector<int64_t>& le, int32_t z) {
    double lin = 0;
    int64_t start = 0;
    for (int32_t code = 0; code < levels && start < TK; ++code) {
      const int64_t end = le[static_cast<size_t>(code)];
      if (end > start)
        lin += static_cast<double>(code - z) * (rpre_[static_cast<size_t>(end)] - rpre_[static_cast<size_t>(start)]);
      start = end;
    }
    return lin;
  };
  auto quadratic = [&](const int32_t* gram) {
    double quad = 0;
    for (int64_t j = 0; j < static_cast<int64_t>(K) * K; ++j)
      quad += H_[static_cast<size_t>(j)] * static_cast<double>(gram[static_cast<size_t>(j)]);
    return quad;
  };
  auto encode = [&](const UniformCandidates& cc, int i, UniformCode* codes) {
    const UniformQuantizer q(UniformParams{cc.bits, cc.scale(0, i), cc.zp(0, i)});
    if (!xs_.empty() && cc.bits <= 4) {  // no NaN: the exact threshold count (AVX-512)
      const std::vector<float> thr = UniformCodeThresholds(UniformParams{cc.bits, cc.scale(0, i), cc.zp(0, i)});
      SelectScanKernels().threshold_codes(x_, TK, thr.data(), static_cast<int>(thr.size()), codes);
    } else {
      q.Encode(x_, TK, codes);
    }
  };
  // Integer Gram (C - z)^T (C - z), exact: codes and z fit int8, no int16 saturation
  // (2 * 127^2 < 2^15).
  auto code_gram = [&](const UniformCode* codes, int8_t* codes_s8, int32_t z, int32_t* gram) {
    for (int64_t j = 0; j < TK; ++j) codes_s8[j] = static_cast<int8_t>(codes[j]);
    const int32_t co = 0;
    const dnnl_status_t st = dnnl_gemm_u8s8s32('T', 'N', 'F', K, K, T_, 1.0f, codes, K, static_cast<uint8_t>(z),
                                               codes_s8, K, static_cast<int8_t>(z), 0.0f, gram, K, &co);
    ADALOG_CHECK(st == dnnl_success, "A-out: oneDNN u8s8s32 gemm failed");
  };
  if (uniform_chain_ && !xs_.empty() && c.bits <= 7) {
    EvalUniformChain(c, err, bounds, linear, quadratic, encode, code_gram);
    return;
  }
#pragma omp parallel if (c.count * TK * K > kMinParallelWork)
  {
    std::vector<UniformCode> codes(static_cast<size_t>(TK));
    std::vector<int8_t> codes_s8(static_cast<size_t>(TK));
    std::vector<int32_t> gram(static_cast<size_t>(K) * K);
    std::vector<int64_t> le;
#pragma omp for schedule(dynamic, 1)
    for (int i = 0; i < c.count; ++i) {
      const int32_t z = c.zp(0, i);
      const double s = c.scale(0, i);
      encode(c, i, codes.data());
      if (c.bits <= 7) {
        code_gram(codes.data(), codes_s8.data(), z, gram.data());
      } else {
        std::fill(gram.begin(), gram.end(), 0);
        for (int64_t t = 0; t < T_; ++t) {
          const UniformCode* r = codes.data() + t * K;
          for (int a = 0; a < K; ++a) {
            const int32_t va = r[a] - z;
            for (int b = 0; b < K; ++b) gram[static_cast<size_t>(a) * K + b] += va * (r[b] - z);
          }
        }
      }
      double lin = 0;
      if (!xs_.empty()) {
        bounds(UniformQuantizer(UniformParams{c.bits, c.scale(0, i), z}), &le);
        lin = linear(le, z);
      } else {
        for (int64_t j = 0; j < TK; ++j)
          lin += static_cast<double>(static_cast<int32_t>(codes[static_cast<size_t>(j)]) - z) * R_[static_cast<size_t>(j)];
      }
      (*err)[static_cast<size_t>(i)] = yy_ - 2.0 * s * lin + s * s * quadratic(gram.data());
    }
  }
}

template <typename Bounds, typename Linear, typename Quadratic, typename Encode, typename CodeGram>
void ActOutObjective::EvalUniformChain(const UniformCandidates& c, std::vector<double>* err,
                                       const Bounds& bounds, const Linear& linear,
                                       const Quadratic& quadratic, const Encode& encode,
                                       const CodeGram& code_gram) const {
  // Chain form: candidates with the same zero point in ascending scale; a candidate whose codes
  // differ from the previous one's in few elements (D' = D + E, E sparse) updates the exact
  // integer Gram G = D^T D by G' = G + E^T D' + (E^T D)^T: per changed element (t, k) with
  // code change e, row k gets e * D'[t, :] and a transposed row e * D[t, :] (CodeRowAxpy).
  // G stays exact, so each error is bit-identical to the from-scratch GEMM's.
  const int64_t TK = T_ * K_;
  const int K = K_;
  const int count = c.count;
  std::vector<int> order(static_cast<size_t>(count));
  std::iota(order.begin(), order.end(), 0);
  std::vector<int> first(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    first[static_cast<size_t>(i)] = i;
    for (int j = 0; j < i; ++j)
      if (c.zp(0, j) == c.zp(0, i)) {
        first[static_cast<size_t>(i)] = first[static_cast<size_t>(j)];
        break;
      }
  }
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    if (first[static_cast<size_t>(a)] != first[static_cast<size_t>(b)])
      return first[static_cast<size_t>(a)] < first[static_cast<size_t>(b)];
    return c.scale(0, a) < c.scale(0, b);
  });
  std::vector<UniformCode> old_codes(static_cast<size_t>(TK)), new_codes(static_cast<size_t>(TK));
  std::vector<int8_t> codes_s8(static_cast<size_t>(TK));
  std::vector<int32_t> gram(static_cast<size_t>(K) * K), ut(static_cast<size_t>(K) * K);
  std::vector<int64_t> le_state, le;
  int32_t z_state = 0;
  bool have_state = false;
  // Changed elements grouped by column k: (t, e).
  std::vector<int64_t> col_start(static_cast<size_t>(K) + 1);
  std::vector<int32_t> ch_t;
  std::vector<int32_t> ch_e;
  const CodeRowAxpyFn axpy = SelectCodeRowAxpy();
  auto code_at = [&](const std::vector<int64_t>& b, int64_t p) {
    return static_cast<int32_t>(std::upper_bound(b.begin(), b.end(), p) - b.begin());
  };
  for (int i : order) {
    const int32_t z = c.zp(0, i);
    const double s = c.scale(0, i);
    bounds(UniformQuantizer(UniformParams{c.bits, c.scale(0, i), z}), &le);
    // Changed ranges of the sorted order: between consecutive boundary points of either set.
    int64_t changed = 0;
    std::vector<int64_t> pts;
    if (have_state && z == z_state) {
      pts.assign(le_state.begin(), le_state.end());
      pts.insert(pts.end(), le.begin(), le.end());
      pts.push_back(0);
      std::sort(pts.begin(), pts.end());
      pts.erase(std::unique(pts.begin(), pts.end()), pts.end());
      for (size_t r = 0; r + 1 < pts.size(); ++r)
        if (code_at(le_state, pts[r]) != code_at(le, pts[r])) changed += pts[r + 1] - pts[r];
    }
    if (!have_state || z != z_state || static_cast<double>(changed) > kUniformChainFraction * static_cast<double>(TK)) {
      encode(c, i, new_codes.data());
      code_gram(new_codes.data(), codes_s8.data(), z, gram.data());
      old_codes = new_codes;
      have_state = true;
    } else if (changed > 0) {
      ++chain_updates_;
      // Bucket the changes by column (counting sort); apply them to new_codes.
      std::fill(col_start.begin(), col_start.end(), 0);
      auto for_changes = [&](auto&& f) {
        for (size_t r = 0; r + 1 < pts.size(); ++r) {
          const int32_t co = code_at(le_state, pts[r]), cn = code_at(le, pts[r]);
          if (co == cn) continue;
          for (int64_t p = pts[r]; p < pts[r + 1]; ++p) f(xidx_[static_cast<size_t>(p)], cn - co, cn);
        }
      };
      for_changes([&](uint32_t idx, int32_t, int32_t) { ++col_start[idx % static_cast<uint32_t>(K) + 1]; });
      for (int k = 0; k < K; ++k) col_start[static_cast<size_t>(k) + 1] += col_start[static_cast<size_t>(k)];
      ch_t.resize(static_cast<size_t>(changed));
      ch_e.resize(static_cast<size_t>(changed));
      {
        std::vector<int64_t> fill(col_start.begin(), col_start.end() - 1);
        for_changes([&](uint32_t idx, int32_t e, int32_t cn) {
          const int64_t at = fill[idx % static_cast<uint32_t>(K)]++;
          ch_t[static_cast<size_t>(at)] = static_cast<int32_t>(idx / static_cast<uint32_t>(K));
          ch_e[static_cast<size_t>(at)] = e;
          new_codes[idx] = static_cast<UniformCode>(cn);
        });
      }
      // Row k of G: + e * D'[t, :]; row k of U^T: + e * D[t, :]; then G += U. Integer: any
      // order and partition gives the same G.
      std::fill(ut.begin(), ut.end(), 0);
#pragma omp parallel for schedule(dynamic, 8) if (changed * K > kMinParallelWork)
      for (int k = 0; k < K; ++k) {
        int32_t* g = gram.data() + static_cast<int64_t>(k) * K;
        int32_t* u = ut.data() + static_cast<int64_t>(k) * K;
        for (int64_t x = col_start[static_cast<size_t>(k)]; x < col_start[static_cast<size_t>(k) + 1]; ++x) {
          const int64_t t = ch_t[static_cast<size_t>(x)];
          const int32_t e = ch_e[static_cast<size_t>(x)];
          axpy(g, e, new_codes.data() + t * K, z, K);
          axpy(u, e, old_codes.data() + t * K, z, K);
        }
      }
#pragma omp parallel for schedule(static) if (static_cast<int64_t>(K) * K > kMinParallelWork / 8)
      for (int a = 0; a < K; ++a)
        for (int b = 0; b < K; ++b) gram[static_cast<size_t>(a) * K + b] += ut[static_cast<size_t>(b) * K + a];
      for (int k = 0; k < K; ++k)
        for (int64_t x = col_start[static_cast<size_t>(k)]; x < col_start[static_cast<size_t>(k) + 1]; ++x) {
          const int64_t idx = static_cast<int64_t>(ch_t[static_cast<size_t>(x)]) * K + k;
          old_codes[static_cast<size_t>(idx)] = new_codes[static_cast<size_t>(idx)];
        }
    }
    le_state = le;
    z_state = z;
    (*err)[static_cast<size_t>(i)] = yy_ - 2.0 * s * linear(le, z) + s * s * quadratic(gram.data());
  }
}

void ActOutObjective::EvalDirect(int count, const std::function<FakeQuantFn(int)>& make_fq,
                                 std::vector<double>* err) const {
  ADALOG_CHECK(!wq_.empty(), "A-out: SetWeight not called");
  err->assign(static_cast<size_t>(count), 0.0);
  std::vector<FakeQuantFn> fqs;
  for (int i = 0; i < count; ++i) fqs.push_back(make_fq(i));
#pragma omp parallel if (count * T_ * K_ * N_ > kMinParallelWork)
  {
    std::vector<float> qx(static_cast<size_t>(T_) * K_), out(static_cast<size_t>(T_) * N_);
#pragma omp for schedule(dynamic, 1)
    for (int i = 0; i < count; ++i) {
      fqs[static_cast<size_t>(i)](x_, T_ * K_, qx.data());
      Sgemm(T_, N_, K_, qx.data(), wq_.data(), true, out.data());
      double e = 0;
      for (int64_t t = 0; t < T_; ++t)
        for (int o = 0; o < N_; ++o) {
          const double d = static_cast<double>(y_[t * N_ + o]) - (bias_ ? bias_[o] : 0.0f) -
                           out[static_cast<size_t>(t * N_ + o)];
          e += d * d;
        }
      (*err)[static_cast<size_t>(i)] = e;
    }
  }
}

}  // namespace adalog::search
