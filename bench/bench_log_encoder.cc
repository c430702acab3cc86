// Benchmark: the table-based log encoder (quant/log_encoder.h) against naive log2-based
// encoders, on 64K softmax-like floats, items/second. Run:
//   build/bench/bench_log_encoder --benchmark_repetitions=5
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

// Times body(x, out) on the softmax-like input (out: kN elements of Out), kN items per iteration.
template <typename Out, typename Body>
void TimeOnSoftmaxLike(benchmark::State& st, Body body) {
  const auto x = SoftmaxLike();
  std::vector<Out> out(kN);
  for (auto _ : st) {
    body(x, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(st.iterations() * kN);
}

void BM_LogEncode_Table(benchmark::State& st) {
  const adalog::FastLogEncoder enc(Params(st));
  TimeOnSoftmaxLike<adalog::LogCode>(
      st, [&](const auto& x, auto& c) { enc.Encode(x.data(), kN, c.data()); });
}

// The reference definition: double log2 per element (exact code).
void BM_LogEncode_NaiveLog2Double(benchmark::State& st) {
  const adalog::LogParams p = Params(st);
  TimeOnSoftmaxLike<adalog::LogCode>(st, [&](const auto& x, auto& c) {
    for (int64_t i = 0; i < kN; ++i)
      c[i] = static_cast<adalog::LogCode>(adalog::LogEncodeReference(p, x[i]));
  });
}

// What torch does: float32 log2f per element (not the definition; differs at threshold floats).
void BM_LogEncode_NaiveLog2Float(benchmark::State& st) {
  const adalog::LogParams p = Params(st);
  const int32_t zc = 1 << p.bits;
  TimeOnSoftmaxLike<adalog::LogCode>(st, [&](const auto& x, auto& c) {
    for (int64_t i = 0; i < kN; ++i) {
      const int32_t raw = adalog::LogRawCodeFloat32(adalog::LogClampUnit(x[i] / p.scale), 37, p.q);
      c[i] = static_cast<adalog::LogCode>(raw < zc ? raw : zc);
    }
  });
}

// Full fake quant (encode + level lookup * s) through LogQuantizer.
void BM_LogFakeQuant_Table(benchmark::State& st) {
  const adalog::LogQuantizer lq(Params(st));
  TimeOnSoftmaxLike<float>(st,
                           [&](const auto& x, auto& y) { lq.FakeQuant(x.data(), kN, y.data()); });
}

// For scale: the uniform quantizer's array fake-quant (SSE2 path, true division) on the same data.
void BM_UniformFakeQuant(benchmark::State& st) {
  const adalog::UniformQuantizer uq(
      {static_cast<int>(st.range(0)), 1.0f / 200.0f, 3, adalog::UniformMode::kAsymmetric});
  TimeOnSoftmaxLike<float>(st,
                           [&](const auto& x, auto& y) { uq.FakeQuant(x.data(), kN, y.data()); });
}
BENCHMARK(BM_UniformFakeQuant)->Arg(4);

#define LOG_ARGS ->Args({4, 30})->Args({6, 10})->Args({3, 37})
BENCHMARK(BM_LogEncode_Table) LOG_ARGS;
BENCHMARK(BM_LogEncode_NaiveLog2Double) LOG_ARGS;
BENCHMARK(BM_LogEncode_NaiveLog2Float) LOG_ARGS;
BENCHMARK(BM_LogFakeQuant_Table) LOG_ARGS;

}  // namespace

BENCHMARK_MAIN();
