// The search objectives of AdaLog spec 4.3, evaluated exactly (up to floating-point rounding,
// all reductions in double) through cheaper equivalent forms:
//   W-self  per row:      sum_i (W[o,i] - Q(W)[o,i])^2, the A-self form per row (row sorted once)
//   A-self  per tensor or per channel: sum (x - Q(x))^2, from sorted values + prefix sums
//           (the code of a sorted array is monotone: each code's bin is found by bisection)
//   W-out   per row:      ||y_o - b_o||^2 - 2 w.c_o + w^T G w,  G = Xq^T Xq, c_o = Xq^T (y_o - b_o)
//           (G, c_o in double once per activation state, exact products: search/gram.h),
//           evaluated re-centred on the FP row w: ||r0||^2 - 2 e.(c_o - G w) + e^T G e with
//           e = Q(w) - w. e^T G e either through one float GEMM for a row's candidates (it has
//           the size of the error itself), or, when the integer codes u = c - z change little
//           from one candidate to the next (late FPCS steps), exactly in double along a chain:
//           e^T G e = s^2 u^T G u - 2 s u.Gw + w^T G w with v = G u and u^T G u moved by sparse
//           code changes (per-row state kept across FPCS steps).
//   A-out   per tensor:   uniform: ||Y - b||^2 - 2 s <C - z, R> + s^2 <H, (C - z)^T (C - z)>
//                         with R = (Y - b) Wq, H = Wq^T Wq (once per weight state) and the
//                         integer code Gram from an exact u8s8s32 GEMM; other quantizers
//                         (log, twin) directly: ||Y - b - Q(X) Wq^T||^2 (float GEMM, double sum)
//   MM-A / MM-B per head:  sum_images ||A B - Q_A(A) Q_B(B)||^2 with the other operand at its
//           current quantizer. q @ k^T (either operand) and attn @ v (v) in the residual form
//           ||r0||^2 - 2 <E, R> + <E H, E> with E = Q(X) - X = s U - X, evaluated per head along
//           a chain of candidates: U's changes are ranges of X's sorted order (bisection with
//           the quantizer's Encode), <U H, U>, <U, R>, <U, X H> and V = U H (double) move by
//           sparse updates, or are recomputed exactly when more than 4% of the codes change.
//           Otherwise directly (float GEMM, double sum); per tensor for the softmax side.
// Errors are SUMS of squares: the official code's means differ by constant factors only, which
// never change a ranking. Every candidate's error is computed by one thread in a fixed order, so
// results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "quant/codes.h"
#include "quant/params.h"
#include "search/fpcs.h"
#include "search/grids.h"

namespace adalog::search {

// Fake-quantizes n floats (x -> out); must be thread-safe (called concurrently).
using FakeQuantFn = std::function<void(const float* x, int64_t n, float* out)>;

// W-self for weight [rows][cols]: err[g * count + i] for row g = candidates' group g.
void WeightSelfErrors(const float* w, int rows, int cols, const UniformCandidates& c,
                      std::vector<double>* err);

// A-self over x [rows][cols], per tensor (candidates with 1 group) or per channel (cols groups).
class ActSelfObjective {
 public:
  ActSelfObjective(const float* x, int64_t rows, int cols, bool per_channel);
  void Eval(const UniformCandidates& c, std::vector<double>* err) const;

 private:
  int64_t n_;      // values per group
  int groups_;
  std::vector<float> sorted_;  // [group][n], ascending
  std::vector<double> s1_, s2_;  // prefix sums [group][n + 1]
};

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

// A-out of a Linear: input x [T][K] (FP), target y [T][N], bias [N]; the pointers must outlive
// the object.
class ActOutObjective {
 public:
  ActOutObjective(const float* x, int64_t T, int K, const float* y, const float* bias, int N);
  // The current quantized weight wq [N][K] (dequantized values).
  void SetWeight(const float* wq);
  // Per-tensor uniform candidates (1 group), via the integer code Gram (updated incrementally
  // between close candidates of the same zero point: the chain form, bit-identical errors).
  void EvalUniform(const UniformCandidates& c, std::vector<double>* err) const;
  // Tests: false forces a from-scratch Gram per candidate; chain_updates() counts the
  // candidates whose Gram was updated incrementally.
  void set_uniform_chain(bool on) { uniform_chain_ = on; }
  int64_t chain_updates() const { return chain_updates_; }
  // Any quantizer, directly: err[i] = ||Y - b - fq_i(X) Wq^T||^2 for each of `count` quantizers.
  void EvalDirect(int count, const std::function<FakeQuantFn(int)>& make_fq,
                  std::vector<double>* err) const;

 private:
  template <typename Bounds, typename Linear, typename Quadratic, typename Encode, typename CodeGram>
  void EvalUniformChain(const UniformCandidates& c, std::vector<double>* err, const Bounds& bounds,
                        const Linear& linear, const Quadratic& quadratic, const Encode& encode,
                        const CodeGram& code_gram) const;
  const float* x_;
  const float* y_;
  const float* bias_;
  int64_t T_;
  int K_, N_;
  std::vector<float> wq_;           // [N][K]
  bool uniform_chain_ = true;
  mutable int64_t chain_updates_ = 0;
  // Built lazily by the first EvalUniform after SetWeight (not needed by EvalDirect).
  mutable std::vector<double> H_;   // [K][K]
  mutable std::vector<double> R_;   // [T][K]
  mutable double yy_ = 0;
  // <C - z, R> from sorted values: X sorted once (the uniform code is monotone in x, so each
  // code's elements are a contiguous range, found by bisection with the quantizer's Encode), and
  // prefix sums of R in that order, once per weight state. Empty when X has a NaN.
  mutable std::vector<float> xs_;       // X ascending
  mutable std::vector<uint32_t> xidx_;  // flat index of each sorted element
  mutable std::vector<double> rpre_;    // [T*K + 1] prefix sums of R in sorted order
};

// A matmul out[h][img] = A[h][img] (M x K) times B[h][img] (K x N when !b_transposed, stored
// [K][N]; N x K when b_transposed, stored [N][K] so that out = A B^T). Operands are laid out
// [heads][images][...] contiguously. Targets are the FP products.
class MatmulObjective {
 public:
  MatmulObjective(const float* a, const float* b, int heads, int images, int M, int K, int N,
                  bool b_transposed);
  int64_t a_per_head() const { return static_cast<int64_t>(images_) * M_ * K_; }
  int64_t b_per_head() const { return static_cast<int64_t>(images_) * K_ * N_; }
  const float* a() const { return a_; }
  const float* b() const { return b_; }
  int heads() const { return heads_; }
  // The operand the search does not vary, already quantized ([heads][...] like the original).
  // Setting one operand prepares the residual form used to search the other one (when cheaper).
  void SetQuantizedA(std::vector<float> qa);
  void SetQuantizedB(std::vector<float> qb);
  // Per-head uniform candidates for A (B at its quantized value) or B (A quantized).
  void EvalAPerHead(const UniformCandidates& c, std::vector<double>* err) const;
  void EvalBPerHead(const UniformCandidates& c, std::vector<double>* err) const;
  // Chain form (q @ k^T A/B, attn @ v B): a candidate is moved by sparse updates when at most
  // this fraction of its codes changed, else recomputed from scratch. Tests set 0 or 1.
  void set_chain_fraction(double f) { chain_fraction_ = f; }
  // Per-tensor candidates for A (softmax side), summed over heads.
  void EvalATensor(int count, const std::function<FakeQuantFn(int)>& make_fq,
                   std::vector<double>* err) const;

 private:
  double HeadError(int h, const float* qa_h, const float* qb_h, float* scratch) const;
  const float* a_;
  const float* b_;
  int heads_, images_, M_, K_, N_;
  bool bt_;
  std::vector<float> p_;  // targets [heads][images][M][N]
  std::vector<float> qa_, qb_;
  // Residual form for q @ k^T (b_transposed, head_dim < tokens), per (head, image): searching
  // X (rows x K, the varying operand) against the fixed quantized Y (cols x K):
  //   err = ||r0||^2 - 2 <E, R> + <E H, E>,  E = Q(X) - X,  r0 = target - X Y^T (rows x cols),
  //   R = r0 Y (rows x K),  H = Y^T Y (K x K):  rows K (K + 1) instead of rows cols K per image.
  struct Residual {
    bool ready = false;
    int rows = 0;
    std::vector<float> R, H;  // [head][image][rows][K], [head][image][K][K]
    std::vector<double> rr;   // [head][image]
    // Chain form (uniform candidates, per head): with E = s U - X, U = codes - z,
    //   err = RR - 2 (s <U, R> - <X, R>) + s^2 <U H, U> - 2 s <U, X H> + <X H, X>
    // summed over the head's images; U, V = U H (double) and the three U sums are moved by the
    // sparse code changes from one candidate to the next (kept across FPCS steps).
    // con_rows: the index H contracts is X's row index (attn @ v: X = v [tokens][hd], H =
    // Pq^T Pq over tokens, V stored [image][hd][tokens]); otherwise its column index (q @ k^T:
    // X = q [tokens][hd], H over hd, V stored [image][tokens][hd]).
    bool con_rows = false;
    int xi = 0, xj = 0;                   // X per image: xi rows, xj columns
    std::vector<float> XH;                // [head][image][xi][xj]: H applied to X (same layout)
    std::vector<double> RR, XR, XHX;      // per head
    mutable std::vector<std::vector<int16_t>> U;   // per head: [image][rows][K]
    mutable std::vector<std::vector<double>> V;    // per head: U H
    mutable std::vector<double> UR, UXH, UHU;      // per head
    // The state's u as a function of the sorted position p of X (u is monotone in x):
    // u(p) = umin + #{v in (umin, umax] : pos[v - umin - 1] <= p}.
    mutable std::vector<int> umin, umax;            // per head
    mutable std::vector<std::vector<int64_t>> pos;  // per head
  };
  // X of each head sorted once (for the chain form): values and flat indices, per operand.
  struct SortedHeads {
    bool ok = false;  // false: not built yet, or X has a NaN (chain form off)
    bool built = false;
    std::vector<std::vector<float>> val;
    std::vector<std::vector<uint32_t>> idx;
  };
  mutable SortedHeads sorted_a_, sorted_b_;
  void PrepareResidual(bool for_a, Residual* out) const;
  // attn @ v, searching B = v (K x N per image) against the quantized A (M x K).
  void PrepareResidualAvB(Residual* out) const;
  // RR, XR, XHX sums and a zero chain state (after R, XH, rr are set).
  void FinishResidual(const float* xs, Residual* res) const;
  double ResidualHeadError(const Residual& res, int h, const float* x_h, const float* qx_h,
                           float* e, float* eh) const;
  // Chain form of one head's candidates (err[i] for candidate i of group h).
  void ChainHead(const Residual& res, const SortedHeads* sorted, int h, const float* x_h,
                 const UniformCandidates& c, double* err) const;
  void SortHeads(const float* x, int64_t per_head, SortedHeads* out) const;
  Residual res_a_, res_b_;
  double chain_fraction_ = 0.04;
};

// Thresholds of a uniform quantizer's code: for every non-NaN float x,
// Encode(x) = #{j : x >= thr[j]} (2^bits - 1 ascending thresholds; exact, by bisection over the
// float bit patterns with the quantizer's own Encode).
std::vector<float> UniformCodeThresholds(const UniformParams& p);

// Fake quantization of whole tensors with candidate parameters (helpers shared with recipes).
FakeQuantFn UniformFq(const UniformParams& p);
FakeQuantFn LogFq(const LogParams& p, float shift);  // Q(x + shift) - shift
FakeQuantFn TwinFq(const TwinUniformParams& p);

}  // namespace adalog::search
