// Incremental exact A-out for the shifted log fc2 input quantizers; see log_act_out.h.
#include "search/log_act_out.h"

#include <dnnl.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "quant/codes.h"
#include "quant/error.h"
#include "quant/log_quantizers.h"
#include "search/axpy.h"
#include "search/psort.h"
#include "search/scan_kernels.h"

namespace adalog::search {
namespace {

// Fixed row blocks (results never depend on the thread count).
constexpr int64_t kGemmRows = 256;
constexpr int64_t kRowBlock = 64;
// Cached (q -> A) states; each holds T x N doubles (19 MB at DeiT-S fc2).
constexpr size_t kMaxStates = 8;

uint32_t OrderedBits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

}  // namespace

ShiftLogActOut::ShiftLogActOut(const float* x, int64_t T, int K, const float* y, const float* bias,
                               int N, LogKind kind, int bits, float shift)
    : x_(x), y_(y), bias_(bias), T_(T), K_(K), N_(N), kind_(kind), bits_(bits), shift_(shift) {
  ADALOG_CHECK(T > 0 && K > 0 && N > 0, "A-out (log): empty operands");
  ADALOG_CHECK(T * K < (int64_t{1} << 32), "A-out (log): input too large (", T * K, " elements)");
}

void ShiftLogActOut::Prepare() {
  const int64_t n = T_ * K_;
  std::vector<uint64_t> keys(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    keys[static_cast<size_t>(i)] = (static_cast<uint64_t>(OrderedBits(x_[i])) << 32) | static_cast<uint64_t>(i);
  ParallelSortDistinct(&keys);  // (value, index) keys are distinct
  xs_.resize(static_cast<size_t>(n));
  idx_.resize(static_cast<size_t>(n));
  for (int64_t p = 0; p < n; ++p) {
    const uint32_t i = static_cast<uint32_t>(keys[static_cast<size_t>(p)] & 0xffffffffu);
    idx_[static_cast<size_t>(p)] = i;
    xs_[static_cast<size_t>(p)] = x_[i];
  }
  prepared_ = true;
}

void ShiftLogActOut::SetWeight(const float* wq) {
  wq_.assign(wq, wq + static_cast<int64_t>(N_) * K_);
  wt_.resize(wq_.size());
  std::vector<double> cs(static_cast<size_t>(N_), 0.0);
  for (int o = 0; o < N_; ++o)
    for (int k = 0; k < K_; ++k) {
      const float w = wq_[static_cast<size_t>(o) * K_ + k];
      wt_[static_cast<size_t>(k) * N_ + o] = w;
      cs[static_cast<size_t>(o)] += w;
    }
  z_.resize(static_cast<size_t>(T_) * N_);
  for (int64_t t = 0; t < T_; ++t)
    for (int o = 0; o < N_; ++o)
      z_[static_cast<size_t>(t * N_ + o)] = static_cast<double>(y_[t * N_ + o]) -
                                           (bias_ ? bias_[o] : 0.0f) +
                                           static_cast<double>(shift_) * cs[static_cast<size_t>(o)];
  states_.clear();
}

std::vector<int64_t> ShiftLogActOut::Bounds(float scale, int q) const {
  const ShiftLogQuantizer enc(LogParams{kind_, bits_, scale, q}, shift_, false);
  const int32_t zc = LogZeroCode(bits_);
  const int64_t n = T_ * K_;
  std::vector<int64_t> ge(static_cast<size_t>(zc) + 2, 0);
  ge[0] = n;
  // Codes are non-increasing along the ascending sort: {code >= c} is a prefix.
  for (int32_t c = 1; c <= zc; ++c) {
    const float* end = xs_.data() + ge[static_cast<size_t>(c - 1)];
    ge[static_cast<size_t>(c)] =
        std::partition_point(xs_.data(), end, [&](float v) { return enc.Encode(v) >= c; }) - xs_.data();
  }
  return ge;
}

namespace {
// Code of sorted position p under boundaries ge.
int32_t CodeAt(const std::vector<int64_t>& ge, int64_t p) {
  int32_t c = 0;
  while (c + 1 < static_cast<int32_t>(ge.size()) && ge[static_cast<size_t>(c + 1)] > p) ++c;
  return c;
}

// Calls f(begin, end, old_code, new_code) for each maximal range of sorted positions whose code
// changed between the boundaries go and gn.
template <typename F>
void ForChanged(const std::vector<int64_t>& go, const std::vector<int64_t>& gn, F&& f) {
  std::vector<int64_t> pts(go.begin(), go.end());
  pts.insert(pts.end(), gn.begin(), gn.end());
  std::sort(pts.begin(), pts.end());
  pts.erase(std::unique(pts.begin(), pts.end()), pts.end());
  for (size_t i = 0; i + 1 < pts.size(); ++i) {
    const int64_t a = pts[i], b = pts[i + 1];
    const int32_t co = CodeAt(go, a), cn = CodeAt(gn, a);
    if (co != cn) f(a, b, co, cn);
  }
}
}  // namespace

void ShiftLogActOut::Recompute(State* st, float scale, int q) {
  const ShiftLogQuantizer enc(LogParams{kind_, bits_, scale, q}, shift_, false);
  const std::vector<float>& lv = enc.base().levels();
  st->A.resize(static_cast<size_t>(T_) * N_);
  st->ge = Bounds(scale, q);
  // Codes without a per-element encode: code(x) >= c  <=>  sorted position < ge[c]  <=>
  // x < xs[ge[c]] (equal values share a code, so a boundary never splits them; +-0 compare
  // equal as they encode equally). ge[c] == n: every element has code >= c.
  const int64_t n = T_ * K_;
  const int32_t zc = LogZeroCode(bits_);
  int32_t always = 0;
  std::vector<float> thr;
  for (int32_t c = 1; c <= zc; ++c) {
    const int64_t g = st->ge[static_cast<size_t>(c)];
    if (g == n) {
      always = c;
    } else {
      thr.push_back(xs_[static_cast<size_t>(g)]);
    }
  }
  const int64_t nblk = (T_ + kGemmRows - 1) / kGemmRows;
  const int K = K_, N = N_;
  // thr is non-increasing in c (ge is): code = always + #{thresholds above x}, an exact integer
  // count (scan_kernels.h: an in-register binary search on AVX-512).
  const ScanKernels& sk = SelectScanKernels();
  const int nthr = static_cast<int>(thr.size());
#pragma omp parallel
  {
    std::vector<float> lx(static_cast<size_t>(kGemmRows) * K), out(static_cast<size_t>(kGemmRows) * N);
#pragma omp for schedule(dynamic, 1)
    for (int64_t blk = 0; blk < nblk; ++blk) {
      const int64_t t0 = blk * kGemmRows, rows = std::min(kGemmRows, T_ - t0);
      sk.threshold_levels(x_ + t0 * K, rows * K, thr.data(), nthr, always, lv.data(), lx.data());
      const dnnl_status_t s = dnnl_sgemm('N', 'T', rows, N, K, 1.0f, lx.data(), K, wq_.data(), K,
                                         0.0f, out.data(), N);
      ADALOG_CHECK(s == dnnl_success, "A-out (log): oneDNN sgemm failed");
      double* a = st->A.data() + t0 * N;
      for (int64_t j = 0; j < rows * N; ++j) a[j] = out[static_cast<size_t>(j)];
    }
  }
  st->q = q;
  st->scale = scale;
}

void ShiftLogActOut::Move(State* st, const std::vector<int64_t>& ge_new, int q) {
  const ShiftLogQuantizer enc(LogParams{kind_, bits_, st->scale, q}, shift_, false);
  const std::vector<float>& lv = enc.base().levels();  // unscaled: independent of the scale
  // Counting sort of the changed elements by row t, stable (sorted-position order inside a row):
  // each row of A then takes all its updates while held in registers (RowUpdate).
  const uint32_t K = static_cast<uint32_t>(K_);
  const size_t T = static_cast<size_t>(T_);
  row_start_.assign(T + 1, 0);
  int64_t nnz = 0;
  ForChanged(st->ge, ge_new, [&](int64_t a, int64_t b, int32_t, int32_t) {
    for (int64_t p = a; p < b; ++p) ++row_start_[idx_[static_cast<size_t>(p)] / K + 1];
    nnz += b - a;
  });
  for (size_t t = 0; t < T; ++t) row_start_[t + 1] += row_start_[t];
  upd_k_.resize(static_cast<size_t>(nnz));
  upd_d_.resize(static_cast<size_t>(nnz));
  std::vector<int64_t> cur(row_start_.begin(), row_start_.end() - 1);
  ForChanged(st->ge, ge_new, [&](int64_t a, int64_t b, int32_t co, int32_t cn) {
    const double d = static_cast<double>(lv[static_cast<size_t>(cn)]) - lv[static_cast<size_t>(co)];
    for (int64_t p = a; p < b; ++p) {
      const uint32_t i = idx_[static_cast<size_t>(p)];
      const int64_t at = cur[i / K]++;
      upd_k_[static_cast<size_t>(at)] = static_cast<int32_t>(i % K);
      upd_d_[static_cast<size_t>(at)] = d;
    }
  });
  const int N = N_;
  const RowUpdateFn update = SelectRowUpdate();
  const int64_t nblk = (T_ + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for schedule(dynamic, 1) if (nnz * N > (int64_t{1} << 20))
  for (int64_t blk = 0; blk < nblk; ++blk) {
    const int64_t t1 = std::min(T_, (blk + 1) * kRowBlock);
    for (int64_t t = blk * kRowBlock; t < t1; ++t) {
      const int64_t e0 = row_start_[static_cast<size_t>(t)], e1 = row_start_[static_cast<size_t>(t) + 1];
      if (e1 > e0)
        update(st->A.data() + t * N, wt_.data(), N, upd_k_.data() + e0, upd_d_.data() + e0,
               static_cast<int>(e1 - e0), N);
    }
  }
  st->ge = ge_new;
  stats_.changed += nnz;
}

double ShiftLogActOut::Error(const State& st, double s) const {
  const int64_t nblk = (T_ + kRowBlock - 1) / kRowBlock;
  std::vector<double> part(static_cast<size_t>(nblk), 0.0);
  const int64_t N = N_;
  const ScanKernels& sk = SelectScanKernels();
#pragma omp parallel for schedule(static) if (T_ * N > (int64_t{1} << 20))
  for (int64_t blk = 0; blk < nblk; ++blk) {
    const int64_t e0 = blk * kRowBlock * N, e1 = std::min(T_, (blk + 1) * kRowBlock) * N;
    part[static_cast<size_t>(blk)] = sk.residual_sq(z_.data() + e0, s, st.A.data() + e0, e1 - e0);
  }
  double e = 0;
  for (double p : part) e += p;
  return e;
}

void ShiftLogActOut::Eval(const LogCandidates& c, std::vector<double>* err) {
  ADALOG_CHECK(!wq_.empty(), "A-out (log): SetWeight not called");
  ADALOG_CHECK(c.scales.size() == c.qs.size(), "A-out (log): candidate sizes differ");
  const int count = static_cast<int>(c.qs.size());
  err->assign(static_cast<size_t>(count), 0.0);
  if (!prepared_) Prepare();
  // A NaN input makes every plain error NaN (and breaks the monotone code order).
  if (std::isnan(xs_.back()) || std::isnan(xs_.front())) {
    err->assign(static_cast<size_t>(count), std::numeric_limits<double>::quiet_NaN());
    return;
  }
  const bool ada = kind_ == LogKind::kAdaLog;
  auto q_of = [&](int i) { return ada ? c.qs[static_cast<size_t>(i)] : kAdaLogR; };
  // Fixed order: groups of equal q by first appearance, ascending scale, then index.
  std::vector<int> first(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    first[static_cast<size_t>(i)] = i;
    for (int j = 0; j < i; ++j)
      if (q_of(j) == q_of(i)) {
        first[static_cast<size_t>(i)] = first[static_cast<size_t>(j)];
        break;
      }
  }
  std::vector<int> order(static_cast<size_t>(count));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    if (first[static_cast<size_t>(a)] != first[static_cast<size_t>(b)])
      return first[static_cast<size_t>(a)] < first[static_cast<size_t>(b)];
    return c.scales[static_cast<size_t>(a)] < c.scales[static_cast<size_t>(b)];
  });
  const double limit = max_changed_fraction_ * static_cast<double>(T_ * K_);
  for (int i : order) {
    const int q = q_of(i);
    const float s = c.scales[static_cast<size_t>(i)];
    State* st = nullptr;
    for (auto& x : states_)
      if (x.q == q) st = &x;
    bool full = st == nullptr;
    std::vector<int64_t> ge_new;
    if (st) {
      ge_new = Bounds(s, q);
      int64_t changed = 0;
      ForChanged(st->ge, ge_new, [&](int64_t a, int64_t b, int32_t, int32_t) { changed += b - a; });
      full = static_cast<double>(changed) > limit;
    } else if (states_.size() < kMaxStates) {
      states_.emplace_back();
      st = &states_.back();
    } else {
      st = &*std::min_element(states_.begin(), states_.end(),
                              [](const State& a, const State& b) { return a.last_used < b.last_used; });
    }
    if (full) {
      Recompute(st, s, q);
      ++stats_.full;
    } else {
      Move(st, ge_new, q);
      st->scale = s;
      ++stats_.incremental;
    }
    st->last_used = ++clock_;
    (*err)[static_cast<size_t>(i)] = Error(*st, static_cast<double>(s));
  }
}

}  // namespace adalog::search
