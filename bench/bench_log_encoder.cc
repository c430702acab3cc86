// Benchmark: the table-based log encoder (quant/log_encoder.h) against naive log2-based
// encoders, on 64K softmax-like floats, items/second. Run:
//   ./build-quant/bench/bench_log_encoder --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

#include "quant/log_encoder.h"
#include "quant/log_quantizers.h"
#include "quant/log_reference.h"
#include "quant/uniform.h"

namespace {

constexpr int64_t kN = 64 * 1024;

// Softmax-like: rows of 197 logits ~ N(0, 2), softmax per row (values in (0, 1], most tiny).
std::vector<float> SoftmaxLike() {
  std::mt19937_64 rng(42);
  std::normal_distribution<float> d(0.0f, 2.0f);
  std::vector<float> v(kN);
  const int64_t row = 197;
  for (int64_t r0 = 0; r0 < kN; r0 += row) {
    const int64_t r1 = std::min(kN, r0 + row);
    float mx = -1e30f, sum = 0.0f;
    for (int64_t i = r0; i < r1; ++i) mx = std::max(mx, v[i] = d(rng));
    for (int64_t i = r0; i < r1; ++i) sum += (v[i] = std::exp(v[i] - mx));
    for (int64_t i = r0; i < r1; ++i) v[i] /= sum;
  }
  return v;
}

adalog::LogParams Params(benchmark::State& st) {
  return {adalog::LogKind::kAdaLog, static_cast<int>(st.range(0)), 1.0f,
          static_cast<int>(st.range(1))};
}

void BM_LogEncode_Table(benchmark::State& st) {
  const auto x = SoftmaxLike();
  const adalog::FastLogEncoder enc(Params(st));
  std::vector<adalog::LogCode> c(kN);
  for (auto _ : st) {
    enc.Encode(x.data(), kN, c.data());
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(st.iterations() * kN);
}

// The reference definition: double log2 per element (exact code).
void BM_LogEncode_NaiveLog2Double(benchmark::State& st) {
  const auto x = SoftmaxLike();
  const adalog::LogParams p = Params(st);
  std::vector<adalog::LogCode> c(kN);
  for (auto _ : st) {
    for (int64_t i = 0; i < kN; ++i)
      c[i] = static_cast<adalog::LogCode>(adalog::LogEncodeReference(p, x[i]));
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(st.iterations() * kN);
}

// What torch does: float32 log2f per element (not the definition; differs at threshold floats).
void BM_LogEncode_NaiveLog2Float(benchmark::State& st) {
  const auto x = SoftmaxLike();
  const adalog::LogParams p = Params(st);
  const int32_t zc = 1 << p.bits;
  std::vector<adalog::LogCode> c(kN);
  for (auto _ : st) {
    for (int64_t i = 0; i < kN; ++i) {
      const int32_t raw = adalog::LogRawCodeFloat32(adalog::LogClampUnit(x[i] / p.scale), 37, p.q);
      c[i] = static_cast<adalog::LogCode>(raw < zc ? raw : zc);
    }
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(st.iterations() * kN);
}

// Full fake quant (encode + level lookup * s) through LogQuantizer.
void BM_LogFakeQuant_Table(benchmark::State& st) {
  const auto x = SoftmaxLike();
  const adalog::LogQuantizer lq(Params(st));
  std::vector<float> y(kN);
  for (auto _ : st) {
    lq.FakeQuant(x.data(), kN, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(st.iterations() * kN);
}

// For scale: the uniform quantizer's array fake-quant (SSE2 path, true division) on the same data.
void BM_UniformFakeQuant(benchmark::State& st) {
  const auto x = SoftmaxLike();
  const adalog::UniformQuantizer uq(
      {static_cast<int>(st.range(0)), 1.0f / 200.0f, 3, adalog::UniformMode::kAsymmetric});
  std::vector<float> y(kN);
  for (auto _ : st) {
    uq.FakeQuant(x.data(), kN, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(st.iterations() * kN);
}
BENCHMARK(BM_UniformFakeQuant)->Arg(4);

#define LOG_ARGS ->Args({4, 30})->Args({6, 10})->Args({3, 37})
BENCHMARK(BM_LogEncode_Table) LOG_ARGS;
BENCHMARK(BM_LogEncode_NaiveLog2Double) LOG_ARGS;
BENCHMARK(BM_LogEncode_NaiveLog2Float) LOG_ARGS;
BENCHMARK(BM_LogFakeQuant_Table) LOG_ARGS;

}  // namespace

BENCHMARK_MAIN();
