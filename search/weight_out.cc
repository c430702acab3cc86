// W-out in its Gram form, with the per-row chain over sparse code changes; see weight_out.h.
#include "search/weight_out.h"

#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <limits>
#include <numeric>

#include "quant/error.h"
#include "quant/uniform.h"
#include "search/axpy.h"
#include "search/gram.h"
#include "search/objective_common.h"
#include "search/scan_kernels.h"

namespace adalog::search {
namespace {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using CMapD = Eigen::Map<const MatD>;

// Cost model of the three forms, ns per unit of work (units: see Eval), measured on Zen 4 with
// bench_search BM_WeightOutSearch (2 threads, forced forms, Swin-T shapes at 32 images): the
// float GEMM 0.013-0.019 (per multiply-add), the sweep 0.12-0.30 (per double add: it reads its
// source rows in each row's sorted order), the chain 1.3-1.6 (per changed code and K: a double
// axpy of a G row from a matrix that does not fit in cache).
constexpr double kGemmNsPerUnit = 0.015;
constexpr double kSweepNsPerUnit = 0.2;
constexpr double kChainNsPerUnit = 1.4;

// Every candidate's codes u = c - z by weight column ([candidates][K]) from its steps over the
// row's sorted order (six: sorted position -> column).
void CodesByColumn(const std::vector<CodeSteps>& cands, const int32_t* six, int K, std::vector<int16_t>* u16) {
  u16->resize(cands.size() * static_cast<size_t>(K));
  for (size_t i = 0; i < cands.size(); ++i) {
    int16_t* ui = u16->data() + i * static_cast<size_t>(K);
    ForEachRange(cands[i], K, [&](int64_t a, int64_t b, int u) {
      for (int64_t p = a; p < b; ++p) ui[six[p]] = static_cast<int16_t>(u);
    });
  }
}

}  // namespace

WeightOutObjective::WeightOutObjective(const float* xq, int64_t T, int K, const float* y,
                                       const float* bias, int N)
    : K_(K), N_(N), T_(T) {
  ADALOG_CHECK(T > 0 && K > 0 && N > 0, "W-out: empty operands");
  // G = Xq^T Xq and Xq^T Y with exact products, summed over t in order (search/gram.h); then
  // c_o = Xq^T (y_o - b_o) = Xq^T y_o - b_o colsum(Xq), all in double.
  G_.resize(static_cast<size_t>(K) * K);
  GramAtB(xq, K, K, xq, K, K, T, G_.data(), K, /*symmetric=*/true);
  // The sweep's source R (rows indexed by the weight column k, L columns), in column chunks of
  // kSweepChunk: Xq^T when T < K (e^T G e = ||Xq e||^2 costs T per column; the head's T =
  // images), else G rounded to float (e^T Gf e).
  L_ = T < K ? T : K;
  const int C = kSweepChunk;
  nchunk_ = static_cast<int>((L_ + C - 1) / C);
  src_.assign(static_cast<size_t>(nchunk_) * K * C, 0.0f);
  for (int ch = 0; ch < nchunk_; ++ch)
    for (int k = 0; k < K; ++k) {
      float* d = src_.data() + (static_cast<size_t>(ch) * K + k) * C;
      for (int j = 0; j < C && ch * C + j < L_; ++j) {
        const int64_t l = static_cast<int64_t>(ch) * C + j;
        d[j] = T < K ? xq[l * K + k] : static_cast<float>(G_[static_cast<size_t>(k) * K + static_cast<size_t>(l)]);
      }
    }
  iota_.resize(static_cast<size_t>(K));
  std::iota(iota_.begin(), iota_.end(), 0);
  tot_.assign(static_cast<size_t>(nchunk_) * C, 0.0);
  for (int ch = 0; ch < nchunk_; ++ch)
    for (int k = 0; k < K; ++k) {
      const float* r = src_.data() + (static_cast<size_t>(ch) * K + k) * C;
      for (int j = 0; j < C; ++j) tot_[static_cast<size_t>(ch) * C + j] += static_cast<double>(r[j]);
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

void WeightOutObjective::ChainRow(int o, const float* row, const UniformCandidates& c,
                                  const std::vector<int>& order, const std::vector<CodeSteps>& cands,
                                  RowState* st, std::vector<int32_t>* dk, std::vector<int32_t>* dd,
                                  ChainBest* best_at, double* err) const {
  // e = s u - w with integer codes u = c - z:
  //   e^T G e = s^2 u^T G u - 2 s u.Gw + w^T G w,   e.g0 = s u.g0 - w.g0,
  // walked through the candidates in `order` from the row's state (u as steps of the row's
  // sorted order, v = G u, u^T G u, u.Gw, u.g0); a sparse change d of the codes moves them by
  // u^T G u += 2 d.v + d^T G d, v += G d, u.Gw += d.Gw, u.g0 += d.g0, all in double.
  const int K = K_, M = c.count;
  const double* gw = st->gw.data();
  const double* g0 = st->g0.data();
  const int32_t* sidx = st->sorted_idx.data();
  if (st->v.empty()) st->v.assign(static_cast<size_t>(K), 0.0);
  double* v = st->v.data();
  const AxpyF64Fn axpy = SelectAxpyF64();
  double wg0 = 0;
  for (int k = 0; k < K; ++k) wg0 += static_cast<double>(row[k]) * g0[k];
  double best = std::numeric_limits<double>::infinity();
  for (int j = 0; j < M; ++j) {
    const int i = order[static_cast<size_t>(j)];
    const CodeSteps& cu = cands[static_cast<size_t>(i)];
    int nd = 0;
    ForEachChange(st->u, cu, K, [&](int64_t a, int64_t b, int ua, int ub) {
      for (int64_t p = a; p < b; ++p) {
        (*dk)[static_cast<size_t>(nd)] = sidx[p];
        (*dd)[static_cast<size_t>(nd)] = ub - ua;
        ++nd;
      }
    });
    if (nd > 0) {
      double dv = 0, dgw = 0, dg0 = 0, dgd = 0;
      for (int a = 0; a < nd; ++a) {
        const int ka = (*dk)[static_cast<size_t>(a)];
        const double da = (*dd)[static_cast<size_t>(a)];
        dv += da * v[ka];
        dgw += da * gw[ka];
        dg0 += da * g0[ka];
        const double* grow = G_.data() + static_cast<size_t>(ka) * K;
        double acc = 0;
        for (int b = 0; b < nd; ++b)
          acc += static_cast<double>((*dd)[static_cast<size_t>(b)]) * grow[(*dk)[static_cast<size_t>(b)]];
        dgd += da * acc;
      }
      st->ugu += 2.0 * dv + dgd;
      st->ugw += dgw;
      st->ug0 += dg0;
      for (int a = 0; a < nd; ++a) {
        const int ka = (*dk)[static_cast<size_t>(a)];
        axpy(v, static_cast<double>((*dd)[static_cast<size_t>(a)]), G_.data() + static_cast<size_t>(ka) * K, K);
      }
    }
    st->u = cu;
    const double s = c.scale(o, i);
    const double quad = s * s * st->ugu - 2.0 * s * st->ugw + st->wgw;
    const double lin = s * st->ug0 - wg0;
    const double e = st->rr - 2.0 * lin + quad;
    err[i] = e;
    // Keep the state at the best candidate so far (where the next FPCS step's candidates are).
    if (e < best && j + 1 < M) {
      best = e;
      best_at->u = st->u;
      best_at->v.assign(v, v + K);
      best_at->ugu = st->ugu;
      best_at->ugw = st->ugw;
      best_at->ug0 = st->ug0;
    }
  }
  if (best < std::numeric_limits<double>::infinity() && M > 1 && best < err[order[static_cast<size_t>(M - 1)]]) {
    st->u = best_at->u;
    std::copy(best_at->v.begin(), best_at->v.end(), v);
    st->ugu = best_at->ugu;
    st->ugw = best_at->ugw;
    st->ug0 = best_at->ug0;
  }
}

void WeightOutObjective::SweepRow(int o, const float* row, const UniformCandidates& c,
                                  const std::vector<CodeSteps>& cands, const RowState& st,
                                  SweepScratch* sc, double* err) const {
  // For each candidate, p = R u (u = code - z, R the source: G or Xq^T) with u a step function of
  // the sorted row: u(p) = l0 - #{j : bound_j > p} with l0 = lo + #bounds, so
  //   R u = l0 Tot - sum_j P(bound_j),   P(g) = sum of R's rows sorted_idx[0..g), Tot = P(K).
  // One pass over R's rows in sorted order per column chunk makes every P(bound) needed by all
  // candidates and subtracts it from theirs at once (SweepSubtract, search/axpy.h). Quadratic
  // term, in double from float sources (exact products):
  //   T < K:  e^T G e = ||Xq e||^2 = ||s p - Xq w||^2;
  //   T >= K: e^T Gf e = e . (s p - Gf w).
  // Linear term: e.g0 = s u.g0 - w.g0 with u.g0 from prefix sums of g0 in sorted order.
  const int K = K_, M = c.count;
  constexpr int C = kSweepChunk;
  const int32_t* six = st.sorted_idx.data();
  // Events: (position, candidate), coefficient -1 each. Only the bounds inside (0, K) (a bound
  // at or below 0 raises lo, one at or above K changes nothing): two candidates with the same
  // codes u (the same zero-point-free codes under different zero points when nothing clips) then
  // have the same terms and get bit-identical errors, so exact ties go to the lower index as in
  // the plain objective.
  sc->ev.clear();
  sc->l0.resize(static_cast<size_t>(M));
  for (int i = 0; i < M; ++i) {
    const CodeSteps& cu = cands[static_cast<size_t>(i)];
    int64_t lo = cu.lo, nb = 0;
    for (int64_t b : cu.bounds) {
      if (b <= 0) {
        ++lo;
      } else if (b < K) {
        sc->ev.push_back({b, i});
        ++nb;
      }
    }
    sc->l0[static_cast<size_t>(i)] = static_cast<double>(lo + nb);
  }
  std::stable_sort(sc->ev.begin(), sc->ev.end(), [](const SweepEvent& x, const SweepEvent& y) { return x.g < y.g; });
  const int64_t nev = static_cast<int64_t>(sc->ev.size());
  sc->ev_g.resize(static_cast<size_t>(nev));
  sc->ev_item.resize(static_cast<size_t>(nev));
  for (int64_t e = 0; e < nev; ++e) {
    sc->ev_g[static_cast<size_t>(e)] = sc->ev[static_cast<size_t>(e)].g;
    sc->ev_item[static_cast<size_t>(e)] = sc->ev[static_cast<size_t>(e)].item;
  }
  sc->acc.resize(static_cast<size_t>(M) * C);
  // u.g0 per candidate from g0's prefix sums in sorted order.
  sc->g0pre.resize(static_cast<size_t>(K) + 1);
  sc->g0pre[0] = 0;
  for (int p = 0; p < K; ++p) sc->g0pre[static_cast<size_t>(p) + 1] = sc->g0pre[static_cast<size_t>(p)] + st.g0[static_cast<size_t>(six[p])];
  double wg0 = 0;
  for (int k = 0; k < K; ++k) wg0 += static_cast<double>(row[k]) * st.g0[static_cast<size_t>(k)];
  // T >= K: each candidate's codes by weight column (e over a chunk's columns).
  const bool by_rows = T_ < K;
  if (!by_rows) CodesByColumn(cands, six, K, &sc->u16);
  sc->quad.assign(static_cast<size_t>(M), 0.0);
  const SweepKernels& kern = SelectSweepKernels();
  const ScanKernels& sk = SelectScanKernels();
  for (int ch = 0; ch < nchunk_; ++ch) {
    const int l0c = ch * C;
    const int nc = static_cast<int>(std::min<int64_t>(C, L_ - l0c));
    // acc_i = l0_i Tot - sum of P(bound) over candidate i's bounds (in ascending order).
    const double* tot = tot_.data() + l0c;
    for (int i = 0; i < M; ++i) {
      double* a = sc->acc.data() + static_cast<size_t>(i) * C;
      const double l0 = sc->l0[static_cast<size_t>(i)];
      for (int j = 0; j < C; ++j) a[j] = l0 * tot[j];
    }
    kern.subtract(sc->ev_g.data(), sc->ev_item.data(), nev, six, K, src_.data() + static_cast<size_t>(ch) * K * C,
                  sc->acc.data());
    const double* r = st.rw.data() + l0c;
    for (int i = 0; i < M; ++i) {
      const double* p = sc->acc.data() + static_cast<size_t>(i) * C;
      const double s = c.scale(o, i);
      if (by_rows) {
        sc->quad[static_cast<size_t>(i)] += sk.residual_sq(r, s, p, nc);
      } else {
        const int16_t* ui = sc->u16.data() + static_cast<size_t>(i) * K + l0c;
        double q = 0;
        for (int j = 0; j < nc; ++j) {
          const double e = s * static_cast<double>(ui[j]) - static_cast<double>(row[l0c + j]);
          q += e * (s * p[j] - r[j]);
        }
        sc->quad[static_cast<size_t>(i)] += q;
      }
    }
  }
  for (int i = 0; i < M; ++i) {
    const CodeSteps& cu = cands[static_cast<size_t>(i)];
    double ug0 = sc->l0[static_cast<size_t>(i)] * sc->g0pre[static_cast<size_t>(K)];
    for (int64_t b : cu.bounds)
      if (b > 0 && b < K) ug0 -= sc->g0pre[static_cast<size_t>(b)];
    const double lin = c.scale(o, i) * ug0 - wg0;
    err[i] = st.rr - 2.0 * lin + sc->quad[static_cast<size_t>(i)];
  }
}

void WeightOutObjective::GemmRow(int o, const float* row, const UniformCandidates& c,
                                 const std::vector<CodeSteps>& cands, const RowState& st,
                                 SweepScratch* sc, double* err) const {
  // e_i = s_i u_i - w for every candidate, rounded to float, times the source R chunk by chunk
  // (one float GEMM each): T < K: (Xq e_i)^T, quad = its squared norm; T >= K: (Gf e_i)^T, quad
  // = e_i . Gf e_i. The linear term in double.
  const int K = K_, M = c.count;
  constexpr int C = kSweepChunk;
  const int32_t* six = st.sorted_idx.data();
  CodesByColumn(cands, six, K, &sc->u16);
  sc->ef.resize(static_cast<size_t>(M) * K);
  sc->eg.resize(static_cast<size_t>(M) * C);
  sc->quad.assign(static_cast<size_t>(M), 0.0);
  for (int i = 0; i < M; ++i) {
    const double s = c.scale(o, i);
    const int16_t* ui = sc->u16.data() + static_cast<size_t>(i) * K;
    double lin = 0;
    for (int k = 0; k < K; ++k) {
      const double e = s * static_cast<double>(ui[k]) - static_cast<double>(row[k]);
      sc->ef[static_cast<size_t>(i) * K + k] = static_cast<float>(e);
      lin += e * st.g0[static_cast<size_t>(k)];
    }
    err[i] = st.rr - 2.0 * lin;
  }
  const bool by_rows = T_ < K;
  for (int ch = 0; ch < nchunk_; ++ch) {
    const int l0c = ch * C;
    const int nc = static_cast<int>(std::min<int64_t>(C, L_ - l0c));
    SgemmOneThread('N', 'N', M, C, K, sc->ef.data(), K, src_.data() + static_cast<size_t>(ch) * K * C, C,
                   sc->eg.data(), C);
    for (int i = 0; i < M; ++i) {
      const float* g = sc->eg.data() + static_cast<size_t>(i) * C;
      double q = 0;
      if (by_rows) {
        for (int j = 0; j < nc; ++j) q += static_cast<double>(g[j]) * g[j];
      } else {
        const float* e = sc->ef.data() + static_cast<size_t>(i) * K + l0c;
        for (int j = 0; j < nc; ++j) q += static_cast<double>(e[j]) * g[j];
      }
      sc->quad[static_cast<size_t>(i)] += q;
    }
  }
  for (int i = 0; i < M; ++i) err[i] += sc->quad[static_cast<size_t>(i)];
}

void WeightOutObjective::Eval(const float* w, const UniformCandidates& c, std::vector<double>* err) {
  ADALOG_CHECK(c.groups == N_, "W-out: ", c.groups, " groups for ", N_, " rows");
  err->assign(static_cast<size_t>(N_) * c.count, 0.0);
  CMapD G(G_.data(), K_, K_);
  const int K = K_, M = c.count;
  // A new FP weight: every row's products are recomputed and its chain restarts at u = 0.
  const size_t NK = static_cast<size_t>(N_) * K;
  if (w_.size() != NK || !std::equal(w_.begin(), w_.end(), w)) {
    w_.assign(w, w + NK);
    rows_.resize(static_cast<size_t>(N_));
    for (RowState& st : rows_) {
      st.ready = false;
      st.u = CodeSteps{};
      st.v.clear();
      st.ugu = st.ugw = st.ug0 = 0;
    }
  }
  // Per row, the cheapest of the three forms by a cost model (ns per unit of work, measured with
  // bench_search BM_WeightOutSearch): the GEMM M L K multiply-adds, the sweep L (K + 2 events +
  // 2 M) double operations, the chain K per changed code (a double axpy of a G row).
  const int64_t L = L_;
  const int64_t gemm_units = static_cast<int64_t>(M) * L * K;
  Stats acc;
#pragma omp parallel if (static_cast<int64_t>(N_) * M * K * L_ > kMinParallelWork)
  {
    std::vector<CodeSteps> cands(static_cast<size_t>(M));
    std::vector<int32_t> dk, dd;
    ChainBest best;
    SweepScratch sc;
    dk.resize(static_cast<size_t>(K));
    dd.resize(static_cast<size_t>(K));
    Eigen::VectorXd wd(K);
    const RowUpdateFn update = SelectRowUpdate();
    Stats mine;
#pragma omp for schedule(dynamic, 1)
    for (int o = 0; o < N_; ++o) {
      const auto t0 = std::chrono::steady_clock::now();
      const float* row = w + static_cast<int64_t>(o) * K;
      RowState& st = rows_[static_cast<size_t>(o)];
      // Re-centred on the FP row: with e = w_hat - w and r0 = y_o - b_o - Xq w,
      //   err(w_hat) = ||r0||^2 - 2 e.g0 + e^T G e,   g0 = Xq^T r0 = c_o - G w.
      if (!st.ready) {
        for (int k = 0; k < K; ++k) wd(k) = row[k];
        st.g0.resize(static_cast<size_t>(K));
        st.gw.resize(static_cast<size_t>(K));
        Eigen::Map<Eigen::VectorXd> g0(st.g0.data(), K);
        Eigen::Map<Eigen::VectorXd> gw(st.gw.data(), K);
        Eigen::Map<const Eigen::VectorXd> co(C_.data() + static_cast<size_t>(o) * K, K);
        gw = G * wd;
        g0 = co - gw;
        st.wgw = wd.dot(gw);
        st.rr = yy_[static_cast<size_t>(o)] - 2.0 * co.dot(wd) + st.wgw;
        // R w (the sweep's reference), column chunk by chunk, k ascending.
        st.rw.assign(static_cast<size_t>(nchunk_) * kSweepChunk, 0.0);
        std::vector<double> wk(wd.data(), wd.data() + K);
        for (int ch = 0; ch < nchunk_; ++ch)
          update(st.rw.data() + static_cast<size_t>(ch) * kSweepChunk,
                 src_.data() + static_cast<size_t>(ch) * K * kSweepChunk, kSweepChunk, iota_.data(), wk.data(), K,
                 kSweepChunk);
        // The row sorted once (codes are monotone in w): candidates as code steps.
        st.sorted_idx.resize(static_cast<size_t>(K));
        st.sorted_val.resize(static_cast<size_t>(K));
        int32_t* ix = st.sorted_idx.data();
        std::iota(ix, ix + K, 0);
        std::sort(ix, ix + K, [&](int32_t a, int32_t b) {
          return row[a] < row[b] || (!(row[b] < row[a]) && a < b);
        });
        for (int k = 0; k < K; ++k) st.sorted_val[static_cast<size_t>(k)] = row[ix[k]];
        st.ready = true;
      }
      // Each candidate's u = code - z as steps of the sorted row (bisection with Encode).
      int64_t events = 0;
      for (int i = 0; i < M; ++i) {
        const UniformQuantizer q(UniformParams{c.bits, c.scale(o, i), c.zp(o, i)});
        CodeSteps& cu = cands[static_cast<size_t>(i)];
        UniformSteps(q, c.zp(o, i), st.sorted_val.data(), K, &cu);
        for (int64_t bd : cu.bounds) events += bd > 0 && bd < K;
      }
      // e^T G e: exactly in double along a chain of sparse code changes (ChainRow: late FPCS
      // steps, nearby scales), or for all candidates at once by the sweep or the float GEMM. All
      // are the plain objective up to rounding; which one runs depends on the data only.
      const int64_t sweep_units = L * (K + 2 * events + 2 * M);
      const double gemm_ns = static_cast<double>(gemm_units) * kGemmNsPerUnit;
      const double sweep_ns = static_cast<double>(sweep_units) * kSweepNsPerUnit;
      int form = quad_form_;
      int64_t changed = 0;
      if (form == 0 || form == 2) {
        const double batch_ns = std::min(gemm_ns, sweep_ns);
        const int64_t budget = form == 2 ? std::numeric_limits<int64_t>::max()
                                         : static_cast<int64_t>(batch_ns / (kChainNsPerUnit * K));
        const std::vector<int> order = ScaleOrder(c, o);
        // Changed codes along the chain, from the row's state through every candidate.
        const CodeSteps* prev = &st.u;
        for (int j = 0; j < M && changed <= budget; ++j) {
          const CodeSteps& cur = cands[static_cast<size_t>(order[static_cast<size_t>(j)])];
          changed += CountChanged(*prev, cur, K);
          prev = &cur;
        }
        if (changed <= budget) {
          ChainRow(o, row, c, order, cands, &st, &dk, &dd, &best, err->data() + static_cast<size_t>(o) * M);
          form = 2;
        } else {
          form = sweep_ns <= gemm_ns ? 1 : 3;
        }
      }
      if (form == 1) SweepRow(o, row, c, cands, st, &sc, err->data() + static_cast<size_t>(o) * M);
      if (form == 3) GemmRow(o, row, c, cands, st, &sc, err->data() + static_cast<size_t>(o) * M);
      const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
      PathStats& ps = form == 2 ? mine.chain : form == 1 ? mine.sweep : mine.gemm;
      ps.rows += 1;
      ps.ns += ns;
      ps.units += form == 2 ? changed * K : form == 1 ? sweep_units : gemm_units;
    }
#pragma omp critical(adalog_wout_stats)
    {
      for (auto [to, from] : {std::pair{&acc.chain, &mine.chain}, {&acc.sweep, &mine.sweep}, {&acc.gemm, &mine.gemm}}) {
        to->rows += from->rows;
        to->ns += from->ns;
        to->units += from->units;
      }
    }
  }
  for (auto [to, from] : {std::pair{&stats_.chain, &acc.chain}, {&stats_.sweep, &acc.sweep}, {&stats_.gemm, &acc.gemm}}) {
    to->rows += from->rows;
    to->ns += from->ns;
    to->units += from->units;
  }
}

}  // namespace adalog::search
