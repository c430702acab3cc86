// A-out through the integer code Gram (uniform, with the chain form) or directly; see act_out.h.
#include "search/act_out.h"

#include <dnnl.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "quant/codes.h"
#include "quant/error.h"
#include "quant/uniform.h"
#include "runtime/parallel.h"
#include "search/axpy.h"
#include "search/gram.h"
#include "search/objective_common.h"
#include "search/scan_kernels.h"

namespace adalog::search {
namespace {

// Uniform A-out chain form: update the code Gram incrementally when at most this fraction of the
// codes changed (about 2 K integer multiply-adds per change against K^2 / (T K) per element for
// the VNNI GEMM, at a much lower rate per operation).
constexpr double kUniformChainFraction = 0.03;

// Per-thread buffers of EvalUniform: one candidate's codes (as codes and as s8), its code Gram
// and its sorted code steps.
struct GramScratch {
  GramScratch(int64_t tk, int k)
      : codes(static_cast<size_t>(tk)), codes_s8(static_cast<size_t>(tk)),
        gram(static_cast<size_t>(k) * k) {}
  std::vector<UniformCode> codes;
  std::vector<int8_t> codes_s8;
  std::vector<int32_t> gram;
  CodeSteps steps;
};

}  // namespace

ActOutObjective::ActOutObjective(const float* x, int64_t T, int K, const float* y,
                                 const float* bias, int N)
    : x_(x), y_(y), bias_(bias), T_(T), K_(K), N_(N) {
  ADALOG_CHECK(T > 0 && K > 0 && N > 0, "A-out: empty operands");
}

void ActOutObjective::SetWeight(const float* wq) {
  wq_.assign(wq, wq + static_cast<int64_t>(N_) * K_);
  form_ = UniformForm{};
}

void ActOutObjective::PrepareUniform() {
  UniformForm& f = form_;
  double yy = 0;
  for (int64_t t = 0; t < T_; ++t)
    for (int o = 0; o < N_; ++o) {
      const double d = static_cast<double>(y_[t * N_ + o]) - (bias_ ? bias_[o] : 0.0f);
      yy += d * d;
    }
  f.H.resize(static_cast<size_t>(K_) * K_);
  GramAtB(wq_.data(), K_, K_, wq_.data(), K_, K_, N_, f.H.data(), K_, /*symmetric=*/true);
  // R = (Y - b) Wq = Y Wq - 1 (b^T Wq): exact products summed in double (search/gram.h).
  f.R.resize(static_cast<size_t>(T_) * K_);
  {
    std::vector<float> yt(static_cast<size_t>(T_) * N_);
    for (int64_t t = 0; t < T_; ++t)
      for (int o = 0; o < N_; ++o) yt[static_cast<size_t>(o) * T_ + t] = y_[t * N_ + o];
    GramAtB(yt.data(), T_, static_cast<int>(T_), wq_.data(), K_, K_, N_, f.R.data(), K_, false);
    if (bias_) {
      std::vector<double> bw(static_cast<size_t>(K_), 0.0);
      for (int o = 0; o < N_; ++o)
        for (int k = 0; k < K_; ++k)
          bw[static_cast<size_t>(k)] += static_cast<double>(bias_[o]) * wq_[static_cast<size_t>(o) * K_ + k];
      for (int64_t t = 0; t < T_; ++t)
        for (int k = 0; k < K_; ++k) f.R[static_cast<size_t>(t * K_ + k)] -= bw[static_cast<size_t>(k)];
    }
  }
  f.yy = yy;
  const int64_t n = T_ * K_;
  if (xs_.val.empty() && n < (int64_t{1} << 32)) {  // once: X sorted (no NaN)
    bool nan = false;
    for (int64_t i = 0; i < n && !nan; ++i) nan = std::isnan(x_[i]);
    if (!nan) SortWithIndex(x_, n, &xs_);
  }
  if (!xs_.val.empty()) {
    f.rpre.resize(xs_.val.size() + 1);
    f.rpre[0] = 0;
    for (size_t p = 0; p < xs_.val.size(); ++p) f.rpre[p + 1] = f.rpre[p] + f.R[xs_.idx[p]];
  }
  f.ready = true;
}

double ActOutObjective::Linear(const CodeSteps& codes, int32_t z) const {
  // Sum over codes of (code - z) * (sum of R over the code's range of the sorted order).
  const std::vector<double>& rpre = form_.rpre;
  double lin = 0;
  ForEachRange(codes, T_ * K_, [&](int64_t a, int64_t b, int code) {
    lin += static_cast<double>(code - z) * (rpre[static_cast<size_t>(b)] - rpre[static_cast<size_t>(a)]);
  });
  return lin;
}

double ActOutObjective::Quadratic(const int32_t* gram) const {
  double quad = 0;
  for (int64_t j = 0; j < static_cast<int64_t>(K_) * K_; ++j)
    quad += form_.H[static_cast<size_t>(j)] * static_cast<double>(gram[static_cast<size_t>(j)]);
  return quad;
}

void ActOutObjective::Encode(const UniformCandidates& c, int i, UniformCode* codes) const {
  const UniformParams p{c.bits, c.scale(0, i), c.zp(0, i)};
  if (!xs_.val.empty() && c.bits <= 4) {  // no NaN: the exact threshold count (AVX-512)
    const std::vector<float> thr = UniformCodeThresholds(p);
    SelectScanKernels().threshold_codes(x_, T_ * K_, thr.data(), static_cast<int>(thr.size()), codes);
  } else {
    UniformQuantizer(p).Encode(x_, T_ * K_, codes);
  }
}

void ActOutObjective::CodeGram(const UniformCode* codes, int8_t* codes_s8, int32_t z, int32_t* gram) const {
  // Exact: codes and z fit int8, no int16 saturation (2 * 127^2 < 2^15).
  const int64_t TK = T_ * K_;
  const int K = K_;
  for (int64_t j = 0; j < TK; ++j) codes_s8[j] = static_cast<int8_t>(codes[j]);
  const int32_t co = 0;
  const dnnl_status_t st = dnnl_gemm_u8s8s32('T', 'N', 'F', K, K, T_, 1.0f, codes, K, static_cast<uint8_t>(z),
                                             codes_s8, K, static_cast<int8_t>(z), 0.0f, gram, K, &co);
  ADALOG_CHECK(st == dnnl_success, "A-out: oneDNN u8s8s32 gemm failed");
}

void ActOutObjective::EvalUniform(const UniformCandidates& c, std::vector<double>* err) {
  ADALOG_CHECK(c.groups == 1, "A-out: per-tensor candidates expected");
  ADALOG_CHECK(!wq_.empty(), "A-out: SetWeight not called");
  if (!form_.ready) PrepareUniform();
  err->assign(static_cast<size_t>(c.count), 0.0);
  if (uniform_chain_ && !xs_.val.empty() && c.bits <= 7) {
    EvalUniformChain(c, err);
    return;
  }
  const int64_t TK = T_ * K_;
  const int K = K_;
  exec::ParallelForScratch(
      c.count, c.count * TK * K > kMinParallelWork,
      [&] { return GramScratch(TK, K); },
      [&](GramScratch& scr, int64_t i64) {
        const int i = static_cast<int>(i64);
        auto& [codes, codes_s8, gram, steps] = scr;
        const int32_t z = c.zp(0, i);
        const double s = c.scale(0, i);
        Encode(c, i, codes.data());
        if (c.bits <= 7) {
          CodeGram(codes.data(), codes_s8.data(), z, gram.data());
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
        if (!xs_.val.empty()) {
          UniformSteps(UniformQuantizer(UniformParams{c.bits, c.scale(0, i), z}), 0, xs_.val.data(), TK, &steps);
          lin = Linear(steps, z);
        } else {
          for (int64_t j = 0; j < TK; ++j)
            lin += static_cast<double>(static_cast<int32_t>(codes[static_cast<size_t>(j)]) - z) * form_.R[static_cast<size_t>(j)];
        }
        (*err)[static_cast<size_t>(i)] = form_.yy - 2.0 * s * lin + s * s * Quadratic(gram.data());
      });
}

void ActOutObjective::EvalUniformChain(const UniformCandidates& c, std::vector<double>* err) {
  // Chain form: candidates with the same zero point in ascending scale; a candidate whose codes
  // differ from the previous one's in few elements (D' = D + E, E sparse) updates the exact
  // integer Gram G = D^T D by G' = G + E^T D' + (E^T D)^T: per changed element (t, k) with
  // code change e, row k gets e * D'[t, :] and a transposed row e * D[t, :] (CodeRowAxpy).
  // G stays exact, so each error is bit-identical to the from-scratch GEMM's.
  const int64_t TK = T_ * K_;
  const int K = K_;
  const int count = c.count;
  std::vector<int> zps(static_cast<size_t>(count));
  std::vector<float> scales(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    zps[static_cast<size_t>(i)] = c.zp(0, i);
    scales[static_cast<size_t>(i)] = c.scale(0, i);
  }
  const std::vector<int> order = KeyThenScaleOrder(zps, scales);
  std::vector<UniformCode> old_codes(static_cast<size_t>(TK)), new_codes(static_cast<size_t>(TK));
  std::vector<int8_t> codes_s8(static_cast<size_t>(TK));
  std::vector<int32_t> gram(static_cast<size_t>(K) * K), ut(static_cast<size_t>(K) * K);
  CodeSteps state, steps;
  int32_t z_state = 0;
  bool have_state = false;
  // Changed elements grouped by column k: (t, e).
  std::vector<int64_t> col_start;
  std::vector<int32_t> ch_t, ch_e;
  const CodeRowAxpyFn axpy = SelectCodeRowAxpy();
  for (int i : order) {
    const int32_t z = c.zp(0, i);
    const double s = c.scale(0, i);
    UniformSteps(UniformQuantizer(UniformParams{c.bits, c.scale(0, i), z}), 0, xs_.val.data(), TK, &steps);
    const int64_t changed = have_state && z == z_state ? CountChanged(state, steps, TK) : 0;
    if (!have_state || z != z_state || static_cast<double>(changed) > kUniformChainFraction * static_cast<double>(TK)) {
      Encode(c, i, new_codes.data());
      CodeGram(new_codes.data(), codes_s8.data(), z, gram.data());
      old_codes = new_codes;
      have_state = true;
    } else if (changed > 0) {
      ++chain_updates_;
      // Bucket the changes by column (stable counting sort); apply them to new_codes.
      ch_t.resize(static_cast<size_t>(changed));
      ch_e.resize(static_cast<size_t>(changed));
      BucketChanges(state, steps, xs_.idx.data(), TK, K, [&](uint32_t idx) { return idx % static_cast<uint32_t>(K); },
                    &col_start, [&](int64_t at, uint32_t idx, int co, int cn) {
                      ch_t[static_cast<size_t>(at)] = static_cast<int32_t>(idx / static_cast<uint32_t>(K));
                      ch_e[static_cast<size_t>(at)] = cn - co;
                      new_codes[idx] = static_cast<UniformCode>(cn);
                    });
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
    state.lo = steps.lo;
    state.bounds.swap(steps.bounds);
    z_state = z;
    (*err)[static_cast<size_t>(i)] = form_.yy - 2.0 * s * Linear(state, z) + s * s * Quadratic(gram.data());
  }
}

void ActOutObjective::EvalDirect(int count, const std::function<FakeQuantFn(int)>& make_fq,
                                 std::vector<double>* err) const {
  ADALOG_CHECK(!wq_.empty(), "A-out: SetWeight not called");
  err->assign(static_cast<size_t>(count), 0.0);
  std::vector<FakeQuantFn> fqs;
  for (int i = 0; i < count; ++i) fqs.push_back(make_fq(i));
  exec::ParallelForScratch(
      count, count * T_ * K_ * N_ > kMinParallelWork,
      [&] {
        return std::make_pair(std::vector<float>(static_cast<size_t>(T_) * K_),
                              std::vector<float>(static_cast<size_t>(T_) * N_));
      },
      [&](auto& scr, int64_t i64) {
        const int i = static_cast<int>(i64);
        auto& [qx, out] = scr;
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
      });
}

}  // namespace adalog::search
