// Importer tests on the tiny Swin exports (models/tiny/swin/, models/make_swin_tiny.py): Swin V2's
// cosine attention is rejected with a message naming it and its nodes; Swin V1 exports are not
// mistaken for it; the detector looks at meaning (L2 normalization of both q@k^T operands), so an
// edit that removes one normalization turns the rejection off.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "quant/error.h"
#include "runtime/onnx_importer.h"
#include "tests/util/expect_error.h"
#include "tests/util/onnx_proto.h"
#include "tests/util/tiny_swin.h"

namespace adalog {
namespace {

using testing_util::kSwinDir;

onnx::ModelProto Load(const std::string& name) {
  std::ifstream in(kSwinDir + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  onnx::ModelProto mp;
  EXPECT_TRUE(mp.ParseFromString(ss.str())) << name;
  EXPECT_GT(mp.graph().node_size(), 100) << name;
  return mp;
}

std::string ImportError(const onnx::ModelProto& mp) {
  std::string bytes;
  mp.SerializeToString(&bytes);
  try {
    ImportOnnxVitFromBytes(bytes, nullptr, "swin.onnx");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(SwinImport, RejectsSwinV2CosineAttentionNamingTheNodes) {
  const std::string msg = ImportError(Load("tiny_swinv2_timm_op17_static.onnx"));
  EXPECT_NE(msg.find("Swin V2 cosine attention at node '/layers/layers.0/blocks.0/attn/MatMul_1'"),
            std::string::npos) << msg;
  EXPECT_NE(msg.find("'/layers/layers.0/blocks.0/attn/Div'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'/layers/layers.0/blocks.0/attn/Div_1'"), std::string::npos) << msg;
}

TEST(SwinImport, SwinV1ExportsAreNotTakenForV2) {
  // Every V1 export folds completely (torchvision's Mod pad amounts and ScatterND shift masks, the
  // Pads, the GlobalAveragePool tail) and imports; none is mistaken for V2 (the structure each
  // import has is checked in swin_recognize_test.cc).
  for (const char* name : {"tiny_swin_timm_op13_static.onnx", "tiny_swin_timm_op17_dyn.onnx",
                           "tiny_swin_timm_op13_dyn_pad.onnx", "tiny_swin_timm_op17_static_pad.onnx",
                           "tiny_swin_timm3_op17_dyn.onnx", "tiny_swin_tv_op13_static.onnx",
                           "tiny_swin_tv_op17_dyn.onnx", "tiny_swin_tv_op13_dyn_pad.onnx",
                           "tiny_swin_tv_op17_static_pad.onnx"}) {
    EXPECT_EQ(ImportError(Load(name)), "") << name;
  }
}

TEST(SwinImport, OneUnnormalizedOperandIsNotCosineAttention) {
  // Route k around its normalizing Div in every block (the Transpose before q@k^T reads the Div's
  // numerator instead): q@k^T is then not a cosine similarity and the V2 rejection must not fire.
  onnx::ModelProto mp = Load("tiny_swinv2_timm_op17_static.onnx");
  int rerouted = 0;
  for (auto& t : *mp.mutable_graph()->mutable_node()) {
    if (t.op_type() != "Transpose" || t.name().find("/attn/Transpose_1") == std::string::npos) continue;
    for (const auto& d : mp.graph().node()) {
      if (d.op_type() == "Div" && d.output(0) == t.input(0)) {
        t.set_input(0, d.input(0));
        ++rerouted;
        break;
      }
    }
  }
  ASSERT_EQ(rerouted, 3);  // the three blocks of the (2, 1)-deep model
  // The V2 check lets it through; the Swin recognizer then stops at V2's other differences.
  const std::string msg = ImportError(mp);
  EXPECT_FALSE(msg.empty());
  EXPECT_EQ(msg.find("cosine"), std::string::npos) << msg;
}

}  // namespace
}  // namespace adalog
