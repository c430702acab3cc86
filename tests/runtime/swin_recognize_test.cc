// Swin recognition on the tiny exports (models/tiny/swin/, MANIFEST.json): every V1 export (timm
// and torchvision layouts, opsets 13/17, static/dynamic batch, padded grids) imports with the
// structure its manifest entry declares; corrupting one part of a graph (the window partition, the
// shift mask, the merge gather, the relative position bias) is rejected naming where.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "quant/error.h"
#include "runtime/onnx_importer.h"
#include "runtime/swin_model.h"
#include "tests/util/onnx_proto.h"
#include "tests/util/tiny_swin.h"

namespace adalog {
namespace {

using testing_util::kSwinDir;

// One manifest model: the scalar fields as text, the integer lists as vectors.
struct SwinEntry {
  std::map<std::string, std::string> s;
  std::map<std::string, std::vector<int>> v;
  int I(const std::string& k) const { return std::stoi(s.at(k)); }
};

// Reads the fields this test needs from MANIFEST.json (flat scalars and integer lists of each
// entry of "models"; the nested op_counts object is skipped).
std::vector<SwinEntry> LoadSwinManifest() {
  std::ifstream in(kSwinDir + "MANIFEST.json");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string t = ss.str();
  std::vector<SwinEntry> out;
  size_t pos = t.find("\"models\"");
  while ((pos = t.find("\"name\":", pos + 1)) != std::string::npos) {
    const size_t end = t.find("\"op_counts\"", pos);
    SwinEntry e;
    size_t k = pos;
    while ((k = t.find('"', k)) != std::string::npos && k < end) {
      const size_t ke = t.find('"', k + 1);
      const std::string key = t.substr(k + 1, ke - k - 1);
      size_t p = t.find_first_not_of(" :\n", ke + 1);
      if (t[p] == '[') {
        const size_t q = t.find(']', p);
        std::stringstream items(t.substr(p + 1, q - p - 1));
        std::string item;
        while (std::getline(items, item, ',')) e.v[key].push_back(std::stoi(item));
        k = q + 1;
      } else if (t[p] == '"') {
        const size_t q = t.find('"', p + 1);
        e.s[key] = t.substr(p + 1, q - p - 1);
        k = q + 1;
      } else {
        const size_t q = t.find_first_of(",\n}", p);
        e.s[key] = t.substr(p, q - p);
        k = q;
      }
    }
    out.push_back(e);
    pos = end;
  }
  return out;
}

onnx::ModelProto Load(const std::string& file) {
  onnx::ModelProto mp;
  EXPECT_TRUE(mp.ParseFromString(test::ReadFileBytes(kSwinDir + file))) << file;
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

TEST(SwinRecognize, ManifestListsAllExports) {
  const auto models = LoadSwinManifest();
  ASSERT_EQ(models.size(), 10u);
  int v1 = 0, tv = 0, padded = 0, dynamic = 0, op13 = 0;
  for (const auto& e : models) {
    if (e.I("swin_version") != 1) continue;
    ++v1;
    tv += e.s.at("family") == "tv";
    padded += e.s.at("padded") == "true";
    dynamic += e.s.at("dynamic_batch") == "true";
    op13 += e.I("opset") == 13;
  }
  EXPECT_EQ(v1, 9);
  EXPECT_EQ(tv, 4);
  EXPECT_EQ(padded, 4);
  EXPECT_EQ(dynamic, 5);
  EXPECT_EQ(op13, 4);
}

TEST(SwinRecognize, EveryV1ExportHasItsManifestStructure) {
  int checked = 0;
  for (const auto& e : LoadSwinManifest()) {
    if (e.I("swin_version") != 1) continue;
    SCOPED_TRACE(e.s.at("name"));
    ImportReport rep;
    VitModel m;
    try {
      m = ImportOnnxVit(kSwinDir + e.s.at("onnx"), &rep);
    } catch (const Error& err) {
      ADD_FAILURE() << err.what();
      continue;
    }
    ASSERT_TRUE(m.is_swin());
    const auto& depths = e.v.at("depths");
    const auto& heads = e.v.at("heads");
    const auto& grids = e.v.at("stage_grids");
    const auto& dims = e.v.at("stage_dims");
    const int window = e.I("window");
    EXPECT_EQ(m.embed.patch, e.I("patch"));
    EXPECT_EQ(m.embed.image_h, e.I("image_size"));
    EXPECT_EQ(m.dim, e.I("embed_dim"));
    EXPECT_EQ(m.num_classes(), e.I("classes"));
    EXPECT_EQ(m.pooling, Pooling::kMeanPatches);
    EXPECT_EQ(m.style, e.s.at("family") == "tv" ? "swin-torchvision" : "swin-timm");
    ASSERT_EQ(m.swin.stages.size(), depths.size());
    const double ratio = std::stod(e.s.at("mlp_ratio"));
    size_t bi = 0;
    for (size_t s = 0; s < depths.size(); ++s) {
      const SwinStage& st = m.swin.stages[s];
      EXPECT_EQ(st.depth, depths[s]);
      EXPECT_EQ(st.dim, dims[s]);
      EXPECT_EQ(st.grid_h, grids[s]);
      EXPECT_EQ(st.grid_w, grids[s]);
      EXPECT_EQ(st.has_merge, s + 1 < depths.size());
      if (st.has_merge) {
        EXPECT_EQ(st.merge.norm.dim, 4 * dims[s]);
        EXPECT_EQ(st.merge.reduction.out, dims[s + 1]);
        for (float b : st.merge.reduction.bias) ASSERT_EQ(b, 0.f);  // bias-free
      }
      for (int k = 0; k < depths[s]; ++k, ++bi) {
        const BlockParams& b = m.blocks[bi];
        // timm clamps the window to a grid that fits in one; torchvision keeps it and drops the
        // shift at run time when the padded grid is one window. Shift w/2 on odd blocks otherwise.
        const bool one_window = grids[s] <= window;
        const int w = e.s.at("family") == "tv" ? window : std::min(window, grids[s]);
        EXPECT_EQ(b.window_size, w) << "block " << bi;
        EXPECT_EQ(b.shift_size, k % 2 == 1 && !one_window ? window / 2 : 0) << "block " << bi;
        EXPECT_EQ(b.heads, heads[s]) << "block " << bi;
        EXPECT_EQ(b.fc1.out, static_cast<int>(dims[s] * ratio)) << "block " << bi;
        EXPECT_NEAR(b.attn_scale, 1.0 / std::sqrt(dims[s] / heads[s]), 1e-6);
        const int n = w * w, hp = SwinPadded(grids[s], w);
        EXPECT_EQ(b.rel_bias.size(), static_cast<size_t>(heads[s] * n * n));
        EXPECT_EQ(b.attn_mask.size(), b.shift_size ? static_cast<size_t>(hp / w * hp / w * n * n) : 0u);
        EXPECT_EQ(hp != grids[s], e.s.at("padded") == "true" && grids[s] % w != 0);
      }
    }
    EXPECT_EQ(bi, m.blocks.size());
    EXPECT_EQ(rep.dynamic_batch, e.s.at("dynamic_batch") == "true");
    ++checked;
  }
  EXPECT_EQ(checked, 9);
}

TEST(SwinRecognize, V2IsStillRejectedClearly) {
  const std::string msg = ImportError(Load("tiny_swinv2_timm_op17_static.onnx"));
  EXPECT_NE(msg.find("Swin V2 cosine attention at node"), std::string::npos) << msg;
}

// Finds the node named `name`; fails the test if there is none.
onnx::NodeProto* FindNode(onnx::ModelProto* mp, const std::string& name) {
  for (auto& n : *mp->mutable_graph()->mutable_node()) {
    if (n.name() == name) return &n;
  }
  ADD_FAILURE() << "no node " << name;
  return nullptr;
}

TEST(SwinRecognize, WrongTransposeInTheWindowPartitionIsNamed) {
  // Window partition's Transpose [0,1,3,2,4,5] -> [0,1,2,3,4,5]: rows are no longer windows.
  onnx::ModelProto mp = Load("tiny_swin_timm_op17_dyn.onnx");
  onnx::NodeProto* t = FindNode(&mp, "/layers/layers.0/blocks.0/Transpose");
  ASSERT_TRUE(t);
  bool changed = false;
  for (auto& a : *t->mutable_attribute()) {
    if (a.name() == "perm" && a.ints_size() == 6) {
      a.set_ints(2, 2);
      a.set_ints(3, 3);
      changed = true;
    }
  }
  ASSERT_TRUE(changed);
  const std::string msg = ImportError(mp);
  EXPECT_NE(msg.find("block 0 (stage 0)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a window partition"), std::string::npos) << msg;
  EXPECT_NE(msg.find("/layers/layers.0/blocks.0/"), std::string::npos) << msg;
}

TEST(SwinRecognize, SwappedMergeSlicesAreNamed) {
  // Patch merging concatenates x0, x1, x2, x3; swap x1 and x2 in the Concat.
  onnx::ModelProto mp = Load("tiny_swin_timm_op17_static_pad.onnx");
  onnx::NodeProto* cat = nullptr;
  for (auto& n : *mp.mutable_graph()->mutable_node()) {
    if (n.op_type() == "Concat" && n.name().find("downsample") != std::string::npos && n.input_size() == 4) {
      cat = &n;
    }
  }
  ASSERT_TRUE(cat);
  const std::string a = cat->input(1);
  cat->set_input(1, cat->input(2));
  cat->set_input(2, a);
  const std::string msg = ImportError(mp);
  EXPECT_NE(msg.find("patch merge after stage 0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("2x2 patch-merge gather"), std::string::npos) << msg;
  EXPECT_NE(msg.find("node '/layers/layers.0/downsample/"), std::string::npos) << msg;
}

TEST(SwinRecognize, MaskOnTheWrongAxisFailsTheNumericalCheck) {
  // Route the shifted block's scores around the mask Add: the block is shifted and has no mask.
  onnx::ModelProto mp = Load("tiny_swin_timm_op17_dyn.onnx");
  int rerouted = 0;
  for (auto& n : *mp.mutable_graph()->mutable_node()) {
    if (n.name() != "/layers/layers.0/blocks.1/attn/Reshape_3") continue;  // after the mask Add
    for (const auto& p : mp.graph().node()) {
      if (p.op_type() == "Add" && p.output(0) == n.input(0)) {
        n.set_input(0, p.input(0));
        ++rerouted;
        break;
      }
    }
  }
  ASSERT_EQ(rerouted, 1);
  const std::string msg = ImportError(mp);
  EXPECT_NE(msg.find("block 1 (stage 0)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("shifted windows but no mask"), std::string::npos) << msg;
  EXPECT_NE(msg.find("/layers/layers.0/blocks.1/attn/Softmax"), std::string::npos) << msg;
}

TEST(SwinRecognize, ScaledBiasFailsTheNumericalCheck) {
  // Double the relative position bias table of block 0: same shapes, different attention. The
  // recognizer reads the bias from the graph, so the structure still matches; the probe does not
  // (the bias is added twice here: the Add reads the bias as both operands' sum).
  onnx::ModelProto mp = Load("tiny_swin_tv_op17_static_pad.onnx");
  onnx::NodeProto* add = nullptr;
  for (auto& n : *mp.mutable_graph()->mutable_node()) {
    if (n.op_type() == "Softmax" && n.name().find("features.1.0/") != std::string::npos) {
      for (auto& p : *mp.mutable_graph()->mutable_node()) {
        if (p.op_type() == "Add" && p.output(0) == n.input(0)) add = &p;
      }
    }
  }
  ASSERT_TRUE(add);
  // Insert Mul(scores, 1.5) between the bias Add and the Softmax: scores no longer match.
  onnx::NodeProto* mul = mp.mutable_graph()->add_node();
  mul->set_op_type("Mul");
  mul->set_name("inserted_mul");
  mul->add_input(add->output(0));
  mul->add_input("inserted_const");
  mul->add_output("inserted_out");
  onnx::TensorProto* c = mp.mutable_graph()->add_initializer();
  c->set_name("inserted_const");
  c->set_data_type(onnx::TensorProto::FLOAT);
  c->add_float_data(1.5f);
  for (auto& n : *mp.mutable_graph()->mutable_node()) {
    if (n.op_type() == "Softmax" && n.input(0) == add->output(0)) n.set_input(0, "inserted_out");
  }
  // Keep the node list topologically sorted: move the Mul before its reader.
  auto* nodes = mp.mutable_graph()->mutable_node();
  for (int i = nodes->size() - 1; i > 0; --i) {
    if (nodes->Get(i - 1).output(0) == add->output(0)) break;
    nodes->SwapElements(i, i - 1);
  }
  const std::string msg = ImportError(mp);
  EXPECT_NE(msg.find("does not compute window attention"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Softmax"), std::string::npos) << msg;
}

}  // namespace
}  // namespace adalog
