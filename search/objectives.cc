// Search objectives (AdaLog spec 4.3) in exact, cheaper forms; see objectives.h.
#include "search/objectives.h"

#include <dnnl.h>

#include <Eigen/Dense>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>

#include "quant/error.h"
#include "quant/float_order.h"
#include "quant/log_quantizers.h"
#include "quant/twin_uniform.h"
#include "quant/uniform.h"
#include "search/axpy.h"
#include "search/gram.h"
#include "search/psort.h"
#include "search/scan_kernels.h"

namespace adalog::search {
namespace {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapD = Eigen::Map<MatD>;
using CMapD = Eigen::Map<const MatD>;

// Rows of an output computed per block of this many rows: fixed, so that every element is
// computed by the same (single-threaded) GEMM call whatever the thread count.
constexpr int64_t kBlock = 32;
// Below this much work (multiply-adds) a loop runs on the calling thread: OpenMP barriers cost
// more than tiny loops, and on a loaded machine spinning threads waste whole time slices. The
// split never changes results (each result is computed by one thread either way).
constexpr int64_t kMinParallelWork = int64_t{1} << 22;
// Uniform A-out chain form: update the code Gram incrementally when at most this fraction of the
// codes changed (about 2 K integer multiply-adds per change against K^2 / (T K) per element for
// the VNNI GEMM, at a much lower rate per operation).
constexpr double kUniformChainFraction = 0.03;
// W-out: a changed code in the chain form (a double axpy of a G row, plus the sparse terms) costs
// about this many float-GEMM multiply-adds per element (measured on Zen 4, K = 1536); the chain
// form runs while it is the cheaper one.
constexpr int64_t kWoutChainCost = 32;

// C [M][N] = A [M][K] * op(B) with op(B) = B [K][N] or B^T (B [N][K]). Single-threaded when
// called inside a parallel region (oneDNN runs sequentially there); callers only call it there
// or with one OpenMP thread.
// Every float GEMM of the search: C[M][N] = op(A) op(B) through oneDNN's sgemm with a one-thread
// plan. Called outside an active parallel region (a region whose `if` clause is false, or a team
// of one), sgemm splits the work, K included, by omp_get_max_threads(), so its summation order and
// bits depended on the thread count (seen: a 1 x 256 x 256 GEMM, the W-out incumbent batch of
// one candidate, gave other bits with 2 threads than with 1 or 3, and so another fc2 weight scale
// in a 2-thread calibration). Inside an active region it already ran on one thread; the search
// parallelizes over rows, candidates and heads around these calls.
void SgemmOneThread(char transa, char transb, int64_t M, int64_t N, int64_t K, const float* a,
                    int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc) {
  const int prev = omp_get_max_threads();
  omp_set_num_threads(1);
  const dnnl_status_t st = dnnl_sgemm(transa, transb, M, N, K, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
  omp_set_num_threads(prev);
  ADALOG_CHECK(st == dnnl_success, "search: oneDNN sgemm failed (status ", static_cast<int>(st),
               ")");
}

void Sgemm(int64_t M, int64_t N, int64_t K, const float* a, const float* b, bool b_transposed,
           float* c) {
  SgemmOneThread('N', b_transposed ? 'T' : 'N', M, N, K, a, K, b, b_transposed ? K : N, c, N);
}

double SumSqDiff(const float* p, const float* q, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(p[i]) - static_cast<double>(q[i]);
    s += d * d;
  }
  return s;
}

}  // namespace

namespace {
uint32_t OrderedKey(float v) { return OrderedFloatKey(v); }
float FromOrderedKey(uint32_t k) { return FloatFromOrderedKey(k); }
}  // namespace

std::vector<float> UniformCodeThresholds(const UniformParams& p) {
  // The uniform code is monotone non-decreasing over the ordered non-NaN floats (-0 and +0
  // encode alike): thr[c - 1] = the smallest float whose code is >= c, by bisection over the
  // float bit patterns with the quantizer's own Encode.
  const UniformQuantizer q(p);
  const int32_t levels = int32_t{1} << p.bits;
  const uint32_t kmin = OrderedKey(-std::numeric_limits<float>::infinity());
  const uint32_t kmax = OrderedKey(std::numeric_limits<float>::infinity());
  std::vector<float> thr;
  for (int32_t c = 1; c < levels; ++c) {
    if (q.Encode(FromOrderedKey(kmin)) >= c) {
      thr.push_back(FromOrderedKey(kmin));
      continue;
    }
    if (q.Encode(FromOrderedKey(kmax)) < c) {
      thr.push_back(std::numeric_limits<float>::quiet_NaN());  // never reached: no x >= NaN
      continue;
    }
    uint32_t lo = kmin, hi = kmax;  // code(lo) < c <= code(hi)
    while (hi - lo > 1) {
      const uint32_t mid = lo + (hi - lo) / 2;
      if (q.Encode(FromOrderedKey(mid)) >= c) hi = mid; else lo = mid;
    }
    thr.push_back(FromOrderedKey(hi));
  }
  return thr;
}

FakeQuantFn UniformFq(const UniformParams& p) {
  auto q = std::make_shared<UniformQuantizer>(p);
  return [q](const float* x, int64_t n, float* out) { q->FakeQuant(x, n, out); };
}

namespace {
// A log quantizer's code as a count of thresholds: the code is monotone non-increasing over
// the ordered non-NaN floats (-inf .. +inf; -0 and +0 encode alike), so {x : code(x) >= c} is
// a prefix, and thr[c - 1] = the smallest float whose code is < c, found by bisection over the
// float bit patterns with the quantizer's own Encode. code(x) = #{c : x < thr[c - 1]} for every
// non-NaN x (exact by construction; tested against Encode).
struct LogThresholdQuant {
  std::vector<float> thr;  // descending, LogZeroCode(bits) entries
  std::vector<float> lv;   // unscaled levels
  float scale = 1.0f;
  explicit LogThresholdQuant(const LogQuantizer& q) : lv(q.levels()), scale(q.params().scale) {
    const int32_t zc = q.zero_code();
    const uint32_t kmin = OrderedKey(-std::numeric_limits<float>::infinity());
    const uint32_t kmax = OrderedKey(std::numeric_limits<float>::infinity());
    for (int32_t c = 1; c <= zc; ++c) {
      uint32_t lo = kmin, hi = kmax;  // code(lo) >= c is assumed; code(hi) = 0 < c
      if (static_cast<int32_t>(q.Encode(FromOrderedKey(lo))) < c) {
        thr.push_back(FromOrderedKey(lo));  // (not reached: -inf has the zero code)
        continue;
      }
      while (hi - lo > 1) {
        const uint32_t mid = lo + (hi - lo) / 2;
        if (static_cast<int32_t>(q.Encode(FromOrderedKey(mid))) < c) hi = mid; else lo = mid;
      }
      thr.push_back(FromOrderedKey(hi));
    }
  }
  // out = Decode(Encode(x)) (NaN -> NaN), for x already shifted.
  void Apply(const float* x, int64_t n, float* out) const {
    SelectScanKernels().threshold_levels(x, n, thr.data(), static_cast<int>(thr.size()), 0,
                                         lv.data(), out);
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] == x[i] ? out[i] * scale : x[i];
  }
};
}  // namespace

FakeQuantFn LogFq(const LogParams& p, float shift) {
  if (p.bits > 4) {  // many thresholds: the quantizer's table encoder is faster
    if (shift == 0.0f) {
      auto q = std::make_shared<LogQuantizer>(p);
      return [q](const float* x, int64_t n, float* out) { q->FakeQuant(x, n, out); };
    }
    auto q = std::make_shared<ShiftLogQuantizer>(p, shift, false);
    return [q](const float* x, int64_t n, float* out) { q->FakeQuant(x, n, out); };
  }
  // Same values as LogQuantizer / ShiftLogQuantizer::FakeQuant, through the threshold count
  // (an in-register binary search on AVX-512).
  auto q = std::make_shared<LogThresholdQuant>(LogQuantizer(p));
  if (shift == 0.0f) return [q](const float* x, int64_t n, float* out) { q->Apply(x, n, out); };
  return [q, shift](const float* x, int64_t n, float* out) {
    constexpr int64_t kChunk = 4096;
    float tmp[kChunk];
    for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
      const int64_t m = std::min(kChunk, n - i0);
      for (int64_t i = 0; i < m; ++i) tmp[i] = x[i0 + i] + shift;
      q->Apply(tmp, m, out + i0);
      for (int64_t i = 0; i < m; ++i) out[i0 + i] = out[i0 + i] - shift;
    }
  };
}

FakeQuantFn TwinFq(const TwinUniformParams& p) {
  auto q = std::make_shared<TwinUniformQuantizer>(p);
  return [q](const float* x, int64_t n, float* out) { q->FakeQuant(x, n, out); };
}

// ---------------------------------------------------------------------------------------------
void WeightSelfErrors(const float* w, int rows, int cols, const UniformCandidates& c,
                      std::vector<double>* err) {
  ADALOG_CHECK(c.groups == rows, "W-self: ", c.groups, " groups for ", rows, " rows");
  // Per row, the A-self form: the row sorted once with prefix sums of w and w^2, each code's
  // bin by bisection with the quantizer's own Encode (the code is monotone in w), the bin's
  // error S2 - 2 v S1 + n v^2 in double. O(2^b log cols) per candidate instead of cols.
  std::vector<float> wt(static_cast<size_t>(rows) * cols);
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < cols; ++j)
      wt[static_cast<size_t>(j) * rows + r] = w[static_cast<int64_t>(r) * cols + j];
  const ActSelfObjective per_row(wt.data(), cols, rows, /*per_channel=*/true);
  per_row.Eval(c, err);
}

// ---------------------------------------------------------------------------------------------
ActSelfObjective::ActSelfObjective(const float* x, int64_t rows, int cols, bool per_channel) {
  ADALOG_CHECK(rows > 0 && cols > 0, "A-self: empty tensor");
  groups_ = per_channel ? cols : 1;
  n_ = per_channel ? rows : rows * cols;
  sorted_.resize(static_cast<size_t>(groups_) * n_);
  s1_.resize(static_cast<size_t>(groups_) * (n_ + 1));
  s2_.resize(static_cast<size_t>(groups_) * (n_ + 1));
  if (per_channel) {
    for (int64_t r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) sorted_[static_cast<size_t>(c) * n_ + r] = x[r * cols + c];
  } else {
    std::copy(x, x + n_, sorted_.begin());
  }
#pragma omp parallel for schedule(dynamic, 1) if (n_ * groups_ > kMinParallelWork)
  for (int g = 0; g < groups_; ++g) {
    float* v = sorted_.data() + static_cast<size_t>(g) * n_;
    std::sort(v, v + n_);
    double* p1 = s1_.data() + static_cast<size_t>(g) * (n_ + 1);
    double* p2 = s2_.data() + static_cast<size_t>(g) * (n_ + 1);
    p1[0] = p2[0] = 0;
    for (int64_t i = 0; i < n_; ++i) {
      const double d = v[i];
      p1[i + 1] = p1[i] + d;
      p2[i + 1] = p2[i] + d * d;
    }
  }
}

void ActSelfObjective::Eval(const UniformCandidates& c, std::vector<double>* err) const {
  ADALOG_CHECK(c.groups == groups_, "A-self: ", c.groups, " groups for ", groups_);
  err->assign(static_cast<size_t>(groups_) * c.count, 0.0);
  const int64_t pairs = static_cast<int64_t>(groups_) * c.count;
  const int32_t levels = 1 << c.bits;
#pragma omp parallel for schedule(dynamic, 8) if (pairs * levels * 24 > kMinParallelWork)
  for (int64_t p = 0; p < pairs; ++p) {
    const int g = static_cast<int>(p / c.count), i = static_cast<int>(p % c.count);
    const UniformQuantizer q(UniformParams{c.bits, c.scale(g, i), c.zp(g, i)});
    const float* v = sorted_.data() + static_cast<size_t>(g) * n_;
    const double* p1 = s1_.data() + static_cast<size_t>(g) * (n_ + 1);
    const double* p2 = s2_.data() + static_cast<size_t>(g) * (n_ + 1);
    double e = 0;
    int64_t start = 0;
    for (int32_t code = 0; code < levels && start < n_; ++code) {
      // End of this code's bin: the first value whose code exceeds `code` (codes are monotone
      // in x, so the bins are contiguous in the sorted array).
      const int64_t end =
          code == levels - 1
              ? n_
              : std::partition_point(v + start, v + n_,
                                     [&](float x) { return q.Encode(x) <= code; }) - v;
      if (end > start) {
        const double val = q.Decode(code);
        const double cnt = static_cast<double>(end - start);
        e += (p2[end] - p2[start]) - 2.0 * val * (p1[end] - p1[start]) + cnt * val * val;
      }
      start = end;
    }
    (*err)[static_cast<size_t>(p)] = e;
  }
}

// ---------------------------------------------------------------------------------------------
WeightOutObjective::WeightOutObjective(const float* xq, int64_t T, int K, const float* y,
                                       const float* bias, int N)
    : K_(K), N_(N) {
  ADALOG_CHECK(T > 0 && K > 0 && N > 0, "W-out: empty operands");
  // G = Xq^T Xq and Xq^T Y with exact products, summed over t in order (search/gram.h); then
  // c_o = Xq^T (y_o - b_o) = Xq^T y_o - b_o colsum(Xq), all in double.
  G_.resize(static_cast<size_t>(K) * K);
  GramAtB(xq, K, K, xq, K, K, T, G_.data(), K, /*symmetric=*/true);
  if (T < K) {
    xq_.assign(xq, xq + T * K);  // e^T G e = ||Xq e||^2 is cheaper (the head: T = images)
    T_ = T;
  } else {
    Gf_.assign(G_.begin(), G_.end());
  }
  C_.resize(static_cast<size_t>(N) * K);
  GramAtB(y, N, N, xq, K, K, T, C_.data(), K, /*symmetric=*/false);
  if (bias) {
    std::vector<double> colsum(static_cast<size_t>(K), 0.0);
    for (int64_t t = 0; t < T; ++t)
      for (int k = 0; k < K; ++k) colsum[static_cast<size_t>(k)] += xq[t * K + k];
    for (int o = 0; o < N; ++o)
      for (int k = 0; k < K; ++k)
        C_[static_cast<size_t>(o) * K + k] -= static_cast<double>(bias[o]) * colsum[static_cast<size_t>(k)];
  }
  yy_.assign(static_cast<size_t>(N), 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int o = 0; o < N; ++o) {
      const double d = static_cast<double>(y[t * N + o]) - (bias ? static_cast<double>(bias[o]) : 0.0);
      yy_[static_cast<size_t>(o)] += d * d;
    }
}

namespace {
// Calls f(begin, end, u_a, u_b) for each range [begin, end) of sorted positions in [0, n)
// where the two code functions differ (a merge sweep over the two sorted bound lists).
template <typename F>
void ForChangedU(int alo, int ahi, const int32_t* apos, int blo, int bhi, const int32_t* bpos,
                 int64_t n, F&& f) {
  const int na = ahi - alo, nb = bhi - blo;
  int ia = 0, ib = 0, ua = alo, ub = blo;
  int64_t p = 0;
  while (p < n) {
    while (ia < na && apos[ia] <= p) ++ua, ++ia;
    while (ib < nb && bpos[ib] <= p) ++ub, ++ib;
    const int64_t next = std::min<int64_t>(ia < na ? apos[ia] : n, ib < nb ? bpos[ib] : n);
    if (ua != ub) f(p, next, ua, ub);
    p = next;
  }
}
}  // namespace

void WeightOutObjective::ChainRow(int o, const float* row, const UniformCandidates& c,
                                  const int* order, const std::vector<UBounds>& cands,
                                  ChainScratch* sc, double* err) const {
  // e = s u - w with integer codes u = c - z:
  //   e^T G e = s^2 u^T G u - 2 s u.Gw + w^T G w,   e.g0 = s u.g0 - w.g0,
  // walked through the candidates in `order` from the row's cached state (u as bounds in the
  // row's sorted order, v = G u, u^T G u, u.Gw, u.g0); a sparse change d of the codes moves
  // them by u^T G u += 2 d.v + d^T G d, v += G d, u.Gw += d.Gw, u.g0 += d.g0, all in double.
  const int K = K_, M = c.count;
  const size_t ok = static_cast<size_t>(o) * K;
  const double* gw = gw_.data() + ok;
  const double* g0 = g0_.data() + ok;
  const int32_t* sidx = srt_idx_.data() + ok;
  double* v = st_v_.data() + ok;
  ChainState& st = st_[static_cast<size_t>(o)];
  UBounds& sub = st_ub_[static_cast<size_t>(o)];
  const AxpyF64Fn axpy = SelectAxpyF64();
  double wg0 = 0;
  for (int k = 0; k < K; ++k) wg0 += static_cast<double>(row[k]) * g0[k];
  const double wgw = wgw_[static_cast<size_t>(o)];
  const double rr = rr_[static_cast<size_t>(o)];
  double best = std::numeric_limits<double>::infinity();
  for (int j = 0; j < M; ++j) {
    const int i = order[j];
    const UBounds& cb = cands[static_cast<size_t>(i)];
    int nd = 0;
    ForChangedU(sub.lo, sub.hi, sub.pos.data(), cb.lo, cb.hi, cb.pos.data(), K,
                [&](int64_t a, int64_t b, int ua, int ub) {
                  for (int64_t p = a; p < b; ++p) {
                    sc->dk[static_cast<size_t>(nd)] = sidx[p];
                    sc->dd[static_cast<size_t>(nd)] = ub - ua;
                    ++nd;
                  }
                });
    if (nd > 0) {
      double dv = 0, dgw = 0, dg0 = 0, dgd = 0;
      for (int a = 0; a < nd; ++a) {
        const int ka = sc->dk[static_cast<size_t>(a)];
        const double da = sc->dd[static_cast<size_t>(a)];
        dv += da * v[ka];
        dgw += da * gw[ka];
        dg0 += da * g0[ka];
        const double* grow = G_.data() + static_cast<size_t>(ka) * K;
        double acc = 0;
        for (int b = 0; b < nd; ++b)
          acc += static_cast<double>(sc->dd[static_cast<size_t>(b)]) * grow[sc->dk[static_cast<size_t>(b)]];
        dgd += da * acc;
      }
      st.ugu += 2.0 * dv + dgd;
      st.ugw += dgw;
      st.ug0 += dg0;
      for (int a = 0; a < nd; ++a) {
        const int ka = sc->dk[static_cast<size_t>(a)];
        axpy(v, static_cast<double>(sc->dd[static_cast<size_t>(a)]), G_.data() + static_cast<size_t>(ka) * K, K);
      }
    }
    sub = cb;
    const double s = c.scale(o, i);
    const double quad = s * s * st.ugu - 2.0 * s * st.ugw + wgw;
    const double lin = s * st.ug0 - wg0;
    const double e = rr - 2.0 * lin + quad;
    err[i] = e;
    // Keep the state at the best candidate so far (where the next FPCS step's candidates are).
    if (e < best && j + 1 < M) {
      best = e;
      sc->best_ub = sub;
      std::copy(v, v + K, sc->best_v.begin());
      sc->best_st = st;
    }
  }
  if (best < std::numeric_limits<double>::infinity() && M > 1 && best < err[order[M - 1]]) {
    sub = sc->best_ub;
    std::copy(sc->best_v.begin(), sc->best_v.end(), v);
    st = sc->best_st;
  }
}

void WeightOutObjective::Eval(const float* w, const UniformCandidates& c,
                              std::vector<double>* err) const {
  ADALOG_CHECK(c.groups == N_, "W-out: ", c.groups, " groups for ", N_, " rows");
  err->assign(static_cast<size_t>(N_) * c.count, 0.0);
  CMapD G(G_.data(), K_, K_);
  const int K = K_, M = c.count;
  // g0, G w, ||r0||^2 and w^T G w depend on the FP row only: computed on the first Eval of a
  // weight and reused by the later FPCS steps (the same numbers as recomputing them).
  const size_t NK = static_cast<size_t>(N_) * K;
  if (wcache_.size() != NK || !std::equal(wcache_.begin(), wcache_.end(), w)) {
    wcache_.assign(w, w + NK);
    g0_.assign(NK, 0.0);
    gw_.assign(NK, 0.0);
    rr_.assign(static_cast<size_t>(N_), 0.0);
    wgw_.assign(static_cast<size_t>(N_), 0.0);
    row_ready_.assign(static_cast<size_t>(N_), 0);
    st_.clear();  // u.Gw and u.g0 belong to the previous weight
  }
  const bool can_chain = xq_.empty() && quad_form_ != 1;
  if (can_chain && st_.empty()) {  // chain states: u = 0, v = 0 (valid: G 0 = 0)
    st_.assign(static_cast<size_t>(N_), ChainState{});
    st_ub_.assign(static_cast<size_t>(N_), UBounds{});
    st_v_.assign(NK, 0.0);
  }
  if (srt_idx_.size() != NK) {
    srt_idx_.assign(NK, 0);
    srt_val_.assign(NK, 0.0f);
  }
  // Chain budget per row: changed codes cost about kWoutChainCost GEMM multiply-adds per
  // element each (a double axpy of a G row), the GEMM M K^2.
  const int64_t budget = quad_form_ == 2 ? std::numeric_limits<int64_t>::max()
                                         : static_cast<int64_t>(M) * K / kWoutChainCost;
#pragma omp parallel if (static_cast<int64_t>(N_) * M * K * K > kMinParallelWork)
  {
    std::vector<double> ed;
    std::vector<float> ef, eg;
    std::vector<int> order(static_cast<size_t>(M));
    std::vector<int16_t> u16;
    std::vector<UBounds> cands(static_cast<size_t>(M));
    ChainScratch sc;
    if (can_chain) {
      sc.dk.resize(static_cast<size_t>(K));
      sc.dd.resize(static_cast<size_t>(K));
      sc.best_v.resize(static_cast<size_t>(K));
    }
    Eigen::VectorXd wd(K);
#pragma omp for schedule(dynamic, 1)
    for (int o = 0; o < N_; ++o) {
      const float* row = w + static_cast<int64_t>(o) * K;
      for (int k = 0; k < K; ++k) wd(k) = row[k];
      // Re-centred on the FP row: with e = w_hat - w and r0 = y_o - b_o - Xq w,
      //   err(w_hat) = ||r0||^2 - 2 e.g0 + e^T G e,   g0 = Xq^T r0 = c_o - G w.
      Eigen::Map<Eigen::VectorXd> g0(g0_.data() + static_cast<size_t>(o) * K, K);
      Eigen::Map<Eigen::VectorXd> gw(gw_.data() + static_cast<size_t>(o) * K, K);
      if (!row_ready_[static_cast<size_t>(o)]) {
        Eigen::Map<const Eigen::VectorXd> co(C_.data() + static_cast<size_t>(o) * K, K);
        gw = G * wd;
        g0 = co - gw;
        wgw_[static_cast<size_t>(o)] = wd.dot(gw);
        rr_[static_cast<size_t>(o)] = yy_[static_cast<size_t>(o)] - 2.0 * co.dot(wd) + wgw_[static_cast<size_t>(o)];
        // The row sorted once (codes are monotone in w): candidates as code bounds.
        int32_t* ix = srt_idx_.data() + static_cast<size_t>(o) * K;
        float* sv = srt_val_.data() + static_cast<size_t>(o) * K;
        std::iota(ix, ix + K, 0);
        std::sort(ix, ix + K, [&](int32_t a, int32_t b) {
          return row[a] < row[b] || (!(row[b] < row[a]) && a < b);
        });
        for (int k = 0; k < K; ++k) sv[k] = row[ix[k]];
        row_ready_[static_cast<size_t>(o)] = 1;
      }
      const double rr = rr_[static_cast<size_t>(o)];
      const int32_t* six = srt_idx_.data() + static_cast<size_t>(o) * K;
      const float* sval = srt_val_.data() + static_cast<size_t>(o) * K;
      const int32_t levels = int32_t{1} << c.bits;
      // e^T G e: exactly in double along a chain of sparse code changes (ChainRow: late FPCS
      // steps, nearby scales) or, when too many codes change, one float GEMM for all candidates
      // (e has the size of the error, so the float rounding is relative to err). Both are the
      // plain objective up to rounding; which one runs depends on the data only.
      // Each candidate's u = code - z as bounds in the sorted row (bisection with Encode).
      for (int i = 0; i < M; ++i) {
        const UniformQuantizer q(UniformParams{c.bits, c.scale(o, i), c.zp(o, i)});
        const int32_t z = c.zp(o, i);
        UBounds& ub = cands[static_cast<size_t>(i)];
        ub.lo = -z;
        ub.hi = levels - 1 - z;
        ub.pos.resize(static_cast<size_t>(levels - 1));
        int64_t start = 0;
        for (int vv = ub.lo + 1; vv <= ub.hi; ++vv) {
          start = std::partition_point(sval + start, sval + K,
                                       [&](float x) { return q.Encode(x) - z < vv; }) - sval;
          ub.pos[static_cast<size_t>(vv - ub.lo - 1)] = static_cast<int32_t>(start);
        }
      }
      if (can_chain) {
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(), [&](int a, int b) {
          const float sa = c.scale(o, a), sb = c.scale(o, b);
          if (sa != sb) return sa < sb;
          if (c.zp(o, a) != c.zp(o, b)) return c.zp(o, a) < c.zp(o, b);
          return a < b;
        });
        // Changed codes along the chain, from the row's state through every candidate.
        int64_t changed = 0;
        const UBounds* prev = &st_ub_[static_cast<size_t>(o)];
        for (int j = 0; j < M && changed <= budget; ++j) {
          const UBounds& cur = cands[static_cast<size_t>(order[static_cast<size_t>(j)])];
          ForChangedU(prev->lo, prev->hi, prev->pos.data(), cur.lo, cur.hi, cur.pos.data(), K,
                      [&](int64_t a, int64_t b, int, int) { changed += b - a; });
          prev = &cur;
        }
        if (changed <= budget) {
          ChainRow(o, row, c, order.data(), cands, &sc, err->data() + static_cast<size_t>(o) * M);
          continue;
        }
      }
      u16.resize(static_cast<size_t>(M) * K);
      for (int i = 0; i < M; ++i) {
        const UBounds& ub = cands[static_cast<size_t>(i)];
        int16_t* ui = u16.data() + static_cast<size_t>(i) * K;
        int64_t p = 0;
        for (int vv = ub.lo; vv <= ub.hi; ++vv) {
          const int64_t end = vv < ub.hi ? ub.pos[static_cast<size_t>(vv - ub.lo)] : K;
          for (; p < end; ++p) ui[six[p]] = static_cast<int16_t>(vv);
        }
      }
      ed.resize(static_cast<size_t>(M) * K);
      ef.resize(ed.size());
      eg.resize(static_cast<size_t>(M) * (xq_.empty() ? K : T_));
      for (int i = 0; i < M; ++i) {
        const double s = c.scale(o, i);
        const int16_t* ui = u16.data() + static_cast<size_t>(i) * K;
        for (int k = 0; k < K; ++k) {
          const double e = s * static_cast<double>(ui[k]) - wd(k);
          ed[static_cast<size_t>(i) * K + k] = e;
          ef[static_cast<size_t>(i) * K + k] = static_cast<float>(e);
        }
      }
      if (xq_.empty()) {
        Sgemm(M, K, K, ef.data(), Gf_.data(), false, eg.data());
      } else {
        Sgemm(M, T_, K, ef.data(), xq_.data(), true, eg.data());  // rows: (Xq e_i)^T
      }
      for (int i = 0; i < M; ++i) {
        double quad = 0, lin = 0;
        for (int k = 0; k < K; ++k) {
          const size_t at = static_cast<size_t>(i) * K + k;
          if (xq_.empty()) quad += static_cast<double>(ef[at]) * eg[at];
          lin += ed[at] * g0(k);
        }
        if (!xq_.empty()) {
          for (int64_t t = 0; t < T_; ++t) {
            const double vv = eg[static_cast<size_t>(i * T_ + t)];
            quad += vv * vv;
          }
        }
        (*err)[static_cast<size_t>(o) * M + i] = rr - 2.0 * lin + quad;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------------------------
MatmulObjective::MatmulObjective(const float* a, const float* b, int heads, int images, int M,
                                 int K, int N, bool b_transposed)
    : a_(a), b_(b), heads_(heads), images_(images), M_(M), K_(K), N_(N), bt_(b_transposed) {
  ADALOG_CHECK(heads > 0 && images > 0 && M > 0 && K > 0 && N > 0, "matmul objective: empty");
  p_.resize(static_cast<size_t>(heads) * images * M * N);
  const int64_t pairs = static_cast<int64_t>(heads) * images;
  const int64_t am = static_cast<int64_t>(M) * K, bm = static_cast<int64_t>(K) * N,
                pm = static_cast<int64_t>(M) * N;
#pragma omp parallel for schedule(dynamic, 1) if (pairs * pm * K > kMinParallelWork)
  for (int64_t p = 0; p < pairs; ++p) Sgemm(M, N, K, a + p * am, b + p * bm, bt_, p_.data() + p * pm);
}

double MatmulObjective::HeadError(int h, const float* qa_h, const float* qb_h,
                                  float* scratch) const {
  const int64_t am = static_cast<int64_t>(M_) * K_, bm = static_cast<int64_t>(K_) * N_,
                pm = static_cast<int64_t>(M_) * N_;
  double e = 0;
  for (int img = 0; img < images_; ++img) {
    Sgemm(M_, N_, K_, qa_h + img * am, qb_h + img * bm, bt_, scratch);
    e += SumSqDiff(p_.data() + (static_cast<int64_t>(h) * images_ + img) * pm, scratch, pm);
  }
  return e;
}

void MatmulObjective::SetQuantizedA(std::vector<float> qa) {
  qa_ = std::move(qa);
  res_b_.ready = false;
  if (bt_ && K_ < M_) PrepareResidual(/*for_a=*/false, &res_b_);
  if (!bt_) PrepareResidualAvB(&res_b_);
}

void MatmulObjective::SetQuantizedB(std::vector<float> qb) {
  qb_ = std::move(qb);
  res_a_.ready = false;
  if (bt_ && K_ < N_) PrepareResidual(/*for_a=*/true, &res_a_);
}

void MatmulObjective::PrepareResidual(bool for_a, Residual* res) const {
  // for_a: X = A (M x K), Y = Qb (N x K), target P (M x N).
  // else:  X = B (N x K), Y = Qa (M x K), target P^T (N x M).
  const int rows = for_a ? M_ : N_, cols = for_a ? N_ : M_, K = K_;
  const float* xs = for_a ? a_ : b_;
  const float* ys = for_a ? qb_.data() : qa_.data();
  const int64_t pairs = static_cast<int64_t>(heads_) * images_;
  res->rows = rows;
  res->R.resize(static_cast<size_t>(pairs) * rows * K);
  res->XH.resize(static_cast<size_t>(pairs) * rows * K);
  res->RR.assign(static_cast<size_t>(heads_), 0.0);
  res->XR.assign(static_cast<size_t>(heads_), 0.0);
  res->XHX.assign(static_cast<size_t>(heads_), 0.0);
  res->H.resize(static_cast<size_t>(pairs) * K * K);
  res->rr.assign(static_cast<size_t>(pairs), 0.0);
#pragma omp parallel if (pairs * rows * cols * K > kMinParallelWork)
  {
    std::vector<float> r0(static_cast<size_t>(rows) * cols);
#pragma omp for schedule(dynamic, 1)
    for (int64_t p = 0; p < pairs; ++p) {
      const float* x = xs + p * rows * K;
      const float* y = ys + p * cols * K;
      const float* tgt = p_.data() + p * M_ * N_;
      Sgemm(rows, cols, K, x, y, /*b_transposed=*/true, r0.data());  // X Y^T
      double rr = 0;
      for (int i = 0; i < rows; ++i)
        for (int j = 0; j < cols; ++j) {
          const float t = for_a ? tgt[i * N_ + j] : tgt[j * N_ + i];
          const double d = static_cast<double>(t) - r0[static_cast<size_t>(i) * cols + j];
          r0[static_cast<size_t>(i) * cols + j] = static_cast<float>(d);
          rr += d * d;
        }
      res->rr[static_cast<size_t>(p)] = rr;
      Sgemm(rows, K, cols, r0.data(), y, /*b_transposed=*/false, res->R.data() + p * rows * K);
      float* H = res->H.data() + p * K * K;
      for (int a = 0; a < K; ++a)
        for (int b = 0; b < K; ++b) {
          double acc = 0;
          for (int j = 0; j < cols; ++j) acc += static_cast<double>(y[j * K + a]) * y[j * K + b];
          H[a * K + b] = static_cast<float>(acc);
        }
      Sgemm(rows, K, K, x, H, /*b_transposed=*/false, res->XH.data() + p * rows * K);
    }
  }
  res->con_rows = false;
  res->xi = rows;
  res->xj = K;
  FinishResidual(xs, res);
}

void MatmulObjective::FinishResidual(const float* xs, Residual* res) const {
  // Per head: RR = sum rr, XR = <X, R>, XHX = <X H, X> over the images (fixed order).
  const int64_t per = static_cast<int64_t>(images_) * res->xi * res->xj;
  for (int h = 0; h < heads_; ++h) {
    double rrs = 0, xr = 0, xhx = 0;
    for (int img = 0; img < images_; ++img) rrs += res->rr[static_cast<size_t>(h) * images_ + img];
    SelectScanKernels().dot2(xs + h * per, res->R.data() + h * per, res->XH.data() + h * per, per,
                             &xr, &xhx);
    res->RR[static_cast<size_t>(h)] = rrs;
    res->XR[static_cast<size_t>(h)] = xr;
    res->XHX[static_cast<size_t>(h)] = xhx;
  }
  res->U.assign(static_cast<size_t>(heads_), std::vector<int16_t>(static_cast<size_t>(per), 0));
  res->V.assign(static_cast<size_t>(heads_), std::vector<double>(static_cast<size_t>(per), 0.0));
  res->UR.assign(static_cast<size_t>(heads_), 0.0);
  res->UXH.assign(static_cast<size_t>(heads_), 0.0);
  res->UHU.assign(static_cast<size_t>(heads_), 0.0);
  res->umin.assign(static_cast<size_t>(heads_), 0);
  res->umax.assign(static_cast<size_t>(heads_), 0);
  res->pos.assign(static_cast<size_t>(heads_), {});
  res->ready = true;
}

void MatmulObjective::PrepareResidualAvB(Residual* res) const {
  // X = v (K x N), Y = Qa (M x K), target P (M x N): E = Q(X) - X,
  //   err = ||r0 - Y E||^2 = ||r0||^2 - 2 <E, R> + <E, H E>,  r0 = P - Y X, R = Y^T r0,
  //   H = Y^T Y (K x K, over tokens), per (head, image).
  const int M = M_, K = K_, N = N_;
  const int64_t pairs = static_cast<int64_t>(heads_) * images_;
  res->rows = K;
  res->con_rows = true;
  res->xi = K;
  res->xj = N;
  res->R.resize(static_cast<size_t>(pairs) * K * N);
  res->XH.resize(res->R.size());
  res->H.resize(static_cast<size_t>(pairs) * K * K);
  res->rr.assign(static_cast<size_t>(pairs), 0.0);
  res->RR.assign(static_cast<size_t>(heads_), 0.0);
  res->XR.assign(static_cast<size_t>(heads_), 0.0);
  res->XHX.assign(static_cast<size_t>(heads_), 0.0);
#pragma omp parallel if (pairs * M * K * (N + K) > kMinParallelWork)
  {
    std::vector<float> r0(static_cast<size_t>(M) * N);
#pragma omp for schedule(dynamic, 1)
    for (int64_t p = 0; p < pairs; ++p) {
      const float* x = b_ + p * K * N;
      const float* y = qa_.data() + p * M * K;
      const float* tgt = p_.data() + p * M * N;
      Sgemm(M, N, K, y, x, /*b_transposed=*/false, r0.data());  // Y X
      double rr = 0;
      for (int64_t i = 0; i < static_cast<int64_t>(M) * N; ++i) {
        const double d = static_cast<double>(tgt[i]) - r0[static_cast<size_t>(i)];
        r0[static_cast<size_t>(i)] = static_cast<float>(d);
        rr += d * d;
      }
      res->rr[static_cast<size_t>(p)] = rr;
      float* R = res->R.data() + p * K * N;
      float* H = res->H.data() + p * K * K;
      SgemmOneThread('T', 'N', K, N, M, y, K, r0.data(), N, R, N);  // Y^T r0
      SgemmOneThread('T', 'N', K, K, M, y, K, y, K, H, K);           // Y^T Y
      Sgemm(K, N, K, H, x, /*b_transposed=*/false, res->XH.data() + p * K * N);  // H X
    }
  }
  FinishResidual(b_, res);
}

double MatmulObjective::ResidualHeadError(const Residual& res, int h, const float* x_h,
                                          const float* qx_h, float* e, float* eh) const {
  const int rows = res.rows, K = K_;
  const int64_t per = static_cast<int64_t>(rows) * K;
  double err = 0;
  for (int img = 0; img < images_; ++img) {
    const int64_t p = static_cast<int64_t>(h) * images_ + img;
    for (int64_t i = 0; i < per; ++i) e[i] = qx_h[img * per + i] - x_h[img * per + i];
    Sgemm(rows, K, K, e, res.H.data() + p * K * K, false, eh);
    const float* R = res.R.data() + p * per;
    double lin = 0, quad = 0;
    SelectScanKernels().dot2(e, R, eh, per, &lin, &quad);
    err += res.rr[static_cast<size_t>(p)] - 2.0 * lin + quad;
  }
  return err;
}

void MatmulObjective::SortHeads(const float* x, int64_t per_head, SortedHeads* out) const {
  if (out->built) return;
  out->built = true;
  out->ok = per_head < (int64_t{1} << 32);
  for (int64_t i = 0; i < per_head * heads_ && out->ok; ++i) out->ok = !std::isnan(x[i]);
  if (!out->ok) return;
  out->val.assign(static_cast<size_t>(heads_), {});
  out->idx.assign(static_cast<size_t>(heads_), {});
  for (int h = 0; h < heads_; ++h) {
    const float* xh = x + h * per_head;
    std::vector<uint64_t> keys(static_cast<size_t>(per_head));
    for (int64_t i = 0; i < per_head; ++i) {
      keys[static_cast<size_t>(i)] = (static_cast<uint64_t>(OrderedFloatKey(xh[i])) << 32) | static_cast<uint64_t>(i);
    }
    ParallelSortDistinct(&keys);
    std::vector<float>& v = out->val[static_cast<size_t>(h)];
    std::vector<uint32_t>& ix = out->idx[static_cast<size_t>(h)];
    v.resize(keys.size());
    ix.resize(keys.size());
    for (size_t p = 0; p < keys.size(); ++p) {
      ix[p] = static_cast<uint32_t>(keys[p] & 0xffffffffu);
      v[p] = xh[ix[p]];
    }
  }
}

void MatmulObjective::ChainHead(const Residual& res, const SortedHeads* sorted, int h,
                                const float* x_h, const UniformCandidates& c, double* err) const {
  const int M = c.count, xj = res.xj;
  const int D = res.con_rows ? res.xi : res.xj;  // H is D x D
  const int64_t per_img = static_cast<int64_t>(res.xi) * res.xj;
  const int64_t per = per_img * images_;
  std::vector<int16_t>& U = res.U[static_cast<size_t>(h)];
  std::vector<double>& V = res.V[static_cast<size_t>(h)];
  double& ur = res.UR[static_cast<size_t>(h)];
  double& uxh = res.UXH[static_cast<size_t>(h)];
  double& uhu = res.UHU[static_cast<size_t>(h)];
  const double RR = res.RR[static_cast<size_t>(h)], XR = res.XR[static_cast<size_t>(h)],
               XHX = res.XHX[static_cast<size_t>(h)];
  const float* R = res.R.data() + h * per;
  const float* XH = res.XH.data() + h * per;
  const float* Hh = res.H.data() + static_cast<int64_t>(h) * images_ * D * D;
  const AxpyF32F64Fn axpy = SelectAxpyF32F64();
  std::vector<int> order(static_cast<size_t>(M));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    const float sa = c.scale(h, a), sb = c.scale(h, b);
    if (sa != sb) return sa < sb;
    if (c.zp(h, a) != c.zp(h, b)) return c.zp(h, a) < c.zp(h, b);
    return a < b;
  });
  // X of this head sorted (once per objective): u = code - z is monotone in x, so a candidate's
  // u is given by 2^b boundaries in the sorted order (bisection with the quantizer's Encode),
  // and the elements whose u changed are whole ranges of the sorted order.
  const std::vector<float>& sval = sorted->val[static_cast<size_t>(h)];
  const std::vector<uint32_t>& sidx = sorted->idx[static_cast<size_t>(h)];
  int& umin = res.umin[static_cast<size_t>(h)];
  int& umax = res.umax[static_cast<size_t>(h)];
  std::vector<int64_t>& pos = res.pos[static_cast<size_t>(h)];
  auto u_at = [](int lo, int hi, const std::vector<int64_t>& ps, int64_t p) {
    int u = lo;
    for (int v = lo + 1; v <= hi; ++v)
      if (ps[static_cast<size_t>(v - lo - 1)] <= p) ++u;
    return u;
  };
  std::vector<int64_t> npos, pts;
  std::vector<float> uf;
  const int64_t limit = static_cast<int64_t>(chain_fraction_ * static_cast<double>(per));
  const int32_t levels = 1 << c.bits;
  for (int j = 0; j < M; ++j) {
    const int i = order[static_cast<size_t>(j)];
    const UniformQuantizer q(UniformParams{c.bits, c.scale(h, i), c.zp(h, i)});
    const int32_t z = c.zp(h, i);
    const int nlo = -z, nhi = levels - 1 - z;
    npos.assign(static_cast<size_t>(nhi - nlo), 0);
    int64_t start = 0;
    for (int v = nlo + 1; v <= nhi; ++v) {
      start = std::partition_point(sval.begin() + start, sval.end(),
                                   [&](float x) { return static_cast<int32_t>(q.Encode(x)) - z < v; }) -
              sval.begin();
      npos[static_cast<size_t>(v - nlo - 1)] = start;
    }
    // Ranges of the sorted order whose u changed.
    pts.assign({0, per});
    pts.insert(pts.end(), pos.begin(), pos.end());
    pts.insert(pts.end(), npos.begin(), npos.end());
    std::sort(pts.begin(), pts.end());
    pts.erase(std::unique(pts.begin(), pts.end()), pts.end());
    int64_t changed = 0;
    for (size_t t = 0; t + 1 < pts.size(); ++t)
      if (u_at(umin, umax, pos, pts[t]) != u_at(nlo, nhi, npos, pts[t])) changed += pts[t + 1] - pts[t];
    if (changed > limit) {
      // From scratch at this candidate: U from the boundaries, V = U H per image with exact
      // products (small integer times float) summed in double (search/gram.h), the three sums.
      for (size_t t = 0; t + 1 < pts.size(); ++t) {
        const int16_t u = static_cast<int16_t>(u_at(nlo, nhi, npos, pts[t]));
        for (int64_t p = pts[t]; p < pts[t + 1]; ++p) U[sidx[static_cast<size_t>(p)]] = u;
      }
      uf.resize(static_cast<size_t>(per_img));
      for (int img = 0; img < images_; ++img) {
        const int16_t* ui = U.data() + img * per_img;
        const float* Hi = Hh + static_cast<int64_t>(img) * D * D;
        double* vi = V.data() + img * per_img;
        if (res.con_rows) {  // U [D][xj]: V [xj][D] = U^T H
          for (int64_t e = 0; e < per_img; ++e) uf[static_cast<size_t>(e)] = ui[e];
          GramAtB(uf.data(), xj, xj, Hi, D, D, D, vi, D, false);
        } else {  // U [xi][D]: V [xi][D] = U H = (U^T)^T H
          const int xi = res.xi;
          for (int r = 0; r < xi; ++r)
            for (int k = 0; k < D; ++k) uf[static_cast<size_t>(k) * xi + r] = ui[static_cast<int64_t>(r) * D + k];
          GramAtB(uf.data(), xi, xi, Hi, D, D, D, vi, D, false);
        }
      }
      double a1 = 0, a2 = 0, a3 = 0;
      for (int64_t e = 0; e < per; ++e) {
        const double u = U[static_cast<size_t>(e)];
        a1 += u * static_cast<double>(R[e]);
        a2 += u * static_cast<double>(XH[e]);
      }
      for (int img = 0; img < images_; ++img) {
        const int16_t* ui = U.data() + img * per_img;
        const double* vi = V.data() + img * per_img;
        for (int ii = 0; ii < res.xi; ++ii)
          for (int jj = 0; jj < xj; ++jj) {
            const int64_t at = static_cast<int64_t>(ii) * xj + jj;
            const int64_t vat = res.con_rows ? static_cast<int64_t>(jj) * D + ii : at;
            a3 += static_cast<double>(ui[at]) * vi[vat];
          }
      }
      ur = a1;
      uxh = a2;
      uhu = a3;
    } else {
      for (size_t t = 0; t + 1 < pts.size(); ++t) {
        const int uo = u_at(umin, umax, pos, pts[t]), un = u_at(nlo, nhi, npos, pts[t]);
        if (uo == un) continue;
        const double d = static_cast<double>(un - uo);
        for (int64_t p = pts[t]; p < pts[t + 1]; ++p) {
          // Element (image, i, j) with contracted index k and other index r (the V row):
          // u_r^T H u_r moves by d (2 v_k + d H_kk), then v_r += d H_k.
          const int64_t at = sidx[static_cast<size_t>(p)];
          const int64_t img = at / per_img, ij = at % per_img, ii = ij / xj, jj = ij % xj;
          const int64_t k = res.con_rows ? ii : jj, r = res.con_rows ? jj : ii;
          const float* Hk = Hh + (img * D + k) * D;
          double* v = V.data() + img * per_img + r * D;
          uhu += d * (2.0 * v[k] + d * static_cast<double>(Hk[k]));
          ur += d * static_cast<double>(R[at]);
          uxh += d * static_cast<double>(XH[at]);
          axpy(v, d, Hk, D);
          U[static_cast<size_t>(at)] = static_cast<int16_t>(un);
        }
      }
    }
    umin = nlo;
    umax = nhi;
    pos.swap(npos);
    const double s = c.scale(h, i);
    err[i] = RR - 2.0 * (s * ur - XR) + s * s * uhu - 2.0 * s * uxh + XHX;
  }
}

void MatmulObjective::EvalAPerHead(const UniformCandidates& c, std::vector<double>* err) const {
  ADALOG_CHECK(c.groups == heads_, "MM-A: ", c.groups, " groups for ", heads_, " heads");
  ADALOG_CHECK(static_cast<int64_t>(qb_.size()) == heads_ * b_per_head(), "MM-A: B not set");
  err->assign(static_cast<size_t>(heads_) * c.count, 0.0);
  if (res_a_.ready) SortHeads(a_, a_per_head(), &sorted_a_);
  if (res_a_.ready && sorted_a_.ok) {  // chain form: per head, one thread, fixed order
#pragma omp parallel for schedule(dynamic, 1) if (heads_ > 1)
    for (int h = 0; h < heads_; ++h)
      ChainHead(res_a_, &sorted_a_, h, a_ + h * a_per_head(), c, err->data() + static_cast<size_t>(h) * c.count);
    return;
  }
  const int64_t pairs = static_cast<int64_t>(heads_) * c.count;
#pragma omp parallel if (pairs * a_per_head() * N_ > kMinParallelWork)
  {
    std::vector<float> qa(static_cast<size_t>(a_per_head())), scratch(static_cast<size_t>(M_) * N_);
    std::vector<float> e(static_cast<size_t>(M_) * K_), eh(e.size());
#pragma omp for schedule(dynamic, 1)
    for (int64_t p = 0; p < pairs; ++p) {
      const int h = static_cast<int>(p / c.count), i = static_cast<int>(p % c.count);
      UniformQuantizer(UniformParams{c.bits, c.scale(h, i), c.zp(h, i)})
          .FakeQuant(a_ + h * a_per_head(), a_per_head(), qa.data());
      (*err)[static_cast<size_t>(p)] =
          res_a_.ready ? ResidualHeadError(res_a_, h, a_ + h * a_per_head(), qa.data(), e.data(), eh.data())
                       : HeadError(h, qa.data(), qb_.data() + h * b_per_head(), scratch.data());
    }
  }
}

void MatmulObjective::EvalBPerHead(const UniformCandidates& c, std::vector<double>* err) const {
  ADALOG_CHECK(c.groups == heads_, "MM-B: ", c.groups, " groups for ", heads_, " heads");
  ADALOG_CHECK(static_cast<int64_t>(qa_.size()) == heads_ * a_per_head(), "MM-B: A not set");
  err->assign(static_cast<size_t>(heads_) * c.count, 0.0);
  if (res_b_.ready) SortHeads(b_, b_per_head(), &sorted_b_);
  if (res_b_.ready && sorted_b_.ok) {  // chain form: per head, one thread, fixed order
#pragma omp parallel for schedule(dynamic, 1) if (heads_ > 1)
    for (int h = 0; h < heads_; ++h)
      ChainHead(res_b_, &sorted_b_, h, b_ + h * b_per_head(), c, err->data() + static_cast<size_t>(h) * c.count);
    return;
  }
  const int64_t pairs = static_cast<int64_t>(heads_) * c.count;
#pragma omp parallel if (pairs * a_per_head() * N_ > kMinParallelWork)
  {
    std::vector<float> qb(static_cast<size_t>(b_per_head())), scratch(static_cast<size_t>(M_) * N_);
    std::vector<float> e(static_cast<size_t>(N_) * K_), eh(e.size());
#pragma omp for schedule(dynamic, 1)
    for (int64_t p = 0; p < pairs; ++p) {
      const int h = static_cast<int>(p / c.count), i = static_cast<int>(p % c.count);
      UniformQuantizer(UniformParams{c.bits, c.scale(h, i), c.zp(h, i)})
          .FakeQuant(b_ + h * b_per_head(), b_per_head(), qb.data());
      (*err)[static_cast<size_t>(p)] =
          res_b_.ready ? ResidualHeadError(res_b_, h, b_ + h * b_per_head(), qb.data(), e.data(), eh.data())
                       : HeadError(h, qa_.data() + h * a_per_head(), qb.data(), scratch.data());
    }
  }
}

void MatmulObjective::EvalATensor(int count, const std::function<FakeQuantFn(int)>& make_fq,
                                  std::vector<double>* err) const {
  ADALOG_CHECK(static_cast<int64_t>(qb_.size()) == heads_ * b_per_head(), "MM-A: B not set");
  std::vector<FakeQuantFn> fqs;
  for (int i = 0; i < count; ++i) fqs.push_back(make_fq(i));
  std::vector<double> per(static_cast<size_t>(count) * heads_);
  const int64_t pairs = static_cast<int64_t>(count) * heads_;
#pragma omp parallel if (pairs * a_per_head() * N_ > kMinParallelWork)
  {
    std::vector<float> qa(static_cast<size_t>(a_per_head())), scratch(static_cast<size_t>(M_) * N_);
#pragma omp for schedule(dynamic, 1)
    for (int64_t p = 0; p < pairs; ++p) {
      const int i = static_cast<int>(p / heads_), h = static_cast<int>(p % heads_);
      fqs[static_cast<size_t>(i)](a_ + h * a_per_head(), a_per_head(), qa.data());
      per[static_cast<size_t>(p)] =
          HeadError(h, qa.data(), qb_.data() + h * b_per_head(), scratch.data());
    }
  }
  err->assign(static_cast<size_t>(count), 0.0);
  for (int i = 0; i < count; ++i)
    for (int h = 0; h < heads_; ++h)
      (*err)[static_cast<size_t>(i)] += per[static_cast<size_t>(i) * heads_ + h];
}

}  // namespace adalog::search
