// The argument spec of every `adalog` subcommand: the single source of parsing rules and --help.
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/preprocess_options.h"
#include "runtime/quant_plan.h"
#include "search/calibrate.h"
#include "search/recon/reconstruct.h"

namespace adalog::cli {
namespace {

constexpr int64_t kMaxThreads = 256;
constexpr int64_t kMaxBatch = 1024;  // SessionOptions::max_batch

OptionSpec Threads(const std::string& default_text) {
  return Int("threads", "N", "worker threads", 1, kMaxThreads, default_text);
}

OptionSpec Batch(const std::string& default_text) {
  return Int("batch", "B", "images per inference", 1, kMaxBatch, default_text);
}

const PositionalSpec kModel{"MODEL", "an FP32 ONNX ViT (.onnx) or an adalog quantized model file"};

// `options` followed by the shared preprocessing options (cli/preprocess_options.h).
std::vector<OptionSpec> WithPreprocess(std::vector<OptionSpec> options) {
  for (OptionSpec& o : PreprocessOptionSpecs()) options.push_back(std::move(o));
  return options;
}

const char kPreprocessDetails[] =
    "Image folders are preprocessed as the model declares (ONNX metadata adalog.preprocess.*, or\n"
    "the preprocessing `quantize` stored); options that disagree with a declared preprocessing are\n"
    "refused unless --force-preprocess. A model that declares none gets the imagenet preset, with\n"
    "a warning. Skipped folder entries are counted on one stderr line (--strict: an error).\n";

std::vector<CommandSpec> MakeCommands() {
  std::vector<CommandSpec> cmds;

  CommandSpec inspect;
  inspect.name = "inspect";
  inspect.summary = "Print what adalog recognized in a model: structure, shapes, parameters, MACs.";
  inspect.positionals = {kModel};
  inspect.options = {Flag("json", "print one JSON object instead of text (schema: cli/README.md)")};
  inspect.details =
      "example:\n  adalog inspect models/tiny/tiny_timm_op17_dyn.onnx\n";
  cmds.push_back(inspect);

  CommandSpec run;
  run.name = "run";
  run.summary = "Run a model on a float32 NCHW .npy or an image folder; write its logits as float32 .npy.";
  run.positionals = {kModel};
  run.options = WithPreprocess({
      Str("input", "X.npy|DIR",
          "input images [N,C,H,W], preprocessed (float32; float64/float16 are converted), or an image folder (flat or class subfolders; "
          "logits in sorted path order)",
          true),
      Str("output", "Y.npy", "where to write the logits [N,classes] (float32)", true),
      Threads("all cores"),
      Batch("8"),
      Flag("simulate", "quantized models: run the simulated (fake-quant) executor instead of the integer one (an error for ONNX models)"),
      Flag("json", "print one JSON line about what was written (schema: cli/README.md)"),
  });
  run.details =
      std::string("example:\n  adalog run model.onnx --input x.npy --output logits.npy --threads 2\n") +
      kPreprocessDetails;
  cmds.push_back(run);

  CommandSpec eval;
  eval.name = "eval";
  eval.summary = "Measure top-1/top-5 accuracy of a model on labelled images.";
  eval.positionals = {kModel};
  eval.options = WithPreprocess({
      Str("data", "X.npy|DIR", "NCHW .npy (float32, float64 or float16), or an image folder (one subfolder per class)", true),
      Str("labels", "Y.npy", "integer labels [N] (required with an .npy --data)"),
      Flag("json", "print one JSON object instead of text"),
      Threads("all cores"),
      Batch("8"),
      Int("limit", "N", "evaluate only the first N images", 1, 100000000, "all"),
      Flag("simulate", "quantized models: run the simulated (fake-quant) executor instead of the integer one (an error for ONNX models)"),
      Str("reference-logits", "R.npy",
          "also report logits fidelity (mean cosine, top-1 agreement) against these logits [N,classes]"),
  });
  eval.details =
      "examples:\n"
      "  adalog eval model.onnx --data test_x.npy --labels test_y.npy\n"
      "  adalog eval model.adalog --data imagenet/val --limit 1000 --json\n"
      "  adalog run model.onnx --input x.npy --output fp.npy\n"
      "  adalog eval model.adalog --data x.npy --labels y.npy --reference-logits fp.npy\n"
      "Quantized models run on the integer executor (AVX-512 VNNI kernels) where it supports the\n"
      "plan and the CPU, else on the simulated (fake-quant) executor, with a note; --simulate\n"
      "selects the simulated one, the accuracy reference.\n" +
      std::string(kPreprocessDetails);
  cmds.push_back(eval);

  CommandSpec bench;
  bench.name = "bench";
  bench.summary = "Time inference on seeded random input; report median and p90 latency.";
  bench.positionals = {kModel};
  bench.options = WithPreprocess({
      Str("data", "X.npy|DIR",
          "time on these images (the first B, repeated if fewer; preprocessed before timing) instead of "
          "seeded random ones"),
      Batch("1"),
      Threads("1"),
      Flag("json", "print one JSON line (median_ms, p90_ms, images_per_s, ...)"),
      Int("warmup", "N", "untimed inferences first", 0, 1000000, "3"),
      Int("runs", "N", "timed inferences", 1, 1000000, "10"),
      Flag("simulate", "quantized models: run the simulated (fake-quant) executor instead of the integer one (an error for ONNX models)"),
  });
  bench.details =
      "example:\n  adalog bench model.onnx --batch 8 --threads 2 --json\n"
      "bench/e2e.py runs this beside ONNX Runtime and PyTorch. The preprocessing options need --data DIR.\n";
  cmds.push_back(bench);

  const search::CalibOptions defaults;  // the library's defaults are the command's
  CommandSpec quantize;
  quantize.name = "quantize";
  quantize.summary = "Calibrate and quantize an FP32 ONNX ViT with AdaLog; write a model file.";
  quantize.positionals = {{"MODEL.onnx", "the FP32 ONNX ViT to quantize"}};
  OptionSpec out = Str("output", "OUT", "the quantized model file to write", true);
  out.short_name = 'o';
  OptionSpec bits = Str("bits", "WxAy", "weight and activation bits, e.g. W4A4, W6A6, W8A8");
  bits.default_text = "W4A4";
  quantize.options = WithPreprocess({
      Str("calib", "X.npy|DIR",
          "calibration images: NCHW .npy (float32, float64 or float16) or an image folder (flat, or class subfolders; no labels needed)",
          true),
      bits,
      out,
      Int("wbits", "N", "weight bits (overrides --bits)", 2, 8, "from --bits"),
      Int("abits", "N", "activation bits (overrides --bits)", 2, 8, "from --bits"),
      Choice("softmax", SoftmaxQuantizerNames(), "post-Softmax quantizer",
             SoftmaxQuantizerName(defaults.recipe.softmax)),
      Choice("gelu", GeluQuantizerNames(), "post-GELU quantizer", GeluQuantizerName(defaults.recipe.gelu)),
      Int("calib-size", "N", "calibration images to use", 1, 100000, std::to_string(defaults.num_images)),
      Int("seed", "S",
          "seed choosing --calib-size images when more are given (with --optimize also the optimisation images and "
          "batches)",
          0, 4294967295LL,
          std::to_string(defaults.seed)),
      Flag("no-fpcs", "no FPCS: each search is the top-1 of its percentile grid (docs/method.md 4.7)"),
      Choice("fpcs-mode",
             {search::FpcsModeName(search::FpcsMode::kOfficial), search::FpcsModeName(search::FpcsMode::kBest)},
             "FPCS variant: best (never returns worse than a candidate it evaluated; "
             "search/README.md) or official (docs/method.md 4.5, as published)",
             search::FpcsModeName(defaults.recipe.fpcs_mode)),
      Flag("no-reparam", "no LayerNorm reparameterization (qkv and fc1 take the LayerNorm output as it is)"),
      Flag("reparam-select",
           "calibrate qkv / fc1 with and without the LayerNorm reparameterization and keep whichever gives "
           "calibration logits closer to FP32 (default: every LayerNorm, as the official code; search/README.md)"),
      Flag("optimize",
           "after calibration, block reconstruction (the official --optimize): AdaRound weight rounding and "
           "learned activation step sizes for the patch embedding, every block and the head (docs/method.md 10)"),
      Int("optimize-iters", "N", "--optimize: training iterations per unit", 1, 10000000,
          std::to_string(search::ReconOptions{}.iters)),
      Int("optimize-size", "N",
          "--optimize: optimisation images, chosen by --seed (a source with fewer images uses all of them "
          "unless this is given)",
          1, 1000000, "1024"),
      Int("optimize-batch", "B", "--optimize: images per iteration", 1, kMaxBatch,
          std::to_string(search::ReconOptions{}.batch)),
      Str("optimize-data", "X.npy|DIR", "--optimize: optimisation images (default: the --calib source)"),
      Int("optimize-qdrop", "PCT",
          "--optimize: QDrop, the percentage of activation-quantizer elements left unquantized in each "
          "training forward, drawn anew every iteration (0: the official method; QDrop's paper uses 50)",
          0, 100, "0"),
      Choice("optimize-inputs", {"fp32", "quantized"},
             "--optimize: each unit's training input, from the FP32 model (the official method) or from the "
             "quantized model as optimised so far (BRECQ's setting; the targets stay the FP32 model's)",
             "fp32"),
      Threads("all cores"),
      Flag("json", "print the summary as one JSON line instead of text (schema: cli/README.md)"),
  });
  quantize.details =
      "example:\n  adalog quantize model.onnx --calib calib_x.npy --bits W4A4 -o model_w4a4.adalog\n"
      "With more calibration images than --calib-size, the seed picks which (the same seed picks\n"
      "the same images); with exactly --calib-size images all are used. The output is written\n"
      "atomically: on any error or Ctrl-C no output file is left.\n"
      "--optimize trains each unit (patch embedding, blocks, head) to reproduce the FP32 model's output\n"
      "of that unit on its FP32 input, --optimize-iters iterations of --optimize-batch images drawn\n"
      "from --optimize-size images of --optimize-data (calibration keeps its own --calib-size images);\n"
      "it is slow on CPU: try a small --optimize-iters first (search/README.md gives measured budgets).\n"
      "  adalog quantize model.onnx --calib pool.npy --bits W4A4 --optimize --optimize-iters 2000 -o m.adalog\n"
      "The preprocessing calibrated with is stored in the output, and eval/run use it by default:\n"
      "the ONNX metadata's, else the options' (with an .npy they record how it was preprocessed),\n"
      "else the imagenet default, stored as unknown. Example for the digits model from PNGs:\n"
      "  adalog quantize digits_vit.onnx --calib pngs/ --preprocess none --mean 0.3,0.3,0.3 \\\n"
      "      --std 0.4,0.4,0.4 -o digits_w4a4.adalog\n" +
      std::string(kPreprocessDetails);
  cmds.push_back(quantize);
  cmds.push_back(ReportCommandSpec());
  cmds.push_back(ExportCommandSpec());

  return cmds;
}

}  // namespace

const std::vector<CommandSpec>& AllCommands() {
  static const std::vector<CommandSpec> cmds = MakeCommands();
  return cmds;
}

const CommandSpec* FindCommand(const std::string& name) {
  for (const CommandSpec& c : AllCommands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

}  // namespace adalog::cli
