// Export of a quantized model (QuantizedModel) as a standard ONNX QDQ graph (opset 17) that ONNX
// Runtime and other QDQ consumers run: `adalog export --format qdq` (cli/README.md, docs/deploy.md).
//
// The graph is generated from the model file's own VitModel and QuantPlan, not patched into the
// original ONNX: the model file holds everything the executors need (runtime/vit_model.h), and
// its LayerNorms are the calibration's rewritten ones that the plan's qkv/fc1 input parameters
// refer to, which the original graph does not have. So no source ONNX is needed.
//
// What the graph holds (one block; every name is prefixed blocks.<b>.):
//   weights     int8 initializer [in, out] (Conv: OIHW) = code - 2^(b-1), zero point z - 2^(b-1),
//               one (scale, zero point) per output channel (DequantizeLinear axis 1; Conv axis 0),
//               feeding DequantizeLinear, then MatMul + Add bias (Conv for the patch embedding).
//               (c - 2^(b-1)) - (z - 2^(b-1)) = c - z, so the dequantized weights are ours bit for bit.
//   activations QuantizeLinear -> DequantizeLinear (uint8, our scale and zero point) at every tap
//               the plan quantizes: qkv/proj/fc1/fc2/head inputs per tensor; q, k, v per head
//               (before the head split: Split into the heads' slices of [N, T, dim], one
//               per-tensor pair per head, Concat); the softmax probabilities per tensor.
//   the rest    FP32 as in the executors: Conv patch embedding, tokens, LayerNormalization, the
//               erf/tanh GELU as Div/Erf (Mul/Tanh) nodes ORT fuses into Gelu, Softmax, pooling.
//
// Exactness: QuantizeLinear is round(x / s) half to even, + z, saturated to [0, 255]; ours
// (quant/uniform.h) is clamp(round(x / s) + z, 0, 2^b - 1) with the same IEEE division and the
// same rounding, so at 8 bits the two give the same code for the same float input. They differ
// only (a) for NaN (ours: code z; ORT's MLAS clamp: code 0) and (b) through their inputs: the
// FP32 ops in between (GEMM summation order, ORT's fused integer kernels, which requantize with
// one float multiplier) can move an input across a rounding boundary, changing that code by one
// step (one scale) there.
//
// Refused (adalog::Error naming every tap): log quantizers (AdaLog / log2 / log-sqrt2, after
// softmax or GELU), twin-uniform, activation quantizers with fewer than 8 bits (QuantizeLinear's
// uint8 saturates at 0..255, not at our 2^b - 1), symmetric ones, and Swin window attention.
#pragma once

#include <string>
#include <vector>

#include "runtime/quant_plan.h"

namespace adalog {

// What an export wrote (for the CLI's summary).
struct QdqExportSummary {
  int opset = 0;
  int quantize_linear = 0;     // activation Q/DQ pairs (q, k, v: one per head)
  int weight_dequantize = 0;   // int8 weight initializers feeding DequantizeLinear
  int nodes = 0;
};

// One quantizer the QDQ export cannot express.
struct QdqUnsupportedTap {
  int block = -1;      // -1: outside the blocks (the head)
  std::string tap;     // "attention probabilities (post-softmax)", "fc2 input (post-GELU)", ...
  std::string reason;  // "adalog log quantizer", "4-bit uniform quantizer", ...
};
// Every such quantizer of the plan, in block order; empty when the plan exports.
std::vector<QdqUnsupportedTap> QdqUnsupportedTaps(const QuantizedModel& qm);
// The refusal message: one line per (tap, reason) with the blocks it occurs in, log quantizers
// first, then how to re-quantize.
std::string DescribeQdqRefusal(const std::vector<QdqUnsupportedTap>& taps);

// The serialized ONNX ModelProto. Throws adalog::Error when QdqUnsupportedTaps is not empty
// (the message lists them and says how to re-quantize) or when a weight is not on its plan's
// quantization grid (a corrupt pairing of model and plan). `producer_note` goes into the model's
// doc string (e.g. the source file).
std::string ExportQdqOnnx(const QuantizedModel& qm, const std::string& producer_note,
                          QdqExportSummary* summary = nullptr);

}  // namespace adalog
