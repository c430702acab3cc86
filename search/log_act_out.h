// A-out of the post-GELU fc2 with a shifted log input quantizer (Shift-AdaLog / Shift-Log2 /
// Shift-LogSqrt2, spec 2.6 and 4.6-C), evaluated exactly and incrementally.
//
// Plain objective of candidate (s, q): err = ||Y - b - (Q(X + d) - d) Wq^T||^2 with Q(.) =
// s * L_q[code] (spec 2.5). Reformulated:
//   err = ||Z - s A||^2,   Z = Y - b + d * colsum(Wq)  (once per weight state),
//                          A = L_q[C] Wq^T             (T x N, depends on the CODES only)
// For a fixed q the codes depend on the scale only through the code boundaries: the code is
// monotone non-increasing in x, so after sorting X once, each code's elements form a contiguous
// range of the sorted order, found by bisection with the quantizer's own Encode (exact: the very
// function the plain objective applies). Two candidates with the same q and nearby scales differ
// in few codes, and A moves between them by a sparse exact update
//   A += (L[c_new] - L[c_old]) Wq[:, k]^T   for each changed element (t, k),
// accumulated in double (grouped by row, each row updated in registers: search/axpy.h
// RowUpdate). A candidate whose changed count exceeds a fraction of T x K (or a q without a
// cached state) is recomputed from scratch with a float GEMM, its levels L_q[C] built from the
// sorted-order thresholds by an exact count (search/scan_kernels.h). Either way the value is
// the plain formula's up to floating-point rounding; the tests show the same selection.
//
// Determinism: candidates are evaluated one after another in a fixed order (grouped by q, then
// ascending scale); inside one, rows of A are split in fixed blocks, each row updated in the
// sorted order, and the error is summed over fixed row blocks in block order. Results do not
// depend on the thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "quant/params.h"
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
  // from the nearest cached state of its q, otherwise from scratch. Tests set 0 (always from
  // scratch) or 1 (always incremental once a state exists).
  void set_max_changed_fraction(double f) { max_changed_fraction_ = f; }

  struct Stats {
    int64_t full = 0;         // candidates evaluated from scratch (GEMM)
    int64_t incremental = 0;  // candidates evaluated by a sparse update
    int64_t changed = 0;      // elements updated in total by the sparse updates
  };
  const Stats& stats() const { return stats_; }

 private:
  struct State {
    int q = -1;
    float scale = 0;
    std::vector<int64_t> ge;  // ge[c] = number of sorted elements with code >= c, c = 0..Z+1
    std::vector<double> A;    // [T][N]
    int64_t last_used = 0;
  };
  void Prepare();
  std::vector<int64_t> Bounds(float scale, int q) const;
  void Recompute(State* st, float scale, int q);
  void Move(State* st, const std::vector<int64_t>& ge_new, int q);
  double Error(const State& st, double s) const;

  const float* x_;
  const float* y_;
  const float* bias_;
  int64_t T_;
  int K_, N_;
  LogKind kind_;
  int bits_;
  float shift_;
  double max_changed_fraction_ = 0.15;
  bool prepared_ = false;
  std::vector<float> xs_;      // X sorted ascending [T*K]
  std::vector<uint32_t> idx_;  // flat index t*K + k of each sorted element
  std::vector<float> wq_;      // [N][K]
  std::vector<float> wt_;      // Wq^T [K][N]
  std::vector<double> z_;      // [T][N]: Y - b + d * colsum(Wq)
  std::vector<State> states_;
  int64_t clock_ = 0;
  Stats stats_;
  // Scratch of Move: changed elements bucketed by row (counting sort, stable).
  std::vector<int64_t> row_start_;
  std::vector<int32_t> upd_k_;
  std::vector<double> upd_d_;
};

}  // namespace adalog::search
