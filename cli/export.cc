// `adalog export`: writes a quantized model file in another format. The one format is `qdq`, a
// standard ONNX QDQ graph of the model (runtime/onnx_qdq_export.h) that ONNX Runtime runs.
#include <cstdio>
#include <filesystem>
#include <string>

#include "cli/commands.h"
#include "cli/json_out.h"
#include "cli/output_check.h"
#include "runtime/adalog_runtime.h"
#include "runtime/atomic_write.h"
#include "runtime/onnx_qdq_export.h"

namespace adalog::cli {

CommandSpec ExportCommandSpec() {
  CommandSpec c;
  c.name = "export";
  c.summary = "Write a quantized model as a standard ONNX QDQ graph (ONNX Runtime, TensorRT).";
  c.positionals = {{"MODEL", "an adalog quantized model file (from adalog quantize)"}};
  OptionSpec out = Str("output", "OUT.onnx", "the ONNX file to write", /*required=*/true);
  out.short_name = 'o';
  OptionSpec format = Choice("format", {"qdq"}, "output format", "");
  format.required = true;
  c.options = {format, out, Flag("json", "print one JSON line about what was written")};
  c.details =
      "example:\n"
      "  adalog quantize model.onnx --calib x.npy --bits W8A8 --softmax uniform --gelu uniform -o m.adalog\n"
      "  adalog export m.adalog --format qdq -o m_qdq.onnx\n"
      "The graph (opset 17) is built from the model file alone; the original ONNX is not needed.\n"
      "Weights become int8 initializers with per-output-channel scales and zero points feeding\n"
      "DequantizeLinear; every activation the plan quantizes gets a QuantizeLinear ->\n"
      "DequantizeLinear pair (uint8) with the plan's scale and zero point (q, k, v per head).\n"
      "Only 8-bit uniform activation quantizers export: plans with log quantizers (the default\n"
      "AdaLog post-softmax and post-GELU ones) or fewer activation bits are refused with the taps\n"
      "named; quantize with --softmax uniform --gelu uniform and 8-bit activations instead.\n"
      "The output is written atomically and never over MODEL. docs/deploy.md has the details.\n";
  return c;
}

int RunExport(const ParsedArgs& args) {
  const std::string cmd = "'adalog export'";
  const std::string model = args.positional(0);
  const std::string output = args.String("output");
  const std::string format = args.String("format");
  const bool json = args.Flag("json");
  CheckOutputPath({"-o", output}, {{"MODEL", model}}, cmd);
  auto loaded = LoadModel(model);
  if (loaded->format != ModelFormat::kQuantized) {
    throw UsageError(cmd + ": " + model + " is an FP32 ONNX model; export takes an adalog quantized model file " +
                     "(adalog quantize ... --bits W8A8 --softmax uniform --gelu uniform -o MODEL.adalog)");
  }
  QuantizedModel qm;
  qm.model = loaded->model;
  qm.plan = loaded->plan;
  QdqExportSummary s;
  const std::string bytes = ExportQdqOnnx(qm, model, &s);
  WriteFileAtomically(output, bytes, "output");
  if (json) {
    PrintJsonLine(Json{{"model", model},
                       {"output", output},
                       {"format", format},
                       {"bytes", static_cast<int64_t>(bytes.size())},
                       {"opset", s.opset},
                       {"activation_qdq", s.quantize_linear},
                       {"weight_dequantize", s.weight_dequantize},
                       {"nodes", s.nodes}});
  } else {
    std::printf("exported   %s -> %s (ONNX QDQ, opset %d, %.1f KiB)\n", model.c_str(), output.c_str(), s.opset,
                static_cast<double>(bytes.size()) / 1024.0);
    std::printf("graph      %d nodes: %d int8 weights (per-channel DequantizeLinear), %d activation "
                "QuantizeLinear/DequantizeLinear pairs\n",
                s.nodes, s.weight_dequantize, s.quantize_linear);
  }
  return 0;
}

}  // namespace adalog::cli
