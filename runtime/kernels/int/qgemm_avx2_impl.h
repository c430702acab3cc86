// The AVX2-level integer GEMM microkernels (16-column tiles on the packed panels of int_kernels.h,
// fused fp32 epilogue), written once and compiled twice: plain AVX2 in qgemm__avx2.cc
// (vpmaddubsw / vpmaddwd) and AVX-VNNI in qgemm__avxvnni.cc (VEX vpdpbusd / vpdpwssd, kVnni).
// Internal to runtime/kernels/int; include only from files compiled with AVX2 flags.
//
// Exactness (every variant computes the exact integer acc of int_kernels.h, then the common
// epilogue bit for bit):
//  * u8 x s8, vpmaddubsw (kMadd): one instruction gives a0 b0 + a1 b1 with signed int16
//    saturation. With amax = max a over the tile's rows and bmax = PackedS8::max_abs >= max |b|,
//    |a0 b0 + a1 b1| <= 2 amax bmax; when 2 amax bmax <= 32767 nothing saturates. Summing
//    S = floor(32767 / (2 amax bmax)) such results in int16 (vpaddw, wrapping) stays within
//    +-32767, so it is exact too; then vpmaddwd by 1 widens the int16 sums to int32. bmax <= 64
//    gives S >= 1 for any u8 a (2 * 255 * 64 = 32640); 4-bit weights and 4-bit activations give
//    S = 72 (one widening per 288 k).
//  * u8 x s8, nibbles: a = 16 a_hi + a_lo with a_hi, a_lo <= 15, two kMadd passes (each exact for
//    any s8 b: 2 * 15 * 128 = 3840, S >= 8), acc = acc_lo + 16 acc_hi (|acc| < 2^27).
//  * u8 x s8, kVnni: vpdpbusd adds four u8 x s8 products to an int32 lane without intermediate
//    saturation; |acc| <= 255 * 128 * 4096 < 2^31.
//  * s16 x s16 (vpmaddwd + vpaddd, or vpdpwssd): the pair sum a0 b0 + a1 b1 is exact in int32
//    unless a0 = a1 = b0 = b1 = -32768 (a is a nonnegative level here); int32 lanes are flushed to
//    int64 every S16FlushSteps (each step adds at most 2 * 32768 * max_abs to a lane).
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "runtime/kernels/int/int_kernels.h"

namespace adalog::intk::avx2 {
// Internal linkage: compiled with different -m flags per translation unit (see
// logcode_rows_impl.h for the ODR trap this avoids).
namespace {

inline uint32_t LoadDword(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline __m256i Bcast(const uint8_t* p) { return _mm256_set1_epi32(static_cast<int>(LoadDword(p))); }

// Lanes [0, rem) all ones (rem in 0..8).
inline __m256i LaneMask(int rem) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(rem), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Sum of k u8 values (vpsadbw).
inline int32_t RowSumU8(const uint8_t* a, int k) {
  __m256i s = _mm256_setzero_si256();
  int t = 0;
  for (; t + 32 <= k; t += 32) {
    s = _mm256_add_epi64(s, _mm256_sad_epu8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + t)),
                                            _mm256_setzero_si256()));
  }
  alignas(32) int64_t l[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(l), s);
  int64_t sum = l[0] + l[1] + l[2] + l[3];
  for (; t < k; ++t) sum += a[t];
  return static_cast<int32_t>(sum);
}

// Sum of the 32 bytes of v.
inline int64_t RowSumPart(__m256i v) {
  const __m256i s = _mm256_sad_epu8(v, _mm256_setzero_si256());
  const __m128i x = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  return _mm_cvtsi128_si64(x) + _mm_extract_epi64(x, 1);
}

// Largest byte of rows r < mr, k bytes each.
inline int MaxRowsU8(const uint8_t* a, int64_t lda, int m, int mr, int k) {
  __m256i mx = _mm256_setzero_si256();
  int tail = 0;
  for (int r = 0; r < mr; ++r) {
    const uint8_t* row = a + (m + r) * lda;
    int t = 0;
    for (; t + 32 <= k; t += 32) {
      mx = _mm256_max_epu8(mx, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + t)));
    }
    for (; t < k; ++t) tail = row[t] > tail ? row[t] : tail;
  }
  __m128i x = _mm_max_epu8(_mm256_castsi256_si128(mx), _mm256_extracti128_si256(mx, 1));
  x = _mm_max_epu8(x, _mm_srli_si128(x, 8));
  x = _mm_max_epu8(x, _mm_srli_si128(x, 4));
  x = _mm_max_epu8(x, _mm_srli_si128(x, 2));
  x = _mm_max_epu8(x, _mm_srli_si128(x, 1));
  const int v = _mm_cvtsi128_si32(x) & 0xFF;
  return v > tail ? v : tail;
}

// acc += x in place (vpaddw / vpaddd): with plain intrinsics GCC 12 computed x + acc into a
// temporary and copied it back with a vmovdqa per accumulator and step (8 extra instructions per
// step of the 4-row kernels, which are bound by instruction throughput, not by the multipliers).
inline __m256i AddInPlace16(__m256i acc, __m256i x) {
  __asm__("vpaddw %1, %0, %0" : "+x"(acc) : "x"(x));
  return acc;
}
inline __m256i AddInPlace32(__m256i acc, __m256i x) {
  __asm__("vpaddd %1, %0, %0" : "+x"(acc) : "x"(x));
  return acc;
}

#ifdef ADALOG_AVXVNNI
// acc += dot(a, b) in place, VEX vpdpbusd (u8 a x s8 b) or vpdpwssd (s16 x s16): with the
// intrinsics GCC 12 spilled the 6-row kernel's accumulators to the stack on every step (perf:
// most samples on vmovdqa to and from %rsp).
template <bool kS16>
inline __m256i DpInPlace(__m256i acc, __m256i a, __m256i b) {
  if constexpr (kS16) {
    __asm__("%{vex%} vpdpwssd %2, %1, %0" : "+x"(acc) : "x"(a), "x"(b));
  } else {
    __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(a), "x"(b));
  }
  return acc;
}
#endif

// ---- Accumulation cores: rows[r] point at the A bytes of the first step (4 bytes per step),
// panel at its 64-byte line; out[MR][2][8] int32 += the tile's sums over `steps` steps. Nothing
// else is live in these loops, so the accumulators stay in registers.
enum class U8Op { kMadd16, kMadd32, kVnni };

// The accumulation loop every AVX2 tile shares: `steps` dword steps of A (rows[r] + 4 s) against
// the panel's 64-byte lines, into acc[MR][2]. kS16: vpmaddwd (+ vpaddd) or vpdpwssd on int16
// pairs; else the u8 forms of U8Op (int16 sums for kMadd16).
template <int MR, bool kS16, U8Op kOp>
__attribute__((always_inline)) inline void AccLoop(__m256i* acc, const uint8_t* const* rows,
                                                   const int8_t* panel, int steps) {
  for (int s = 0; s < steps; ++s) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + 64 * s));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + 64 * s + 32));
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m256i a = Bcast(rows[r] + 4 * s);
      if constexpr (kOp == U8Op::kVnni) {
#ifdef ADALOG_AVXVNNI
        acc[2 * r] = DpInPlace<kS16>(acc[2 * r], a, b0);
        acc[2 * r + 1] = DpInPlace<kS16>(acc[2 * r + 1], a, b1);
#endif
      } else if constexpr (kS16) {
        acc[2 * r] = AddInPlace32(acc[2 * r], _mm256_madd_epi16(a, b0));
        acc[2 * r + 1] = AddInPlace32(acc[2 * r + 1], _mm256_madd_epi16(a, b1));
      } else if constexpr (kOp == U8Op::kMadd16) {
        acc[2 * r] = AddInPlace16(acc[2 * r], _mm256_maddubs_epi16(a, b0));
        acc[2 * r + 1] = AddInPlace16(acc[2 * r + 1], _mm256_maddubs_epi16(a, b1));
      } else {
        const __m256i ones = _mm256_set1_epi16(1);
        acc[2 * r] = AddInPlace32(acc[2 * r], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b0), ones));
        acc[2 * r + 1] =
            AddInPlace32(acc[2 * r + 1], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b1), ones));
      }
    }
  }
}

// One Steps callback for every AVX2 family: AccLoop into registers, then added to the int32 tile
// `out` (int16 sums of kMadd16 widened by vpmaddwd with ones first).
template <int MR, bool kS16, U8Op kOp>
__attribute__((noinline)) void Acc(const uint8_t* const* rows, const int8_t* panel, int steps,
                                   int32_t* out) {
  __m256i acc[2 * MR];
#pragma GCC unroll 12
  for (int i = 0; i < 2 * MR; ++i) acc[i] = _mm256_setzero_si256();
  AccLoop<MR, kS16, kOp>(acc, rows, panel, steps);
#pragma GCC unroll 12
  for (int i = 0; i < 2 * MR; ++i) {
    __m256i v = acc[i];
    if constexpr (!kS16 && kOp == U8Op::kMadd16) v = _mm256_madd_epi16(v, _mm256_set1_epi16(1));
    __m256i* o = reinterpret_cast<__m256i*>(out + 8 * i);
    _mm256_store_si256(o, _mm256_add_epi32(_mm256_load_si256(o), v));
  }
}

// Runs `acc(rows, panel, steps, out)` over k_bytes of A (steps of 4 bytes) in chunks of at most
// `chunk` steps; a partial last dword is copied to a zero-padded buffer (B's pad rows are 0).
// With acc64 != nullptr the int32 sums are moved to acc64 after every chunk.
template <int MR, class Acc>
void Steps(const uint8_t* const* rows, int k_bytes, const int8_t* panel, int chunk, Acc acc,
           int32_t* out, int64_t* acc64) {
  const int full = k_bytes / 4;
  const int steps = (k_bytes + 3) / 4;
  for (int i = 0; i < MR * 16; ++i) out[i] = 0;
  if (acc64) {
    for (int i = 0; i < MR * 16; ++i) acc64[i] = 0;
  }
  const uint8_t* at[MR];
  for (int s0 = 0; s0 < steps; s0 += chunk) {
    const int s1 = s0 + chunk < steps ? s0 + chunk : steps;
    const int sf = s1 < full ? s1 : full;
    if (sf > s0) {
      for (int r = 0; r < MR; ++r) at[r] = rows[r] + 4 * int64_t{s0};
      acc(at, panel + int64_t{64} * s0, sf - s0, out);
    }
    if (sf < s1) {  // the partial last dword
      uint32_t tail[MR];
      for (int r = 0; r < MR; ++r) {
        tail[r] = 0;
        std::memcpy(&tail[r], rows[r] + 4 * int64_t{full}, static_cast<size_t>(k_bytes - 4 * full));
        at[r] = reinterpret_cast<const uint8_t*>(&tail[r]);
      }
      acc(at, panel + int64_t{64} * full, 1, out);
    }
    if (acc64) {
      for (int i = 0; i < MR * 16; ++i) {
        acc64[i] += out[i];
        out[i] = 0;
      }
    }
  }
}

// ---- Epilogue: y = fmaf(ldexpf(float(acc), -row_exp), scale, bias) with acc = sums
// (+ mult * rowsum) + acc_bias in int32 (no overflow: proven per kernel).
// ldexpf(f, -e) for an integer-valued f: multiplying by the power of two rounds once exactly
// like ldexpf (both round the same real number f 2^-e), provided the factor is a float: one
// factor 2^-e for -127 <= e <= 126; else 2^-126 first (exact: |f| >= 1 stays normal) and then
// 2^-(e - 126) (a subnormal factor down to 2^-149; below that every result rounds to +-0, and
// so does a product with 0).
struct Pow2 {
  float f1 = 1.f, f2 = 1.f;
  bool two = false;
};
inline float Pow2Float(int neg_exp) {  // 2^-neg_exp, 0 below 2^-149
  if (neg_exp <= 126) {
    uint32_t bits = static_cast<uint32_t>(127 - neg_exp) << 23;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  if (neg_exp > 149) return 0.f;
  const uint32_t bits = uint32_t{1} << (149 - neg_exp);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline Pow2 MakePow2(int32_t e) {
  Pow2 p;
  if (e <= 126) {
    p.f1 = Pow2Float(e);  // e >= -127 (row exponents are >= -1)
  } else {
    p.f1 = Pow2Float(126);
    p.f2 = Pow2Float(e - 126);
    p.two = true;
  }
  return p;
}

template <int MR>
void Epilogue16(const int32_t* acc, const int32_t* rowsum, const Epilogue& ep, int m, int n0,
                int n_total, float* c, int64_t ldc) {
  Pow2 pw[MR];
  if (ep.row_exp) {
    for (int r = 0; r < MR; ++r) pw[r] = MakePow2(ep.row_exp[m + r]);
  }
  for (int j = 0; j < 2; ++j) {
    const int c0 = n0 + 8 * j;
    const int rem = n_total - c0;
    if (rem <= 0) break;
    const bool full = rem >= 8;
    const __m256i mask = LaneMask(full ? 8 : rem);
    const __m256i accb = ep.col_acc_bias
                             ? _mm256_maskload_epi32(ep.col_acc_bias + c0, mask)
                             : _mm256_setzero_si256();
    const __m256i mult = ep.col_rowsum_mult ? _mm256_maskload_epi32(ep.col_rowsum_mult + c0, mask)
                                            : _mm256_setzero_si256();
    const __m256 scale = _mm256_maskload_ps(ep.col_scale + c0, mask);
    const __m256 bias = ep.col_bias ? _mm256_maskload_ps(ep.col_bias + c0, mask) : _mm256_setzero_ps();
    for (int r = 0; r < MR; ++r) {
      __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(acc + (2 * r + j) * 8));
      if (ep.col_rowsum_mult) v = _mm256_add_epi32(v, _mm256_mullo_epi32(mult, _mm256_set1_epi32(rowsum[r])));
      v = _mm256_add_epi32(v, accb);
      __m256 f = _mm256_cvtepi32_ps(v);
      if (ep.row_exp) {
        f = _mm256_mul_ps(f, _mm256_set1_ps(pw[r].f1));
        if (pw[r].two) f = _mm256_mul_ps(f, _mm256_set1_ps(pw[r].f2));
      }
      const __m256 y = _mm256_fmadd_ps(f, scale, bias);
      float* out = c + (m + r) * ldc + c0;
      if (full) {
        _mm256_storeu_ps(out, y);
      } else {
        _mm256_maskstore_ps(out, mask, y);
      }
    }
  }
}

// int64 sums (long s16 K): the scalar epilogue (float(int64) rounds once, like the reference).
template <int MR>
void Epilogue16Wide(const int64_t* acc, const Epilogue& ep, int m, int n0, int n_total, float* c,
                    int64_t ldc) {
  for (int r = 0; r < MR; ++r) {
    for (int i = 0; i < 16 && n0 + i < n_total; ++i) {
      const int n = n0 + i;
      int64_t v = acc[(2 * r + i / 8) * 8 + i % 8];
      if (ep.col_acc_bias) v += ep.col_acc_bias[n];
      float f = static_cast<float>(v);
      if (ep.row_exp) f = std::ldexp(f, -ep.row_exp[m + r]);
      c[(m + r) * ldc + n] = std::fmaf(f, ep.col_scale[n], ep.col_bias ? ep.col_bias[n] : 0.f);
    }
  }
}

// ---- Tiles: rows [m, m + MR) x the 16 columns of panel v.
enum class U8Kind { kMadd, kNibbles, kVnni };

// Steps of vpmaddubsw results that int16 lanes can sum exactly (see the file comment).
inline int MaddChunk(int amax, int bmax) {
  if (amax <= 0 || bmax <= 0) return 1 << 30;
  return 32767 / (2 * amax * bmax);
}

template <int MR>
void TileMadd(const uint8_t* const* rows, int k, const int8_t* panel, int chunk, int32_t* acc) {
  if (chunk >= 4) {
    Steps<MR>(rows, k, panel, chunk, Acc<MR, false, U8Op::kMadd16>, acc, nullptr);
  } else {
    Steps<MR>(rows, k, panel, 1 << 30, Acc<MR, false, U8Op::kMadd32>, acc, nullptr);
  }
}

// Nibble split of the tile's A rows in blocks of kNibbleBlock bytes (zero-padded to a dword).
constexpr int kNibbleBlock = 512;

template <int MR>
void TileNibbles(const uint8_t* const* rows, int k, const int8_t* panel, int bmax, int32_t* acc) {
  alignas(32) uint8_t lo[MR][kNibbleBlock], hi[MR][kNibbleBlock];
  alignas(32) int32_t part_lo[MR * 16], part_hi[MR * 16];
  for (int i = 0; i < MR * 16; ++i) acc[i] = 0;
  const int chunk = MaddChunk(15, bmax);
  const __m256i low4 = _mm256_set1_epi8(15);
  for (int t0 = 0; t0 < k; t0 += kNibbleBlock) {
    const int len = k - t0 < kNibbleBlock ? k - t0 : kNibbleBlock;
    const int padded = (len + 3) / 4 * 4;
    const uint8_t* lo_rows[MR];
    const uint8_t* hi_rows[MR];
    for (int r = 0; r < MR; ++r) {
      const uint8_t* src = rows[r] + t0;
      int t = 0;
      for (; t + 32 <= len; t += 32) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + t));
        _mm256_store_si256(reinterpret_cast<__m256i*>(&lo[r][t]), _mm256_and_si256(v, low4));
        _mm256_store_si256(reinterpret_cast<__m256i*>(&hi[r][t]),
                           _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
      }
      for (; t < padded; ++t) {
        const uint8_t v = t < len ? src[t] : 0;
        lo[r][t] = v & 15;
        hi[r][t] = v >> 4;
      }
      lo_rows[r] = lo[r];
      hi_rows[r] = hi[r];
    }
    const int8_t* pb = panel + int64_t{t0} * 16;  // t0 is a multiple of 4: 16 bytes per k
    TileMadd<MR>(lo_rows, padded, pb, chunk, part_lo);
    TileMadd<MR>(hi_rows, padded, pb, chunk, part_hi);
    for (int i = 0; i < MR * 16; ++i) acc[i] += part_lo[i] + 16 * part_hi[i];
  }
}

template <int MR, U8Kind kKind>
void TileU8(const uint8_t* a, int64_t lda, int m, const PackedS8& b, int v, int chunk,
            const int32_t* rowsum, const Epilogue& ep, float* c, int64_t ldc) {
  alignas(32) int32_t acc[MR * 16];
  const uint8_t* rows[MR];
  for (int r = 0; r < MR; ++r) rows[r] = a + (m + r) * lda;
  const int8_t* panel = b.data.data() + int64_t{v} * b.kp * 16;
  if constexpr (kKind == U8Kind::kVnni) {
    Steps<MR>(rows, b.k, panel, 1 << 30, Acc<MR, false, U8Op::kVnni>, acc, nullptr);
  } else if constexpr (kKind == U8Kind::kMadd) {
    if (chunk >= 1) {
      TileMadd<MR>(rows, b.k, panel, chunk, acc);
    } else {  // 2 amax max_abs > 32767 (a caller outside the registry's bound): stay exact
      TileNibbles<MR>(rows, b.k, panel, b.max_abs, acc);
    }
  } else {
    TileNibbles<MR>(rows, b.k, panel, b.max_abs, acc);
  }
  Epilogue16<MR>(acc, rowsum, ep, m, v * 16, b.n, c, ldc);
}

// The vpmaddubsw tile when the whole K is one int16 chunk (b.k a multiple of 4, chunk >= b.k / 4)
// and the epilogue has no row-sum or row-exponent term: the int16 sums stay in registers down to
// the epilogue (no Steps / int32 tile round trip). accb16 / scale16 / bias16: the panel's 16
// columns (0 beyond b.n). Same numbers as TileU8 + Epilogue16: acc + acc_bias in int32, one
// conversion, fmaf(f, scale, bias); only the panel's valid `cols` are stored.
template <int MR, bool kVnni = false>
__attribute__((noinline)) void TileMaddOneChunk(const uint8_t* a, int64_t lda, int m,
                                                const int8_t* panel, int steps,
                                                const int32_t* accb16, const float* scale16,
                                                const float* bias16, float* c, int64_t ldc,
                                                int cols) {
  __m256i acc[2 * MR];
#pragma GCC unroll 12
  for (int i = 0; i < 2 * MR; ++i) acc[i] = _mm256_setzero_si256();
  const uint8_t* rows[MR];
  for (int r = 0; r < MR; ++r) rows[r] = a + (m + r) * lda;
  AccLoop<MR, false, kVnni ? U8Op::kVnni : U8Op::kMadd16>(acc, rows, panel, steps);
  const __m256i ones = _mm256_set1_epi16(1);
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    float* out = c + (m + r) * ldc;
    alignas(32) float tmp[16];
    for (int j = 0; j < 2; ++j) {
      const __m256i sums = kVnni ? acc[2 * r + j] : _mm256_madd_epi16(acc[2 * r + j], ones);
      const __m256i v =
          _mm256_add_epi32(sums, _mm256_load_si256(reinterpret_cast<const __m256i*>(accb16 + 8 * j)));
      const __m256 y = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_load_ps(scale16 + 8 * j),
                                       _mm256_load_ps(bias16 + 8 * j));
      if (cols == 16) {
        _mm256_storeu_ps(out + 8 * j, y);
      } else {
        _mm256_store_ps(tmp + 8 * j, y);
      }
    }
    if (cols != 16) std::memcpy(out, tmp, sizeof(float) * static_cast<size_t>(cols));
  }
}

// The s16 tile when its int32 sums need no int64 flush (b.k even, b.k / 2 steps within
// S16FlushSteps): the sums stay in registers down to the epilogue. Same numbers as TileS16 +
// Epilogue16 (acc + acc_bias, one conversion, the row's power of two, fmaf(f, scale, bias)).
template <int MR, bool kVnni>
__attribute__((noinline)) void TileS16OneChunk(const int16_t* a, int64_t lda, int m,
                                               const int8_t* panel, int steps,
                                               const int32_t* accb16, const float* scale16,
                                               const float* bias16, const int32_t* row_exp,
                                               float* c, int64_t ldc, int cols) {
  __m256i acc[2 * MR];
#pragma GCC unroll 12
  for (int i = 0; i < 2 * MR; ++i) acc[i] = _mm256_setzero_si256();
  const uint8_t* rows[MR];
  for (int r = 0; r < MR; ++r) rows[r] = reinterpret_cast<const uint8_t*>(a + (m + r) * lda);
  AccLoop<MR, true, kVnni ? U8Op::kVnni : U8Op::kMadd32>(acc, rows, panel, steps);
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    const Pow2 pw = row_exp ? MakePow2(row_exp[m + r]) : Pow2{};
    float* out = c + (m + r) * ldc;
    alignas(32) float tmp[16];
    for (int j = 0; j < 2; ++j) {
      const __m256i v = _mm256_add_epi32(
          acc[2 * r + j], _mm256_load_si256(reinterpret_cast<const __m256i*>(accb16 + 8 * j)));
      __m256 f = _mm256_cvtepi32_ps(v);
      if (row_exp) {
        f = _mm256_mul_ps(f, _mm256_set1_ps(pw.f1));
        if (pw.two) f = _mm256_mul_ps(f, _mm256_set1_ps(pw.f2));
      }
      const __m256 y =
          _mm256_fmadd_ps(f, _mm256_load_ps(scale16 + 8 * j), _mm256_load_ps(bias16 + 8 * j));
      if (cols == 16) {
        _mm256_storeu_ps(out + 8 * j, y);
      } else {
        _mm256_store_ps(tmp + 8 * j, y);
      }
    }
    if (cols != 16) std::memcpy(out, tmp, sizeof(float) * static_cast<size_t>(cols));
  }
}

// The panel's 16 columns of the epilogue's per-column terms, 0 beyond n (one-chunk tiles).
struct PanelTerms {
  alignas(32) int32_t accb[16] = {};
  alignas(32) float scale[16] = {};
  alignas(32) float bias[16] = {};
  int cols = 0;
  PanelTerms(const Epilogue& ep, int n0, int n) {
    cols = n - n0 < 16 ? n - n0 : 16;
    for (int j = 0; j < cols; ++j) {
      accb[j] = ep.col_acc_bias ? ep.col_acc_bias[n0 + j] : 0;
      scale[j] = ep.col_scale[n0 + j];
      bias[j] = ep.col_bias ? ep.col_bias[n0 + j] : 0.f;
    }
  }
};

inline int S16FlushSteps(const PackedS16& b) {
  if (b.max_abs <= 0) return 1 << 30;
  const int64_t steps = ((int64_t{1} << 31) - 1) / (int64_t{65536} * b.max_abs);
  return steps < 1 ? 1 : steps > (1 << 30) ? (1 << 30) : static_cast<int>(steps);
}

template <int MR, bool kVnni>
void TileS16(const int16_t* a, int64_t lda, int m, const PackedS16& b, int v, const Epilogue& ep,
             float* c, int64_t ldc) {
  alignas(32) int32_t acc[MR * 16];
  alignas(32) int64_t acc64[MR * 16];
  const uint8_t* rows[MR];
  for (int r = 0; r < MR; ++r) rows[r] = reinterpret_cast<const uint8_t*>(a + (m + r) * lda);
  const int8_t* panel = reinterpret_cast<const int8_t*>(b.data.data() + int64_t{v} * b.kp * 16);
  const int chunk = S16FlushSteps(b);
  const bool wide = (b.k + 1) / 2 > chunk;
  Steps<MR>(rows, 2 * b.k, panel, chunk, Acc<MR, true, kVnni ? U8Op::kVnni : U8Op::kMadd32>, acc, wide ? acc64 : nullptr);
  if (wide) {
    Epilogue16Wide<MR>(acc64, ep, m, v * 16, b.n, c, ldc);
  } else {
    static const int32_t kZero[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    Epilogue16<MR>(acc, kZero, ep, m, v * 16, b.n, c, ldc);
  }
}

// ---- Drivers: blocks of rows; inside a block the 16-column panels outer and the row tiles
// inner, so a panel (K x 16 bytes) is read from L2 once per block and then from L1 by every
// tile (rows-outer re-read it from L2 for every row tile). On BM_Qgemm 48x1152x384 the change
// was within the noise of the loaded machine (not a measured gain); kept for the smaller L2s of
// Zen 2/3 (512 KB), where qkv / fc1 weights (442 / 590 KB) do not fit.
template <U8Kind kKind>
void GemmU8S8(const uint8_t* a, int64_t lda, int m0, int m1, const PackedS8& b, const Epilogue& ep,
              float* c, int64_t ldc) {
  // 6 x 16 tiles: 12 accumulators + 2 B vectors + A + a product = 16 ymm, no spill (checked in
  // the disassembly); measured faster than 4 x 16 (BM_Qgemm 48x1152x384 A8 161 -> 197 GOP/s).
  // The nibble form keeps 4 rows (its split buffers are per row).
  constexpr int kMr = kKind == U8Kind::kNibbles ? 4 : 6;
  constexpr int kRowBlock = 48;  // a multiple of both tile heights
  const int npanels = (b.n + 15) / 16;
  int32_t rowsum[kRowBlock];
  int chunk[kRowBlock / kMr];
  for (int mb = m0; mb < m1; mb += kRowBlock) {
    const int me = m1 - mb < kRowBlock ? m1 : mb + kRowBlock;
    for (int r = 0; r < me - mb; ++r) {
      rowsum[r] = ep.col_rowsum_mult ? RowSumU8(a + (mb + r) * lda, b.k) : 0;
    }
    for (int m = mb; m < me; m += kMr) {
      const int mr = me - m < kMr ? me - m : kMr;
      chunk[(m - mb) / kMr] =
          kKind == U8Kind::kMadd ? MaddChunk(MaxRowsU8(a, lda, m, mr, b.k), b.max_abs) : 0;
    }
    // One-chunk tiles (TileMaddOneChunk) where every tile of the block sums all of K in int16
    // and the epilogue is per column only.
    // (AVX-VNNI: int32 sums, always one chunk.)
    constexpr bool kOneVnni = kKind == U8Kind::kVnni;
    bool one_chunk = (kKind == U8Kind::kMadd || kOneVnni) && b.k % 4 == 0 && !ep.col_rowsum_mult &&
                     !ep.row_exp;
    for (int m = mb; m < me && one_chunk && !kOneVnni; m += kMr) {
      one_chunk = chunk[(m - mb) / kMr] >= b.k / 4;
    }
    for (int v = 0; v < npanels; ++v) {
      if (one_chunk) {
        const PanelTerms pt(ep, 16 * v, b.n);
        const int32_t* accb16 = pt.accb;
        const float* scale16 = pt.scale;
        const float* bias16 = pt.bias;
        const int cols = pt.cols;
        const int8_t* panel = b.data.data() + int64_t{v} * b.kp * 16;
        float* cv = c + 16 * v;
        for (int m = mb; m < me; m += kMr) {
          switch (me - m < kMr ? me - m : kMr) {
            case 1: TileMaddOneChunk<1, kOneVnni>(a, lda, m, panel, b.k / 4, accb16, scale16, bias16, cv, ldc, cols); break;
            case 2: TileMaddOneChunk<2, kOneVnni>(a, lda, m, panel, b.k / 4, accb16, scale16, bias16, cv, ldc, cols); break;
            case 3: TileMaddOneChunk<3, kOneVnni>(a, lda, m, panel, b.k / 4, accb16, scale16, bias16, cv, ldc, cols); break;
            case 4: TileMaddOneChunk<4, kOneVnni>(a, lda, m, panel, b.k / 4, accb16, scale16, bias16, cv, ldc, cols); break;
            case 5: TileMaddOneChunk<(kMr >= 5 ? 5 : 1), kOneVnni>(a, lda, m, panel, b.k / 4, accb16, scale16, bias16, cv, ldc, cols); break;
            default: TileMaddOneChunk<(kMr >= 6 ? 6 : 1), kOneVnni>(a, lda, m, panel, b.k / 4, accb16, scale16, bias16, cv, ldc, cols); break;
          }
        }
        continue;
      }
      for (int m = mb; m < me; m += kMr) {
        const int mr = me - m < kMr ? me - m : kMr;
        const int ch = chunk[(m - mb) / kMr];
        const int32_t* rs = rowsum + (m - mb);
        switch (mr) {
          case 1: TileU8<1, kKind>(a, lda, m, b, v, ch, rs, ep, c, ldc); break;
          case 2: TileU8<2, kKind>(a, lda, m, b, v, ch, rs, ep, c, ldc); break;
          case 3: TileU8<3, kKind>(a, lda, m, b, v, ch, rs, ep, c, ldc); break;
          case 4: TileU8<4, kKind>(a, lda, m, b, v, ch, rs, ep, c, ldc); break;
          case 5: TileU8<(kMr >= 5 ? 5 : 1), kKind>(a, lda, m, b, v, ch, rs, ep, c, ldc); break;
          default: TileU8<(kMr >= 6 ? 6 : 1), kKind>(a, lda, m, b, v, ch, rs, ep, c, ldc); break;
        }
      }
    }
  }
}

template <bool kVnni>
void GemmS16S16(const int16_t* a, int64_t lda, int m0, int m1, const PackedS16& b,
                const Epilogue& ep, float* c, int64_t ldc) {
  constexpr int kMr = 6;  // 4 -> 6 rows: BM_LogFc2 148 -> 187 GOP/s (vpmaddwd), no spill
  constexpr int kRowBlock = 96;  // rows per block, panels inner (as the AVX-512 s16 kernel)
  const int npanels = (b.n + 15) / 16;
  // One-chunk tiles (TileS16OneChunk) when no int64 flush is needed (TileS16's `wide`).
  const bool one_chunk = b.k % 2 == 0 && b.k / 2 <= S16FlushSteps(b) && !ep.col_rowsum_mult;
  for (int mb = m0; mb < m1; mb += kRowBlock) {
    const int me = m1 - mb < kRowBlock ? m1 : mb + kRowBlock;
    for (int v = 0; v < npanels; ++v) {
      if (one_chunk) {
        const PanelTerms pt(ep, 16 * v, b.n);
        const int8_t* panel = reinterpret_cast<const int8_t*>(b.data.data() + int64_t{v} * b.kp * 16);
        float* cv = c + 16 * v;
        const int st = b.k / 2;
        for (int m = mb; m < me; m += kMr) {
          switch (me - m < kMr ? me - m : kMr) {
            case 1: TileS16OneChunk<1, kVnni>(a, lda, m, panel, st, pt.accb, pt.scale, pt.bias, ep.row_exp, cv, ldc, pt.cols); break;
            case 2: TileS16OneChunk<2, kVnni>(a, lda, m, panel, st, pt.accb, pt.scale, pt.bias, ep.row_exp, cv, ldc, pt.cols); break;
            case 3: TileS16OneChunk<3, kVnni>(a, lda, m, panel, st, pt.accb, pt.scale, pt.bias, ep.row_exp, cv, ldc, pt.cols); break;
            case 4: TileS16OneChunk<4, kVnni>(a, lda, m, panel, st, pt.accb, pt.scale, pt.bias, ep.row_exp, cv, ldc, pt.cols); break;
            case 5: TileS16OneChunk<(kMr >= 5 ? 5 : 1), kVnni>(a, lda, m, panel, st, pt.accb, pt.scale, pt.bias, ep.row_exp, cv, ldc, pt.cols); break;
            default: TileS16OneChunk<(kMr >= 6 ? 6 : 1), kVnni>(a, lda, m, panel, st, pt.accb, pt.scale, pt.bias, ep.row_exp, cv, ldc, pt.cols); break;
          }
        }
        continue;
      }
      for (int m = mb; m < me; m += kMr) {
        switch (me - m < kMr ? me - m : kMr) {
          case 1: TileS16<1, kVnni>(a, lda, m, b, v, ep, c, ldc); break;
          case 2: TileS16<2, kVnni>(a, lda, m, b, v, ep, c, ldc); break;
          case 3: TileS16<3, kVnni>(a, lda, m, b, v, ep, c, ldc); break;
          case 4: TileS16<4, kVnni>(a, lda, m, b, v, ep, c, ldc); break;
          case 5: TileS16<(kMr >= 5 ? 5 : 1), kVnni>(a, lda, m, b, v, ep, c, ldc); break;
          default: TileS16<(kMr >= 6 ? 6 : 1), kVnni>(a, lda, m, b, v, ep, c, ldc); break;
        }
      }
    }
  }
}

}  // namespace
}  // namespace adalog::intk::avx2
