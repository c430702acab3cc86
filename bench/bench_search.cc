// Calibration-search kernels, measured: the exact-product double Gram (search/gram.h) of a Swin
// stage-1-sized Linear input (T rows of K floats), by GramAtB (row blocks of kGramBlockT, every
// tile per block) against the one-pass order (each tile over all T rows, the order before row
// blocks), same bits. Threads: OMP_NUM_THREADS.
//   bench_search --benchmark_filter=BM_Gram
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <vector>

#include "search/gram.h"

namespace {

std::vector<float> Random(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

// args: T, K (symmetric K x K Gram of a [T][K] matrix).
void BM_GramAtB(benchmark::State& st) {
  const int64_t T = st.range(0);
  const int K = static_cast<int>(st.range(1));
  const std::vector<float> x = Random(static_cast<size_t>(T) * K, 1);
  std::vector<double> g(static_cast<size_t>(K) * K);
  for (auto _ : st) {
    adalog::search::GramAtB(x.data(), K, K, x.data(), K, K, T, g.data(), K, true);
    benchmark::DoNotOptimize(g.data());
  }
  st.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(T) * K * (K + 1) / 2 * 1e-9,
                                             benchmark::Counter::kIsIterationInvariantRate);
}

void BM_GramOnePass(benchmark::State& st) {
  using namespace adalog::search;
  const int64_t T = st.range(0);
  const int K = static_cast<int>(st.range(1));
  const std::vector<float> x = Random(static_cast<size_t>(T) * K, 1);
  std::vector<double> g(static_cast<size_t>(K) * K);
  const GramTileFn tile = SelectGramTile();
  const int mb = (K + kGramTileM - 1) / kGramTileM, nb = (K + kGramTileN - 1) / kGramTileN;
  for (auto _ : st) {
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t p = 0; p < static_cast<int64_t>(mb) * nb; ++p) {
      const int i0 = static_cast<int>(p / nb) * kGramTileM, j0 = static_cast<int>(p % nb) * kGramTileN;
      const int mi = std::min(kGramTileM, K - i0), nj = std::min(kGramTileN, K - j0);
      if (j0 + nj <= i0) continue;
      tile(x.data(), K, x.data(), K, T, i0, mi, j0, nj, g.data(), K, false);
    }
    benchmark::DoNotOptimize(g.data());
  }
  st.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(T) * K * (K + 1) / 2 * 1e-9,
                                             benchmark::Counter::kIsIterationInvariantRate);
}

// Swin-T stage 1 at 32 images: 100,352 rows; K = 96 (qkv / fc1 input), 384 (fc2 input).
BENCHMARK(BM_GramAtB)->Args({100352, 96})->Args({100352, 384})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_GramOnePass)->Args({100352, 96})->Args({100352, 384})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
