// W-out in its Gram form, with the per-row chain over sparse code changes; see weight_out.h.
#include "search/weight_out.h"

#include <Eigen/Dense>
#include <algorithm>
#include <limits>
#include <numeric>

#include "quant/error.h"
#include "quant/uniform.h"
#include "search/axpy.h"
#include "search/gram.h"
#include "search/objective_common.h"

namespace adalog::search {
namespace {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using CMapD = Eigen::Map<const MatD>;

// W-out: a changed code in the chain form (a double axpy of a G row, plus the sparse terms) costs
// about this many float-GEMM multiply-adds per element (measured on Zen 4, K = 1536); the chain
// form runs while it is the cheaper one.
constexpr int64_t kWoutChainCost = 32;
constexpr int64_t kWoutChainMinRows = 256;

}  // namespace

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
  // T < K: the chain only for captures of many rows (Swin's last stage: T = 1568 against
  // K = 3072); with a few rows (a ViT head's T = images) the GEMM is cheap and the budget below
  // allows under one changed code per candidate.
  const bool can_chain = quad_form_ == 2 || (quad_form_ == 0 && (xq_.empty() || T_ >= kWoutChainMinRows));
  // Chain budget per row: changed codes cost about kWoutChainCost GEMM multiply-adds per
  // element each (a double axpy of a G row), the GEMM M K^2 (M T K when T < K: ||Xq e||^2).
  const int64_t gemm_k = xq_.empty() ? K : std::min<int64_t>(K, T_);
  const int64_t budget = quad_form_ == 2 ? std::numeric_limits<int64_t>::max()
                                         : static_cast<int64_t>(M) * gemm_k / kWoutChainCost;
#pragma omp parallel if (static_cast<int64_t>(N_) * M * K * K > kMinParallelWork)
  {
    std::vector<double> ed;
    std::vector<float> ef, eg;
    std::vector<int16_t> u16;
    std::vector<CodeSteps> cands(static_cast<size_t>(M));
    std::vector<int32_t> dk, dd;
    ChainBest best;
    if (can_chain) {
      dk.resize(static_cast<size_t>(K));
      dd.resize(static_cast<size_t>(K));
    }
    Eigen::VectorXd wd(K);
#pragma omp for schedule(dynamic, 1)
    for (int o = 0; o < N_; ++o) {
      const float* row = w + static_cast<int64_t>(o) * K;
      RowState& st = rows_[static_cast<size_t>(o)];
      for (int k = 0; k < K; ++k) wd(k) = row[k];
      // Re-centred on the FP row: with e = w_hat - w and r0 = y_o - b_o - Xq w,
      //   err(w_hat) = ||r0||^2 - 2 e.g0 + e^T G e,   g0 = Xq^T r0 = c_o - G w.
      if (!st.ready) {
        st.g0.resize(static_cast<size_t>(K));
        st.gw.resize(static_cast<size_t>(K));
        Eigen::Map<Eigen::VectorXd> g0(st.g0.data(), K);
        Eigen::Map<Eigen::VectorXd> gw(st.gw.data(), K);
        Eigen::Map<const Eigen::VectorXd> co(C_.data() + static_cast<size_t>(o) * K, K);
        gw = G * wd;
        g0 = co - gw;
        st.wgw = wd.dot(gw);
        st.rr = yy_[static_cast<size_t>(o)] - 2.0 * co.dot(wd) + st.wgw;
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
      Eigen::Map<const Eigen::VectorXd> g0(st.g0.data(), K);
      const int32_t* six = st.sorted_idx.data();
      // e^T G e: exactly in double along a chain of sparse code changes (ChainRow: late FPCS
      // steps, nearby scales) or, when too many codes change, one float GEMM for all candidates
      // (e has the size of the error, so the float rounding is relative to err). Both are the
      // plain objective up to rounding; which one runs depends on the data only.
      // Each candidate's u = code - z as steps of the sorted row (bisection with Encode).
      for (int i = 0; i < M; ++i) {
        const UniformQuantizer q(UniformParams{c.bits, c.scale(o, i), c.zp(o, i)});
        UniformSteps(q, c.zp(o, i), st.sorted_val.data(), K, &cands[static_cast<size_t>(i)]);
      }
      if (can_chain) {
        const std::vector<int> order = ScaleOrder(c, o);
        // Changed codes along the chain, from the row's state through every candidate.
        int64_t changed = 0;
        const CodeSteps* prev = &st.u;
        for (int j = 0; j < M && changed <= budget; ++j) {
          const CodeSteps& cur = cands[static_cast<size_t>(order[static_cast<size_t>(j)])];
          changed += CountChanged(*prev, cur, K);
          prev = &cur;
        }
        if (changed <= budget) {
          ChainRow(o, row, c, order, cands, &st, &dk, &dd, &best, err->data() + static_cast<size_t>(o) * M);
          continue;
        }
      }
      u16.resize(static_cast<size_t>(M) * K);
      for (int i = 0; i < M; ++i) {
        int16_t* ui = u16.data() + static_cast<size_t>(i) * K;
        ForEachRange(cands[static_cast<size_t>(i)], K, [&](int64_t a, int64_t b, int u) {
          for (int64_t p = a; p < b; ++p) ui[six[p]] = static_cast<int16_t>(u);
        });
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
        (*err)[static_cast<size_t>(o) * M + i] = st.rr - 2.0 * lin + quad;
      }
    }
  }
}

}  // namespace adalog::search
