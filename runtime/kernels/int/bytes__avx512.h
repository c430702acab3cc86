// Byte helpers shared by the AVX-512 integer kernels. Include only from files compiled with
// AVX-512 flags (runtime/CMakeLists.txt, adalog_isa_sources).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace adalog::intk {

// The first `remaining` bytes of a 64-byte vector (all 64 when remaining >= 64).
inline __mmask64 ByteMask(int remaining) {
  return remaining >= 64 ? ~__mmask64{0} : (~__mmask64{0}) >> (64 - remaining);
}

// Horizontal unsigned byte maximum (kMax) or minimum of a zmm.
template <bool kMax>
inline int ReduceEpu8(__m512i v) {
  const auto op256 = [](__m256i a, __m256i b) {
    if constexpr (kMax) return _mm256_max_epu8(a, b);
    else return _mm256_min_epu8(a, b);
  };
  const auto op = [](__m128i a, __m128i b) {
    if constexpr (kMax) return _mm_max_epu8(a, b);
    else return _mm_min_epu8(a, b);
  };
  const __m256i m = op256(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
  __m128i x = op(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
  x = op(x, _mm_srli_si128(x, 8));
  x = op(x, _mm_srli_si128(x, 4));
  x = op(x, _mm_srli_si128(x, 2));
  x = op(x, _mm_srli_si128(x, 1));
  return _mm_cvtsi128_si32(x) & 0xFF;
}

}  // namespace adalog::intk
