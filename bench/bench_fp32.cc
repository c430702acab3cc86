// FP32 executor benchmarks: oneDNN f32 matmul at ViT-S shapes (GFLOP/s, fraction of the fp32 FMA
// peak), the float islands (GB/s), and a whole DeiT-S-shaped forward (random weights, latency only).
// Arguments are {..., threads}; results: bench/RESULTS.md, section "FP32 executor".
#include <benchmark/benchmark.h>
#include <omp.h>

#include <dnnl.hpp>
#include <random>
#include <vector>

#include "bench/shape_list.h"
#include "runtime/executor_fp32.h"
#include "runtime/kernels/float_kernels.h"
#include "tests/util/exec_random_vit.h"

namespace adalog {
namespace {

constexpr double kPeakGflopsPerCore = 114.0;  // Zen 4, 32 flop/cycle at ~3.5 GHz (environment-notes)

std::vector<float> RandomVec(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// The fp32 FMA ceiling of one core, measured: 24 independent zmm FMA chains (the quoted
// kPeakGflopsPerCore is a Zen 4 figure; Zen 5 has full-width 512-bit FMA units). GFLOP/s =
// 2 x 16 lanes per vfmadd231ps.
__attribute__((target("avx512f"), noinline)) void Avx512FmaPeakLoop(int64_t iters) {
  __asm__ volatile(
      "vpternlogd $0xff, %%zmm31, %%zmm31, %%zmm31\n"
      "vpsrld $30, %%zmm31, %%zmm31\n"
      "vcvtdq2ps %%zmm31, %%zmm31\n"
      "vmovaps %%zmm31, %%zmm30\n"
      "1:\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm0\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm1\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm2\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm3\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm4\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm5\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm6\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm7\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm8\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm9\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm10\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm11\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm12\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm13\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm14\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm15\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm16\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm17\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm18\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm19\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm20\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm21\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm22\n"
      "vfmadd231ps %%zmm31, %%zmm30, %%zmm23\n"
      "dec %0\n"
      "jnz 1b\n"
      : "+r"(iters)
      :
      : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "zmm10", "zmm11", "zmm12", "zmm13", "zmm14", "zmm15", "zmm16", "zmm17", "zmm18", "zmm19", "zmm20", "zmm21", "zmm22", "zmm23", "zmm30", "zmm31", "cc");
}

void BM_Avx512FmaPeak(benchmark::State& state) {
  if (!__builtin_cpu_supports("avx512f")) {
    state.SkipWithError("no AVX-512");
    return;
  }
  const int64_t iters = 1 << 16;
  for (auto _ : state) Avx512FmaPeakLoop(iters);
  const double flops = double(iters) * 24 * 16 * 2;
  state.counters["GFLOP/s"] = benchmark::Counter(flops * state.iterations() * 1e-9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Avx512FmaPeak);

// y[M][N] = x[M][K] W^T + b, weights packed once (format_tag::any + reorder), as in the executor.
void BM_OnednnMatmulF32(benchmark::State& state) {
  const int M = static_cast<int>(state.range(0)), N = static_cast<int>(state.range(1)),
            K = static_cast<int>(state.range(2)), threads = static_cast<int>(state.range(3));
  omp_set_num_threads(threads);
  using dnnl::memory;
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  auto x = RandomVec(static_cast<size_t>(M) * K, 1), w = RandomVec(static_cast<size_t>(N) * K, 2),
       b = RandomVec(N, 3), y = std::vector<float>(static_cast<size_t>(M) * N);
  const memory::desc src({M, K}, memory::data_type::f32, memory::format_tag::ab);
  const memory::desc wei({K, N}, memory::data_type::f32, memory::format_tag::any);
  const memory::desc bias({1, N}, memory::data_type::f32, memory::format_tag::ab);
  const memory::desc dst({M, N}, memory::data_type::f32, memory::format_tag::ab);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, wei, bias, dst), eng);
  memory plain({{K, N}, memory::data_type::f32, memory::format_tag::ba}, eng, w.data());
  memory packed(pd.weights_desc(), eng);
  dnnl::reorder(plain, packed).execute(strm, plain, packed);
  dnnl::matmul prim(pd);
  const std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, memory(src, eng, x.data())},
      {DNNL_ARG_WEIGHTS, packed},
      {DNNL_ARG_BIAS, memory(bias, eng, b.data())},
      {DNNL_ARG_DST, memory(dst, eng, y.data())}};
  for (auto _ : state) {
    prim.execute(strm, args);
    strm.wait();
  }
  const double flops = 2.0 * M * N * K;
  state.counters["GFLOP/s"] = benchmark::Counter(flops * state.iterations() * 1e-9, benchmark::Counter::kIsRate);
  state.SetLabel(pd.impl_info_str());
}
// The DeiT-S Linear shapes of bench/shapes/vit.txt on 1 thread, batch 8's also on 2.
void OnednnMatmulArgs(benchmark::internal::Benchmark* b) {
  for (const bench::GemmShape& s : bench::ReadShapeList("vit.txt", "deit_s")) {
    if (s.comment.find("attn") != std::string::npos) continue;  // per-head shapes: not a Linear
    b->Args({s.m, s.n, s.k, 1});
    if (s.comment.find(" b8 ") != std::string::npos) b->Args({s.m, s.n, s.k, 2});
  }
}
BENCHMARK(BM_OnednnMatmulF32)
    ->ArgNames({"M", "N", "K", "threads"})
    ->Apply(OnednnMatmulArgs)
    ->UseRealTime()->Unit(benchmark::kMicrosecond);

// Float islands at DeiT-S batch-8 shapes, one thread. Bytes = read + write.
void BM_FloatIsland(benchmark::State& state) {
  const int op = static_cast<int>(state.range(0));
  const IsaLevel level = static_cast<IsaLevel>(state.range(1));
  const FloatKernels* k = FloatKernelsForLevel(level);
  if (k == nullptr) {
    state.SkipWithError("ISA level not supported here");
    return;
  }
  const int rows_ln = 1576, dim = 384, rows_sm = 8 * 6 * 197, t = 197;
  const int64_t n_gelu = 1576LL * 1536;
  auto x = RandomVec(static_cast<size_t>(n_gelu), 4), y = std::vector<float>(x.size());
  auto g = RandomVec(dim, 5), b = RandomVec(dim, 6);
  int64_t bytes = 0;
  for (auto _ : state) {
    switch (op) {
      case 0: k->layer_norm(x.data(), y.data(), rows_ln, dim, g.data(), b.data(), 1e-6f); break;
      case 1: k->softmax(x.data(), y.data(), rows_sm, t); break;
      case 2: k->gelu_erf(x.data(), y.data(), n_gelu); break;
      case 3: k->gelu_tanh(x.data(), y.data(), n_gelu); break;
    }
    benchmark::ClobberMemory();
  }
  switch (op) {
    case 0: bytes = 2LL * rows_ln * dim * 4; break;
    case 1: bytes = 2LL * rows_sm * t * 4; break;
    default: bytes = 2LL * n_gelu * 4; break;
  }
  static const char* names[] = {"layer_norm 1576x384", "softmax 9456x197", "gelu_erf 1576x1536",
                                "gelu_tanh 1576x1536"};
  state.SetLabel(std::string(names[op]) + " " + k->name);
  state.SetBytesProcessed(bytes * state.iterations());
}
BENCHMARK(BM_FloatIsland)
    ->ArgNames({"op", "isa"})
    ->ArgsProduct({{0, 1, 2, 3}, {0, 1, 2}})
    ->Unit(benchmark::kMicrosecond);

// Whole forward, DeiT-S shape (dim 384, 6 heads, depth 12, 224/16 -> 197 tokens, 1000 classes).
void BM_ForwardDeitS(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0)), threads = static_cast<int>(state.range(1));
  testing_util::RandomVitSpec s;
  s.Shape(384, 6, 12, 224, 16, 1000);
  s.seed = 42;
  static const VitModel model = testing_util::MakeRandomVit(s);
  ExecutorOptions opt;
  opt.max_batch = batch;
  opt.num_threads = threads;
  ExecutorFp32 exec(model, opt);
  const auto images = testing_util::RandomImages(model, batch, 1);
  std::vector<float> logits(static_cast<size_t>(batch) * model.num_classes());
  exec.Run(images.data(), batch, logits.data());  // warm-up
  for (auto _ : state) exec.Run(images.data(), batch, logits.data());
  const double flops = 2.0 * static_cast<double>(CountMacsPerImage(model)) * batch;
  state.counters["GFLOP/s"] = benchmark::Counter(flops * state.iterations() * 1e-9, benchmark::Counter::kIsRate);
  state.counters["peak_frac"] = benchmark::Counter(
      flops * state.iterations() * 1e-9 / (kPeakGflopsPerCore * threads), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ForwardDeitS)
    ->ArgNames({"batch", "threads"})
    ->ArgsProduct({{1, 8}, {1, 2}})
    ->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace
}  // namespace adalog

BENCHMARK_MAIN();
