// Incremental exact A-out for the shifted log fc2 input quantizers; see log_act_out.h.
#include "search/log_act_out.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "quant/codes.h"
#include "quant/error.h"
#include "quant/log_quantizers.h"
#include "search/axpy.h"
#include "search/scan_kernels.h"

namespace adalog::search {
namespace {

// Fixed row blocks (results never depend on the thread count).
constexpr int64_t kRowBlock = 64;
constexpr int64_t kSweepRows = 16;
// Cached (q -> A) states; each holds T x N doubles (19 MB at DeiT-S fc2).
constexpr size_t kMaxStates = 8;
// A state is moved to a new best candidate of its q by a sparse update when at most this
// fraction of the codes differ (a sweep pass that keeps A costs about K x N per row, a move
// about N per changed element).
constexpr double kMoveStateFraction = 0.25;

}  // namespace

ShiftLogActOut::ShiftLogActOut(const float* x, int64_t T, int K, const float* y, const float* bias,
                               int N, LogKind kind, int bits, float shift)
    : x_(x), y_(y), bias_(bias), T_(T), K_(K), N_(N), kind_(kind), bits_(bits), shift_(shift) {
  ADALOG_CHECK(T > 0 && K > 0 && N > 0, "A-out (log): empty operands");
  ADALOG_CHECK(T * K < (int64_t{1} << 32), "A-out (log): input too large (", T * K, " elements)");
  states_.reserve(kMaxStates);
}

void ShiftLogActOut::Prepare() {
  const int64_t n = T_ * K_;
  SortWithIndex(x_, n, &xs_);
  // Each row's elements in ascending sorted position (a stable counting pass over the order).
  row_pos_.resize(static_cast<size_t>(n));
  row_k_.resize(static_cast<size_t>(n));
  std::vector<int64_t> fill(static_cast<size_t>(T_));
  for (int64_t t = 0; t < T_; ++t) fill[static_cast<size_t>(t)] = t * K_;
  for (int64_t p = 0; p < n; ++p) {
    const uint32_t i = xs_.idx[static_cast<size_t>(p)];
    const int64_t at = fill[i / static_cast<uint32_t>(K_)]++;
    row_pos_[static_cast<size_t>(at)] = static_cast<uint32_t>(p);
    row_k_[static_cast<size_t>(at)] = static_cast<int32_t>(i % static_cast<uint32_t>(K_));
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
  // Column chunks of Wq^T for the sweep, zero padded: wc_[chunk][k][o], and colsum padded.
  const int nchunk = (N_ + kSweepChunk - 1) / kSweepChunk;
  wc_.assign(static_cast<size_t>(nchunk) * K_ * kSweepChunk, 0.0f);
  csc_.assign(static_cast<size_t>(nchunk) * kSweepChunk, 0.0);
  for (int o = 0; o < N_; ++o) {
    const int ch = o / kSweepChunk, oc = o % kSweepChunk;
    csc_[static_cast<size_t>(o)] = cs[static_cast<size_t>(o)];
    for (int k = 0; k < K_; ++k)
      wc_[(static_cast<size_t>(ch) * K_ + k) * kSweepChunk + oc] = wq_[static_cast<size_t>(o) * K_ + k];
  }
  z_.resize(static_cast<size_t>(T_) * N_);
  for (int64_t t = 0; t < T_; ++t)
    for (int o = 0; o < N_; ++o)
      z_[static_cast<size_t>(t * N_ + o)] = static_cast<double>(y_[t * N_ + o]) -
                                           (bias_ ? bias_[o] : 0.0f) +
                                           static_cast<double>(shift_) * cs[static_cast<size_t>(o)];
  states_.clear();
}

CodeSteps ShiftLogActOut::Bounds(float scale, int q) const {
  const ShiftLogQuantizer enc(LogParams{kind_, bits_, scale, q}, shift_, false);
  const int32_t zc = LogZeroCode(bits_);
  const float* xs = xs_.val.data();
  // Codes are non-increasing along the ascending sort: {code >= c} is a prefix, of length
  // ge[c] = bounds[zc - c]; -code = -zc + #{c : ge[c] <= p} is non-decreasing.
  CodeSteps ge;
  ge.lo = -zc;
  ge.bounds.resize(static_cast<size_t>(zc));
  int64_t prev = T_ * K_;  // ge[0]
  for (int32_t c = 1; c <= zc; ++c) {
    prev = std::partition_point(xs, xs + prev, [&](float v) { return enc.Encode(v) >= c; }) - xs;
    ge.bounds[static_cast<size_t>(zc - c)] = prev;
  }
  return ge;
}

void ShiftLogActOut::Sweep(const std::vector<SweepItem>& items, std::vector<double>* err) {
  const int B = static_cast<int>(items.size());
  err->assign(static_cast<size_t>(B), 0.0);
  if (B == 0) return;
  ++stats_.sweeps;
  const int32_t zc = LogZeroCode(bits_);
  const int64_t n = T_ * K_;
  // Per item: L[0] and the events (position ge[c], coefficient L[c] - L[c-1]), c = 1..Z. An
  // event at position 0 adds P(0) = 0 and one with a zero coefficient adds nothing: both skipped.
  struct Ev {
    int64_t g;     // sorted position: the prefix P(g) = row elements with position < g
    int32_t item;  // candidate
    double a;      // coefficient L[c] - L[c - 1]
  };
  std::vector<Ev> ev;
  std::vector<double> l0(static_cast<size_t>(B)), sc(static_cast<size_t>(B));
  for (int j = 0; j < B; ++j) {
    const SweepItem& it = items[static_cast<size_t>(j)];
    const ShiftLogQuantizer enc(LogParams{kind_, bits_, it.scale, it.q}, shift_, false);
    const std::vector<float>& lv = enc.base().levels();  // unscaled: depends on q only
    l0[static_cast<size_t>(j)] = lv[0];
    sc[static_cast<size_t>(j)] = it.scale;
    const CodeSteps& ge = *it.ge;
    for (int32_t c = 1; c <= zc; ++c) {
      const int64_t g = ge.bounds[static_cast<size_t>(zc - c)];
      const double d = static_cast<double>(lv[static_cast<size_t>(c)]) - lv[static_cast<size_t>(c - 1)];
      if (g > 0 && d != 0.0) ev.push_back({std::min(g, n), j, d});
    }
    if (it.keep) it.keep->A.resize(static_cast<size_t>(T_) * N_);
  }
  // Ascending position; ties keep the construction order (item, then c): a fixed order.
  std::stable_sort(ev.begin(), ev.end(), [](const Ev& x, const Ev& y) { return x.g < y.g; });
  const int64_t nev = static_cast<int64_t>(ev.size());
  std::vector<int64_t> ev_g(static_cast<size_t>(nev));
  for (int64_t e = 0; e < nev; ++e) ev_g[static_cast<size_t>(e)] = ev[static_cast<size_t>(e)].g;
  // Each item's events (indices into the sorted list, ascending) and coefficients.
  std::vector<int32_t> item_start(static_cast<size_t>(B) + 1, 0), item_ev(static_cast<size_t>(nev));
  std::vector<double> item_a(static_cast<size_t>(nev));
  for (const Ev& x : ev) ++item_start[static_cast<size_t>(x.item) + 1];
  for (int j = 0; j < B; ++j) item_start[static_cast<size_t>(j) + 1] += item_start[static_cast<size_t>(j)];
  {
    std::vector<int32_t> fill(item_start.begin(), item_start.end() - 1);
    for (int64_t e = 0; e < nev; ++e) {
      const Ev& x = ev[static_cast<size_t>(e)];
      const int32_t at = fill[static_cast<size_t>(x.item)]++;
      item_ev[static_cast<size_t>(at)] = static_cast<int32_t>(e);
      item_a[static_cast<size_t>(at)] = x.a;
    }
  }
  const int N = N_, K = K_;
  constexpr int C = kSweepChunk;
  const int nchunk = (N + C - 1) / C;
  const int64_t nblk = (T_ + kSweepRows - 1) / kSweepRows;
  std::vector<double> part(static_cast<size_t>(nblk) * B, 0.0);
  const SweepKernels& kern = SelectSweepKernels();
  const ScanKernels& sk = SelectScanKernels();
  const int64_t max_snap = std::min<int64_t>(nev, K) + 1;
#pragma omp parallel
  {
    std::vector<double> snap(static_cast<size_t>(max_snap) * C), out(static_cast<size_t>(C));
    std::vector<int32_t> sid(static_cast<size_t>(std::max<int64_t>(nev, 1)));
    // Fixed row blocks; inside one, column chunk by chunk (the chunk of Wq stays in cache), rows
    // in order.
#pragma omp for schedule(dynamic, 1)
    for (int64_t blk = 0; blk < nblk; ++blk) {
      const int64_t t1 = std::min(T_, (blk + 1) * kSweepRows);
      for (int ch = 0; ch < nchunk; ++ch) {
        const int o0 = ch * C, nc = std::min(C, N - o0);
        const float* wc = wc_.data() + static_cast<size_t>(ch) * K * C;
        for (int64_t t = blk * kSweepRows; t < t1; ++t) {
          kern.snapshots(ev_g.data(), nev, row_pos_.data() + t * K, row_k_.data() + t * K, K, wc, snap.data(),
                         sid.data());
          const double* z = z_.data() + t * N + o0;
          for (int j = 0; j < B; ++j) {
            const int32_t e0 = item_start[static_cast<size_t>(j)], e1 = item_start[static_cast<size_t>(j) + 1];
            kern.combine(l0[static_cast<size_t>(j)], csc_.data() + o0, item_a.data() + e0, item_ev.data() + e0,
                         e1 - e0, sid.data(), snap.data(), out.data());
            part[static_cast<size_t>(blk) * B + j] += sk.residual_sq(z, sc[static_cast<size_t>(j)], out.data(), nc);
            if (State* st = items[static_cast<size_t>(j)].keep)
              std::memcpy(st->A.data() + t * N + o0, out.data(), sizeof(double) * static_cast<size_t>(nc));
          }
        }
      }
    }
  }
  for (int64_t blk = 0; blk < nblk; ++blk)
    for (int j = 0; j < B; ++j) (*err)[static_cast<size_t>(j)] += part[static_cast<size_t>(blk) * B + j];
}

void ShiftLogActOut::Move(State* st, const CodeSteps& ge_new, int q) {
  const ShiftLogQuantizer enc(LogParams{kind_, bits_, st->scale, q}, shift_, false);
  const std::vector<float>& lv = enc.base().levels();  // unscaled: independent of the scale
  // Counting sort of the changed elements by row t, stable (sorted-position order inside a row):
  // each row of A then takes all its updates while held in registers (RowUpdate). The steps
  // hold -code.
  const uint32_t K = static_cast<uint32_t>(K_);
  const int64_t nnz = CountChanged(st->ge, ge_new, T_ * K_);
  upd_k_.resize(static_cast<size_t>(nnz));
  upd_d_.resize(static_cast<size_t>(nnz));
  BucketChanges(st->ge, ge_new, xs_.idx.data(), T_ * K_, T_, [&](uint32_t i) { return i / K; }, &row_start_,
                [&](int64_t at, uint32_t i, int neg_co, int neg_cn) {
                  upd_k_[static_cast<size_t>(at)] = static_cast<int32_t>(i % K);
                  upd_d_[static_cast<size_t>(at)] =
                      static_cast<double>(lv[static_cast<size_t>(-neg_cn)]) - lv[static_cast<size_t>(-neg_co)];
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
  if (std::isnan(xs_.val.back()) || std::isnan(xs_.val.front())) {
    err->assign(static_cast<size_t>(count), std::numeric_limits<double>::quiet_NaN());
    return;
  }
  const bool ada = kind_ == LogKind::kAdaLog;
  auto q_of = [&](int i) { return ada ? c.qs[static_cast<size_t>(i)] : kAdaLogR; };
  // Fixed order: groups of equal q by first appearance, ascending scale, then index.
  std::vector<int> qs(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) qs[static_cast<size_t>(i)] = q_of(i);
  const std::vector<int> order = KeyThenScaleOrder(qs, c.scales);
  // Auto limit: a sparse update of m elements costs about m axpys of length N plus an error pass
  // (one more), a swept candidate about Z + 2 per row (Z = the zero code: its boundaries).
  const double limit = max_changed_fraction_ >= 0.0
                           ? max_changed_fraction_ * static_cast<double>(T_ * K_)
                           : static_cast<double>(LogZeroCode(bits_) + 2) * static_cast<double>(T_);
  auto changed_between = [&](const CodeSteps& go, const CodeSteps& gn) { return CountChanged(go, gn, T_ * K_); };
  // Boundaries of every candidate (a few bisections each).
  std::vector<CodeSteps> ge(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) ge[static_cast<size_t>(i)] = Bounds(c.scales[static_cast<size_t>(i)], q_of(i));
  // Plan the paths in the fixed order: a candidate close enough to its q's state (as moved by the
  // incremental candidates before it) is incremental, every other one is swept.
  std::vector<int> path(static_cast<size_t>(count), -1);
  {
    std::vector<const CodeSteps*> at(states_.size());
    for (size_t k = 0; k < states_.size(); ++k) at[k] = &states_[k].ge;
    for (int i : order) {
      for (size_t k = 0; k < states_.size(); ++k) {
        if (states_[k].q != q_of(i)) continue;
        if (static_cast<double>(changed_between(*at[k], ge[static_cast<size_t>(i)])) <= limit) {
          path[static_cast<size_t>(i)] = static_cast<int>(k);
          at[k] = &ge[static_cast<size_t>(i)];
        }
        break;
      }
    }
  }
  // The sweep: every non-incremental candidate in one pass.
  std::vector<int> swept;
  for (int i : order)
    if (path[static_cast<size_t>(i)] < 0) swept.push_back(i);
  if (!swept.empty()) {
    std::vector<SweepItem> items;
    for (int i : swept)
      items.push_back({c.scales[static_cast<size_t>(i)], q_of(i), &ge[static_cast<size_t>(i)], nullptr});
    std::vector<double> e;
    Sweep(items, &e);
    for (size_t j = 0; j < swept.size(); ++j) (*err)[static_cast<size_t>(swept[j])] = e[j];
    stats_.full += static_cast<int64_t>(swept.size());
  }
  // The incremental candidates, in the fixed order.
  for (int i : order) {
    const int k = path[static_cast<size_t>(i)];
    if (k < 0) continue;
    State* st = &states_[static_cast<size_t>(k)];
    Move(st, ge[static_cast<size_t>(i)], q_of(i));
    st->scale = c.scales[static_cast<size_t>(i)];
    st->last_used = ++clock_;
    ++stats_.incremental;
    (*err)[static_cast<size_t>(i)] = Error(*st, static_cast<double>(st->scale));
  }
  if (swept.empty() || max_changed_fraction_ == 0.0) return;
  // New states where the next FPCS steps will look: at the best swept candidate of each q (ties:
  // the first in the fixed order), for the kMaxStates q's with the lowest such errors, unless the
  // q's state is already close to it. Made by one more sweep that keeps A.
  std::vector<int> best_of_q;  // a candidate index per q, q's by first appearance
  for (int i : swept) {
    bool found = false;
    for (int& b : best_of_q) {
      if (q_of(b) != q_of(i)) continue;
      found = true;
      if ((*err)[static_cast<size_t>(i)] < (*err)[static_cast<size_t>(b)]) b = i;
      break;
    }
    if (!found) best_of_q.push_back(i);
  }
  std::stable_sort(best_of_q.begin(), best_of_q.end(), [&](int a, int b) {
    const double ea = (*err)[static_cast<size_t>(a)], eb = (*err)[static_cast<size_t>(b)];
    return ea < eb || (!std::isnan(ea) && std::isnan(eb));
  });
  if (best_of_q.size() > kMaxStates) best_of_q.resize(kMaxStates);
  std::vector<SweepItem> keep;
  std::vector<int> keep_of;
  for (int i : best_of_q) {
    State* st = nullptr;
    for (auto& x : states_)
      if (x.q == q_of(i)) st = &x;
    if (st) {
      const double ch = static_cast<double>(changed_between(st->ge, ge[static_cast<size_t>(i)]));
      if (ch <= limit) continue;
      if (ch <= kMoveStateFraction * static_cast<double>(T_ * K_)) {  // cheaper than a sweep pass
        Move(st, ge[static_cast<size_t>(i)], q_of(i));
        st->scale = c.scales[static_cast<size_t>(i)];
        st->last_used = ++clock_;
        continue;
      }
    }
    if (!st && states_.size() < kMaxStates) {
      states_.emplace_back();  // capacity reserved: earlier pointers stay valid
      st = &states_.back();
    } else if (!st) {  // least recently used, never one made in this call
      st = &*std::min_element(states_.begin(), states_.end(),
                              [](const State& a, const State& b) { return a.last_used < b.last_used; });
    }
    st->q = q_of(i);
    st->scale = c.scales[static_cast<size_t>(i)];
    st->ge = ge[static_cast<size_t>(i)];
    st->last_used = ++clock_;
    keep.push_back({st->scale, st->q, &st->ge, st});
  }
  if (!keep.empty()) {
    std::vector<double> e;
    Sweep(keep, &e);
  }
}

}  // namespace adalog::search
