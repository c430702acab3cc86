// W-out of a Linear (method §4.3), per row of the weight:
//   ||y_o - b_o||^2 - 2 w.c_o + w^T G w,  G = Xq^T Xq, c_o = Xq^T (y_o - b_o)
// (G, c_o in double once per activation state, exact products: search/gram.h), evaluated
// re-centred on the FP row w: ||r0||^2 - 2 e.(c_o - G w) + e^T G e with e = Q(w) - w. e^T G e
// by one of three forms per row and call, the cheapest by a measured cost model:
//  - the SWEEP, all of a row's candidates at once: with R = Xq^T (T < K) or G rounded to float,
//    R u for every candidate's integer codes u = c - z from one pass over R's rows in the row's
//    sorted order (u is a step function of that order: R u = l0 Tot - sum of prefix sums at its
//    bounds), then ||s R u - Xq w||^2 or e . (s R u - Gf w) in double;
//  - one float GEMM per column chunk of R for all candidates (few candidates);
//  - when u changes little from one candidate to the next (late FPCS steps), exactly in double
//    along a chain: e^T G e = s^2 u^T G u - 2 s u.Gw + w^T G w with v = G u and u^T G u moved by
//    sparse code changes (per-row state kept across FPCS steps).
// All three are the plain objective up to rounding; candidates with the same codes get the same
// bits in each.
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
  // How e^T G e is evaluated: 0 automatic (the cheapest form per row and call by a cost model),
  // 1 the sweep of all candidates at once, 3 one float GEMM per column chunk for all candidates
  // (both e^T Gf e with G rounded to float, or ||Xq e||^2 when T < K), 2 the exact double chain
  // over sparse code changes. Tests force each one.
  void set_quad_form(int f) { quad_form_ = f; }

  // Rows evaluated by each form, summed over the Evals so far, with their wall time (summed over
  // threads) and their units of work (as the cost model counts them): diagnostics, benchmarks and
  // the cost model's constants.
  struct PathStats {
    int64_t rows = 0;
    double ns = 0;
    int64_t units = 0;
  };
  struct Stats {
    PathStats chain, sweep, gemm;
  };
  const Stats& stats() const { return stats_; }

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
    std::vector<double> rw;  // R w (the sweep's source times the FP row), [nchunk * kSweepChunk]
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

  // Per-thread scratch of SweepRow.
  struct SweepEvent {
    int64_t g;     // sorted position of a candidate's bound: P(g) = R's rows sorted_idx[0..g)
    int32_t item;  // candidate
  };
  struct SweepScratch {
    std::vector<SweepEvent> ev;
    std::vector<int64_t> ev_g;
    std::vector<int32_t> ev_item;
    std::vector<double> l0, acc, g0pre, quad;
    std::vector<int16_t> u16;
    std::vector<float> ef, eg;
  };
  // Row o's candidates all at once (err[i] for candidate i of group o); the row state is read
  // only (a sweep does not move the chain).
  void SweepRow(int o, const float* row, const UniformCandidates& c, const std::vector<CodeSteps>& cands,
                const RowState& st, SweepScratch* sc, double* err) const;

  // The same with one float GEMM per column chunk of R.
  void GemmRow(int o, const float* row, const UniformCandidates& c, const std::vector<CodeSteps>& cands,
               const RowState& st, SweepScratch* sc, double* err) const;

  int K_, N_;
  int64_t T_ = 0;
  std::vector<double> G_;   // [K][K]
  // The sweep's source R: Xq^T when T < K (e^T G e = ||Xq e||^2 costs T per column, not K),
  // else G rounded to float; L columns, stored as [nchunk][K][kSweepChunk] (zero padded), and
  // its column sums Tot [nchunk * kSweepChunk] in double.
  int64_t L_ = 0;
  int nchunk_ = 0;
  std::vector<float> src_;
  std::vector<double> tot_;
  std::vector<int32_t> iota_;  // 0..K-1 (R's rows in order: R w by RowUpdate)
  std::vector<double> C_;   // [N][K]: row o = Xq^T (y_o - b_o)
  std::vector<double> yy_;  // [N]
  int quad_form_ = 0;
  Stats stats_;
  std::vector<float> w_;          // the FP weight the row states belong to
  std::vector<RowState> rows_;    // [N]
};

}  // namespace adalog::search
