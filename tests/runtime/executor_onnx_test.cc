// End to end: every committed ONNX model (models/tiny, and the trained models/digits and
// models/shapes) through LoadModel + Session, against the PyTorch logits stored beside it (max
// error <= 1e-4 of the logits' scale, identical top-1) and against the plain reference forward.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/adalog_runtime.h"
#include "runtime/data/npy.h"
#include "runtime/kernels/reference/vit_forward_ref.h"

namespace adalog {
namespace {

namespace fs = std::filesystem;

float MaxAbs(const std::vector<float>& v) {
  float m = 0.f;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

int ArgMax(const float* v, int n) { return static_cast<int>(std::max_element(v, v + n) - v); }

// Checks every NAME.onnx in `dir` that has NAME.input.npy / NAME.output.npy; counts them in
// *checked (an out-parameter, so gtest's ASSERT_* can be used here).
void CheckModelsIn(const fs::path& dir, int* checked) {
  *checked = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".onnx") continue;
    const std::string stem = (dir / e.path().stem()).string();
    if (!fs::exists(stem + ".input.npy") || !fs::exists(stem + ".output.npy")) continue;
    SCOPED_TRACE(e.path().filename().string());
    const NpyFloatArray input = ReadNpyFloat32(stem + ".input.npy");
    const NpyFloatArray want = ReadNpyFloat32(stem + ".output.npy");
    ASSERT_EQ(input.shape.size(), 4u);
    const int batch = static_cast<int>(input.shape[0]);
    auto model = LoadModel(e.path().string());
    SessionOptions o;
    o.max_batch = batch;
    o.num_threads = 2;
    Session s(model, o);
    const std::vector<float> got = s.Run(input.data.data(), input.shape);
    ASSERT_EQ(got.size(), want.data.size());
    const std::vector<float> ref = ref::VitForwardFp32(model->model, input.data.data(), batch);
    const float scale = MaxAbs(want.data);
    ASSERT_GT(scale, 1e-3f) << "degenerate expected logits";
    float diff_torch = 0.f, diff_ref = 0.f;
    for (size_t i = 0; i < got.size(); ++i) {
      diff_torch = std::max(diff_torch, std::fabs(got[i] - want.data[i]));
      diff_ref = std::max(diff_ref, std::fabs(got[i] - ref[i]));
    }
    EXPECT_LE(diff_ref, 1e-4f * scale) << "vs plain reference";
    EXPECT_LE(diff_torch, 1e-4f * scale) << "vs PyTorch logits";
    const int classes = s.num_classes();
    for (int b = 0; b < batch; ++b) {
      EXPECT_EQ(ArgMax(got.data() + b * classes, classes),
                ArgMax(want.data.data() + b * classes, classes))
          << "top-1 differs from PyTorch for image " << b;
    }
    ++*checked;
  }
}

TEST(ExecutorOnnxTest, TinyModelsMatchPyTorchAndReference) {
  const fs::path dir = fs::path(ADALOG_SOURCE_DIR) / "models" / "tiny";
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  int checked = 0;
  CheckModelsIn(dir, &checked);
  EXPECT_GE(checked, 10) << "tiny models with input/output .npy in " << dir;
}

TEST(ExecutorOnnxTest, TrainedModelsMatchPyTorchAndReference) {
  for (const char* name : {"digits", "shapes"}) {
    const fs::path dir = fs::path(ADALOG_SOURCE_DIR) / "models" / name;
    SCOPED_TRACE(name);
    ASSERT_TRUE(fs::is_directory(dir)) << dir;
    int checked = 0;
    CheckModelsIn(dir, &checked);
    EXPECT_EQ(checked, 1) << "trained model with input/output .npy in " << dir;
  }
}

}  // namespace
}  // namespace adalog
