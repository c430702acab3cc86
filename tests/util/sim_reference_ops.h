// Teacher-forced, per-op check of a simulated (fake-quant) forward against a plain scalar
// reference: every op of the reference is fed the SAME input the executor's op consumed (the
// executor's recorded value before the quantizer at that placement), quantizes it itself with
// quant/'s scalar FakeQuant under the plan, computes the op in double and compares with the
// executor's recorded output. Free-running forwards drift apart through rounding flips at coarse
// (3-4 bit) quantizers, so their end-to-end gate must be loose; fed the same inputs, each op can
// be held to FP32 accumulation error whatever the bits. Written from the method §3.2
// placement table; shares no code with runtime/executor_sim. Each op's math and each quantizer are
// the reference forward's own (reference_kernels.h, SimReferenceHooks), fed the executor's values.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "runtime/executor_fp32.h"
#include "runtime/quant_plan.h"

namespace adalog::test {

// (tap, block, image, head) as in TapInfo.
using TapKey = std::tuple<int, int, int, int>;

struct TapRecording {
  std::map<TapKey, std::vector<float>> pre;   // input-side taps before the rewriter ran
  std::map<TapKey, std::vector<float>> post;  // every tap as the observer saw it (rewritten)
};

// Install as both the rewriter and the observer of an ExecutorFp32; wraps the rewriter under test.
class TapRecorder : public Fp32Rewriter, public Fp32Observer {
 public:
  explicit TapRecorder(Fp32Rewriter* inner) : inner_(inner) {}
  void Rewrite(const TapInfo& t, float* d, int rows, int cols) override {
    rec.pre[Key(t)].assign(d, d + int64_t(rows) * cols);
    inner_->Rewrite(t, d, rows, cols);
  }
  void OnTensor(const TapInfo& t, const float* d, int rows, int cols) override {
    rec.post[Key(t)].assign(d, d + int64_t(rows) * cols);
  }
  static TapKey Key(const TapInfo& t) {
    return {static_cast<int>(t.tap), t.block, t.image, t.head};
  }
  TapRecording rec;

 private:
  Fp32Rewriter* inner_;
};

// One op kind over the whole model: how many values were compared and the largest normalized
// error (|got - want| over the op's magnitude: sum |w x| + |b| for dot products, 1 + |want| for
// LayerNorm / GELU / pooling / logits, 1 for softmax probabilities, exact for copies).
struct OpCheck {
  std::string op;
  int64_t values = 0;
  double max_err = 0.0;
  std::string worst;     // where max_err was seen
  bool missing = false;  // an expected tap was not recorded
};

// images: [batch][C][H][W] as run. Returns one OpCheck per op kind, in forward order:
// patch_embed, ln1, qkv, qkv_split, softmax, attn_v, proj, ln2, fc1, gelu, fc2, pool, head,
// (head_dist,) logits.
std::vector<OpCheck> CheckOpsTeacherForced(const QuantizedModel& qm,
                                           const std::vector<float>& images, int batch,
                                           const TapRecording& rec);

}  // namespace adalog::test
