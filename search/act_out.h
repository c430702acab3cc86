// A-out of a Linear (method §4.3), per tensor:
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

#include "quant/codes.h"
#include "search/code_chain.h"
#include "search/fake_quant_fns.h"
#include "search/grids.h"

namespace adalog::search {

// A-out of a Linear: input x [T][K] (FP), target y [T][N], bias [N]; the pointers must outlive
// the object.
class ActOutObjective {
 public:
  ActOutObjective(const float* x, int64_t T, int K, const float* y, const float* bias, int N);
  // The current quantized weight wq [N][K] (dequantized values); drops the uniform form.
  void SetWeight(const float* wq);
  // Per-tensor uniform candidates (1 group), via the integer code Gram (updated incrementally
  // between close candidates of the same zero point: the chain form, bit-identical errors). Not
  // const: the first call after SetWeight builds the uniform form (UniformForm), and X is sorted
  // once. The values depend on the candidates, x, y, bias and wq only.
  void EvalUniform(const UniformCandidates& c, std::vector<double>* err);
  // Tests: false forces a from-scratch Gram per candidate; chain_updates() counts the
  // candidates whose Gram was updated incrementally.
  void set_uniform_chain(bool on) { uniform_chain_ = on; }
  int64_t chain_updates() const { return chain_updates_; }
  // Any quantizer, directly: err[i] = ||Y - b - fq_i(X) Wq^T||^2 for each of `count` quantizers.
  void EvalDirect(int count, const std::function<FakeQuantFn(int)>& make_fq,
                  std::vector<double>* err) const;

 private:
  // Once per weight state: H = Wq^T Wq, R = (Y - b) Wq, ||Y - b||^2 and, when X is sorted,
  // prefix sums of R in X's sorted order (<C - z, R> by code range).
  struct UniformForm {
    bool ready = false;
    std::vector<double> H;     // [K][K]
    std::vector<double> R;     // [T][K]
    double yy = 0;
    std::vector<double> rpre;  // [T*K + 1], empty when X is not sorted
  };
  void PrepareUniform();
  // <C - z, R> for codes given as steps of X's sorted order.
  double Linear(const CodeSteps& codes, int32_t z) const;
  // <H, G> for the integer code Gram G.
  double Quadratic(const int32_t* gram) const;
  // Candidate i's codes of X.
  void Encode(const UniformCandidates& c, int i, UniformCode* codes) const;
  // The integer Gram (C - z)^T (C - z), exact (u8s8s32 GEMM); codes_s8: scratch of T*K.
  void CodeGram(const UniformCode* codes, int8_t* codes_s8, int32_t z, int32_t* gram) const;
  // The chain form of EvalUniform (X sorted, bits <= 7).
  void EvalUniformChain(const UniformCandidates& c, std::vector<double>* err);

  const float* x_;
  const float* y_;
  const float* bias_;
  int64_t T_;
  int K_, N_;
  std::vector<float> wq_;           // [N][K]
  bool uniform_chain_ = true;
  int64_t chain_updates_ = 0;
  UniformForm form_;                // built by the first EvalUniform after SetWeight
  // X sorted once (the uniform code is monotone in x, so each code's elements are a contiguous
  // range, found by bisection with the quantizer's Encode). Empty when X has a NaN (or has
  // 2^32 elements or more): every candidate then takes the plain path.
  SortedValues xs_;
};

}  // namespace adalog::search
