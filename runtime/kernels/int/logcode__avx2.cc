// logcode_matmul_{u8s8,s16}__avx2 / __avxvnni and logcode_buckets_s32__avx2: row exponents, the
// decode of log codes to fixed-point levels (vpshufb windows), the V repack of attn@V, and the
// design's GEMM (the AVX2 / AVX-VNNI microkernels of qgemm_avx2_impl.h) or the bucket kernel
// (auto-vectorized with AVX2 flags). Same integers and bits as logcode.cc's scalar path.
#include <immintrin.h>

#include <climits>
#include <cstring>

#include "runtime/kernels/int/int_kernels.h"
#include "runtime/kernels/int/logcode_rows_impl.h"

namespace adalog::intk {
namespace {

int MinCodeAvx2(const uint8_t* c, int k) {
  __m256i mn = _mm256_set1_epi8(static_cast<char>(0xFF));
  int smin = 255;
  int j = 0;
  for (; j + 32 <= k; j += 32) {
    mn = _mm256_min_epu8(mn, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + j)));
  }
  for (; j < k; ++j) smin = c[j] < smin ? c[j] : smin;
  __m128i x = _mm_min_epu8(_mm256_castsi256_si128(mn), _mm256_extracti128_si256(mn, 1));
  x = _mm_min_epu8(x, _mm_srli_si128(x, 8));
  x = _mm_min_epu8(x, _mm_srli_si128(x, 4));
  x = _mm_min_epu8(x, _mm_srli_si128(x, 2));
  x = _mm_min_epu8(x, _mm_srli_si128(x, 1));
  const int v = _mm_cvtsi128_si32(x) & 0xFF;
  return v < smin ? v : smin;
}

// 32 codes from c + j (fewer than 32 left: copied, the rest arbitrary; the caller zeroes their
// outputs) as window indices: lo = (c - cmin) & 15 (saturating subtract), blk = (c - cmin) >> 4.
struct Idx {
  __m256i lo, blk, valid;
};
inline Idx WindowIndex(const uint8_t* c, int j, int k, __m256i base) {
  const __m256i fifteen = _mm256_set1_epi8(15);
  const __m256i lane = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                        17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31);
  const int rem = k - j;
  __m256i v;
  if (rem >= 32) {
    v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + j));
  } else {
    alignas(32) uint8_t tail[32] = {};
    if (rem > 0) std::memcpy(tail, c + j, static_cast<size_t>(rem));
    v = _mm256_load_si256(reinterpret_cast<const __m256i*>(tail));
  }
  const __m256i idx = _mm256_subs_epu8(v, base);
  Idx r;
  r.lo = _mm256_and_si256(idx, fifteen);
  r.blk = _mm256_srli_epi16(_mm256_andnot_si256(fifteen, idx), 4);  // idx >> 4, per byte
  r.valid = _mm256_cmpgt_epi8(_mm256_set1_epi8(static_cast<char>(rem >= 32 ? 32 : rem < 0 ? 0 : rem)), lane);
  return r;
}

// u8 levels through a window of at most 64 codes from cmin (4 vpshufb tables of 16).
struct WindowU8 {
  __m256i tab[4];
  int blocks = 0;
  int cmin = 0;
};

void DecodeRowU8Window(const uint8_t* c, int k, int kp, const WindowU8& w, uint8_t* out) {
  const __m256i base = _mm256_set1_epi8(static_cast<char>(w.cmin));
  for (int j = 0; j < kp; j += 32) {
    const Idx x = WindowIndex(c, j, k, base);
    __m256i r = _mm256_setzero_si256();
    for (int b = 0; b < w.blocks; ++b) {
      const __m256i sel = _mm256_cmpeq_epi8(x.blk, _mm256_set1_epi8(static_cast<char>(b)));
      r = _mm256_blendv_epi8(r, _mm256_shuffle_epi8(w.tab[b], x.lo), sel);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), _mm256_and_si256(r, x.valid));
  }
}

// s16 levels through a window of at most 32 codes from cmin: the low and high bytes of each
// level in two vpshufb tables per 16 codes, interleaved back to int16.
struct WindowS16 {
  __m256i lo[2], hi[2];
  int blocks = 0;
  int cmin = 0;
};

void DecodeRowS16Window(const uint8_t* c, int k, int kp, const WindowS16& w, int16_t* out) {
  const __m256i base = _mm256_set1_epi8(static_cast<char>(w.cmin));
  for (int j = 0; j < kp; j += 32) {
    const Idx x = WindowIndex(c, j, k, base);
    __m256i rl = _mm256_setzero_si256(), rh = _mm256_setzero_si256();
    for (int b = 0; b < w.blocks; ++b) {
      const __m256i sel = _mm256_cmpeq_epi8(x.blk, _mm256_set1_epi8(static_cast<char>(b)));
      rl = _mm256_blendv_epi8(rl, _mm256_shuffle_epi8(w.lo[b], x.lo), sel);
      rh = _mm256_blendv_epi8(rh, _mm256_shuffle_epi8(w.hi[b], x.lo), sel);
    }
    rl = _mm256_and_si256(rl, x.valid);
    rh = _mm256_and_si256(rh, x.valid);
    const __m256i u0 = _mm256_unpacklo_epi8(rl, rh);  // codes 0-7 | 16-23
    const __m256i u1 = _mm256_unpackhi_epi8(rl, rh);  // codes 8-15 | 24-31
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), _mm256_permute2x128_si256(u0, u1, 0x20));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j + 16),
                        _mm256_permute2x128_si256(u0, u1, 0x31));
  }
}

inline __m256i Table16(const uint8_t* t16) {
  return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t16)));
}

void LogRowsAvx2Impl(const LogMatmul& p, const uint8_t* codes, int64_t ld_codes, int m0, int m1,
                     float* y, int64_t ldy, LogScratch* s, bool vnni) {
  const int kp8 = detail::PaddedK8(p.k);
  const int kp16 = detail::PaddedK16(p.k);
  Epilogue ep = detail::RowEpilogue(p, s);
  const int table_size = LogTableSize(p.bits);
  int32_t lut_e = INT32_MIN;
  int lut_cmin = -1;
  uint8_t lut8[257];
  int16_t lut16[257];
  WindowU8 window;
  WindowS16 window16;
  bool window_ok = false;
  for (int m = m0; m < m1; ++m) {
    const uint8_t* c = codes + m * ld_codes;
    const int cmin = MinCodeAvx2(c, p.k);
    const int32_t e = p.tables.mult[static_cast<size_t>(cmin)] == 0
                          ? 0
                          : p.tables.shift[static_cast<size_t>(cmin)] + p.headroom;
    s->row_exp[static_cast<size_t>(m)] = e;
    if (p.design == LogDesign::kBuckets) {
      detail::BucketRow(p, c, e, s->buckets.data(), s->lut64.data(), s->acc64.data(), y + m * ldy);
      continue;
    }
    if (p.design == LogDesign::kS16) {
      if (e != lut_e || cmin != lut_cmin) {
        // The window [cmin, cmin + 32): the first 32 entries of the prepare-time window
        // (LogMatmul::window16), enough when every code from cmin + 32 on has level 0 at this
        // row's exponent (window16_covers bit 1); otherwise the full table is built.
        lut_e = e;
        lut_cmin = cmin;
        const int span = table_size - cmin < 32 ? table_size - cmin : 32;
        window_ok = (p.window16_covers[static_cast<size_t>(cmin)] & 2) != 0;
        if (window_ok) {
          const int16_t* t64 = p.window16.data() + static_cast<int64_t>(cmin) * 64;
          alignas(16) uint8_t lo[32] = {}, hi[32] = {};
          for (int i = 0; i < 32; ++i) {
            const uint16_t l = static_cast<uint16_t>(t64[i]);
            lo[i] = static_cast<uint8_t>(l & 0xFF);
            hi[i] = static_cast<uint8_t>(l >> 8);
          }
          window16.blocks = (span + 15) / 16;
          window16.cmin = cmin;
          for (int b = 0; b < 2; ++b) {
            window16.lo[b] = Table16(lo + 16 * b);
            window16.hi[b] = Table16(hi + 16 * b);
          }
        } else {
          detail::BuildLevelLut(p.tables, e, lut16);
        }
      }
      int16_t* out = s->l16.data() + static_cast<int64_t>(m) * kp16;
      if (window_ok) {
        DecodeRowS16Window(c, p.k, kp16, window16, out);
      } else {
        detail::DecodeRow(c, p.k, kp16, lut16, out);
      }
      continue;
    }
    if (e != lut_e || cmin != lut_cmin) {
      if (e != lut_e) detail::BuildLevelLut(p.tables, e, lut8);
      lut_e = e;
      lut_cmin = cmin;
      int last = table_size - 1;
      while (last >= cmin && lut8[last] == 0) --last;
      const int span = last - cmin + 1;
      window_ok = span <= 64;
      if (window_ok) {
        window.cmin = cmin;
        window.blocks = (span + 15) / 16;
        for (int b = 0; b < window.blocks; ++b) {
          alignas(16) uint8_t t16[16];
          for (int i = 0; i < 16; ++i) {
            const int code = cmin + 16 * b + i;
            t16[i] = code < table_size ? lut8[code] : 0;
          }
          window.tab[b] = Table16(t16);
        }
      }
    }
    uint8_t* out = s->l8.data() + static_cast<int64_t>(m) * kp8;
    if (window_ok) {
      DecodeRowU8Window(c, p.k, kp8, window, out);
    } else {
      detail::DecodeRow(c, p.k, kp8, lut8, out);
    }
  }
  if (p.design == LogDesign::kU8) {
    ep.col_rowsum_mult = p.col_rowsum_mult.data();
    const GemmU8S8Fn fn = vnni ? QgemmU8S8AvxVnni : SelectQgemmU8S8Avx2(p.packed8.max_abs);
    fn(s->l8.data(), kp8, m0, m1, p.packed8, ep, y, ldy);
  } else if (p.design == LogDesign::kS16) {
    (vnni ? QgemmS16S16AvxVnni : QgemmS16S16Avx2)(s->l16.data(), kp16, m0, m1, p.packed16, ep, y,
                                                  ldy);
  }
}

// 16 bytes of row t from column c0, `cols` (1..16) of them valid, the rest 0.
inline __m128i LoadCols(const uint8_t* src, int cols) {
  if (cols >= 16) return _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
  alignas(16) uint8_t t[16] = {};
  std::memcpy(t, src, static_cast<size_t>(cols));
  return _mm_load_si128(reinterpret_cast<const __m128i*>(t));
}

}  // namespace

void LogRowsAvx2(const LogMatmul& p, const uint8_t* codes, int64_t ld_codes, int m0, int m1,
                 float* y, int64_t ldy, LogScratch* s) {
  LogRowsAvx2Impl(p, codes, ld_codes, m0, m1, y, ldy, s, false);
}

void LogRowsAvxVnni(const LogMatmul& p, const uint8_t* codes, int64_t ld_codes, int m0, int m1,
                    float* y, int64_t ldy, LogScratch* s) {
  LogRowsAvx2Impl(p, codes, ld_codes, m0, m1, y, ldy, s, true);
}

// attn@V repack for the u8 design (as PackVTransposedS8Avx512): V [k][n] u8 -> (v - 128) s8
// panels [n/16][kp/4][16][4]; absent rows / columns 0.
void PackVTransposedS8Avx2(const uint8_t* v, int64_t ldv, int n, int k, PackedS8* b) {
  b->n = n;
  b->k = k;
  b->kp = (k + 3) / 4 * 4;
  b->max_abs = 128;
  const __m128i flip = _mm_set1_epi8(static_cast<char>(0x80));
  for (int p = 0; p < (n + 15) / 16; ++p) {
    int8_t* panel = b->data.data() + int64_t{p} * b->kp * 16;
    const int cols = n - 16 * p < 16 ? n - 16 * p : 16;
    alignas(16) uint8_t keep_bytes[16];
    for (int i = 0; i < 16; ++i) keep_bytes[i] = i < cols ? 0xFF : 0;
    const __m128i keep = _mm_load_si128(reinterpret_cast<const __m128i*>(keep_bytes));
    for (int s = 0; s < b->kp / 4; ++s) {
      __m128i r[4];
      for (int e = 0; e < 4; ++e) {
        const int t = 4 * s + e;
        // v - 128 as s8 is v ^ 0x80; absent columns are 0.
        r[e] = t < k ? _mm_and_si128(_mm_xor_si128(LoadCols(v + t * ldv + 16 * p, cols), flip), keep)
                     : _mm_setzero_si128();
      }
      const __m128i lo01 = _mm_unpacklo_epi8(r[0], r[1]), hi01 = _mm_unpackhi_epi8(r[0], r[1]);
      const __m128i lo23 = _mm_unpacklo_epi8(r[2], r[3]), hi23 = _mm_unpackhi_epi8(r[2], r[3]);
      int8_t* line = panel + s * 64;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(line), _mm_unpacklo_epi16(lo01, lo23));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(line + 16), _mm_unpackhi_epi16(lo01, lo23));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(line + 32), _mm_unpacklo_epi16(hi01, hi23));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(line + 48), _mm_unpackhi_epi16(hi01, hi23));
    }
  }
}

// attn@V repack for the s16 design (as PackVTransposedS16Avx512): V [k][n] u8 -> (v - zv) int16
// panels [n/16][kp/2][16][2]; absent rows / columns 0.
void PackVTransposedS16Avx2(const uint8_t* v, int64_t ldv, int n, int k, int32_t zv,
                            PackedS16* b) {
  b->n = n;
  b->k = k;
  b->kp = (k + 1) / 2 * 2;
  b->max_abs = zv > 255 - zv ? zv : 255 - zv;  // |v - zv| for u8 v
  const __m256i z = _mm256_set1_epi16(static_cast<int16_t>(zv));
  for (int p = 0; p < (n + 15) / 16; ++p) {
    int16_t* panel = b->data.data() + int64_t{p} * b->kp * 16;
    const int cols = n - 16 * p < 16 ? n - 16 * p : 16;
    alignas(32) int16_t keep_words[16];
    for (int i = 0; i < 16; ++i) keep_words[i] = i < cols ? int16_t{-1} : int16_t{0};
    const __m256i keep = _mm256_load_si256(reinterpret_cast<const __m256i*>(keep_words));
    for (int s = 0; s < b->kp / 2; ++s) {
      __m256i r[2];
      for (int e = 0; e < 2; ++e) {
        const int t = 2 * s + e;
        r[e] = t < k ? _mm256_and_si256(
                           _mm256_sub_epi16(_mm256_cvtepu8_epi16(LoadCols(v + t * ldv + 16 * p, cols)), z),
                           keep)
                     : _mm256_setzero_si256();
      }
      const __m256i lo = _mm256_unpacklo_epi16(r[0], r[1]);  // cols 0-3 | 8-11
      const __m256i hi = _mm256_unpackhi_epi16(r[0], r[1]);  // cols 4-7 | 12-15
      int16_t* line = panel + s * 32;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(line), _mm256_permute2x128_si256(lo, hi, 0x20));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(line + 16),
                          _mm256_permute2x128_si256(lo, hi, 0x31));
    }
  }
}

}  // namespace adalog::intk
