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

}  // namespace adalog::search
