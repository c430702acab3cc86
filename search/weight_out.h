// W-out of a Linear (AdaLog spec 4.3), per row of the weight:
//   ||y_o - b_o||^2 - 2 w.c_o + w^T G w,  G = Xq^T Xq, c_o = Xq^T (y_o - b_o)
// (G, c_o in double once per activation state, exact products: search/gram.h), evaluated
// re-centred on the FP row w: ||r0||^2 - 2 e.(c_o - G w) + e^T G e with e = Q(w) - w. e^T G e
// either through one float GEMM for a row's candidates (it has the size of the error itself), or,
// when the integer codes u = c - z change little from one candidate to the next (late FPCS
// steps), exactly in double along a chain: e^T G e = s^2 u^T G u - 2 s u.Gw + w^T G w with
// v = G u and u^T G u moved by sparse code changes (per-row state kept across FPCS steps).
#pragma once

#include <cstdint>
#include <vector>

#include "search/grids.h"

namespace adalog::search {

// W-out of a Linear: input xq [T][K] (already quantized by the current input quantizer, or FP
// for the patch embedding), target y [T][N] (the FP output incl. bias), bias [N].
class WeightOutObjective {
 public:
  WeightOutObjective(const float* xq, int64_t T, int K, const float* y, const float* bias, int N);
  // Candidates: N groups (one per row of w [N][K]).
  void Eval(const float* w, const UniformCandidates& c, std::vector<double>* err) const;
  // How e^T G e is evaluated (T >= K): 0 automatic (the cheaper form per row and call), 1 the
  // float GEMM, 2 the exact double chain over sparse code changes. Tests force each one.
  void set_quad_form(int f) { quad_form_ = f; }

 private:
  int K_, N_;
  std::vector<double> G_;   // [K][K]
  std::vector<float> Gf_;   // G rounded to float (the candidate GEMM), when T >= K
  std::vector<float> xq_;   // Xq, when T < K: e^T G e = ||Xq e||^2 costs T K, not K^2
  int64_t T_ = 0;
  std::vector<double> C_;   // [N][K]: row o = Xq^T (y_o - b_o)
  std::vector<double> yy_;  // [N]
  // Per FP weight (cached across the FPCS steps): g0 = c_o - G w [N][K], ||r0||^2 [N].
  mutable std::vector<float> wcache_;
  int quad_form_ = 0;
  // Per-row chain state (see ChainRow): codes u, v = G u, and scalars, kept across FPCS steps.
  struct ChainState {
    double ugu = 0, ugw = 0, ug0 = 0;
  };
  // Integer codes u = c - z of a row as a function of the sorted position p of its values
  // (u is monotone in w): u(p) = lo + #{v in (lo, hi] : pos[v - lo - 1] <= p}.
  struct UBounds {
    int lo = 0, hi = 0;
    std::vector<int32_t> pos;
  };
  struct ChainScratch {
    std::vector<int32_t> dk, dd;
    std::vector<double> best_v;
    UBounds best_ub;
    ChainState best_st;
  };
  void ChainRow(int o, const float* row, const UniformCandidates& c, const int* order,
                const std::vector<UBounds>& cands, ChainScratch* sc, double* err) const;
  mutable std::vector<ChainState> st_;
  mutable std::vector<UBounds> st_ub_;
  mutable std::vector<int32_t> srt_idx_;  // [N][K] each row's indices by ascending value
  mutable std::vector<float> srt_val_;    // [N][K] the sorted values
  mutable std::vector<double> st_v_;
  mutable std::vector<double> g0_, gw_, rr_, wgw_;  // c_o - G w, G w, ||r0||^2, w^T G w
  mutable std::vector<char> row_ready_;
};

}  // namespace adalog::search
