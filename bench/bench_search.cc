// Calibration-search kernels, measured: the exact-product double Gram (search/gram.h) of a Swin
// stage-1-sized Linear input (T rows of K floats), by GramAtB (row blocks of kGramBlockT, every
// tile per block) against the one-pass order (each tile over all T rows, the order before row
// blocks), same bits; and one whole W-out FPCS search (search/weight_out.h) of a Linear of Swin-T
// shapes on synthetic data (GELU-like input, Gaussian weight: the cost depends on the shapes and
// on how many codes change between candidates, not on the trained values). Threads:
// OMP_NUM_THREADS.
//   bench_search --benchmark_filter=BM_Gram
//   bench_search --benchmark_filter=BM_WeightOutSearch
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "search/fpcs.h"
#include "search/gram.h"
#include "search/grids.h"
#include "search/weight_out.h"

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

// args: T, K, N, form (WeightOutObjective::set_quad_form: 0 automatic, 1 sweep, 2 chain, 3 GEMM). Input x [T][K] = GELU of a unit Gaussian, rounded to a 1/8 grid (a quantized
// input); weight [N][K] Gaussian with std 1/sqrt(K); y = x w^T + b (the FP output, no noise:
// the search then trades only weight rounding). One iteration = one FPCS search (6 steps, width
// 16, best mode) from a fresh objective, as SearchWeightOut runs it.
void BM_WeightOutSearch(benchmark::State& st) {
  using namespace adalog::search;
  const int64_t T = st.range(0);
  const int K = static_cast<int>(st.range(1)), N = static_cast<int>(st.range(2));
  const int form = static_cast<int>(st.range(3));
  std::vector<float> x = Random(static_cast<size_t>(T) * K, 2);
  for (float& v : x) {
    const float g = 0.5f * v * (1.0f + std::erf(v * 0.70710678f));
    v = std::round(g * 8.0f) / 8.0f;
  }
  std::vector<float> w = Random(static_cast<size_t>(N) * K, 3);
  for (float& v : w) v /= std::sqrt(static_cast<float>(K));
  std::vector<float> b = Random(static_cast<size_t>(N), 4);
  std::vector<float> y(static_cast<size_t>(T) * N);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < T; ++t)
    for (int o = 0; o < N; ++o) {
      double acc = b[static_cast<size_t>(o)];
      for (int k = 0; k < K; ++k) acc += static_cast<double>(x[static_cast<size_t>(t * K + k)]) * w[static_cast<size_t>(o) * K + k];
      y[static_cast<size_t>(t * N + o)] = static_cast<float>(acc);
    }
  const UniformGrid grid = LinearWeightGrid(w.data(), N, K, 4);
  FpcsConfig cfg;
  cfg.mode = FpcsMode::kBest;
  WeightOutObjective::Stats sum;
  for (auto _ : st) {
    WeightOutObjective wout(x.data(), T, K, y.data(), b.data(), N);
    wout.set_quad_form(form);
    const UniformChoice c = SearchUniform(
        grid, [&](const UniformCandidates& cc, std::vector<double>* e) { wout.Eval(w.data(), cc, e); }, cfg);
    benchmark::DoNotOptimize(c.scales.data());
    for (auto [to, from] : {std::pair{&sum.chain, &wout.stats().chain}, {&sum.sweep, &wout.stats().sweep},
                            {&sum.gemm, &wout.stats().gemm}}) {
      to->rows += from->rows;
      to->ns += from->ns;
      to->units += from->units;
    }
  }
  // Per form: rows, and ns per unit of work (the cost model's constants in weight_out.cc).
  for (auto [name, ps] : {std::pair{"chain", &sum.chain}, {"sweep", &sum.sweep}, {"gemm", &sum.gemm}}) {
    st.counters[std::string(name) + "_rows"] = static_cast<double>(ps->rows);
    if (ps->units > 0) st.counters[std::string(name) + "_ns/u"] = ps->ns / static_cast<double>(ps->units);
  }
}
// Swin-T at 32 images: stage 4 fc2 (T = 1568 < K = 3072), stage 4 fc1 (K = 768), stage 3 fc2
// (T = 6272, K = 1536), the last patch merging (T = 1568 < K = 1536 x ... : K = 1536, N = 768),
// stage 4 qkv (K = 768, N = 2304), stage 1 fc2 (T = 100352, K = 384).
BENCHMARK(BM_WeightOutSearch)
    ->ArgsProduct({{1568}, {3072}, {768}, {0, 1, 2, 3}})
    ->ArgsProduct({{1568}, {768}, {3072}, {0, 1, 2, 3}})
    ->ArgsProduct({{6272}, {1536}, {384}, {0, 1, 2, 3}})
    ->ArgsProduct({{1568}, {1536}, {768}, {0, 1, 2, 3}})
    ->ArgsProduct({{1568}, {768}, {2304}, {0, 1, 2, 3}})
    ->ArgsProduct({{100352}, {384}, {96}, {0, 1, 2, 3}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
