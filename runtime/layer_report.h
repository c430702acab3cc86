// Per-op damage of a quantized model against its FP32 source (`adalog report`): for every quantized
// op, the error of its output against FP32 ("local": the op run on FP32 inputs; "accumulated":
// through the whole quantized model), and what each activation quantizer sees (clipped and
// zero-coded fractions, code histogram; for post-Softmax / post-GELU quantizers also a log-binned
// value histogram and the levels of log2 / uniform alternatives at the same bits).
//
// The quantized side is the simulated executor (executor_sim.h, the accuracy judge), built from its
// own parts: an ExecutorFp32 over MakeSimulatedModel(qm) with MakeFakeQuantRewriter(qm.plan)
// wrapped by a recorder (the accumulated run's logits equal ExecutorSim::Run's bit for bit;
// tested).
//
// Metrics of an op output q against its FP32 value f, over all evaluated images:
//   sqnr_db   = 10 log10(sum f^2 / sum (q - f)^2)        (+inf when q == f everywhere)
//   rel_error = sqrt(sum (q - f)^2 / sum f^2)           (= 10^(-sqnr_db / 20))
//   cosine    = mean over images of cos(q_i, f_i), q_i / f_i the op's whole output for image i
//               (every token, every head), each cos in double as CompareLogits computes it, so
//               the "logits" op's accumulated cosine is `adalog eval --reference-logits`'s mean.
// Local run: block by block through the stepping API from the FP32 residual stream; every input
// tap of a quantized op is reset to its FP32 value before its quantizer runs (qkv.in and head.in
// are computed by the quantized model's own LayerNorm from the FP32 stream; fc1.in is the
// quantized model's LN2 of the FP32 stream, computed with the executor's float kernel).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/data/image_source.h"
#include "runtime/quant_plan.h"
#include "runtime/vit_model.h"

namespace adalog {

struct OutputError {
  double sqnr_db = 0;  // +inf when there is no error
  double rel_error = 0;
  double cosine = 0;
};

// Log2-binned histogram of the values a log-domain quantizer sees (x + shift for post-GELU).
struct ValueHistogram {
  static constexpr int kLog2Lo = -32;       // first bin starts at 2^kLog2Lo
  static constexpr int kLog2Hi = 8;         // last bin ends at 2^kLog2Hi
  static constexpr int kBinsPerOctave = 4;  // bin i covers [2^(lo + i/4), 2^(lo + (i+1)/4))
  std::vector<int64_t> counts;              // (kLog2Hi - kLog2Lo) * kBinsPerOctave bins
  int64_t below = 0;                        // values < 2^kLog2Lo, zero and negative included
  int64_t above = 0;                        // values >= 2^kLog2Hi
};

// A quantizer's levels in its own domain, and its error on the observed inputs.
struct QuantizerLevels {
  std::string name;            // "plan" (the model's quantizer), "log2", "uniform"
  std::string kind;            // e.g. "adalog", "log2", "uniform"
  std::vector<double> levels;  // every representable value (domain of the histogram), ascending
  double sqnr_db = 0;          // 10 log10(sum x^2 / sum (x - fq(x))^2) over the observed inputs
};

struct QuantizerStats {
  std::string name;  // "input" (a Linear's), "q", "k", "v", "probs"
  std::string kind;  // "uniform", "uniform_per_head", "adalog", "log2", "logsqrt2", "twin", "none"
  int bits = 0;
  int64_t values = 0;      // elements quantized
  int64_t clipped = 0;     // uniform: round(x/s)+z outside the code range; log: x (+shift) above
                           // the top level; twin: beyond half a step past its extreme codes
  int64_t zero_coded = 0;  // uniform: code == zero point; log: the zero code; twin: code 0
  std::vector<int64_t> code_histogram;  // index = code (log: 0 = top level, 2^b = zero code;
                                        // twin: code + 2^(b-1), codes -2^(b-1) .. 2^(b-1) - 1)
  double sqnr_db = 0;                   // of the quantizer alone on its observed inputs
  // Post-Softmax and post-GELU quantizers only (has_domain):
  bool has_domain = false;
  float shift = 0;  // the histogram shows x + shift
  ValueHistogram histogram;
  std::vector<QuantizerLevels> levels;  // plan, then log2 and uniform at the same bits and top
};

struct OpReport {
  std::string name;  // "block3.fc2", "patch_embed", "head", "logits"
  std::string op;    // "patch_embed", "qkv", "qk_softmax", "attn_v", "proj", "fc1", "fc2",
                     // "head", "head_dist", "logits"
  int block = -1;
  std::string output;  // the tap whose tensor is compared (TapPointName)
  OutputError local;
  OutputError accumulated;
  std::vector<QuantizerStats> quantizers;  // accumulated run's inputs, in front of this op
};

struct LayerReportOptions {
  int batch = 8;        // images per executor run (1..1024)
  int num_threads = 0;  // 0: all OpenMP threads
};

struct LayerReport {
  int64_t images = 0;
  std::vector<OpReport> ops;        // in schedule order; the last is "logits"
  std::vector<float> fp32_logits;   // [images][classes]
  std::vector<float> quant_logits;  // [images][classes], the simulated executor's
  double top1_agreement = 0;        // quantized vs FP32 argmax
};

// Runs images [0, n) of `source` through `fp32` (the FP32 model the quantized one was calibrated
// from, e.g. its ONNX) and through `qm` on the simulated executor. Throws adalog::Error when the
// two models do not match in shape, or on bad data.
LayerReport BuildLayerReport(const VitModel& fp32, const QuantizedModel& qm,
                             const ImageSource& source, int64_t n,
                             const LayerReportOptions& options);

}  // namespace adalog
