// The QDQ export's refusals and self-checks (runtime/onnx_qdq_export.h), on the shipped digits
// files: the W4A4 AdaLog plan is refused with its log taps named, the W8A8 uniform plan exports
// to the same bytes twice, and a weight nudged off its quantization grid (a model and plan that do
// not belong together) is refused naming the weight. The graph itself is checked end to end by
// tests/cli/export.sh (onnx.checker, NumPy evaluation) and tests/peers/ort_qdq.sh (ONNX Runtime).
#include "runtime/onnx_qdq_export.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "quant/error.h"
#include "runtime/model_file.h"

namespace adalog {
namespace {

const std::string kDir = std::string(ADALOG_SOURCE_DIR) + "/models/int_test/";

std::string ErrorOf(const QuantizedModel& qm) {
  try {
    ExportQdqOnnx(qm, "test");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(OnnxQdqExport, RefusesLogQuantizersNamingEveryBlock) {
  const QuantizedModel qm = LoadQuantizedModel(kDir + "digits_w4a4.adq");
  const std::vector<QdqUnsupportedTap> taps = QdqUnsupportedTaps(qm);
  int softmax_log = 0, gelu_log = 0;
  for (const QdqUnsupportedTap& t : taps) {
    softmax_log += t.tap == "attention probabilities (post-softmax)" && t.reason == "adalog log quantizer";
    gelu_log += t.tap == "fc2 input (post-GELU)" && t.reason == "adalog log quantizer";
  }
  EXPECT_EQ(softmax_log, static_cast<int>(qm.model.blocks.size()));
  EXPECT_EQ(gelu_log, static_cast<int>(qm.model.blocks.size()));
  const std::string msg = ErrorOf(qm);
  EXPECT_NE(msg.find("attention probabilities (post-softmax): adalog log quantizer (blocks 0,1,2,3,4,5)"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("--softmax uniform --gelu uniform"), std::string::npos) << msg;
}

TEST(OnnxQdqExport, UniformW8A8ExportsDeterministically) {
  const QuantizedModel qm = LoadQuantizedModel(kDir + "digits_w8a8_uniform.adq");
  EXPECT_TRUE(QdqUnsupportedTaps(qm).empty());
  QdqExportSummary s;
  const std::string a = ExportQdqOnnx(qm, "test", &s);
  const std::string b = ExportQdqOnnx(qm, "test");
  EXPECT_EQ(a, b);
  const int blocks = static_cast<int>(qm.model.blocks.size());
  const int heads = qm.model.blocks[0].heads;
  // qkv, probs, proj, fc1, fc2 and q, k, v one per head; head.
  EXPECT_EQ(s.quantize_linear, (5 + 3 * heads) * blocks + 1);
  EXPECT_EQ(s.weight_dequantize, 4 * blocks + 2);  // 4 Linears per block, head, patch embedding
  EXPECT_GT(a.size(), static_cast<size_t>(CountParameters(qm.model)));  // every weight written
}

TEST(OnnxQdqExport, RefusesAWeightOffItsGrid) {
  QuantizedModel qm = LoadQuantizedModel(kDir + "digits_w8a8_uniform.adq");
  float& w = qm.model.blocks[2].fc1.weight[7 * qm.model.blocks[2].fc1.in + 5];
  w = std::nextafter(w, 1e9f);
  const std::string msg = ErrorOf(qm);
  EXPECT_NE(msg.find("blocks.2.fc1: weight [7][5]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("is not on its quantization grid"), std::string::npos) << msg;
}

}  // namespace
}  // namespace adalog
