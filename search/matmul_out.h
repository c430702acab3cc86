// The matmul objectives (method §4.3):
//   MM-A / MM-B per head:  sum_images ||A B - Q_A(A) Q_B(B)||^2 with the other operand at its
//           current quantizer. q @ k^T (either operand) and attn @ v (v) in the residual form
//           ||r0||^2 - 2 <E, R> + <E H, E> with E = Q(X) - X = s U - X, evaluated per head along
//           a chain of candidates: U's changes are ranges of X's sorted order (bisection with
//           the quantizer's Encode), <U H, U>, <U, R>, <U, X H> and V = U H (double) move by
//           sparse updates, or are recomputed exactly when more than 4% of the codes change.
//           Otherwise directly (float GEMM, double sum).
//   MM per tensor (the softmax side): directly, summed over heads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "search/code_chain.h"
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
  // Not const: with the residual form, each head keeps its chain position (HeadChain) for the
  // next call (the next FPCS step); SetQuantized* of the other operand resets it. The position
  // decides, through rounding only, the values' last bits; it is a function of the calls made
  // so far, never of the thread count.
  void EvalAPerHead(const UniformCandidates& c, std::vector<double>* err) { EvalPerHead(true, c, err); }
  void EvalBPerHead(const UniformCandidates& c, std::vector<double>* err) { EvalPerHead(false, c, err); }
  // Chain form (q @ k^T A/B, attn @ v B): a candidate is moved by sparse updates when at most
  // this fraction of its codes changed, else recomputed from scratch. Tests set 0 or 1.
  void set_chain_fraction(double f) { chain_fraction_ = f; }
  // Chain form: each head's images are split into parts of at most this many images (a fixed
  // partition of the data, never of the thread count), each part its own chain; a head's error is
  // its parts' errors added in part order. Parts give the threads work when there are fewer
  // heads than threads (Swin stage 1: 3 heads of 2048 windows) and keep a part's state in cache.
  // Set before the first Eval (tests use small parts).
  void set_chain_part_images(int n) { part_images_ = std::max(1, n); }
  // Per-tensor candidates for A (softmax side), summed over heads.
  void EvalATensor(int count, const std::function<FakeQuantFn(int)>& make_fq,
                   std::vector<double>* err) const;

 private:
  // Residual form for q @ k^T (b_transposed, head_dim < tokens), per (head, image): searching
  // X (rows x K, the varying operand) against the fixed quantized Y (cols x K):
  //   err = ||r0||^2 - 2 <E, R> + <E H, E>,  E = Q(X) - X,  r0 = target - X Y^T (rows x cols),
  //   R = r0 Y (rows x K),  H = Y^T Y (K x K):  rows K (K + 1) instead of rows cols K per image.
  // Made by SetQuantized* of the other operand, read-only afterwards.
  struct Residual {
    bool ready = false;
    int rows = 0;
    std::vector<float> R, H;  // [head][image][rows][K], [head][image][K][K]
    std::vector<double> rr;   // [head][image]
    // Chain form (uniform candidates, per head): with E = s U - X, U = codes - z,
    //   err = RR - 2 (s <U, R> - <X, R>) + s^2 <U H, U> - 2 s <U, X H> + <X H, X>
    // summed over the head's images (HeadChain holds the U side).
    // con_rows: the index H contracts is X's row index (attn @ v: X = v [tokens][hd], H =
    // Pq^T Pq over tokens, V stored [image][hd][tokens]); otherwise its column index (q @ k^T:
    // X = q [tokens][hd], H over hd, V stored [image][tokens][hd]).
    bool con_rows = false;
    int xi = 0, xj = 0;                   // X per image: xi rows, xj columns
    std::vector<float> XH;                // [head][image][xi][xj]: H applied to X (same layout)
    std::vector<double> RR, XR, XHX;      // per (head, part of the chain form)
  };
  // One head's chain position, what one Eval leaves for the next: U = codes - z as steps of X's
  // sorted order and per element ([image][xi][xj]), V = U H (double), and <U, R>, <U, X H>,
  // <U H, U>. U = 0 after a reset; U and V are moved by sparse updates (ChainHead).
  struct HeadChain {
    CodeSteps u;
    std::vector<int16_t> U;
    std::vector<double> V;
    double ur = 0, uxh = 0, uhu = 0;
  };
  // A searched operand: its residual form, its (head, part)s sorted once (for the chain form;
  // sorted_ok false: X has a NaN, chain form off) and their chain positions.
  struct Operand {
    Residual res;
    bool sorted_built = false, sorted_ok = false;
    std::vector<SortedValues> sorted;  // per (head, part)
    std::vector<HeadChain> chain;      // per (head, part)
  };
  // The chain form's parts: part p of a head holds images [p * part_size(), ...).
  int parts() const { return (images_ + part_size() - 1) / part_size(); }
  int part_size() const { return std::min(images_, part_images_); }
  int part_images(int part) const { return std::min(part_size(), images_ - part * part_size()); }
  void EvalPerHead(bool for_a, const UniformCandidates& c, std::vector<double>* err);
  double HeadError(int h, const float* qa_h, const float* qb_h, float* scratch) const;
  void PrepareResidual(bool for_a, Residual* out) const;
  // attn @ v, searching B = v (K x N per image) against the quantized A (M x K).
  void PrepareResidualAvB(Residual* out) const;
  // RR, XR, XHX sums (after R, XH, rr are set).
  void FinishResidual(const float* xs, Residual* res) const;
  // After op's residual form is made: every head's chain restarts at U = 0.
  void ResetChains(Operand* op) const;
  double ResidualHeadError(const Residual& res, int h, const float* x_h, const float* qx_h,
                           float* e, float* eh) const;
  // Chain form of one (head, part)'s candidates (err[i]: candidate i of group h on that part).
  void ChainHead(const Residual& res, const SortedValues& sorted, int h, int part,
                 const UniformCandidates& c, HeadChain* chain, double* err) const;
  void SortHeads(const float* x, int64_t per_head, Operand* op) const;

  const float* a_;
  const float* b_;
  int heads_, images_, M_, K_, N_;
  bool bt_;
  std::vector<float> p_;  // targets [heads][images][M][N]
  std::vector<float> qa_, qb_;
  Operand op_a_, op_b_;
  double chain_fraction_ = 0.04;
  int part_images_ = 256;
};

}  // namespace adalog::search
