// logcode_matmul_{u8s8,s16}__avx512vnni and logcode_buckets_s32__avx512: row exponents, decode
// of log codes to fixed-point levels, the V repack of attn@V, and the design's GEMM (the VNNI
// microkernels of qgemm__avx512vnni.cc) or the bucket kernel (auto-vectorized with AVX-512 flags).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cassert>

#include "runtime/kernels/int/bytes__avx512.h"
#include "runtime/kernels/int/int_kernels.h"
#include "runtime/kernels/int/logcode_rows_impl.h"

namespace adalog::intk {
namespace {

int MinCodeAvx512(const uint8_t* c, int k) {
  __m512i mn = _mm512_set1_epi8(static_cast<char>(0xFF));
  for (int j = 0; j < k; j += 64) {
    const __m512i v = _mm512_mask_loadu_epi8(_mm512_set1_epi8(static_cast<char>(0xFF)),
                                             ByteMask(k - j), c + j);
    mn = _mm512_min_epu8(mn, v);
  }
  return ReduceEpu8<false>(mn);
}

// u8 decode through a window of at most 64 codes starting at cmin: idx = c - cmin (saturating);
// levels for idx >= window are 0 (checked by the caller). 4 x 16-entry vpshufb tables.
struct WindowLut {
  __m512i tab[4];  // each: the 16 entries of block b broadcast to the 4 lanes
  int blocks = 0;
  int cmin = 0;
};

void DecodeRowU8Window(const uint8_t* c, int k, int kp, const WindowLut& w, uint8_t* out) {
  const __m512i base = _mm512_set1_epi8(static_cast<char>(w.cmin));
  const __m512i fifteen = _mm512_set1_epi8(15);
  for (int j = 0; j < kp; j += 64) {
    const __mmask64 m = ByteMask(k - j);
    const __m512i v = _mm512_maskz_loadu_epi8(m, c + j);
    const __m512i idx = _mm512_subs_epu8(v, base);
    const __m512i lo = _mm512_and_si512(idx, fifteen);
    const __m512i hi = _mm512_srli_epi16(_mm512_andnot_si512(fifteen, idx), 4);  // idx >> 4
    __m512i r = _mm512_setzero_si512();
    for (int b = 0; b < w.blocks; ++b) {
      const __mmask64 sel = _mm512_cmpeq_epi8_mask(hi, _mm512_set1_epi8(static_cast<char>(b)));
      r = _mm512_mask_shuffle_epi8(r, sel, w.tab[b], lo);
    }
    // Pad columns (j >= k) must decode to 0: masked-off lanes are zeroed.
    _mm512_storeu_si512(out + j, _mm512_maskz_mov_epi8(m, r));
  }
}

// s16 decode through a window of at most 64 codes starting at cmin: one vpermi2w per 32 codes.
struct WindowLut16 {
  __m512i lo, hi;  // entries 0..31 and 32..63 of the window
  int span = 0;
  int cmin = 0;
};

void DecodeRowS16Window(const uint8_t* c, int k, int kp, const WindowLut16& w, int16_t* out) {
  const __m512i base = _mm512_set1_epi16(static_cast<int16_t>(w.cmin));
  const __m512i span = _mm512_set1_epi16(static_cast<int16_t>(w.span));
  for (int j = 0; j < kp; j += 32) {
    const int rem = k - j;
    const __mmask32 m = rem >= 32 ? ~__mmask32{0} : rem <= 0 ? 0 : (~__mmask32{0}) >> (32 - rem);
    const __m512i v = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, c + j));
    const __m512i idx = _mm512_subs_epu16(v, base);
    const __mmask32 in = _mm512_cmplt_epu16_mask(idx, span) & m;
    _mm512_storeu_si512(out + j, _mm512_maskz_permutex2var_epi16(in, w.lo, idx, w.hi));
  }
}

}  // namespace

void LogRowsAvx512(const LogMatmul& p, const uint8_t* codes, int64_t ld_codes, int m0, int m1,
                   float* y, int64_t ldy, LogScratch* s) {
  const int kp8 = detail::PaddedK8(p.k);
  const int kp16 = detail::PaddedK16(p.k);
  Epilogue ep = detail::RowEpilogue(p, s);
  const int table_size = LogTableSize(p.bits);
  int32_t lut_e = INT32_MIN;
  int lut_cmin = -1;
  uint8_t lut8[257];
  int16_t lut16[257];
  WindowLut window;
  WindowLut16 window16;
  bool window_ok = false;
  assert((p.design != LogDesign::kS16 ||
          p.window16_covers.size() == static_cast<size_t>(table_size)) &&
         "kS16 LogMatmul without its prepare-time windows");
  for (int m = m0; m < m1; ++m) {
    const uint8_t* c = codes + m * ld_codes;
    const int cmin = MinCodeAvx512(c, p.k);
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
        // The window [cmin, cmin + 64) made at prepare (LogMatmul::window16) is enough when every
        // code from cmin + 64 on has level 0 at this row's exponent (window16_covers bit 0);
        // otherwise the full table is built.
        lut_e = e;
        lut_cmin = cmin;
        window_ok = (p.window16_covers[static_cast<size_t>(cmin)] & 1) != 0;
        if (window_ok) {
          const int16_t* t64 = p.window16.data() + static_cast<int64_t>(cmin) * 64;
          const int span = table_size - cmin < 64 ? table_size - cmin : 64;
          window16.lo = _mm512_loadu_si512(t64);
          window16.hi = _mm512_loadu_si512(t64 + 32);
          window16.span = span < 1 ? 0 : span;
          window16.cmin = cmin;
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
      // Window: codes below cmin do not occur in this row; codes >= cmin + 16 * blocks must
      // all decode to 0 for the vector path.
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
          window.tab[b] = _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<__m128i*>(t16)));
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
    QgemmU8S8Avx512Vnni(s->l8.data(), kp8, m0, m1, p.packed8, ep, y, ldy);
  } else if (p.design == LogDesign::kS16) {
    QgemmS16S16Avx512Vnni(s->l16.data(), kp16, m0, m1, p.packed16, ep, y, ldy);
  }
}

// attn@V repack for the u8 design: V [k][n] u8 (rows ldv apart) -> packed (v - 128) s8 panels
// [n/16][kp/4][16][4]. 4 rows x 16 columns per step: byte/word interleaves give the 64-byte
// panel line (column-major dwords of 4 consecutive k). Columns beyond n and rows beyond k are 0.
void PackVTransposedS8Avx512(const uint8_t* v, int64_t ldv, int n, int k, PackedS8* b) {
  b->n = n;
  b->k = k;
  b->kp = (k + 3) / 4 * 4;
  const __m128i flip = _mm_set1_epi8(static_cast<char>(0x80));
  for (int p = 0; p < (n + 15) / 16; ++p) {
    int8_t* panel = b->data.data() + int64_t{p} * b->kp * 16;
    const int cols = n - 16 * p < 16 ? n - 16 * p : 16;
    const __mmask16 cm = static_cast<__mmask16>(cols >= 16 ? 0xFFFF : (1u << cols) - 1u);
    for (int s = 0; s < b->kp / 4; ++s) {
      __m128i r[4];
      for (int e = 0; e < 4; ++e) {
        const int t = 4 * s + e;
        // v - 128 as s8 is v ^ 0x80; absent rows/columns are 0.
        r[e] = t < k ? _mm_maskz_xor_epi32(0xF, _mm_maskz_loadu_epi8(cm, v + t * ldv + 16 * p),
                                           flip)
                     : _mm_setzero_si128();
        if (t < k) r[e] = _mm_maskz_mov_epi8(cm, r[e]);
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

// attn@V repack for the s16 design: V [k][n] u8 -> packed (v - zv) int16 panels
// [n/16][kp/2][16][2]; 2 rows x 16 columns per step. Columns beyond n and rows beyond k are 0.
void PackVTransposedS16Avx512(const uint8_t* v, int64_t ldv, int n, int k, int32_t zv,
                              PackedS16* b) {
  b->n = n;
  b->k = k;
  b->kp = (k + 1) / 2 * 2;
  b->max_abs = zv > 255 - zv ? zv : 255 - zv;  // |v - zv| for u8 v
  const __m256i z = _mm256_set1_epi16(static_cast<int16_t>(zv));
  for (int p = 0; p < (n + 15) / 16; ++p) {
    int16_t* panel = b->data.data() + int64_t{p} * b->kp * 16;
    const int cols = n - 16 * p < 16 ? n - 16 * p : 16;
    const __mmask16 cm = static_cast<__mmask16>(cols >= 16 ? 0xFFFF : (1u << cols) - 1u);
    for (int s = 0; s < b->kp / 2; ++s) {
      __m256i r[2];
      for (int e = 0; e < 2; ++e) {
        const int t = 2 * s + e;
        r[e] = t < k ? _mm256_maskz_sub_epi16(
                           cm, _mm256_cvtepu8_epi16(_mm_maskz_loadu_epi8(cm, v + t * ldv + 16 * p)),
                           z)
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
