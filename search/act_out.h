// A-out of a Linear (AdaLog spec 4.3), per tensor:
//   uniform input: ||Y - b||^2 - 2 s <C - z, R> + s^2 <H, (C - z)^T (C - z)>
//                  with R = (Y - b) Wq, H = Wq^T Wq (once per weight state) and the integer code
//                  Gram from an exact u8s8s32 GEMM, moved between close candidates by exact
//                  integer updates (the chain form)
//   other quantizers (twin): directly, ||Y - b - Q(X) Wq^T||^2 (float GEMM, double sum)
// The shifted log input of fc2 has its own exact form: log_act_out.h.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "search/fake_quant_fns.h"
#include "search/grids.h"

namespace adalog::search {

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

}  // namespace adalog::search
