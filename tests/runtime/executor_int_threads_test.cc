// The integer executor beyond its agreement with the judge: the same bytes for every thread count
// and row chunk, a stable workspace, the plans it declines and how it says so, its kernel
// description, Session's choice of executor, and (the gates) the shipped trained models
// against the simulated executor on their whole test sets.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "quant/error.h"
#include "runtime/adalog_runtime.h"
#include "runtime/data/npy.h"
#include "runtime/executor_int.h"
#include "runtime/executor_sim.h"
#include "runtime/kernels/int/int_kernels.h"
#include "runtime/model_file.h"
#include "tests/util/exec_random_vit.h"
#include "tests/util/int_hand_plan.h"

namespace adalog {
namespace {

using namespace int_test;
using testing_util::MakeRandomVit;
using testing_util::RandomImages;
using testing_util::RandomVitSpec;

// ---------------------------------------------------------------------------------------------
// (3) Determinism and workspace.
TEST(ExecutorInt, SameBytesWithOneAndTwoThreadsAndStableWorkspace) {
  for (PlanKind kind : {PlanKind::kAdaLog, PlanKind::kMixed}) {
    RandomVitSpec s;
    s.dim = 64;
    s.heads = 4;
    s.depth = 3;
    s.dist = kind == PlanKind::kMixed;
    const VitModel m = MakeRandomVit(s);
    const int batch = 5;
    const std::vector<float> images = RandomImages(m, batch, 21);
    const QuantizedModel qm = MakePlan(m, images, batch, 4, 4, kind);
    ExecutorInt one(qm, Opts(batch, 1));
    ExecutorInt two(qm, Opts(batch, 2));
    std::vector<float> a(size_t(batch) * m.num_classes(), 1.f), b(a.size(), 2.f);
    one.Run(images.data(), batch, a.data());
    const void* ws = two.workspace_data();
    two.Run(images.data(), batch, b.data());
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4));
    // Smaller batches: same rows as the full batch (rows are independent).
    std::vector<float> c(size_t(2) * m.num_classes());
    two.Run(images.data(), 2, c.data());
    EXPECT_EQ(0, std::memcmp(a.data(), c.data(), c.size() * 4));
    EXPECT_EQ(ws, two.workspace_data());
    EXPECT_GT(two.workspace_bytes(), 0u);
  }
}

// Row chunks and attention units are claimed dynamically by the threads: any thread count
// (including more threads than chunks), any chunk size (1 row, sizes that are not a multiple of
// the 6-row GEMM tile, one chunk for everything) and any batch give the bytes of one thread with
// one chunk. 101-102 tokens: with few (image, head) pairs per thread the attention splits each
// pair's query rows into up to 4 blocks (batch 1 from 2 threads, batch 3 at 7 threads).
TEST(ExecutorInt, SameBytesForEveryThreadCountAndRowChunk) {
  for (PlanKind kind : {PlanKind::kAdaLog, PlanKind::kUniform, PlanKind::kMixed}) {
    RandomVitSpec s;
    s.dim = 48;
    s.heads = 3;
    s.depth = 2;
    s.image = 40;
    s.dist = kind == PlanKind::kMixed;
    const VitModel m = MakeRandomVit(s);
    const int batch = 3;
    const std::vector<float> images = RandomImages(m, batch, 33);
    const QuantizedModel qm = MakePlan(m, images, batch, 4, 4, kind);
    IntPathOptions whole = DefaultIntPathOptions();
    whole.row_chunk = 1 << 20;
    ExecutorInt ref_exec(qm, Opts(batch, 1), whole);
    std::vector<float> ref(size_t(batch) * m.num_classes());
    ref_exec.Run(images.data(), batch, ref.data());
    for (int threads : {1, 2, 3, 7}) {
      for (int chunk : {1, 5, 6, 7, 48, 1 << 20}) {
        IntPathOptions io = DefaultIntPathOptions();
        io.row_chunk = chunk;
        ExecutorInt ie(qm, Opts(batch, threads), io);
        for (int b : {batch, 1}) {
          std::vector<float> out(size_t(b) * m.num_classes(), -1.f);
          ie.Run(images.data(), b, out.data());
          EXPECT_EQ(0, std::memcmp(ref.data(), out.data(), out.size() * 4))
              << "threads " << threads << " row_chunk " << chunk << " batch " << b;
        }
      }
    }
  }
}

TEST(ExecutorInt, UnsupportedPlansThrowWithTheSimulateHint) {
  RandomVitSpec s;
  const VitModel m = MakeRandomVit(s);
  const std::vector<float> images = RandomImages(m, 2, 1);
  const QuantizedModel base = MakePlan(m, images, 2, 4, 4, PlanKind::kAdaLog);
  EXPECT_EQ(ExecutorInt::WhyUnsupported(base.plan, base.model), "");
  auto expect = [&](QuantizedModel qm, const std::string& what) {
    // Said up front, with the text the constructor throws.
    const std::string why = ExecutorInt::WhyUnsupported(qm.plan, qm.model);
    EXPECT_EQ(why.rfind("integer path does not support " + what, 0), 0u) << why;
    try {
      ExecutorInt ie(qm, Opts(1, 1));
      ADD_FAILURE() << "no error for " << what;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("integer path does not support " + what), std::string::npos) << msg;
      EXPECT_NE(msg.find("use --simulate"), std::string::npos) << msg;
      EXPECT_EQ(msg, why + "; use --simulate");
    }
  };
  QuantizedModel q = base;
  q.plan.blocks[1].attn.probs.log.kind = LogKind::kLogSqrt2;
  expect(q, "logsqrt2 for block 1 softmax");
  q = base;
  q.plan.blocks[0].fc2.input.kind = ActQuant::Kind::kTwin;
  q.plan.blocks[0].fc2.input.twin.bits = 4;
  expect(q, "twin uniform for block 0 fc2 input");
  q = base;
  q.plan.blocks[0].proj.input.kind = ActQuant::Kind::kNone;
  expect(q, "an unquantized (FP32) input for block 0 proj input");
  q = base;
  q.plan.head.weight = UniformPerChannel{};
  expect(q, "an unquantized (FP32) weight for head");
}

TEST(ExecutorInt, DescribeKernelsNamesEveryOp) {
  RandomVitSpec s;
  const VitModel m = MakeRandomVit(s);
  const std::vector<float> images = RandomImages(m, 2, 1);
  const QuantizedModel qm = MakePlan(m, images, 2, 4, 4, PlanKind::kAdaLog);
  const std::string d = ExecutorInt(qm, Opts(1, 1)).DescribeKernels();
  for (const char* op : {"patch_embed:", "qkv:", "q@k^T:", "softmax:", "attn@v:", "proj:", "fc1:",
                         "gelu:", "fc2:", "head:", "logcode_matmul_s16"}) {
    EXPECT_NE(d.find(op), std::string::npos) << op << " missing in\n" << d;
  }
}

// Session: a quantized file runs on the integer executor by default, the simulated one with
// simulate = true, and falls back to the simulated one for plans the integer path cannot run.
TEST(ExecutorInt, SessionSelectsTheIntegerExecutorByDefault) {
  RandomVitSpec s;
  const VitModel m = MakeRandomVit(s);
  const int batch = 3;
  const std::vector<float> x = RandomImages(m, batch, 13);
  QuantizedModel qm = MakePlan(m, x, batch, 4, 4, PlanKind::kAdaLog);
  const std::string dir = ::testing::TempDir() + "adalog_int_test";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/model.adalog";
  SaveQuantizedModel(qm, path);
  auto loaded = LoadModel(path);
  const std::vector<int64_t> shape = {batch, m.embed.in_channels, m.embed.image_h, m.embed.image_w};
  // Below AVX2 (ADALOG_ISA=ref: scalar GEMMs only) the default is the simulated executor, and
  // ADALOG_EXECUTOR=int forces the integer one.
  const bool vnni = intk::SelectQgemmImpl(ActiveIsaLevel()) != intk::QgemmImpl::kPackedScalar;
  if (!vnni) {
    EXPECT_STREQ(Session(loaded, SessionOptions{batch, 1, false}).executor_kind(), "sim");
    setenv("ADALOG_EXECUTOR", "int", 1);
  }
  Session session(loaded, SessionOptions{batch, 1, false});
  EXPECT_STREQ(session.executor_kind(), "int");
  EXPECT_NE(session.DescribeKernels().find("integer executor"), std::string::npos);
  const std::vector<float> got = session.Run(x.data(), shape);
  std::vector<float> want(got.size(), -5.f);
  ExecutorInt(QuantizedModel{loaded->model, loaded->plan}, Opts(batch, 1)).Run(x.data(), batch, want.data());
  EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * 4));
  Session sim(loaded, SessionOptions{batch, 1, true});
  EXPECT_STREQ(sim.executor_kind(), "sim");
  qm.plan.blocks[0].attn.probs.log.kind = LogKind::kLogSqrt2;
  SaveQuantizedModel(qm, path);
  Session fallback(LoadModel(path), SessionOptions{batch, 1, false});
  EXPECT_STREQ(fallback.executor_kind(), "sim");
  if (!vnni) unsetenv("ADALOG_EXECUTOR");
  std::filesystem::remove_all(dir);
}

// ---------------------------------------------------------------------------------------------
// (4) Shipped trained models: integer vs simulated executor on the whole test sets, with the
// quantized files made by scripts/make_int_test_models.sh (adalog quantize on calib.npy, W4A4,
// measured 249 s (digits) and 284 s (shapes) on one thread of the loaded 2-core machine, hence
// committed in models/int_test/ rather than made by the test; $ADALOG_INT_TEST_MODELS overrides).
// Measured (default s16 design): digits acc 97.20 both, top-1 same 100%, mean cos 0.9999268;
// shapes acc 85.75 both, top-1 same 100%, mean cos 0.9999753.
// The gates on both shipped test sets, with the committed W4A4 files of
// models/int_test/ (scripts/make_int_test_models.sh; any valid plan exercises the same paths).
TEST(ExecutorInt, ShippedModelsAgreeWithSimulatedExecutor) {
  const std::string src = ADALOG_SOURCE_DIR;
  int ran = 0;
  for (const char* name : {"digits", "shapes"}) {
    const char* dir = std::getenv("ADALOG_INT_TEST_MODELS");
    const std::string qpath = std::string(dir ? dir : (src + "/models/int_test")) + "/" + name + "_w4a4.adq";
    if (!std::filesystem::exists(qpath)) {
      std::printf("[ info ] %s: %s missing (run scripts/make_int_test_models.sh)\n", name, qpath.c_str());
      continue;
    }
    SCOPED_TRACE(name);
    const QuantizedModel qm = LoadQuantizedModel(qpath);
    const NpyFloatArray x = ReadNpyFloat32(src + "/models/" + name + "/test_x.npy");
    const std::vector<int64_t> labels = ReadNpyLabels(src + "/models/" + name + "/test_y.npy");
    const int n = static_cast<int>(x.shape[0]);
    const int classes = qm.model.num_classes();
    const int64_t per = static_cast<int64_t>(x.data.size()) / n;
    const int batch = 64;
    ExecutorInt ie(qm, Opts(batch, 2));
    ExecutorSim se(qm, Opts(batch, 2));
    std::vector<float> li(size_t(n) * classes), ls(li.size());
    const std::vector<float>& xf = x.data;
    for (int i = 0; i < n; i += batch) {
      const int b = std::min(batch, n - i);
      ie.Run(xf.data() + i * per, b, li.data() + size_t(i) * classes);
      se.Run(xf.data() + i * per, b, ls.data() + size_t(i) * classes);
    }
    const double acc_i = Top1Accuracy(li.data(), n, classes, labels.data());
    const double acc_s = Top1Accuracy(ls.data(), n, classes, labels.data());
    const Agreement g = Compare(li, ls, n, classes);
    std::printf("[ info ] %s (%d images): acc int %.4f sim %.4f  top1 same %.4f  cos mean %.7f min %.6f\n",
                name, n, acc_i, acc_s, g.top1_same, g.mean_cos, g.min_cos);
    EXPECT_GE(g.top1_same, 0.995);
    EXPECT_GE(g.mean_cos, 0.9999);
    EXPECT_LE(std::fabs(acc_i - acc_s), 0.002);
    ++ran;
  }
  EXPECT_EQ(ran, 2) << "the committed models/int_test/*.adq files are missing";
}

}  // namespace
}  // namespace adalog
