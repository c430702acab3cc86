// The matmul objectives (AdaLog spec 4.3):
//   MM-A / MM-B per head:  sum_images ||A B - Q_A(A) Q_B(B)||^2 with the other operand at its
//           current quantizer. q @ k^T (either operand) and attn @ v (v) in the residual form
//           ||r0||^2 - 2 <E, R> + <E H, E> with E = Q(X) - X = s U - X, evaluated per head along
//           a chain of candidates: U's changes are ranges of X's sorted order (bisection with
//           the quantizer's Encode), <U H, U>, <U, R>, <U, X H> and V = U H (double) move by
//           sparse updates, or are recomputed exactly when more than 4% of the codes change.
//           Otherwise directly (float GEMM, double sum).
//   MM per tensor (the softmax side): directly, summed over heads.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "search/fake_quant_fns.h"
#include "search/grids.h"

namespace adalog::search {

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

}  // namespace adalog::search
