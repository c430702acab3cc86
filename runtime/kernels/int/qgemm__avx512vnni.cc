// qgemm_u8s8_s32__avx512vnni and qgemm_s16s16_s32__avx512vnni: register-blocked microkernels
// (up to 6 rows x 64 columns, 24 zmm accumulators) on the packed B panels of int_kernels.h, with
// the fused fp32 epilogue. Compiled with -mavx512vnni; called only after a run-time check.
//
// Loop order: M tiles of 6 rows outer (A tile stays in L1), 64-column panels inner (B streams
// from L2; ViT weights <= 600 KB fit Zen 4's 1 MB L2). One k step is one dword of A (4 u8 or
// 2 s16) broadcast against one 64-byte panel line per 16 columns.
// Overflow: u8 x s8: |sum| <= 255*128*4096 < 2^31. s16 x s16: one vpdpwssd lane adds at most
// 2 * 32768 * max_abs (16.7e6 for |b| <= 255), so int32 partial sums are flushed to int64 every
// S16FlushSteps(b) steps: 128 (256 k) for |b| <= 255, none up to K = 4368 for 4-bit weights.
// GCC 12 reports its own _mm512_undefined_*() inside intrinsics (reduce/scalef/extract) as
// (maybe-)uninitialized (GCC bug 105593, fixed in GCC 13); the file is exempted.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstring>

#include "runtime/kernels/int/bytes__avx512.h"
#include "runtime/kernels/int/int_kernels.h"

namespace adalog::intk {
namespace {

constexpr int kMr = 6;
constexpr int kNv = 4;
constexpr int kColumnOuterRows = 256;  // rows above which column panels go outer (u8)
constexpr int kS16RowBlock = 96;       // rows per block of the s16 kernel (column panels inner)
// Dword steps one int32 lane can take without overflow: each adds at most 2 * 32768 * max_abs
// (|a| <= 32768). 128 for |b| <= 255 (u8 - zero point); 4-bit weight codes (|b| <= 15) allow
// 2184 steps (4368 k), so fc2 (K = 1536) needs no int64 flush.
inline int S16FlushSteps(const PackedS16& b) {
  if (b.max_abs <= 0) return 1 << 30;
  const int64_t steps = ((int64_t{1} << 31) - 1) / (int64_t{65536} * b.max_abs);
  return steps < 1 ? 1 : steps > (1 << 30) ? (1 << 30) : static_cast<int>(steps);
}

inline __mmask16 ColMask(int remaining) {
  return remaining >= 16 ? static_cast<__mmask16>(0xFFFF)
                         : static_cast<__mmask16>((1u << remaining) - 1u);
}

inline uint32_t LoadDword(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Sum of K u8 values (vpsadbw, masked tail load).
inline int32_t RowSumU8(const uint8_t* a, int k) {
  __m512i s = _mm512_setzero_si512();
  int t = 0;
  for (; t + 64 <= k; t += 64) {
    s = _mm512_add_epi64(s, _mm512_sad_epu8(_mm512_loadu_si512(a + t), _mm512_setzero_si512()));
  }
  if (t < k) {
    const __mmask64 m = (~__mmask64{0}) >> (64 - (k - t));
    s = _mm512_add_epi64(s, _mm512_sad_epu8(_mm512_maskz_loadu_epi8(m, a + t),
                                            _mm512_setzero_si512()));
  }
  return static_cast<int32_t>(_mm512_reduce_add_epi64(s));
}

// Epilogue of 16 columns from int32 sums:
//   y = fmaf(ldexpf(float(acc + mult*rowsum + accbias), -row_exp), scale, bias).
inline void StoreEpilogue32(__m512i acc, int32_t rowsum, const Epilogue& ep, int row, int n0,
                            int n_total, float* out) {
  const int rem = n_total - n0;
  const __mmask16 mask = ColMask(rem);
  if (ep.col_rowsum_mult) {
    const __m512i mult = _mm512_maskz_loadu_epi32(mask, ep.col_rowsum_mult + n0);
    acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(mult, _mm512_set1_epi32(rowsum)));
  }
  if (ep.col_acc_bias) {
    acc = _mm512_add_epi32(acc, _mm512_maskz_loadu_epi32(mask, ep.col_acc_bias + n0));
  }
  const __m512 scale = _mm512_maskz_loadu_ps(mask, ep.col_scale + n0);
  __m512 accf = _mm512_cvtepi32_ps(acc);
  if (ep.row_exp) {
    accf = _mm512_scalef_ps(accf, _mm512_set1_ps(static_cast<float>(-ep.row_exp[row])));
  }
  const __m512 bias =
      ep.col_bias ? _mm512_maskz_loadu_ps(mask, ep.col_bias + n0) : _mm512_setzero_ps();
  const __m512 y = _mm512_fmadd_ps(accf, scale, bias);
  if (rem >= 16) {
    _mm512_storeu_ps(out, y);
  } else {
    _mm512_mask_storeu_ps(out, mask, y);
  }
}

// Accumulation cores: local register accumulators, a loop with no other live state, then one
// store to `out` ([MR][NV][16] int32). Keeping the epilogue and the K tail out of this function
// is what lets GCC keep all 24 accumulators in registers (with them inline it spilled every one
// of them to the stack on every k step: 2.3x slower).
// One k step: NV panel lines, MR broadcast dwords of A (rows[r] + off), MR x NV dot products.
template <int MR, int NV, bool kS16>
__attribute__((always_inline)) inline void Step(__m512i* acc, const void* const* rows,
                                                int64_t off, const void* bp,
                                                int64_t panel_bytes) {
  __m512i bv[NV];
#pragma GCC unroll 4
  for (int j = 0; j < NV; ++j) {
    bv[j] = _mm512_loadu_si512(static_cast<const char*>(bp) + j * panel_bytes);
  }
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    const __m512i av = _mm512_set1_epi32(
        static_cast<int>(LoadDword(static_cast<const char*>(rows[r]) + off)));
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      acc[r * NV + j] = kS16 ? _mm512_dpwssd_epi32(acc[r * NV + j], av, bv[j])
                             : _mm512_dpbusd_epi32(acc[r * NV + j], av, bv[j]);
    }
  }
}

// Dword steps [s0, s1) (4 bytes of A each), all from rows[r] + 4 s.
template <int MR, int NV, bool kS16>
__attribute__((noinline)) void Accumulate(const void* const* rows, const char* panel,
                                          int64_t panel_bytes, int s0, int s1, int32_t* out) {
  __m512i acc[MR * NV];
#pragma GCC unroll 24
  for (int i = 0; i < MR * NV; ++i) acc[i] = _mm512_setzero_si512();
#pragma GCC unroll 4
  for (int s = s0; s < s1; ++s) {
    Step<MR, NV, kS16>(acc, rows, int64_t{4} * s, panel + int64_t{s} * 64, panel_bytes);
  }
#pragma GCC unroll 24
  for (int i = 0; i < MR * NV; ++i) _mm512_storeu_si512(out + 16 * i, acc[i]);
}

// Rows [m, m + MR) x columns [n0, n0 + 16 NV) into acc32 ([MR][NV][16]) or, for long s16 K,
// acc64 ([MR][NV][16] int64). Returns true when acc64 holds the result.
template <int MR, int NV, bool kS16>
bool TileAccumulate(const char* a, int64_t lda_bytes, int m, int k_bytes, int kp_elems,
                    const char* panel, int32_t* acc32, int64_t* acc64, int flush_steps = 0) {
  const int64_t panel_bytes = static_cast<int64_t>(kp_elems) * 16 * (kS16 ? 2 : 1);
  const void* rows[MR];
  for (int r = 0; r < MR; ++r) rows[r] = a + (m + r) * lda_bytes;
  const int full = k_bytes / 4;
  const int steps = (k_bytes + 3) / 4;
  const int chunk = kS16 ? flush_steps : steps;
  const bool wide = steps > chunk;
  if (wide) {
    for (int i = 0; i < MR * NV * 16; ++i) acc64[i] = 0;
  }
  for (int s0 = 0; s0 < steps; s0 += chunk) {
    const int s1 = s0 + chunk < steps ? s0 + chunk : steps;
    const int sf = s1 < full ? s1 : full;  // whole dwords inside this chunk
    Accumulate<MR, NV, kS16>(rows, panel, panel_bytes, s0, sf, acc32);
    if (sf < s1) {  // the partial last dword: copy it to a zero-padded buffer
      alignas(64) int32_t tail_acc[MR * NV * 16];
      uint32_t tail[MR];
      const void* trows[MR];
      for (int r = 0; r < MR; ++r) {
        tail[r] = 0;
        std::memcpy(&tail[r], static_cast<const char*>(rows[r]) + 4 * full,
                    static_cast<size_t>(k_bytes - 4 * full));
        trows[r] = reinterpret_cast<const char*>(&tail[r]) - int64_t{4} * full;
      }
      Accumulate<MR, NV, kS16>(trows, panel, panel_bytes, full, full + 1, tail_acc);
      for (int i = 0; i < MR * NV * 16; ++i) acc32[i] += tail_acc[i];
    }
    if (wide) {
      for (int i = 0; i < MR * NV * 16; ++i) acc64[i] += acc32[i];
    }
  }
  return wide;
}

// The epilogue's per-column operands of one tile (NV vectors of 16 columns from n0), loaded
// once per tile instead of once per (row, vector); absent arrays read as 0 (the same values
// StoreEpilogue32 uses).
template <int NV>
struct TileColumns {
  __m512i acc_bias[NV], mult[NV];
  __m512 scale[NV], bias[NV];
  __mmask16 mask[NV];
  bool full = true;  // every vector has 16 columns
  TileColumns(const Epilogue& ep, int n0, int n_total) {
    for (int j = 0; j < NV; ++j) {
      const int rem = n_total - n0 - 16 * j;
      mask[j] = rem <= 0 ? static_cast<__mmask16>(0) : ColMask(rem);
      full = full && rem >= 16;
      const int c = n0 + 16 * j;
      acc_bias[j] = ep.col_acc_bias ? _mm512_maskz_loadu_epi32(mask[j], ep.col_acc_bias + c)
                                    : _mm512_setzero_si512();
      mult[j] = ep.col_rowsum_mult ? _mm512_maskz_loadu_epi32(mask[j], ep.col_rowsum_mult + c)
                                   : _mm512_setzero_si512();
      scale[j] = _mm512_maskz_loadu_ps(mask[j], ep.col_scale + c);
      bias[j] = ep.col_bias ? _mm512_maskz_loadu_ps(mask[j], ep.col_bias + c) : _mm512_setzero_ps();
    }
  }
};

// Epilogue of a tile's int32 sums acc [MR][NV][16] (the operations of StoreEpilogue32 in the
// same order: + mult*rowsum, + acc_bias, cvt, scalef by -row_exp, fma).
template <int MR, int NV, bool kMult, bool kRowExp>
inline void TileEpilogue32(const int32_t* acc, const int32_t* rowsum, const TileColumns<NV>& col,
                           const int32_t* row_exp, int m, float* c, int64_t ldc) {
  for (int r = 0; r < MR; ++r) {
    float* out = c + (m + r) * ldc;
    const __m512i rs = _mm512_set1_epi32(kMult ? rowsum[r] : 0);
    const __m512 e = _mm512_set1_ps(kRowExp ? static_cast<float>(-row_exp[m + r]) : 0.f);
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      __m512i v = _mm512_load_si512(acc + (r * NV + j) * 16);
      if (kMult) v = _mm512_add_epi32(v, _mm512_mullo_epi32(col.mult[j], rs));
      v = _mm512_add_epi32(v, col.acc_bias[j]);
      __m512 f = _mm512_cvtepi32_ps(v);
      if (kRowExp) f = _mm512_scalef_ps(f, e);
      const __m512 y = _mm512_fmadd_ps(f, col.scale[j], col.bias[j]);
      if (col.full) {
        _mm512_storeu_ps(out + 16 * j, y);
      } else {
        _mm512_mask_storeu_ps(out + 16 * j, col.mask[j], y);
      }
    }
  }
}

template <int MR, int NV>
inline void TileEpilogue32Dispatch(const int32_t* acc, const int32_t* rowsum, const Epilogue& ep,
                                   int m, int n0, int n_total, float* c, int64_t ldc) {
  const TileColumns<NV> col(ep, n0, n_total);
  float* out = c + n0;
  if (ep.col_rowsum_mult) {
    if (ep.row_exp) {
      TileEpilogue32<MR, NV, true, true>(acc, rowsum, col, ep.row_exp, m, out, ldc);
    } else {
      TileEpilogue32<MR, NV, true, false>(acc, rowsum, col, ep.row_exp, m, out, ldc);
    }
  } else if (ep.row_exp) {
    TileEpilogue32<MR, NV, false, true>(acc, rowsum, col, ep.row_exp, m, out, ldc);
  } else {
    TileEpilogue32<MR, NV, false, false>(acc, rowsum, col, ep.row_exp, m, out, ldc);
  }
}

// u8 x s8 microkernel: rows [m, m + MR), columns [n0, n0 + 16 NV).
template <int MR, int NV>
void TileU8S8(const uint8_t* a, int64_t lda, int m, const PackedS8& b, int n0,
              const int32_t* rowsum, const Epilogue& ep, float* c, int64_t ldc) {
  alignas(64) int32_t acc[MR * NV * 16];
  const char* panel =
      reinterpret_cast<const char*>(b.data.data()) + static_cast<int64_t>(n0 / 16) * b.kp * 16;
  TileAccumulate<MR, NV, false>(reinterpret_cast<const char*>(a), lda, m, b.k, b.kp, panel, acc,
                                nullptr);
  TileEpilogue32Dispatch<MR, NV>(acc, rowsum, ep, m, n0, b.n, c, ldc);
}

// s16 x s16 microkernel with int64 flushes for long K.
template <int MR, int NV>
void TileS16(const int16_t* a, int64_t lda, int m, const PackedS16& b, int n0, const Epilogue& ep,
             float* c, int64_t ldc) {
  alignas(64) int32_t acc[MR * NV * 16];
  alignas(64) int64_t acc64[MR * NV * 16];
  const char* panel =
      reinterpret_cast<const char*>(b.data.data()) + static_cast<int64_t>(n0 / 16) * b.kp * 32;
  const bool wide = TileAccumulate<MR, NV, true>(reinterpret_cast<const char*>(a), lda * 2, m,
                                                 b.k * 2, b.kp, panel, acc, acc64,
                                                 S16FlushSteps(b));
  if (!wide) {
    static const int32_t kZeroRowsum[kMr] = {0, 0, 0, 0, 0, 0};  // s16: no compensation terms
    TileEpilogue32Dispatch<MR, NV>(acc, kZeroRowsum, ep, m, n0, b.n, c, ldc);
    return;
  }
  // int64 sums: StoreEpilogue64's operations with the column operands loaded once per tile.
  const TileColumns<NV> col(ep, n0, b.n);
  for (int r = 0; r < MR; ++r) {
    float* out = c + (m + r) * ldc + n0;
    const __m512 e =
        _mm512_set1_ps(ep.row_exp ? static_cast<float>(-ep.row_exp[m + r]) : 0.f);
    for (int j = 0; j < NV; ++j) {
      const int i = (r * NV + j) * 16;
      __m512i lo = _mm512_load_si512(acc64 + i), hi = _mm512_load_si512(acc64 + i + 8);
      if (ep.col_acc_bias) {
        lo = _mm512_add_epi64(lo, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(col.acc_bias[j])));
        hi = _mm512_add_epi64(hi, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(col.acc_bias[j], 1)));
      }
      __m512 f = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtepi64_ps(lo)),
                                    _mm512_cvtepi64_ps(hi), 1);
      if (ep.row_exp) f = _mm512_scalef_ps(f, e);
      const __m512 y = _mm512_fmadd_ps(f, col.scale[j], col.bias[j]);
      if (col.full) {
        _mm512_storeu_ps(out + 16 * j, y);
      } else {
        _mm512_mask_storeu_ps(out + 16 * j, col.mask[j], y);
      }
    }
  }
}

using TileU8Fn = void (*)(const uint8_t*, int64_t, int, const PackedS8&, int, const int32_t*,
                          const Epilogue&, float*, int64_t);
using TileS16Fn = void (*)(const int16_t*, int64_t, int, const PackedS16&, int, const Epilogue&,
                           float*, int64_t);

template <int MR>
constexpr TileU8Fn U8Row(int nv) {
  return nv == 1 ? &TileU8S8<MR, 1> : nv == 2 ? &TileU8S8<MR, 2> : nv == 3 ? &TileU8S8<MR, 3>
                                                                           : &TileU8S8<MR, 4>;
}
TileU8Fn PickU8(int mr, int nv) {
  switch (mr) {
    case 1: return U8Row<1>(nv);
    case 2: return U8Row<2>(nv);
    case 3: return U8Row<3>(nv);
    case 4: return U8Row<4>(nv);
    case 5: return U8Row<5>(nv);
    default: return U8Row<6>(nv);
  }
}
template <int MR>
constexpr TileS16Fn S16Row(int nv) {
  return nv == 1 ? &TileS16<MR, 1> : nv == 2 ? &TileS16<MR, 2> : nv == 3 ? &TileS16<MR, 3>
                                                                         : &TileS16<MR, 4>;
}
TileS16Fn PickS16(int mr, int nv) {
  switch (mr) {
    case 1: return S16Row<1>(nv);
    case 2: return S16Row<2>(nv);
    case 3: return S16Row<3>(nv);
    case 4: return S16Row<4>(nv);
    case 5: return S16Row<5>(nv);
    default: return S16Row<6>(nv);
  }
}

// Rows-outer order, rows with gaps (lda > k): the next row tile's A lines (rows [m, min(m + kMr,
// m1)), k bytes each), requested while the current tile runs. q@k^T reads q rows of 64 bytes 3 D
// apart in the qkv code buffer, written by the previous row stage and by then in L3, and each
// row tile began with kMr misses (BM_Matmul1 462 GOP/s with the buffer in L2, about 340 in the
// executor; with this 353-362). Contiguous rows (the executor's row GEMMs, whose codes its
// encoder just wrote) are left to the hardware: there the burst of 6 K / 64 prefetches per tile
// cost 1-8% (DeiT-S W4A4 batch 8, ADALOG_PROFILE=cpu, 3 alternating rounds).
inline void PrefetchRows(const uint8_t* a, int64_t lda, int m, int m1, int k) {
  const int me = m1 - m < kMr ? m1 : m + kMr;
  for (int r = m; r < me; ++r) {
    const char* row = reinterpret_cast<const char*>(a + r * lda);
    for (int t = 0; t < k; t += 64) _mm_prefetch(row + t, _MM_HINT_T0);
  }
}

}  // namespace

void QgemmU8S8Avx512Vnni(const uint8_t* a, int64_t lda, int m0, int m1, const PackedS8& b,
                         const Epilogue& ep, float* c, int64_t ldc) {
  const int nvec = (b.n + 15) / 16;
  if (m1 - m0 > kColumnOuterRows) {
    // Many rows (batched Linear): one 64-column panel (K x 64 bytes, <= 96 KB) stays hot while
    // all row tiles stream past it; measured faster than rows-outer at M = 1576.
    for (int v = 0; v < nvec; v += kNv) {
      const int nv = nvec - v < kNv ? nvec - v : kNv;
      for (int m = m0; m < m1; m += kMr) {
        const int mr = m1 - m < kMr ? m1 - m : kMr;
        int32_t rowsum[kMr] = {0, 0, 0, 0, 0, 0};
        if (ep.col_rowsum_mult) {
          for (int r = 0; r < mr; ++r) rowsum[r] = RowSumU8(a + (m + r) * lda, b.k);
        }
        PickU8(mr, nv)(a, lda, m, b, v * 16, rowsum, ep, c, ldc);
      }
    }
    return;
  }
  for (int m = m0; m < m1; m += kMr) {
    const int mr = m1 - m < kMr ? m1 - m : kMr;
    if (lda > b.k) PrefetchRows(a, lda, m + kMr, m1, b.k);
    int32_t rowsum[kMr] = {0, 0, 0, 0, 0, 0};
    if (ep.col_rowsum_mult) {
      for (int r = 0; r < mr; ++r) rowsum[r] = RowSumU8(a + (m + r) * lda, b.k);
    }
    for (int v = 0; v < nvec; v += kNv) {
      const int nv = nvec - v < kNv ? nvec - v : kNv;
      PickU8(mr, nv)(a, lda, m, b, v * 16, rowsum, ep, c, ldc);
    }
  }
}

void QgemmS16S16Avx512Vnni(const int16_t* a, int64_t lda, int m0, int m1, const PackedS16& b,
                           const Epilogue& ep, float* c, int64_t ldc) {
  // Blocks of kS16RowBlock rows, column panels outer inside a block: a 64-column panel of fc2's
  // s16 weights (K = 1536: 192 KB) is read from L3 once per block and then from L2 by every row
  // tile (all of B is 1.2 MB, more than the 1 MB L2, so rows-outer streamed it from L3 for every
  // 6-row tile). Measured +3% on one thread (bench_int_kernels BM_LogFc2 at M = 48 and 197),
  // and it divides the L3 traffic that two threads share by the row tiles per block.
  const int nvec = (b.n + 15) / 16;
  for (int mb = m0; mb < m1; mb += kS16RowBlock) {
    const int me = m1 - mb < kS16RowBlock ? m1 : mb + kS16RowBlock;
    for (int v = 0; v < nvec; v += kNv) {
      const int nv = nvec - v < kNv ? nvec - v : kNv;
      for (int m = mb; m < me; m += kMr) {
        const int mr = me - m < kMr ? me - m : kMr;
        PickS16(mr, nv)(a, lda, m, b, v * 16, ep, c, ldc);
      }
    }
  }
}

}  // namespace adalog::intk

namespace adalog::intk {

int32_t MaxU8RowsAvx512(const uint8_t* b, int64_t ldb, int n, int k) {
  __m512i mx = _mm512_setzero_si512();
  for (int j = 0; j < n; ++j) {
    for (int t = 0; t < k; t += 64) {
      mx = _mm512_max_epu8(mx, _mm512_maskz_loadu_epi8(ByteMask(k - t), b + j * ldb + t));
    }
  }
  return ReduceEpu8<true>(mx);
}

void PackU8MinusAvx512(const uint8_t* b, int64_t ldb, int n, int k, int32_t sub, PackedS8* p,
                       int32_t* row_sum) {
  p->n = n;
  p->k = k;
  p->kp = (k + 3) / 4 * 4;
  const int64_t panel_bytes = int64_t{p->kp} * 16;
  const int steps = p->kp / 4;
  const __m512i vsub = _mm512_set1_epi8(static_cast<char>(sub));
  alignas(64) int32_t line[16];
  for (int j = 0; j < (n + 15) / 16 * 16; ++j) {
    int8_t* col = p->data.data() + int64_t{j / 16} * panel_bytes + (j % 16) * 4;
    if (j >= n) {  // pad columns of the last panel
      for (int s = 0; s < steps; ++s) std::memset(col + int64_t{s} * 64, 0, 4);
      continue;
    }
    int64_t sum = 0;
    for (int t = 0; t < p->kp; t += 64) {
      const int rem = k - t;
      const __mmask64 m = rem >= 64 ? ~__mmask64{0} : rem <= 0 ? 0 : (~__mmask64{0}) >> (64 - rem);
      const __m512i v = _mm512_maskz_loadu_epi8(m, b + j * ldb + t);
      // sum_t (b - sub) = sum_t b - (valid count) * sub
      sum += _mm512_reduce_add_epi64(_mm512_sad_epu8(v, _mm512_setzero_si512()));
      sum -= int64_t{sub} * (rem >= 64 ? 64 : rem);
      // b - sub as s8 (wraps to the exact value when it fits s8, which the caller ensures);
      // positions >= k are 0.
      _mm512_store_si512(line, _mm512_maskz_sub_epi8(m, v, vsub));
      const int dwords = (p->kp - t) / 4 < 16 ? (p->kp - t) / 4 : 16;
      for (int s = 0; s < dwords; ++s) {
        std::memcpy(col + int64_t{t / 4 + s} * 64, &line[s], 4);
      }
    }
    row_sum[j] = static_cast<int32_t>(sum);
  }
}

// Epilogue over a dense int32 accumulator (the oneDNN path). Needs only AVX-512F/BW.
void EpilogueS32Avx512(const int32_t* acc, int64_t ldacc, const uint8_t* a, int64_t lda, int k,
                       int m0, int m1, int n, const Epilogue& ep, float* c, int64_t ldc) {
  for (int m = m0; m < m1; ++m) {
    const int32_t rowsum = ep.col_rowsum_mult ? RowSumU8(a + m * lda, k) : 0;
    for (int j = 0; j < n; j += 16) {
      const __mmask16 mask = ColMask(n - j);
      StoreEpilogue32(_mm512_maskz_loadu_epi32(mask, acc + m * ldacc + j), rowsum, ep, m, j, n,
                      c + m * ldc + j);
    }
  }
}

}  // namespace adalog::intk
