// A-out of the post-GELU fc2 with a shifted log input quantizer (Shift-AdaLog / Shift-Log2 /
// Shift-LogSqrt2, method §2.6 and 4.6-C), evaluated exactly and incrementally.
//
// Plain objective of candidate (s, q): err = ||Y - b - (Q(X + d) - d) Wq^T||^2 with Q(.) =
// s * L_q[code] (method §2.5). Reformulated:
//   err = ||Z - s A||^2,   Z = Y - b + d * colsum(Wq)  (once per weight state),
//                          A = L_q[C] Wq^T             (T x N, depends on the CODES only)
// The code is monotone non-increasing in x, so after sorting X once, each code's elements form a
// contiguous range of the sorted order, found by bisection with the quantizer's own Encode
// (exact: the very function the plain objective applies). ge[c] = #{sorted elements with code
// >= c} describes a candidate completely; it is kept as the steps of -code (search/code_chain.h,
// the chain machinery shared with the other objectives): ge[c] = bounds[Z - c], c = 1..Z.
//
// Two exact ways to get A (both accumulate float x float products in double, so either gives the
// plain formula's value up to double rounding):
//  - SWEEP (many candidates at once, no per-candidate GEMM): with P_t(g) = sum of Wq[:, k] over
//    row t's elements whose sorted position is < g (a prefix in the row's own sorted order),
//      A[t] = L[0] colsum(Wq) + sum_{c=1..Z} (L[c] - L[c-1]) P_t(ge[c]).
//    One pass over each row adds its K columns of Wq once into P (shared by every candidate of
//    the batch) and, at each candidate boundary, adds the coefficient times the current P into
//    that candidate's A row (boundaries with no row element between them are merged). Cost per
//    row: (K + ~Z * candidates) axpys of length N, against K * candidates for one GEMM per
//    candidate: 10-30x less for a 128-candidate FPCS batch at 4 bits.
//  - INCREMENTAL: a cached state (codes as ge, A in double) of the same q moves to a nearby
//    candidate by the sparse update A += (L[c_new] - L[c_old]) Wq[:, k]^T over the changed
//    elements only (grouped by row; search/axpy.h RowUpdate), cheaper than the sweep when few
//    codes change (the later FPCS refinement steps). States are made by the sweep, at the best
//    candidate of each q it evaluated (at most 8 kept).
// A candidate goes incremental when at most max_changed_fraction of the T x K codes differ from
// its q's state, otherwise into the batch's sweep.
//
// Determinism: the path of each candidate depends on the data only; the incremental candidates
// run one after another in a fixed order (grouped by q, then ascending scale); rows are split in
// fixed blocks, each row processed in its own sorted order, and errors summed over fixed row
// blocks in block order. Results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "quant/params.h"
#include "search/code_chain.h"
#include "search/fpcs.h"

namespace adalog::search {

class ShiftLogActOut {
 public:
  // x [T][K] (raw FP input of fc2), y [T][N] (FP output incl. bias), bias [N] or null. The
  // pointers must outlive the object. kind/bits: the log quantizer; shift: d (kGeluShift).
  ShiftLogActOut(const float* x, int64_t T, int K, const float* y, const float* bias, int N,
                 LogKind kind, int bits, float shift);

  // The current quantized weight wq [N][K] (dequantized values); drops the cached states.
  void SetWeight(const float* wq);
  // err[i] for candidate (c.scales[i], c.qs[i]) (q ignored for Log2 / LogSqrt2).
  void Eval(const LogCandidates& c, std::vector<double>* err);

  // A candidate is evaluated incrementally when at most this fraction of the T x K codes changed
  // from the cached state of its q, otherwise by the batch's sweep. Tests set 0 (always the
  // sweep) or 1 (always incremental once a state exists). Default (negative): changed elements
  // at most (zero code + 2) x T, where the two paths cost about the same.
  void set_max_changed_fraction(double f) { max_changed_fraction_ = f; }

  struct Stats {
    int64_t full = 0;         // candidates evaluated by a sweep
    int64_t sweeps = 0;       // sweep passes (including the ones that only make states)
    int64_t incremental = 0;  // candidates evaluated by a sparse update
    int64_t changed = 0;      // elements updated in total by the sparse updates
  };
  const Stats& stats() const { return stats_; }

 private:
  struct State {
    int q = -1;
    float scale = 0;
    CodeSteps ge;             // the codes as steps of -code: ge[c] = ge.bounds[Z - c], c = 1..Z
    std::vector<double> A;    // [T][N]
    int64_t last_used = 0;
  };
  // One sweep candidate: its scale, q, boundaries; keep != null stores its A there.
  struct SweepItem {
    float scale;
    int q;
    const CodeSteps* ge;
    State* keep;
  };
  void Prepare();
  CodeSteps Bounds(float scale, int q) const;
  // err[j] for items[j], all in one pass over the rows.
  void Sweep(const std::vector<SweepItem>& items, std::vector<double>* err);
  void Move(State* st, const CodeSteps& ge_new, int q);
  double Error(const State& st, double s) const;

  const float* x_;
  const float* y_;
  const float* bias_;
  int64_t T_;
  int K_, N_;
  LogKind kind_;
  int bits_;
  float shift_;
  double max_changed_fraction_ = -1.0;  // < 0: auto, (Z + 2) x T elements (see Eval)
  bool prepared_ = false;
  SortedValues xs_;            // X sorted ascending [T*K], with flat indices t*K + k
  // Row t's elements in ascending sorted position: positions row_pos_[t*K + j], columns
  // row_k_[t*K + j].
  std::vector<uint32_t> row_pos_;
  std::vector<int32_t> row_k_;
  std::vector<float> wq_;      // [N][K]
  std::vector<float> wt_;      // Wq^T [K][N]
  std::vector<double> z_;      // [T][N]: Y - b + d * colsum(Wq)
  std::vector<float> wc_;      // Wq^T in column chunks [N / 64][K][64] (the sweep's layout)
  std::vector<double> csc_;    // colsum(Wq) in double, padded to whole chunks
  std::vector<State> states_;
  int64_t clock_ = 0;
  Stats stats_;
  // Scratch of Move: changed elements bucketed by row (counting sort, stable).
  std::vector<int64_t> row_start_;
  std::vector<int32_t> upd_k_;
  std::vector<double> upd_d_;
};

}  // namespace adalog::search
