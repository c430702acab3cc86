// QuantPlan: every quantizer of a quantized ViT, attached to the op it quantizes (docs/method.md
// §3.2 placement). search/ produces it; the simulated and integer executors consume it;
// runtime/model_file stores it beside the (rewritten) VitModel.
//
// Placement (defaults of the method, W<b>A<b>):
//   patch_embed: weight per output channel; the image input stays FP32.
//   qkv, proj, fc1, head(, head_dist): weight per output row + per-tensor uniform input.
//   fc2: weight per output row + post-GELU input quantizer (Shift-AdaLog by default; with the
//        shift folded into fc2's bias when `fc2.input.shift_folded`).
//   matmul1 (q @ k^T): per-head uniform q and k (unscaled q; attn_scale is applied after).
//   matmul2 (attn @ v): per-tensor post-softmax quantizer (AdaLog, scale 1 by default) and
//        per-head uniform v.
// Everything else (LayerNorm, softmax, GELU, residual adds, tokens, biases, outputs) is FP32.
#pragma once

#include <utility>
#include <string>
#include <vector>

#include "quant/params.h"
#include "runtime/vit_model.h"

namespace adalog {

// The plan-wide choice of quantizer after Softmax (matmul2's probabilities) and after GELU (fc2's
// input): `adalog quantize --softmax / --gelu`, RecipeOptions, QuantPlan and the model file. Their
// names have one table (quant_plan.cc), in enum order; parse and print go through it.
enum class SoftmaxQuantizer { kAdaLog, kLog2, kLogSqrt2, kUniform };
enum class GeluQuantizer { kAdaLog, kLog2, kLogSqrt2, kTwin, kUniform };
const char* SoftmaxQuantizerName(SoftmaxQuantizer q);  // "adalog", "log2", "logsqrt2", "uniform"
const char* GeluQuantizerName(GeluQuantizer q);        // ... and "twin"
// Throws adalog::Error "unknown softmax quantizer '<name>' (adalog | log2 | logsqrt2 | uniform)"
// (GELU: "unknown GELU quantizer ...") for a name not in the table.
SoftmaxQuantizer ParseSoftmaxQuantizer(const std::string& name);
GeluQuantizer ParseGeluQuantizer(const std::string& name);
// Every name, in enum order.
std::vector<std::string> SoftmaxQuantizerNames();
std::vector<std::string> GeluQuantizerNames();
// True for the log-domain choices (adalog, log2, logsqrt2); *kind gets their quant/ LogKind.
bool IsLogQuantizer(SoftmaxQuantizer q, LogKind* kind = nullptr);
bool IsLogQuantizer(GeluQuantizer q, LogKind* kind = nullptr);

// The quantizer in front of a Linear's input (or of the softmax matmul's probabilities).
struct ActQuant {
  enum class Kind {
    kNone,     // FP32 pass-through
    kUniform,  // uniform (per tensor)
    kLog,      // log2 / log-sqrt2 / AdaLog (per tensor); with `shift` for post-GELU
    kTwin,     // PTQ4ViT twin uniform (post-GELU comparison only)
  };
  Kind kind = Kind::kNone;
  UniformPerTensor uniform;
  LogParams log;
  float shift = 0.f;          // log only: Q(x + shift); 0 for softmax
  bool shift_folded = false;  // log only: the -shift lives in the next layer's bias
  TwinUniformParams twin;
};

struct LinearQuant {
  UniformPerChannel weight;  // axis 0: one (scale, zero point) per output row
  ActQuant input;
};

struct AttentionQuant {
  UniformPerHead q;      // matmul1 A operand
  UniformPerHead k;      // matmul1 B operand
  ActQuant probs;        // matmul2 A operand (post-softmax)
  UniformPerHead v;      // matmul2 B operand
};

struct BlockQuant {
  LinearQuant qkv;
  AttentionQuant attn;
  LinearQuant proj;
  LinearQuant fc1;
  LinearQuant fc2;
};

struct QuantPlan {
  int weight_bits = 4;
  int act_bits = 4;
  SoftmaxQuantizer softmax_quantizer = SoftmaxQuantizer::kAdaLog;
  GeluQuantizer gelu_quantizer = GeluQuantizer::kAdaLog;
  bool ln_reparam = true;                    // LN reparameterization applied to the model
  bool fpcs = true;
  UniformPerChannel patch_embed_weight;      // per output channel over in*p*p
  std::vector<BlockQuant> blocks;
  LinearQuant head;
  LinearQuant head_dist;                     // distilled models only
  // Swin only: one per patch merge, in stage order (the stages with has_merge): the reduction
  // Linear's weight per output row and its (uniform) input, the merge's normed 4C rows. Empty
  // for a ViT; an empty entry (no scales, kind kNone) leaves that merge FP32.
  std::vector<LinearQuant> merges;
  // Provenance, informational: seed, calibration size, source file, ... Nothing timing- or
  // machine-dependent, so the same inputs give the same file bytes.
  std::vector<std::pair<std::string, std::string>> meta;
};

// A calibrated model: the FP32 model after calibration's function-preserving rewrites (LayerNorm
// reparameterization of ln1/qkv and ln2/fc1, fc2 biases with the GELU shift folded in when
// `fc2.input.shift_folded`) together with the plan that quantizes it. The pair is consistent
// only together: the plan's qkv/fc1 input parameters refer to the rewritten LayerNorms.
struct QuantizedModel {
  VitModel model;
  QuantPlan plan;
};

}  // namespace adalog
