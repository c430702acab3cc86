// W-out of a Linear (method §4.3), per row of the weight:
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

#include "search/code_chain.h"
#include "search/grids.h"

namespace adalog::search {

// W-out of a Linear: input xq [T][K] (already quantized by the current input quantizer, or FP
// for the patch embedding), target y [T][N] (the FP output incl. bias), bias [N].
class WeightOutObjective {
 public:
  WeightOutObjective(const float* xq, int64_t T, int K, const float* y, const float* bias, int N);
  // Candidates: N groups (one per row of w [N][K]). Not const: each row keeps a RowState for the
  // next call (the next FPCS step of the same weight); a different w resets them. The state
  // decides which exact form runs and, through rounding only, the values' last bits; it is a
  // function of the calls made so far, never of the thread count.
  void Eval(const float* w, const UniformCandidates& c, std::vector<double>* err);
  // How e^T G e is evaluated: 0 automatic (the cheaper form per row and call), 1 the float GEMM
  // (e^T G e, or ||Xq e||^2 when T < K), 2 the exact double chain over sparse code changes.
  // Tests force each one.
  void set_quad_form(int f) { quad_form_ = f; }

 private:
  // What one Eval of a row leaves for the next.
  struct RowState {
    // Products of the FP row w (computed on the first Eval of a weight, then reused: the same
    // numbers as recomputing them): g0 = c_o - G w, G w, ||r0||^2 = ||y_o - b_o - Xq w||^2,
    // w^T G w, and the row sorted once (codes are monotone in w: candidates as code steps).
    bool ready = false;
    std::vector<double> g0, gw;
    double rr = 0, wgw = 0;
    std::vector<int32_t> sorted_idx;  // the row's indices by ascending value
    std::vector<float> sorted_val;
    // The chain's position (ChainRow): the integer codes u = c - z as steps of the sorted row,
    // v = G u, and u^T G u, u.Gw, u.g0; u = 0, v = 0 after a reset (valid: G 0 = 0).
    CodeSteps u;
    std::vector<double> v;  // [K], allocated by the first chain walk
    double ugu = 0, ugw = 0, ug0 = 0;
  };
  // The best position seen by a chain walk (where the next FPCS step's candidates are).
  struct ChainBest {
    CodeSteps u;
    std::vector<double> v;
    double ugu = 0, ugw = 0, ug0 = 0;
  };
  // Walks row o's candidates in `order` from its state (err[i] for candidate i of group o) and
  // leaves the state at the best one; dk / dd: scratch of K entries.
  void ChainRow(int o, const float* row, const UniformCandidates& c, const std::vector<int>& order,
                const std::vector<CodeSteps>& cands, RowState* st, std::vector<int32_t>* dk,
                std::vector<int32_t>* dd, ChainBest* best, double* err) const;

  int K_, N_;
  std::vector<double> G_;   // [K][K]
  std::vector<float> Gf_;   // G rounded to float (the candidate GEMM), when T >= K
  std::vector<float> xq_;   // Xq, when T < K: e^T G e = ||Xq e||^2 costs T K, not K^2
  int64_t T_ = 0;
  std::vector<double> C_;   // [N][K]: row o = Xq^T (y_o - b_o)
  std::vector<double> yy_;  // [N]
  int quad_form_ = 0;
  std::vector<float> w_;          // the FP weight the row states belong to
  std::vector<RowState> rows_;    // [N]
};

}  // namespace adalog::search
