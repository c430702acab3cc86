// FP32 executor vs the plain reference forward on seeded random ViTs; determinism across thread
// counts; no allocation in Run; capture taps.
#include "runtime/executor_fp32.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "quant/error.h"
#include "runtime/kernels/reference/vit_forward_ref.h"
#include "runtime/kernels/float_kernels.h"
#include "tests/util/exec_random_vit.h"
#include "tests/util/isa_test_util.h"

// Counting global operator new/delete. Run must not allocate memory of its own once a batch size
// has been planned. oneDNN 2.6 builds a small argument map on the heap inside every
// primitive::execute (exec_ctx_t); that traffic is transient and bounded, and the test checks that.
// (GCC flags malloc/free inside a replacement operator new/delete pair as mismatched; they match.)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {
std::atomic<long> g_allocations{0};
std::atomic<long> g_frees{0};
std::atomic<bool> g_counting{false};
}  // namespace

void* operator new(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  if (p != nullptr && g_counting.load(std::memory_order_relaxed)) g_frees.fetch_add(1, std::memory_order_relaxed);
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }

namespace adalog {
namespace {

using testing_util::MakeRandomVit;
using testing_util::RandomImages;
using testing_util::RandomVitSpec;

std::string SpecString(const RandomVitSpec& s, int batch) {
  std::ostringstream os;
  os << "dim=" << s.dim << " heads=" << s.heads << " depth=" << s.depth << " image=" << s.image
     << " patch=" << s.patch << " classes=" << s.classes << " dist=" << s.dist
     << " mean_pool=" << s.mean_pool << " no_cls=" << s.no_cls
     << " pos_mode=" << static_cast<int>(s.pos_mode) << " pos=" << s.pos_embed
     << " gelu=" << (s.gelu == GeluKind::kErf ? "erf" : "tanh") << " seed=" << s.seed
     << " batch=" << batch;
  return os.str();
}

// Executor logits vs reference logits: max |diff| <= 1e-4 * max |ref logit|.
void ExpectMatchesReference(const RandomVitSpec& spec, int batch, int max_batch, int threads) {
  const VitModel m = MakeRandomVit(spec);
  const std::vector<float> images = RandomImages(m, batch, spec.seed + 100);
  const std::vector<float> want = ref::VitForwardFp32(m, images.data(), batch);
  ExecutorOptions opt;
  opt.max_batch = max_batch;
  opt.num_threads = threads;
  ExecutorFp32 exec(m, opt);
  std::vector<float> got(want.size(), std::nanf(""));  // sentinel: every logit must be written
  exec.Run(images.data(), batch, got.data());
  float scale = 0.f, max_diff = 0.f;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::fabs(want[i]));
    max_diff = std::max(max_diff, std::fabs(got[i] - want[i]));
    ASSERT_TRUE(std::isfinite(got[i])) << "logit " << i << " not written; " << SpecString(spec, batch);
  }
  ASSERT_GT(scale, 0.1f) << "degenerate logits; " << SpecString(spec, batch);
  EXPECT_LE(max_diff, 1e-4f * scale) << "repro: " << SpecString(spec, batch)
                                     << " threads=" << threads << " scale=" << scale;
}

TEST(ExecutorFp32Test, MatchesReferenceClsPooling) {
  RandomVitSpec s;
  for (int batch : {1, 2, 5}) {
    s.seed = 10 + batch;
    ExpectMatchesReference(s, batch, 5, 1);
  }
}

TEST(ExecutorFp32Test, MatchesReferenceAcrossShapes) {
  struct Case {
    int dim, heads, depth, image, patch, classes;
  };
  const Case cases[] = {{16, 1, 1, 8, 4, 3},   {24, 3, 2, 12, 4, 7},  {48, 4, 2, 20, 4, 17},
                        {64, 4, 1, 16, 2, 5},  {40, 5, 3, 18, 6, 11}, {96, 6, 1, 32, 8, 33}};
  uint32_t seed = 100;
  for (const Case& c : cases) {
    for (int batch : {1, 3, 9}) {
      RandomVitSpec s;
      s.Shape(c.dim, c.heads, c.depth, c.image, c.patch, c.classes);
      s.seed = ++seed;
      ExpectMatchesReference(s, batch, 9, 2);
    }
  }
}

TEST(ExecutorFp32Test, MatchesReferenceVariants) {
  uint32_t seed = 300;
  for (int variant = 0; variant < 6; ++variant) {
    RandomVitSpec s;
    s.dim = 32;
    s.heads = 4;
    s.depth = 2;
    s.image = 16;
    s.patch = 4;
    s.seed = ++seed;
    switch (variant) {
      case 0: s.dist = true; break;
      case 1: s.dist = true; s.gelu = GeluKind::kTanh; break;
      case 2: s.gelu = GeluKind::kTanh; break;
      case 3: s.mean_pool = true; s.pos_mode = PosEmbedMode::kPatchesOnly; break;
      case 4: s.no_cls = true; break;
      case 5: s.pos_embed = false; s.channels = 1; break;
    }
    for (int batch : {1, 4}) ExpectMatchesReference(s, batch, 4, 2);
  }
}

// One instance per float-island level (tests/util/isa_test_util.h: skipped, named, where the CPU
// lacks it).
class ExecutorFp32Isa : public test::IsaParamTest {};
INSTANTIATE_TEST_SUITE_P(Isa, ExecutorFp32Isa,
                         ::testing::Values(IsaLevel::kRef, IsaLevel::kAvx2, IsaLevel::kAvx512),
                         test::IsaParamName);

TEST_P(ExecutorFp32Isa, EveryIsaCapMatchesReference) {
  const IsaLevel cap = GetParam();
  ASSERT_EQ(SelectFloatKernels(cap).isa, cap);
  RandomVitSpec s;
  s.dim = 48;
  s.heads = 3;
  s.seed = 77;
  const VitModel m = MakeRandomVit(s);
  const std::vector<float> images = RandomImages(m, 3, 5);
  const std::vector<float> want = ref::VitForwardFp32(m, images.data(), 3);
  ExecutorOptions opt;
  opt.max_batch = 3;
  opt.isa_cap = cap;
  ExecutorFp32 exec(m, opt);
  std::vector<float> got(want.size());
  exec.Run(images.data(), 3, got.data());
  float scale = 0.f, diff = 0.f;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::fabs(want[i]));
    diff = std::max(diff, std::fabs(got[i] - want[i]));
  }
  EXPECT_LE(diff, 1e-4f * scale) << "isa cap " << IsaLevelName(cap);
}

// `batch` seeded images (image_seed) through executors of 1 and 2 threads (max_batch as given):
// the same logits, byte for byte.
// Logits at 1, 2 and 5 threads, byte-compared with the 1-thread run.
void ExpectSameBytesAtAnyThreadCount(const VitModel& m, int batch, uint32_t image_seed, int max_batch) {
  const std::vector<float> images = RandomImages(m, batch, image_seed);
  std::vector<std::vector<float>> outs;
  for (int threads : {1, 2, 5}) {
    ExecutorOptions opt;
    opt.max_batch = max_batch;
    opt.num_threads = threads;
    ExecutorFp32 exec(m, opt);
    outs.emplace_back(static_cast<size_t>(batch) * m.num_classes());
    exec.Run(images.data(), batch, outs.back().data());
  }
  for (size_t i = 1; i < outs.size(); ++i) {
    EXPECT_EQ(0, std::memcmp(outs[0].data(), outs[i].data(), outs[0].size() * sizeof(float)))
        << "batch " << batch << ", run " << i;
  }
}

TEST(ExecutorFp32Test, SameBytesWithOneAndTwoThreads) {
  RandomVitSpec s;
  s.dim = 64;
  s.heads = 4;
  s.depth = 2;
  s.image = 32;
  s.patch = 4;  // 65 tokens
  s.dist = true;
  s.seed = 9;
  const VitModel m = MakeRandomVit(s);
  for (int batch : {1, 3, 8}) ExpectSameBytesAtAnyThreadCount(m, batch, 3, /*max_batch=*/8);
}

// At DeiT-S width and token count (one block), where oneDNN could choose K-splitting schedules.
// Under ADALOG_ISA=avx2 with 5 threads, oneDNN's sgemm split K of the large GEMMs too (the patch
// embedding at batch 2) until they ran as fixed row chunks (kGemmChunkRows in executor_fp32.cc).
TEST(ExecutorFp32Test, SameBytesWithOneAndTwoThreadsDeitSShapes) {
  RandomVitSpec s;
  s.Shape(384, 6, 1, 224, 16, 1000);
  s.seed = 10;
  const VitModel m = MakeRandomVit(s);
  for (int batch : {1, 2}) ExpectSameBytesAtAnyThreadCount(m, batch, 4, /*max_batch=*/batch);
}

TEST(ExecutorFp32Test, RepeatedRunsAreIdentical) {
  RandomVitSpec s;
  s.seed = 21;
  const VitModel m = MakeRandomVit(s);
  ExecutorOptions opt;
  opt.max_batch = 4;
  ExecutorFp32 exec(m, opt);
  const std::vector<float> images = RandomImages(m, 4, 1);
  std::vector<float> a(4 * m.num_classes()), b(a.size()), c(m.num_classes());
  exec.Run(images.data(), 4, a.data());
  exec.Run(images.data(), 1, c.data());  // a different batch size in between
  exec.Run(images.data(), 4, b.data());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
}

TEST(ExecutorFp32Test, RunDoesNotAllocateAfterFirstUseOfABatchSize) {
  RandomVitSpec s;
  s.dim = 64;
  s.heads = 4;
  s.seed = 5;
  s.dist = true;
  const VitModel m = MakeRandomVit(s);
  ExecutorOptions opt;
  opt.max_batch = 4;
  opt.num_threads = 2;
  ExecutorFp32 exec(m, opt);
  const void* ws = exec.workspace_data();
  const size_t ws_bytes = exec.workspace_bytes();
  const std::vector<float> images = RandomImages(m, 4, 1);
  std::vector<float> out(4 * m.num_classes());
  exec.Run(images.data(), 4, out.data());
  exec.Run(images.data(), 2, out.data());  // plans batch 2
  // oneDNN primitive executions per Run: patch embed, 6 per block, head, head_dist.
  const long executes = 1 + 6 * static_cast<long>(m.blocks.size()) + 2;
  long per_run[2] = {0, 0};
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 2; ++j) {
      g_allocations = 0;
      g_frees = 0;
      g_counting = true;
      exec.Run(images.data(), j == 0 ? 4 : 2, out.data());
      g_counting = false;
      EXPECT_EQ(g_allocations.load(), g_frees.load()) << "Run retained heap memory";
      if (i == 0) per_run[j] = g_allocations.load();
      EXPECT_EQ(per_run[j], g_allocations.load()) << "allocation count varies between runs";
      EXPECT_LE(g_allocations.load(), 10 * executes) << "more than oneDNN's per-execute map";
    }
  }
  std::printf("operator new calls per Run: %ld (%ld oneDNN executes)\n", per_run[0], executes);
  EXPECT_EQ(ws, exec.workspace_data());
  EXPECT_EQ(ws_bytes, exec.workspace_bytes());
}

class RecordingObserver : public Fp32Observer {
 public:
  void OnTensor(const TapInfo& info, const float* data, int rows, int cols) override {
    std::ostringstream key;
    key << TapPointName(info.tap) << "/" << info.block;
    auto& e = seen[key.str()];
    e.calls++;
    e.rows = rows;
    e.cols = cols;
    e.first = data[0];
    if (info.tap == TapPoint::kAttnProbs) {
      double sum = 0;
      for (int c = 0; c < cols; ++c) sum += data[c];
      max_prob_row_err = std::max(max_prob_row_err, std::fabs(sum - 1.0));
    }
    if (info.tap == TapPoint::kLogits) logits.assign(data, data + static_cast<size_t>(rows) * cols);
  }
  struct Entry {
    int calls = 0, rows = 0, cols = 0;
    float first = 0.f;
  };
  std::map<std::string, Entry> seen;
  double max_prob_row_err = 0;
  std::vector<float> logits;
};

TEST(ExecutorFp32Test, ObserverSeesEveryTapWithShapes) {
  RandomVitSpec s;
  s.dim = 32;
  s.heads = 2;
  s.depth = 2;
  s.dist = true;
  s.seed = 8;
  const VitModel m = MakeRandomVit(s);
  const int batch = 3, T = m.num_tokens(), hd = m.head_dim();
  ExecutorOptions opt;
  opt.max_batch = batch;
  ExecutorFp32 exec(m, opt);
  RecordingObserver obs;
  exec.SetObserver(&obs);
  const std::vector<float> images = RandomImages(m, batch, 2);
  std::vector<float> out(batch * m.num_classes());
  exec.Run(images.data(), batch, out.data());
  for (int b = 0; b < 2; ++b) {
    const std::string sfx = "/" + std::to_string(b);
    EXPECT_EQ(obs.seen["qkv.in" + sfx].rows, batch * T);
    EXPECT_EQ(obs.seen["qkv.out" + sfx].cols, 3 * m.dim);
    EXPECT_EQ(obs.seen["q" + sfx].calls, batch * 2);
    EXPECT_EQ(obs.seen["k" + sfx].cols, hd);
    EXPECT_EQ(obs.seen["v" + sfx].rows, T);
    EXPECT_EQ(obs.seen["softmax.out" + sfx].cols, T);
    EXPECT_EQ(obs.seen["proj.in" + sfx].cols, m.dim);
    EXPECT_EQ(obs.seen["proj.out" + sfx].calls, 1);
    EXPECT_EQ(obs.seen["fc1.out" + sfx].cols, 4 * m.dim);
    EXPECT_EQ(obs.seen["gelu.out" + sfx].cols, 4 * m.dim);
    EXPECT_EQ(obs.seen["fc2.out" + sfx].cols, m.dim);
  }
  EXPECT_EQ(obs.seen["head.in/-1"].rows, batch);
  EXPECT_EQ(obs.seen["head_dist.out/-1"].cols, m.num_classes());
  EXPECT_EQ(obs.seen["patch_embed.in/-1"].cols, 3 * 4 * 4);
  EXPECT_LT(obs.max_prob_row_err, 1e-5);
  EXPECT_EQ(obs.logits, out);
  // Detaching restores the plain path with identical results.
  exec.SetObserver(nullptr);
  std::vector<float> out2(out.size());
  exec.Run(images.data(), batch, out2.data());
  EXPECT_EQ(out, out2);
}

TEST(ExecutorFp32Test, RejectsBadOptionsAndModels) {
  RandomVitSpec s;
  VitModel m = MakeRandomVit(s);
  ExecutorOptions opt;
  opt.max_batch = 0;
  EXPECT_THROW(ExecutorFp32(m, opt), Error);
  opt.max_batch = 2;
  m.blocks[0].fc1.bias.pop_back();
  EXPECT_THROW(ExecutorFp32(m, opt), Error);
}

}  // namespace
}  // namespace adalog
