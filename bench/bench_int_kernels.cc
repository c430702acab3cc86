// Benchmarks of the integer kernels (runtime/kernels/int): the VNNI register peak, the uniform
// int8 GEMM (own VNNI microkernel vs oneDNN u8s8s32) at DeiT-S shapes, the log-code kernels
// (attn@V per head x 6 heads, fc2 197x1536->384) in every design against the int8 GEMM on the
// same shapes, and the oneDNN f32 GEMM for comparison. Reports GOP/s (2 ops per multiply-add).
// Shapes: the DeiT-S rows of bench/shapes/vit.txt (bench/shape_list.h), batch 1 and 8.
// Single-threaded kernels; run with OMP_NUM_THREADS=1 so oneDNN uses one thread too.
// Results: bench/RESULTS.md, section "Integer kernels".
// GCC 12 flags its own _mm512_undefined_*() inside reduce intrinsics (bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <algorithm>
#include <ctime>
#include <dnnl.hpp>
#include <random>
#include <string>
#include <vector>

#include "bench/shape_list.h"
#include "quant/log_quantizers.h"
#include "runtime/cpu_features.h"
#include "runtime/kernels/int/code_encoders.h"
#include "runtime/kernels/int/int_kernels.h"
#include "runtime/kernels/int/logcode_writers.h"

namespace adalog::intk {
namespace {

std::vector<uint8_t> Codes(std::mt19937_64& rng, int64_t n, int bits) {
  std::uniform_int_distribution<int> d(0, (1 << bits) - 1);
  std::vector<uint8_t> v(static_cast<size_t>(n));
  for (auto& e : v) e = static_cast<uint8_t>(d(rng));
  return v;
}

// Softmax-like log codes: per row a small offset plus a geometric tail, zero codes sprinkled.
std::vector<uint8_t> LogCodes(std::mt19937_64& rng, int rows, int cols, int bits) {
  std::geometric_distribution<int> geo(0.3);
  const int top = bits == 8 ? 255 : (1 << bits);
  std::vector<uint8_t> v(static_cast<size_t>(rows) * cols);
  for (auto& e : v) e = static_cast<uint8_t>(std::min(top, geo(rng)));
  return v;
}
// As LogCodes, but each row's codes start at its own offset in [0, 7] (a row's largest
// probability varies from row to row in real softmax rows, so its smallest code and exponent do).
std::vector<uint8_t> LogCodesRowOffsets(std::mt19937_64& rng, int rows, int cols, int bits) {
  std::vector<uint8_t> v = LogCodes(rng, rows, cols, bits);
  const int top = bits == 8 ? 255 : (1 << bits);
  std::uniform_int_distribution<int> off(0, 7);
  for (int r = 0; r < rows; ++r) {
    const int o = off(rng);
    for (int c = 0; c < cols; ++c) {
      uint8_t& e = v[static_cast<size_t>(r) * cols + c];
      e = static_cast<uint8_t>(std::min(top, e + o));
    }
  }
  return v;
}

void SetOps(benchmark::State& state, double ops) {
  state.counters["GOP/s"] =
      benchmark::Counter(ops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// ---- VNNI peak: 24 independent vpdpbusd chains on registers, no memory operands (inline asm:
// with intrinsics GCC 12 kept the accumulator array on the stack).
__attribute__((target("avx512f,avx512vnni"), noinline)) void VnniPeakLoop(int64_t iters) {
  __asm__ volatile(
      "vpternlogd $0xff, %%zmm30, %%zmm30, %%zmm30\n"
      "vpternlogd $0xff, %%zmm31, %%zmm31, %%zmm31\n"
      "1:\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm0\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm1\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm2\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm3\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm4\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm5\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm6\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm7\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm8\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm9\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm10\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm11\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm12\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm13\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm14\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm15\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm16\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm17\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm18\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm19\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm20\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm21\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm22\n"
      "vpdpbusd %%zmm31, %%zmm30, %%zmm23\n"
      "dec %0\n"
      "jnz 1b\n"
      : "+r"(iters)
      :
      : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "zmm10", "zmm11", "zmm12", "zmm13", "zmm14", "zmm15", "zmm16", "zmm17", "zmm18", "zmm19", "zmm20", "zmm21", "zmm22", "zmm23", "zmm30", "zmm31", "cc");
}
constexpr int kPeakChains = 24;

void BM_VnniPeak(benchmark::State& state) {
  if (!IsaSupported(IsaLevel::kAvx512Vnni)) {
    state.SkipWithError("no AVX-512 VNNI");
    return;
  }
  const int64_t iters = 1 << 16;
  for (auto _ : state) VnniPeakLoop(iters);
  SetOps(state, double(iters) * kPeakChains * 16 * 4 * 2);
}
BENCHMARK(BM_VnniPeak);

// ---- AVX2 ceilings, for the integer path on CPUs without VNNI: 12 independent accumulator
// chains on registers, each step the pair a kernel issues per multiply (vpmaddwd + vpaddd: the
// s16 log-code kernels; vpmaddubsw + vpaddw: the u8 GEMMs' int16 sums) or one FMA (the FP32
// executor's oneDNN sgemm). Arg: 0 vpmaddwd pair (16 MACs), 1 vpmaddubsw pair (32 MACs), 2
// vfmadd231ps (8 MACs). GOP/s = 2 x MACs.
__attribute__((target("avx2"), noinline)) void Avx2MaddPeakLoop(int64_t iters) {
  __asm__ volatile(
      "vpcmpeqd %%ymm14, %%ymm14, %%ymm14\n"
      "vpsrlw $15, %%ymm14, %%ymm14\n"
      "vmovdqa %%ymm14, %%ymm15\n"
      "1:\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddd %%ymm13, %%ymm0, %%ymm0\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddd %%ymm13, %%ymm1, %%ymm1\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddd %%ymm13, %%ymm2, %%ymm2\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddd %%ymm13, %%ymm3, %%ymm3\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddd %%ymm13, %%ymm4, %%ymm4\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddd %%ymm13, %%ymm5, %%ymm5\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddd %%ymm13, %%ymm6, %%ymm6\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddd %%ymm13, %%ymm7, %%ymm7\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddd %%ymm13, %%ymm8, %%ymm8\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddd %%ymm13, %%ymm9, %%ymm9\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddd %%ymm13, %%ymm10, %%ymm10\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddd %%ymm13, %%ymm11, %%ymm11\n"
      "dec %0\n"
      "jnz 1b\n"
      : "+r"(iters)
      :
      : "ymm0", "ymm1", "ymm2", "ymm3", "ymm4", "ymm5", "ymm6", "ymm7", "ymm8", "ymm9", "ymm10", "ymm11", "ymm12", "ymm13", "ymm14", "ymm15", "cc");
}
__attribute__((target("avx2"), noinline)) void Avx2MaddubsPeakLoop(int64_t iters) {
  __asm__ volatile(
      "vpcmpeqd %%ymm14, %%ymm14, %%ymm14\n"
      "vpsrlw $15, %%ymm14, %%ymm14\n"
      "vmovdqa %%ymm14, %%ymm15\n"
      "1:\n"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddw %%ymm13, %%ymm0, %%ymm0\n"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddw %%ymm13, %%ymm1, %%ymm1\n"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddw %%ymm13, %%ymm2, %%ymm2\n"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddw %%ymm13, %%ymm3, %%ymm3\n"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddw %%ymm13, %%ymm4, %%ymm4\n"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddw %%ymm13, %%ymm5, %%ymm5\n"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddw %%ymm13, %%ymm6, %%ymm6\n"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddw %%ymm13, %%ymm7, %%ymm7\n"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddw %%ymm13, %%ymm8, %%ymm8\n"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddw %%ymm13, %%ymm9, %%ymm9\n"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddw %%ymm13, %%ymm10, %%ymm10\n"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm13\n"
      "vpaddw %%ymm13, %%ymm11, %%ymm11\n"
      "dec %0\n"
      "jnz 1b\n"
      : "+r"(iters)
      :
      : "ymm0", "ymm1", "ymm2", "ymm3", "ymm4", "ymm5", "ymm6", "ymm7", "ymm8", "ymm9", "ymm10", "ymm11", "ymm12", "ymm13", "ymm14", "ymm15", "cc");
}
__attribute__((target("avx2,fma"), noinline)) void Avx2FmaPeakLoop(int64_t iters) {
  __asm__ volatile(
      "vpcmpeqd %%ymm14, %%ymm14, %%ymm14\n"
      "vpsrlw $15, %%ymm14, %%ymm14\n"
      "vmovdqa %%ymm14, %%ymm15\n"
      "1:\n"
      "vfmadd231ps %%ymm15, %%ymm14, %%ymm0\n"
      "vfmadd231ps %%ymm15, %%ymm14, %%ymm1\n"
      "vfmadd231ps %%ymm15, %%ymm14, %%ymm2\n"
      "vfmadd231ps %%ymm15, %%ymm14, %%ymm3\n"
      "vfmadd231ps %%ymm15, %%ymm14, %%ymm4\n"
      "vfmadd231ps %%ymm15, %%ymm14, %%ymm5\n"
      "vfmadd231ps %%ymm15, %%ymm14, %%ymm6\n"
      "vfmadd231ps %%ymm15, %%ymm14, %%ymm7\n"
      "vfmadd231ps %%ymm15, %%ymm14, %%ymm8\n"
      "vfmadd231ps %%ymm15, %%ymm14, %%ymm9\n"
      "vfmadd231ps %%ymm15, %%ymm14, %%ymm10\n"
      "vfmadd231ps %%ymm15, %%ymm14, %%ymm11\n"
      "dec %0\n"
      "jnz 1b\n"
      : "+r"(iters)
      :
      : "ymm0", "ymm1", "ymm2", "ymm3", "ymm4", "ymm5", "ymm6", "ymm7", "ymm8", "ymm9", "ymm10", "ymm11", "ymm12", "ymm13", "ymm14", "ymm15", "cc");
}

void BM_Avx2Peak(benchmark::State& state) {
  if (!IsaSupported(IsaLevel::kAvx2)) {
    state.SkipWithError("no AVX2");
    return;
  }
  const int kind = static_cast<int>(state.range(0));
  const int64_t iters = 1 << 16;
  for (auto _ : state) {
    if (kind == 0) {
      Avx2MaddPeakLoop(iters);
    } else if (kind == 1) {
      Avx2MaddubsPeakLoop(iters);
    } else {
      Avx2FmaPeakLoop(iters);
    }
  }
  const double macs = kind == 0 ? 16 : kind == 1 ? 32 : 8;
  SetOps(state, double(iters) * 12 * macs * 2);
  state.SetLabel(kind == 0 ? "vpmaddwd+vpaddd" : kind == 1 ? "vpmaddubsw+vpaddw" : "vfmadd231ps");
}
BENCHMARK(BM_Avx2Peak)->Arg(0)->Arg(1)->Arg(2);

// ---- Uniform int8 GEMM. Args: M, N, K, impl (0 = VNNI microkernel, 1 = oneDNN, 2 = the AVX2
// family (vpmaddubsw for these 4-bit weights), 3 = AVX-VNNI), activation bits (A codes < 2^bits;
// the AVX2 kernel's int16 sums grow with 1 / max a).
void BM_Qgemm(benchmark::State& state) {
  const int m = static_cast<int>(state.range(0)), n = static_cast<int>(state.range(1)),
            k = static_cast<int>(state.range(2));
  const int impl_arg = static_cast<int>(state.range(3));
  const int abits = static_cast<int>(state.range(4));
  const bool dnn = impl_arg == 1;
  const QgemmImpl impl = impl_arg == 0   ? QgemmImpl::kAvx512Vnni
                         : impl_arg == 1 ? QgemmImpl::kOnednn
                         : impl_arg == 2 ? QgemmImpl::kAvx2
                                         : QgemmImpl::kAvxVnni;
  if (impl == QgemmImpl::kAvx512Vnni && !IsaSupported(IsaLevel::kAvx512Vnni)) {
    state.SkipWithError("no AVX-512 VNNI");
    return;
  }
  if ((impl == QgemmImpl::kAvx2 && !IsaSupported(IsaLevel::kAvx2)) ||
      (impl == QgemmImpl::kAvxVnni && AvxVnniDecline() != nullptr)) {
    state.SkipWithError(impl == QgemmImpl::kAvx2 ? "no AVX2" : AvxVnniDecline());
    return;
  }
  auto rng = std::mt19937_64(1);
  const auto a = Codes(rng, int64_t{m} * k, abits);
  const auto w = Codes(rng, int64_t{n} * k, 4);
  std::vector<float> sw(n, 0.01f), bias(n, 0.5f);
  std::vector<int32_t> zw(n, 7);
  const QLinear p = PrepareQLinear(w.data(), n, k, 4, sw.data(), zw.data(), 0.02f, 100, bias.data());
  std::vector<float> c(static_cast<size_t>(m) * n);
  OnednnQgemm* d = dnn ? MakeOnednnQgemm(p, m) : nullptr;
  for (auto _ : state) {
    RunQLinear(p, impl, a.data(), k, 0, m, c.data(), n, d);
    benchmark::ClobberMemory();
  }
  if (d) FreeOnednnQgemm(d);
  SetOps(state, 2.0 * m * n * k);
  state.SetLabel(std::string(QgemmImplName(impl)) + " A" + std::to_string(abits));
}
// Every DeiT-S GEMM of bench/shapes/vit.txt (batch 1 and 8: patch embedding, qkv, proj, fc1, fc2,
// head, and the per-head attention shapes) on both implementations.
void QgemmArgs(benchmark::internal::Benchmark* b) {
  for (int impl : {0, 1}) {
    for (const bench::GemmShape& s : bench::ReadShapeList("vit.txt", "deit_s")) {
      b->Args({s.m, s.n, s.k, impl, 8});
    }
  }
  // The integer executor's row chunks (IntPathOptions::row_chunk = 48 rows).
  for (auto nk : {std::pair<int, int>{1152, 384}, {384, 384}, {1536, 384}}) {
    b->Args({48, nk.first, nk.second, 0, 8});
  }
}
BENCHMARK(BM_Qgemm)->Apply(QgemmArgs);
// The AVX2 level (2 = vpmaddubsw family, 3 = AVX-VNNI) on the executor's 48-row chunks of DeiT-S
// qkv / fc1 with 8-bit and 4-bit activation codes.
BENCHMARK(BM_Qgemm)->ArgsProduct({{48}, {1152, 1536}, {384}, {2, 3}, {8, 4}});

// ---- q @ k^T per head (197 x 197 x 64), 6 heads (k packed per call). Arg 0: 8-bit codes with
// zk = 130 (k stored k - 128 with the row-sum compensation); 1: the integer executor's W4A4 case,
// 4-bit codes with zero points 8 (k stored k - zk, no compensation) read from one [197][3 x 384]
// qkv code buffer as the executor does.
void BM_Matmul1(benchmark::State& state) {
  const int t = 197, d = 64, heads = 6;
  const bool w4a4 = state.range(0) != 0;
  const int bits = w4a4 ? 4 : 8, zq = w4a4 ? 8 : 120, zk = w4a4 ? 8 : 130;
  const int64_t ld = w4a4 ? 3 * heads * d : heads * d;
  auto rng = std::mt19937_64(2);
  const auto q = Codes(rng, int64_t{t} * ld, bits);
  const auto k = Codes(rng, int64_t{t} * ld, bits);
  const uint8_t* kb = w4a4 ? q.data() + heads * d : k.data();  // k columns of the qkv rows
  std::vector<float> s(static_cast<size_t>(t) * t);
  Matmul1Workspace ws = MakeMatmul1Workspace(t, d);
  for (auto _ : state) {
    for (int h = 0; h < heads; ++h) {
      Matmul1Head(q.data() + h * d, ld, kb + h * d, ld, t, t, d, zq, zk, 0.01f, s.data(), t, &ws);
    }
    benchmark::ClobberMemory();
  }
  SetOps(state, 2.0 * heads * t * t * d);
}
BENCHMARK(BM_Matmul1)->Arg(0)->Arg(1);

// ---- Log-code attn@V: 6 heads of P [197][197] (4-bit AdaLog, q = 30) x V [197][64]; V is
// repacked per head (part of the cost at inference). Args: design, bits, and (optional third)
// 1 = per-row code offsets (LogCodesRowOffsets: each row its own smallest code, as softmax rows).
void BM_LogAttnV(benchmark::State& state) {
  const auto design = static_cast<LogDesign>(state.range(0));
  const int bits = static_cast<int>(state.range(1));
  const bool row_offsets = state.range(2) != 0;
  const int t = 197, d = 64, heads = 6;
  auto rng = std::mt19937_64(3);
  const AdaLogTables tables = MakeAdaLogTables(bits, 30);
  std::vector<std::vector<uint8_t>> p_codes, v_codes;
  for (int h = 0; h < heads; ++h) {
    p_codes.push_back(row_offsets ? LogCodesRowOffsets(rng, t, t, bits) : LogCodes(rng, t, t, bits));
    v_codes.push_back(Codes(rng, int64_t{t} * d, 8));
  }
  std::vector<int32_t> zu(d, 128);
  std::vector<float> alpha(d, 0.01f);
  LogMatmul p = PrepareLogMatmul(design, tables, v_codes[0].data(), t, d, t, zu.data(),
                                 alpha.data(), nullptr);
  LogScratch s = MakeLogScratch(p, t);
  std::vector<float> y(static_cast<size_t>(t) * d);
  for (auto _ : state) {
    for (int h = 0; h < heads; ++h) {
      RepackLogMatmulB(&p, v_codes[h].data(), d, true, 120 + h, 0.01f);
      RunLogMatmul(p, p_codes[h].data(), t, 0, t, y.data(), d, &s);
    }
    benchmark::ClobberMemory();
  }
  SetOps(state, 2.0 * heads * t * t * d);
  state.SetLabel(std::string(LogDesignName(design)) + (row_offsets ? " row offsets" : ""));
}
BENCHMARK(BM_LogAttnV)->ArgsProduct({{0, 1, 2}, {4, 8}, {0}});
BENCHMARK(BM_LogAttnV)->ArgsProduct({{1}, {4, 8}, {1}});

// ---- Log-code fc2: 197 x 1536 -> 384 (post-GELU codes, 4-bit weights). Arg: design, bits.
void BM_LogFc2(benchmark::State& state) {
  const auto design = static_cast<LogDesign>(state.range(0));
  const int bits = static_cast<int>(state.range(1));
  const int m = static_cast<int>(state.range(2)), n = 384, k = 1536;
  auto rng = std::mt19937_64(4);
  const AdaLogTables tables = MakeAdaLogTables(bits, 30);
  const auto codes = LogCodes(rng, m, k, bits);
  const auto w = Codes(rng, int64_t{n} * k, 4);
  std::vector<int32_t> zw(n, 8);
  std::vector<float> alpha(n, 0.001f), bias(n, 0.1f);
  LogMatmul p =
      PrepareLogMatmul(design, tables, w.data(), k, n, k, zw.data(), alpha.data(), bias.data());
  LogScratch s = MakeLogScratch(p, m);
  std::vector<float> y(static_cast<size_t>(m) * n);
  for (auto _ : state) {
    RunLogMatmul(p, codes.data(), k, 0, m, y.data(), n, &s);
    benchmark::ClobberMemory();
  }
  SetOps(state, 2.0 * m * n * k);
  state.SetLabel(LogDesignName(design));
}
BENCHMARK(BM_LogFc2)->ArgsProduct({{0, 1, 2}, {4, 8}, {197}});
BENCHMARK(BM_LogFc2)->Args({1, 4, 48});  // one row chunk of the integer executor

// ---- The integer executor's row-stage GEMMs (DeiT-S, batch 8: 1576 rows, 48-row chunks) in its
// order per chunk (proj, fc1, fc2 log-code s16, qkv), to separate what the executor's setting
// costs the GEMMs from the kernels themselves. Each op is timed by the thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID, one read per op per chunk, the same in every mode) and reported as
// its own GOP/s counter. Arg mode:
//   0: chunk-major (the executor's order), outputs into [1576][N] buffers (the executor's layout)
//   1: chunk-major, outputs into one [48][N] buffer per op reused by every chunk (stays in cache)
//   2: op-major (each GEMM over all chunks before the next: its weights stay in L2), outputs as 0
//   3: op-major, reused outputs as 1
//   4: as 3, but every chunk reads the A rows of chunk 0 (the single-shape microbenchmark)
// Op-major modes read the clock once per op and pass (not per chunk).
int64_t ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

void BM_RowStageGemms(benchmark::State& state) {
  if (!IsaSupported(IsaLevel::kAvx512Vnni)) {
    state.SkipWithError("no AVX-512 VNNI");
    return;
  }
  const int mode = static_cast<int>(state.range(0));
  const bool chunk_major = mode == 0 || mode == 1, reuse_out = mode != 0 && mode != 2;
  const bool hot_a = mode == 4;
  const int rows = 1576, chunk = 48, d = 384, h = 1536;
  auto rng = std::mt19937_64(8);
  struct Op {
    const char* name;
    int n, k;
  };
  const Op ops[4] = {{"proj", d, d}, {"fc1", h, d}, {"fc2", d, h}, {"qkv", 3 * d, d}};
  std::vector<QLinear> lin;
  std::vector<std::vector<uint8_t>> a(4);
  std::vector<std::vector<float>> c(4);
  for (int i = 0; i < 4; ++i) {
    const auto w = Codes(rng, int64_t{ops[i].n} * ops[i].k, 4);
    std::vector<float> sw(ops[i].n, 0.01f), bias(ops[i].n, 0.5f);
    std::vector<int32_t> zw(ops[i].n, 7);
    lin.push_back(PrepareQLinear(w.data(), ops[i].n, ops[i].k, 4, sw.data(), zw.data(), 0.02f, 8,
                                 bias.data()));
    a[i] = i == 2 ? LogCodes(rng, rows, ops[i].k, 4) : Codes(rng, int64_t{rows} * ops[i].k, 4);
    c[i].assign(static_cast<size_t>(reuse_out ? chunk : rows) * ops[i].n, 0.f);
  }
  const AdaLogTables tables = MakeAdaLogTables(4, 30);
  const auto w2 = Codes(rng, int64_t{d} * h, 4);
  std::vector<int32_t> zw2(d, 8);
  std::vector<float> alpha(d, 0.001f), bias2(d, 0.1f);
  const LogMatmul fc2 = PrepareLogMatmul(LogDesign::kS16, tables, w2.data(), h, d, h, zw2.data(),
                                         alpha.data(), bias2.data());
  LogScratch scratch = MakeLogScratch(fc2, chunk);
  int64_t ns[4] = {0, 0, 0, 0};
  auto run = [&](int i, int r0) {
    const int r1 = std::min(rows, r0 + chunk);
    float* out = c[i].data() + (reuse_out ? 0 : int64_t{r0} * ops[i].n);
    const int64_t ra = hot_a ? 0 : r0;
    if (i == 2) {
      RunLogMatmul(fc2, a[i].data() + ra * h, h, 0, r1 - r0, out, d, &scratch);
    } else {
      RunQLinear(lin[static_cast<size_t>(i)], QgemmImpl::kAvx512Vnni,
                 a[i].data() + ra * ops[i].k, ops[i].k, 0, r1 - r0, out, ops[i].n);
    }
  };
  for (auto _ : state) {
    if (chunk_major) {
      for (int r0 = 0; r0 < rows; r0 += chunk) {
        for (int i = 0; i < 4; ++i) {
          const int64_t t0 = ThreadCpuNs();
          run(i, r0);
          ns[i] += ThreadCpuNs() - t0;
        }
      }
    } else {
      for (int i = 0; i < 4; ++i) {
        const int64_t t0 = ThreadCpuNs();
        for (int r0 = 0; r0 < rows; r0 += chunk) run(i, r0);
        ns[i] += ThreadCpuNs() - t0;
      }
    }
    benchmark::ClobberMemory();
  }
  for (int i = 0; i < 4; ++i) {
    const double gop = 2.0 * rows * ops[i].n * ops[i].k * 1e-9 * double(state.iterations());
    state.counters[std::string(ops[i].name) + " GOP/s"] = gop / (double(ns[i]) * 1e-9);
  }
  SetOps(state, 2.0 * rows * (3.0 * d * d + 2.0 * d * h + d * d) + 2.0 * rows * h * d);
  static const char* const kLabels[] = {"chunk-major, [1576][N] out", "chunk-major, reused out",
                                        "op-major, [1576][N] out", "op-major, reused out",
                                        "op-major, reused out, A of chunk 0"};
  state.SetLabel(kLabels[mode]);
}
BENCHMARK(BM_RowStageGemms)->DenseRange(0, 4);

// Seeded N(0, sd) values.
std::vector<float> NormalValues(size_t n, uint64_t seed, float sd) {
  auto rng = std::mt19937_64(seed);
  std::normal_distribution<float> nd(0.f, sd);
  std::vector<float> x(n);
  for (auto& v : x) v = nd(rng);
  return x;
}

// The ISA level of an encoder benchmark (Arg 0: 0 ref, 1 avx2, 2 avx512), or false after skipping
// the benchmark on a CPU without it.
bool EncoderLevel(benchmark::State& state, IsaLevel* level) {
  *level = static_cast<IsaLevel>(state.range(0));
  if (IsaSupported(*level)) return true;
  state.SkipWithError("ISA not supported");
  return false;
}

LogParams AdaLogParams(int bits, int q, float scale) {
  return {LogKind::kAdaLog, bits, scale, q};
}

// Times encode(x, codes) on n seeded N(0, sd) values, reported as elements per second (Gelem/s).
template <typename Encode>
void TimeEncoding(benchmark::State& state, size_t n, uint64_t seed, float sd,
                  const std::string& label, Encode encode) {
  const std::vector<float> x = NormalValues(n, seed, sd);
  std::vector<uint8_t> codes(x.size());
  for (auto _ : state) {
    encode(x.data(), codes.data());
    benchmark::ClobberMemory();
  }
  state.counters["Gelem/s"] =
      benchmark::Counter(double(n) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(label);
}

// ---- Log-code writers: softmax rows of 6 heads (6 x 197 x 197) -> AdaLog 4-bit codes, and GELU of
// fc1's output (197 x 1536) -> Shift-AdaLog 4-bit codes. Arg: ISA level (0 ref, 1 avx2, 2 avx512).
// Reported as elements per second (G/s).
void BM_SoftmaxCodes(benchmark::State& state) {
  IsaLevel level;
  if (!EncoderLevel(state, &level)) return;
  const LogCodeWriter w = MakeLogCodeWriter(AdaLogParams(4, 30, 1.f));
  const int rows = 6 * 197, n = 197;
  TimeEncoding(
      state, static_cast<size_t>(rows) * n, 5, 3.f, IsaLevelName(level),
      [&](const float* x, uint8_t* codes) { SoftmaxToLogCodes(w, x, rows, n, codes, level); });
}
BENCHMARK(BM_SoftmaxCodes)->Arg(0)->Arg(1)->Arg(2);

void BM_GeluCodes(benchmark::State& state) {
  IsaLevel level;
  if (!EncoderLevel(state, &level)) return;
  const LogCodeWriter w = MakeLogCodeWriter(AdaLogParams(4, 30, 2.5f), kGeluShift);
  const int64_t n = 197 * 1536;
  TimeEncoding(state, n, 6, 1.5f, IsaLevelName(level),
               [&](const float* x, uint8_t* codes) { GeluToLogCodes(w, x, n, codes, level); });
}
BENCHMARK(BM_GeluCodes)->Arg(0)->Arg(1)->Arg(2);

// ---- Float -> code encoders of the integer executor's islands (code_encoders.h) on 197 x 1536
// shifted-GELU-like values: Shift-AdaLog codes (scale 2.5) at 4 bits (q = 30) and 8 bits
// (q = 10), and quant's scalar Encode as the baseline. Args: ISA level (0 ref = quant's scalar
// Encode, 1 avx2, 2 avx512), bits. The label names the path taken.
void BM_LogEncode(benchmark::State& state) {
  IsaLevel level;
  if (!EncoderLevel(state, &level)) return;
  const int bits = static_cast<int>(state.range(1));
  // q = 10 at 8 bits: 185 codes, the large-table path
  const ShiftLogQuantizer sq(AdaLogParams(bits, bits == 8 ? 10 : 30, 2.5f), kGeluShift, true);
  const ThresholdLogEncoder enc(sq, level);
  const int64_t n = 197 * 1536;
  TimeEncoding(state, n, 7, 1.5f, std::string(IsaLevelName(level)) + " " + enc.path(),
               [&](const float* x, uint8_t* codes) { enc.Encode(x, n, codes); });
}
BENCHMARK(BM_LogEncode)->ArgsProduct({{0, 1, 2}, {4, 8}});

// ---- oneDNN f32 matmul, for comparison. Args: M, N, K.
void BM_F32Onednn(benchmark::State& state) {
  const int m = static_cast<int>(state.range(0)), n = static_cast<int>(state.range(1)),
            k = static_cast<int>(state.range(2));
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  const dnnl::memory::desc a_md({m, k}, dt::f32, tag::ab), c_md({m, n}, dt::f32, tag::ab);
  const dnnl::memory::desc b_any({k, n}, dt::f32, tag::any);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_any, c_md), eng);
  dnnl::matmul prim(pd);
  std::vector<float> a(static_cast<size_t>(m) * k, 0.5f), b(static_cast<size_t>(k) * n, 0.25f),
      c(static_cast<size_t>(m) * n);
  dnnl::memory bu({{k, n}, dt::f32, tag::ba}, eng, b.data());
  dnnl::memory bm(pd.weights_desc(), eng);
  dnnl::reorder(bu, bm).execute(strm, bu, bm);
  dnnl::memory am(a_md, eng, a.data()), cm(c_md, eng, c.data());
  for (auto _ : state) {
    prim.execute(strm, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
    strm.wait();
  }
  SetOps(state, 2.0 * m * n * k);
}
BENCHMARK(BM_F32Onednn)
    ->Args({197, 1152, 384})
    ->Args({197, 384, 1536})
    ->Args({197, 64, 197})
    ->Args({1576, 1152, 384});

}  // namespace
}  // namespace adalog::intk

BENCHMARK_MAIN();
