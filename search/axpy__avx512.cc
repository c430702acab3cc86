// AVX-512 AxpyF32F64 (compiled with AVX-512 flags and -ffp-contract=off, see
// search/CMakeLists.txt).
#include <immintrin.h>

#include <algorithm>

#include "search/axpy.h"

namespace adalog::search {

void AxpyF32F64Avx512(double* a, double d, const float* w, int n) {
  const __m512d vd = _mm512_set1_pd(d);
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512d w0 = _mm512_cvtps_pd(_mm256_loadu_ps(w + i));
    const __m512d w1 = _mm512_cvtps_pd(_mm256_loadu_ps(w + i + 8));
    _mm512_storeu_pd(a + i, _mm512_add_pd(_mm512_loadu_pd(a + i), _mm512_mul_pd(vd, w0)));
    _mm512_storeu_pd(a + i + 8, _mm512_add_pd(_mm512_loadu_pd(a + i + 8), _mm512_mul_pd(vd, w1)));
  }
  for (; i < n; ++i) a[i] += d * static_cast<double>(w[i]);
}

void AxpyF64Avx512(double* a, double d, const double* g, int n) {
  const __m512d vd = _mm512_set1_pd(d);
  int i = 0;
  for (; i + 8 <= n; i += 8)
    _mm512_storeu_pd(a + i, _mm512_add_pd(_mm512_loadu_pd(a + i), _mm512_mul_pd(vd, _mm512_loadu_pd(g + i))));
  for (; i < n; ++i) a[i] += d * g[i];
}

void RowUpdateAvx512(double* a, const float* w, int ldw, const int32_t* k, const double* d,
                     int cnt, int n) {
  int i = 0;
  // 64 doubles (8 registers) of the row at a time, all updates applied in list order.
  for (; i + 64 <= n; i += 64) {
    __m512d acc[8];
    for (int j = 0; j < 8; ++j) acc[j] = _mm512_loadu_pd(a + i + 8 * j);
    for (int e = 0; e < cnt; ++e) {
      const __m512d vd = _mm512_set1_pd(d[e]);
      const float* wr = w + static_cast<int64_t>(k[e]) * ldw + i;
      for (int j = 0; j < 8; ++j)
        acc[j] = _mm512_add_pd(acc[j], _mm512_mul_pd(vd, _mm512_cvtps_pd(_mm256_loadu_ps(wr + 8 * j))));
    }
    for (int j = 0; j < 8; ++j) _mm512_storeu_pd(a + i + 8 * j, acc[j]);
  }
  for (; i + 8 <= n; i += 8) {
    __m512d acc = _mm512_loadu_pd(a + i);
    for (int e = 0; e < cnt; ++e) {
      const float* wr = w + static_cast<int64_t>(k[e]) * ldw + i;
      acc = _mm512_add_pd(acc, _mm512_mul_pd(_mm512_set1_pd(d[e]), _mm512_cvtps_pd(_mm256_loadu_ps(wr))));
    }
    _mm512_storeu_pd(a + i, acc);
  }
  for (; i < n; ++i)
    for (int e = 0; e < cnt; ++e) a[i] += d[e] * static_cast<double>(w[static_cast<int64_t>(k[e]) * ldw + i]);
}

int SweepSnapshotsAvx512(const int64_t* g, int64_t nev, const uint32_t* rp, const int32_t* rk, int K,
                         const float* wc, double* S, int32_t* sid) {
  static_assert(kSweepChunk == 64, "8 registers of 8 doubles");
  // Two partial sums (elements of even / odd row rank) halve the add latency chain.
  __m512d m0[8], m1[8];
  for (int i = 0; i < 8; ++i) m0[i] = m1[i] = _mm512_setzero_pd();
  int r = 0, ns = 0, r_snap = 0;
  for (int64_t e = 0; e < nev; ++e) {
    const int64_t ge = g[e];
    if ((r & 1) && r < K && rp[r] < ge) {
      const float* w = wc + static_cast<int64_t>(rk[r]) * 64;
      for (int i = 0; i < 8; ++i) m1[i] = _mm512_add_pd(m1[i], _mm512_cvtps_pd(_mm256_loadu_ps(w + 8 * i)));
      ++r;
    }
    while (r + 1 < K && rp[r + 1] < ge) {  // rp ascending: both elements r, r + 1 are in
      const float* w0 = wc + static_cast<int64_t>(rk[r]) * 64;
      const float* w1 = wc + static_cast<int64_t>(rk[r + 1]) * 64;
      for (int i = 0; i < 8; ++i) {
        m0[i] = _mm512_add_pd(m0[i], _mm512_cvtps_pd(_mm256_loadu_ps(w0 + 8 * i)));
        m1[i] = _mm512_add_pd(m1[i], _mm512_cvtps_pd(_mm256_loadu_ps(w1 + 8 * i)));
      }
      r += 2;
    }
    if (r < K && rp[r] < ge) {  // r even here
      const float* w = wc + static_cast<int64_t>(rk[r]) * 64;
      for (int i = 0; i < 8; ++i) m0[i] = _mm512_add_pd(m0[i], _mm512_cvtps_pd(_mm256_loadu_ps(w + 8 * i)));
      ++r;
    }
    if (r > r_snap) {
      double* s = S + static_cast<int64_t>(ns) * 64;
      for (int i = 0; i < 8; ++i) _mm512_storeu_pd(s + 8 * i, _mm512_add_pd(m0[i], m1[i]));
      ++ns;
      r_snap = r;
    }
    sid[e] = ns - 1;
  }
  return ns;
}

void SweepSubtractAvx512(const int64_t* g, const int32_t* item, int64_t nev, const int32_t* rk, int K,
                         const float* wc, double* acc) {
  static_assert(kSweepChunk == 64, "8 registers of 8 doubles");
  __m512d m0[8], m1[8];
  for (int i = 0; i < 8; ++i) m0[i] = m1[i] = _mm512_setzero_pd();
  // The source rows come in the row's sorted order (random in wc): fetched a few rows ahead.
  constexpr int kAhead = 6;
  for (int p = 0; p < kAhead && p < K; ++p) {
    const char* w = reinterpret_cast<const char*>(wc + static_cast<int64_t>(rk[p]) * 64);
    for (int b = 0; b < 256; b += 64) _mm_prefetch(w + b, _MM_HINT_T0);
  }
  auto add = [&](__m512d* m, int r) {
    if (r + kAhead < K) {
      const char* f = reinterpret_cast<const char*>(wc + static_cast<int64_t>(rk[r + kAhead]) * 64);
      for (int b = 0; b < 256; b += 64) _mm_prefetch(f + b, _MM_HINT_T0);
    }
    const float* w = wc + static_cast<int64_t>(rk[r]) * 64;
    for (int i = 0; i < 8; ++i) m[i] = _mm512_add_pd(m[i], _mm512_cvtps_pd(_mm256_loadu_ps(w + 8 * i)));
  };
  int r = 0;
  for (int64_t e = 0; e < nev; ++e) {
    const int64_t ge = std::min<int64_t>(g[e], K);
    if ((r & 1) && r < ge) add(m1, r++);
    while (r + 1 < ge) {
      add(m0, r);
      add(m1, r + 1);
      r += 2;
    }
    if (r < ge) add(m0, r++);
    double* a = acc + static_cast<int64_t>(item[e]) * 64;
    for (int i = 0; i < 8; ++i)
      _mm512_storeu_pd(a + 8 * i, _mm512_sub_pd(_mm512_loadu_pd(a + 8 * i), _mm512_add_pd(m0[i], m1[i])));
  }
}

void SweepCombineAvx512(double l0, const double* cs, const double* a, const int32_t* ev, int cnt,
                        const int32_t* sid, const double* S, double* out) {
  __m512d acc[8];
  const __m512d vl = _mm512_set1_pd(l0);
  for (int i = 0; i < 8; ++i) acc[i] = _mm512_mul_pd(vl, _mm512_loadu_pd(cs + 8 * i));
  for (int e = 0; e < cnt; ++e) {
    const int32_t s = sid[ev[e]];
    if (s < 0) continue;
    const double* p = S + static_cast<int64_t>(s) * 64;
    const __m512d va = _mm512_set1_pd(a[e]);
    for (int i = 0; i < 8; ++i) acc[i] = _mm512_add_pd(acc[i], _mm512_mul_pd(va, _mm512_loadu_pd(p + 8 * i)));
  }
  for (int i = 0; i < 8; ++i) _mm512_storeu_pd(out + 8 * i, acc[i]);
}

}  // namespace adalog::search
