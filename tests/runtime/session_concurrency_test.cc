// Session::Run from many threads on one shared Session: every executor (FP32, simulated, integer)
// gives each batch the bytes of a sequential run, and the workspace pool grows and reserves.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "quant/error.h"
#include "runtime/adalog_runtime.h"
#include "runtime/data/npy.h"

namespace adalog {
namespace {

constexpr int kThreads = 8;
constexpr int kMaxBatch = 4;

struct Batch {
  int64_t first = 0;  // image index into the test set
  int64_t size = 0;
};

// 12 batches of 1..4 images at different offsets of the digits test set (30 images in all).
std::vector<Batch> MakeBatches() {
  std::vector<Batch> out;
  int64_t first = 0;
  for (int i = 0; i < 12; ++i) {
    const int64_t size = 1 + (i * 7) % kMaxBatch;
    out.push_back({first, size});
    first += size + 3;
  }
  return out;
}

// Runs `model_path` on a shared Session from kThreads threads, each thread taking every batch
// (starting at a different one, so different batches overlap in time), and compares each result
// byte for byte with the same session's sequential result.
void ExpectConcurrentEqualsSequential(const std::string& model_path, bool simulate,
                                      const char* want_kind, int omp_threads) {
  const std::string src = ADALOG_SOURCE_DIR;
  const NpyFloatArray x = ReadNpyFloat32(src + "/models/digits/test_x.npy");
  auto loaded = LoadModel(src + model_path);
  SessionOptions o;
  o.max_batch = kMaxBatch;
  o.num_threads = omp_threads;
  o.simulate = simulate;
  Session session(loaded, o);
  ASSERT_STREQ(session.executor_kind(), want_kind);
  const int classes = session.num_classes();
  const int64_t per = static_cast<int64_t>(x.data.size()) / x.shape[0];
  const std::vector<Batch> batches = MakeBatches();
  ASSERT_LE(batches.back().first + batches.back().size, x.shape[0]);

  auto run = [&](const Batch& b, float* out) {
    session.Run(x.data.data() + b.first * per, session.input_shape(static_cast<int>(b.size)), out);
  };
  std::vector<std::vector<float>> want(batches.size());
  std::set<int> top1;  // non-degenerate: the batches' logits differ and pick different classes
  for (size_t i = 0; i < batches.size(); ++i) {
    want[i].assign(static_cast<size_t>(batches[i].size * classes),
                   std::numeric_limits<float>::quiet_NaN());
    run(batches[i], want[i].data());
    for (int64_t r = 0; r < batches[i].size; ++r) {
      const float* row = want[i].data() + r * classes;
      for (int c = 0; c < classes; ++c) ASSERT_TRUE(std::isfinite(row[c]));
      top1.insert(static_cast<int>(std::max_element(row, row + classes) - row));
    }
  }
  EXPECT_GE(top1.size(), 5u) << "degenerate logits";

  // got[t][i]: thread t's result for batch i, sentinel-filled first.
  std::vector<std::vector<std::vector<float>>> got(kThreads);
  for (auto& per_thread : got) {
    for (size_t i = 0; i < batches.size(); ++i) {
      per_thread.emplace_back(want[i].size(), -12345.f);
    }
  }
  std::vector<std::thread> pool;
  for (int t = 0; t < kThreads; ++t) {
    pool.emplace_back([&, t] {
      for (size_t j = 0; j < batches.size(); ++j) {
        const size_t i = (j + static_cast<size_t>(t) * 5) % batches.size();
        run(batches[i], got[t][i].data());
      }
    });
  }
  for (std::thread& th : pool) th.join();

  int differing = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (size_t i = 0; i < batches.size(); ++i) {
      if (std::memcmp(got[t][i].data(), want[i].data(), want[i].size() * sizeof(float)) != 0) {
        ++differing;
        ADD_FAILURE() << want_kind << ": thread " << t << " batch " << i << " (images "
                      << batches[i].first << ".." << batches[i].first + batches[i].size - 1
                      << ") differs from the sequential run";
      }
    }
  }
  EXPECT_EQ(differing, 0);
  EXPECT_GE(session.num_workspaces(), 1);
  EXPECT_LE(session.num_workspaces(), kThreads);
  std::printf("[ info ] %s, %d OpenMP threads per call: %d workspaces of %zu bytes after %d threads\n",
              want_kind, omp_threads, session.num_workspaces(), session.workspace_bytes(), kThreads);
}

TEST(SessionConcurrency, Fp32SharedSessionMatchesSequential) {
  ExpectConcurrentEqualsSequential("/models/digits/digits_vit.onnx", false, "fp32", 1);
}

TEST(SessionConcurrency, SimulatedSharedSessionMatchesSequential) {
  ExpectConcurrentEqualsSequential("/models/int_test/digits_w4a4.adq", true, "sim", 1);
}

// The integer executor needs AVX-512 VNNI to be Session's default; elsewhere Session picks the
// simulated one (tested above) unless ADALOG_EXECUTOR=int.
TEST(SessionConcurrency, IntegerSharedSessionMatchesSequential) {
  Session probe(LoadModel(std::string(ADALOG_SOURCE_DIR) + "/models/int_test/digits_w4a4.adq"),
                SessionOptions{});
  if (std::string(probe.executor_kind()) != "int") {
    GTEST_SKIP() << "this CPU runs quantized files on the simulated executor";
  }
  ExpectConcurrentEqualsSequential("/models/int_test/digits_w4a4.adq", false, "int", 1);
}

// Two OpenMP threads per call: each std::thread opens its own team.
TEST(SessionConcurrency, IntegerSharedSessionWithTwoOmpThreadsPerCall) {
  Session probe(LoadModel(std::string(ADALOG_SOURCE_DIR) + "/models/int_test/digits_w4a4.adq"),
                SessionOptions{});
  if (std::string(probe.executor_kind()) != "int") {
    GTEST_SKIP() << "this CPU runs quantized files on the simulated executor";
  }
  ExpectConcurrentEqualsSequential("/models/int_test/digits_w4a4.adq", false, "int", 2);
}

// Calls from inside an OpenMP parallel region (nested parallelism off: each call's regions run on
// one thread) give the sequential bytes too.
TEST(SessionConcurrency, CallsFromAnOpenMpRegionMatchSequential) {
  const std::string src = ADALOG_SOURCE_DIR;
  const NpyFloatArray x = ReadNpyFloat32(src + "/models/digits/test_x.npy");
  Session session(LoadModel(src + "/models/int_test/digits_w4a4.adq"), SessionOptions{kMaxBatch, 2, false});
  const int64_t per = static_cast<int64_t>(x.data.size()) / x.shape[0];
  const std::vector<Batch> batches = MakeBatches();
  std::vector<std::vector<float>> want(batches.size()), got(batches.size());
  for (size_t i = 0; i < batches.size(); ++i) {
    want[i] = session.Run(x.data.data() + batches[i].first * per,
                          session.input_shape(static_cast<int>(batches[i].size)));
    got[i].assign(want[i].size(), -12345.f);
  }
  ASSERT_NE(want[0], want[1]);
  const int n = static_cast<int>(batches.size());
#pragma omp parallel for num_threads(4) schedule(dynamic, 1)
  for (int i = 0; i < n; ++i) {
    session.Run(x.data.data() + batches[i].first * per,
                session.input_shape(static_cast<int>(batches[i].size)), got[i].data());
  }
  for (size_t i = 0; i < batches.size(); ++i) {
    EXPECT_EQ(0, std::memcmp(got[i].data(), want[i].data(), want[i].size() * sizeof(float)))
        << "batch " << i;
  }
}

TEST(SessionConcurrency, ReserveGrowsThePoolOnce) {
  auto loaded = LoadModel(std::string(ADALOG_SOURCE_DIR) + "/models/digits/digits_vit.onnx");
  Session session(loaded, SessionOptions{2, 1, false});
  EXPECT_EQ(session.num_workspaces(), 1);
  EXPECT_GT(session.workspace_bytes(), 0u);
  session.Reserve(3);
  EXPECT_EQ(session.num_workspaces(), 3);
  session.Reserve(2);
  EXPECT_EQ(session.num_workspaces(), 3);
  EXPECT_THROW(session.Reserve(0), Error);
}

}  // namespace
}  // namespace adalog
