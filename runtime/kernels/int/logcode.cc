// Log-code GEMM (attn@V with AdaLog probabilities, fc2 after Shift-AdaLog): prepare (B operand
// in each design's layout), per-row exponents and decode, and dispatch to the design's kernel.
#include <algorithm>
#include <cassert>
#include <cmath>
#include <string>
#include <vector>

#include "quant/error.h"
#include "runtime/kernel_registry.h"
#include "runtime/kernels/int/int_kernels.h"
#include "runtime/kernels/int/logcode_rows_impl.h"

namespace adalog::intk {

// logcode__avx512vnni.cc
void LogRowsAvx512(const LogMatmul& p, const uint8_t* codes, int64_t ld_codes, int m0, int m1,
                   float* y, int64_t ldy, LogScratch* s);
void PackVTransposedS8Avx512(const uint8_t* v, int64_t ldv, int n, int k, PackedS8* b);
void PackVTransposedS16Avx512(const uint8_t* v, int64_t ldv, int n, int k, int32_t zv,
                              PackedS16* b);

// logcode__avx2.cc
void LogRowsAvx2(const LogMatmul& p, const uint8_t* codes, int64_t ld_codes, int m0, int m1,
                 float* y, int64_t ldy, LogScratch* s);
void LogRowsAvxVnni(const LogMatmul& p, const uint8_t* codes, int64_t ld_codes, int m0, int m1,
                    float* y, int64_t ldy, LogScratch* s);
void PackVTransposedS8Avx2(const uint8_t* v, int64_t ldv, int n, int k, PackedS8* b);
void PackVTransposedS16Avx2(const uint8_t* v, int64_t ldv, int n, int k, int32_t zv,
                            PackedS16* b);

const char* LogDesignName(LogDesign d) {
  switch (d) {
    case LogDesign::kBuckets: return "logcode_buckets_s32";
    case LogDesign::kS16: return "logcode_matmul_s16";
    case LogDesign::kU8: return "logcode_matmul_u8s8";
  }
  return "?";
}

int LogDesignHeadroom(LogDesign d, int32_t D) {
  if (d == LogDesign::kBuckets) return 32;
  const int32_t limit = d == LogDesign::kS16 ? 32767 : 255;
  int h = -8;
  while ((int64_t{D} << (h + 1 + 8)) <= (int64_t{limit} << 8)) ++h;
  return h;  // largest h with D * 2^h <= limit (D <= 510, so h >= -1)
}

int64_t LogLevelFixed(const AdaLogTables& t, int32_t code, int32_t e) {
  const int64_t m = t.mult[static_cast<size_t>(code)];
  if (m == 0) return 0;
  const int32_t s = e - t.shift[static_cast<size_t>(code)];
  // s > 32 only for codes below the row's minimum code, which never occur in that row (decode
  // tables are built for every code): give them 0 rather than an overflowing shift.
  if (s > 32) return 0;
  if (s >= 0) return m << s;
  if (-s > 31) return 0;
  return m >> -s;
}

int32_t LogRowExp(const LogMatmul& p, const uint8_t* codes_row) {
  const int cmin = detail::MinCode(codes_row, p.k);
  if (p.tables.mult[static_cast<size_t>(cmin)] == 0) return 0;
  return p.tables.shift[static_cast<size_t>(cmin)] + p.headroom;
}

namespace {

// Writes the uniform operand (element (n, k) = at(n, k)) into the design's layout, in place
// (no allocation once the storage exists: RepackLogMatmulB runs per head at inference).
template <typename At>
void FillLayout(LogMatmul* p, At at) {
  const int n = p->n, k = p->k;
  switch (p->design) {
    case LogDesign::kBuckets:
      for (int j = 0; j < k; ++j) {
        for (int o = 0; o < n; ++o) {
          p->b16[static_cast<size_t>(j) * n + o] = static_cast<int16_t>(at(o, j) - p->zu[o]);
        }
      }
      break;
    case LogDesign::kS16: {
      PackedS16& b = p->packed16;
      b.n = n;
      b.k = k;
      b.kp = (k + 1) / 2 * 2;
      for (int v = 0; v < (n + 15) / 16; ++v) {
        int16_t* panel = b.data.data() + int64_t{v} * b.kp * 16;
        for (int s = 0; s < b.kp / 2; ++s) {
          for (int col = 0; col < 16; ++col) {
            const int o = v * 16 + col;
            for (int e = 0; e < 2; ++e) {
              const int j = 2 * s + e;
              panel[s * 32 + col * 2 + e] =
                  (o < n && j < k) ? static_cast<int16_t>(at(o, j) - p->zu[o]) : int16_t{0};
            }
          }
        }
      }
      // Decoded rows are zero-padded (to a multiple of 32) and pad rows of B are 0: run over kp.
      b.k = b.kp;
      b.max_abs = MaxAbsS16(b.data);
      break;
    }
    case LogDesign::kU8: {
      PackedS8& b = p->packed8;
      b.n = n;
      b.k = k;
      b.kp = (k + 3) / 4 * 4;
      for (int v = 0; v < (n + 15) / 16; ++v) {
        int8_t* panel = b.data.data() + int64_t{v} * b.kp * 16;
        for (int s = 0; s < b.kp / 4; ++s) {
          for (int col = 0; col < 16; ++col) {
            const int o = v * 16 + col;
            for (int e = 0; e < 4; ++e) {
              const int j = 4 * s + e;
              panel[s * 64 + col * 4 + e] =
                  (o < n && j < k) ? static_cast<int8_t>(at(o, j) - 128) : int8_t{0};
            }
          }
        }
      }
      for (int o = 0; o < n; ++o) p->col_rowsum_mult[o] = 128 - p->zu[o];
      // The decoded rows are zero-padded to a multiple of 64 and the pad rows of B are 0, so the
      // kernel may run over kp: no partial dword step (same integer result).
      b.k = b.kp;
      break;
    }
  }
}

// A decline reason (static, so selection inside Run allocates nothing).
const char* DesignIs(LogDesign d) {
  switch (d) {
    case LogDesign::kBuckets: return "design is logcode_buckets_s32";
    case LogDesign::kS16: return "design is logcode_matmul_s16";
    case LogDesign::kU8: return "design is logcode_matmul_u8s8";
  }
  return "design is ?";
}

// The B operand's fill: the AVX-512 packs of a transposed V (attn@V's per-head repack) produce
// the same bytes as FillLayout, vectorized. Chosen at ActiveIsaLevel() (no per-call cap).
struct FillConfig {
  LogDesign design;
  bool transposed;
  bool uniform_zu;  // one zero point for every column (attn@V: per head)
};
using FillFn = void (*)(LogMatmul* p, const uint8_t* u, int64_t ldu);

void FillTransposedU8Avx512(LogMatmul* p, const uint8_t* u, int64_t ldu) {
  PackVTransposedS8Avx512(u, ldu, p->n, p->k, &p->packed8);  // same bytes, vectorized
  for (int o = 0; o < p->n; ++o) p->col_rowsum_mult[o] = 128 - p->zu[o];
  p->packed8.k = p->packed8.kp;  // see FillLayout
}

void FillTransposedS16Avx512(LogMatmul* p, const uint8_t* u, int64_t ldu) {
  PackVTransposedS16Avx512(u, ldu, p->n, p->k, p->zu[0], &p->packed16);
  p->packed16.k = p->packed16.kp;  // see FillLayout
}

void FillTransposedU8Avx2(LogMatmul* p, const uint8_t* u, int64_t ldu) {
  PackVTransposedS8Avx2(u, ldu, p->n, p->k, &p->packed8);  // same bytes, vectorized
  for (int o = 0; o < p->n; ++o) p->col_rowsum_mult[o] = 128 - p->zu[o];
  p->packed8.k = p->packed8.kp;  // see FillLayout
}

void FillTransposedS16Avx2(LogMatmul* p, const uint8_t* u, int64_t ldu) {
  PackVTransposedS16Avx2(u, ldu, p->n, p->k, p->zu[0], &p->packed16);
  p->packed16.k = p->packed16.kp;  // see FillLayout
}

void FillTransposedScalar(LogMatmul* p, const uint8_t* u, int64_t ldu) {
  FillLayout(p, [u, ldu](int o, int j) -> int32_t { return u[j * ldu + o]; });
}

void FillRowsScalar(LogMatmul* p, const uint8_t* u, int64_t ldu) {
  FillLayout(p, [u, ldu](int o, int j) -> int32_t { return u[o * ldu + j]; });
}

void FillB(LogMatmul* p, const uint8_t* u, int64_t ldu, bool transposed) {
  using Impl = KernelImpl<FillFn, FillConfig>;
  static const std::vector<Impl> list = {
      {"logcode_pack_vt_u8s8__avx512vnni", IsaLevel::kAvx512Vnni,
       [](const FillConfig& c) -> const char* {
         if (!c.transposed) return "B is not a transposed V";
         if (c.design != LogDesign::kU8) return DesignIs(c.design);
         return nullptr;
       },
       FillTransposedU8Avx512},
      {"logcode_pack_vt_s16__avx512vnni", IsaLevel::kAvx512Vnni,
       [](const FillConfig& c) -> const char* {
         if (!c.transposed) return "B is not a transposed V";
         if (c.design != LogDesign::kS16) return DesignIs(c.design);
         if (!c.uniform_zu) return "zero points differ between columns";
         return nullptr;
       },
       FillTransposedS16Avx512},
      {"logcode_pack_vt_u8s8__avx2", IsaLevel::kAvx2,
       [](const FillConfig& c) -> const char* {
         if (!c.transposed) return "B is not a transposed V";
         if (c.design != LogDesign::kU8) return DesignIs(c.design);
         return nullptr;
       },
       FillTransposedU8Avx2},
      {"logcode_pack_vt_s16__avx2", IsaLevel::kAvx2,
       [](const FillConfig& c) -> const char* {
         if (!c.transposed) return "B is not a transposed V";
         if (c.design != LogDesign::kS16) return DesignIs(c.design);
         if (!c.uniform_zu) return "zero points differ between columns";
         return nullptr;
       },
       FillTransposedS16Avx2},
      {"logcode_pack_vt__scalar", IsaLevel::kRef,
       [](const FillConfig& c) { return c.transposed ? nullptr : "B is not a transposed V"; },
       FillTransposedScalar},
      {"logcode_pack_b__scalar", IsaLevel::kRef, {}, FillRowsScalar},
  };
  const FillConfig config{
      p->design, transposed,
      std::all_of(p->zu.begin(), p->zu.end(), [&](int32_t z) { return z == p->zu[0]; })};
  SelectKernel("logcode_pack_b", list, config, ActiveIsaLevel(), [&] {
    return std::string(LogDesignName(config.design)) + (transposed ? ", transposed V" : ", rows") +
           (config.uniform_zu ? ", one zero point" : ", per-column zero points");
  }).fn(p, u, ldu);
}

}  // namespace

LogMatmul PrepareLogMatmul(LogDesign design, const AdaLogTables& t, const uint8_t* u,
                           int64_t ldu, int n, int k, const int32_t* zu, const float* alpha,
                           const float* bias) {
  ADALOG_CHECK(n > 0 && k > 0 && k <= kMaxK, "PrepareLogMatmul: n = ", n, ", k = ", k);
  ADALOG_CHECK(t.bits >= 2 && t.bits <= 8, "PrepareLogMatmul: bits = ", t.bits);
  ADALOG_CHECK(t.shift.size() == static_cast<size_t>(LogTableSize(t.bits)) &&
                   t.mult.size() == t.shift.size(),
               "PrepareLogMatmul: table size ", t.shift.size());
  for (size_t c = 0; c < t.mult.size(); ++c) {
    ADALOG_CHECK(t.mult[c] >= 0 && t.mult[c] <= t.D && t.D <= 510 && t.shift[c] >= 0,
                 "PrepareLogMatmul: bad table entry ", c);
    ADALOG_CHECK(c == 0 || t.mult[c] == 0 || t.shift[c] >= t.shift[c - 1],
                 "PrepareLogMatmul: shift table not non-decreasing at ", c);
  }
  LogMatmul p;
  p.design = design;
  p.n = n;
  p.k = k;
  p.bits = t.bits;
  p.zero_code = LogZeroCode(t.bits);
  p.tables = t;
  p.headroom = LogDesignHeadroom(design, t.D);
  p.zu.assign(zu, zu + n);
  for (int o = 0; o < n; ++o) ADALOG_CHECK(zu[o] >= 0 && zu[o] <= 255, "PrepareLogMatmul: zu = ", zu[o]);
  p.col_scale.assign(alpha, alpha + n);
  p.col_bias.assign(static_cast<size_t>(n), 0.f);
  if (bias) p.col_bias.assign(bias, bias + n);
  if (design == LogDesign::kBuckets) p.b16.resize(static_cast<size_t>(n) * k);
  if (design == LogDesign::kS16) p.packed16.data.assign(static_cast<size_t>(PackedS16Size(n, k)), 0);
  if (design == LogDesign::kU8) {
    p.col_rowsum_mult.resize(static_cast<size_t>(n));
    p.packed8.data.assign(static_cast<size_t>(PackedS8Size(n, k)), 0);
  }
  if (design == LogDesign::kS16) {
    const int size = LogTableSize(t.bits);
    p.window16.assign(static_cast<size_t>(size) * 64, 0);
    p.window16_covers.assign(static_cast<size_t>(size), 0);
    for (int c = 0; c < size; ++c) {
      const int32_t e = t.mult[static_cast<size_t>(c)] == 0
                            ? 0
                            : t.shift[static_cast<size_t>(c)] + p.headroom;
      for (int i = 0; i < 64 && c + i < size; ++i) {
        // int16 like the decode LUT (static_cast of the level; s16 levels are < 2^15)
        p.window16[static_cast<size_t>(c) * 64 + i] =
            static_cast<int16_t>(LogLevelFixed(t, c + i, e));
      }
      for (int w = 0; w < 2; ++w) {
        bool covers = true;
        for (int cc = c + (w == 0 ? 64 : 32); cc < size && covers; ++cc) {
          covers = LogLevelFixed(t, cc, e) == 0;
        }
        if (covers) p.window16_covers[static_cast<size_t>(c)] |= static_cast<uint8_t>(1 << w);
      }
    }
  }
  FillB(&p, u, ldu, false);
  return p;
}

void RepackLogMatmulB(LogMatmul* p, const uint8_t* v, int64_t ldv, bool transposed, int32_t zu,
                      float alpha) {
  std::fill(p->zu.begin(), p->zu.end(), zu);
  std::fill(p->col_scale.begin(), p->col_scale.end(), alpha);
  FillB(p, v, ldv, transposed);
}

LogScratch MakeLogScratch(const LogMatmul& p, int max_m) {
  LogScratch s;
  s.row_exp.resize(static_cast<size_t>(max_m));
  const int kp8 = detail::PaddedK8(p.k);
  const int kp16 = detail::PaddedK16(p.k);
  if (p.design == LogDesign::kU8) s.l8.resize(static_cast<size_t>(max_m) * kp8);
  if (p.design == LogDesign::kS16) s.l16.resize(static_cast<size_t>(max_m) * kp16);
  if (p.design == LogDesign::kBuckets) {
    s.buckets.resize(static_cast<size_t>(LogTableSize(p.bits)) * p.n);
    s.acc64.resize(static_cast<size_t>(p.n));
  }
  s.lut64.resize(static_cast<size_t>(LogTableSize(p.bits)));
  return s;
}

namespace {

void LogRowsScalar(const LogMatmul& p, const uint8_t* codes, int64_t ld_codes, int m0, int m1,
                   float* y, int64_t ldy, LogScratch* s) {
  const int kp8 = detail::PaddedK8(p.k);
  const int kp16 = detail::PaddedK16(p.k);
  Epilogue ep = detail::RowEpilogue(p, s);
  for (int m = m0; m < m1; ++m) {
    const uint8_t* c = codes + m * ld_codes;
    const int32_t e = LogRowExp(p, c);
    s->row_exp[static_cast<size_t>(m)] = e;
    if (p.design == LogDesign::kBuckets) {
      detail::BucketRow(p, c, e, s->buckets.data(), s->lut64.data(), s->acc64.data(), y + m * ldy);
    } else if (p.design == LogDesign::kU8) {
      uint8_t lut[257];
      detail::BuildLevelLut(p.tables, e, lut);
      detail::DecodeRow(c, p.k, kp8, lut, s->l8.data() + static_cast<int64_t>(m) * kp8);
    } else {
      int16_t lut[257];
      detail::BuildLevelLut(p.tables, e, lut);
      detail::DecodeRow(c, p.k, kp16, lut, s->l16.data() + static_cast<int64_t>(m) * kp16);
    }
  }
  if (p.design == LogDesign::kU8) {
    ep.col_rowsum_mult = p.col_rowsum_mult.data();
    QgemmU8S8Packed(s->l8.data(), kp8, m0, m1, p.packed8, ep, y, ldy);
  } else if (p.design == LogDesign::kS16) {
    QgemmS16S16Packed(s->l16.data(), kp16, m0, m1, p.packed16, ep, y, ldy);
  }
}

}  // namespace

namespace {

// Every design has a VNNI row kernel (vector decode, the VNNI microkernels; buckets compiled at
// the AVX-512 level) and a portable one; the design itself is the caller's choice
// (IntPathOptions), so an implementation declines the designs it is not.
using RowsFn = void (*)(const LogMatmul&, const uint8_t*, int64_t, int, int, float*, int64_t,
                        LogScratch*);

const KernelImpl<RowsFn, LogDesign>& SelectLogRows(LogDesign design, IsaLevel cap) {
  using Impl = KernelImpl<RowsFn, LogDesign>;
  auto only = [](LogDesign d) {
    return [d](const LogDesign& c) { return c == d ? nullptr : DesignIs(c); };
  };
  static const std::vector<Impl> list = {
      {"logcode_matmul_u8s8__avx512vnni", IsaLevel::kAvx512Vnni, only(LogDesign::kU8), LogRowsAvx512},
      {"logcode_matmul_s16__avx512vnni", IsaLevel::kAvx512Vnni, only(LogDesign::kS16), LogRowsAvx512},
      {"logcode_buckets_s32__avx512vnni", IsaLevel::kAvx512Vnni, only(LogDesign::kBuckets),
       LogRowsAvx512},
      // AVX2 level: AVX-VNNI microkernels where the CPU has them, else vpmaddwd (s16) and the
      // nibble-split vpmaddubsw (u8: levels up to 255 against u - 128 would saturate a single
      // vpmaddubsw); the bucket design is the shared row kernel compiled with AVX2 flags.
      {"logcode_matmul_u8s8__avxvnni", IsaLevel::kAvx2,
       [](const LogDesign& c) { return c == LogDesign::kU8 ? AvxVnniDecline() : DesignIs(c); },
       LogRowsAvxVnni},
      // VEX vpdpwssd: measured faster than vpmaddwd + vpaddd on this AVX-VNNI CPU (AMD EPYC with
      // avx_vnni, 1 thread, bench_int_kernels, ADALOG_ISA=avx2 with / without
      // ADALOG_NO_AVXVNNI: BM_LogFc2 197x1536->384 200 vs 172 GOP/s, BM_LogAttnV 146 vs 122).
      {"logcode_matmul_s16__avxvnni", IsaLevel::kAvx2,
       [](const LogDesign& c) { return c == LogDesign::kS16 ? AvxVnniDecline() : DesignIs(c); },
       LogRowsAvxVnni},
      {"logcode_matmul_u8s8__avx2", IsaLevel::kAvx2, only(LogDesign::kU8), LogRowsAvx2},
      {"logcode_matmul_s16__avx2", IsaLevel::kAvx2, only(LogDesign::kS16), LogRowsAvx2},
      {"logcode_buckets_s32__avx2", IsaLevel::kAvx2, only(LogDesign::kBuckets), LogRowsAvx2},
      {"logcode_matmul_u8s8__scalar", IsaLevel::kRef, only(LogDesign::kU8), LogRowsScalar},
      {"logcode_matmul_s16__scalar", IsaLevel::kRef, only(LogDesign::kS16), LogRowsScalar},
      {"logcode_buckets_s32__scalar", IsaLevel::kRef, {}, LogRowsScalar},  // the remaining design
  };
  return SelectKernel("logcode_matmul", list, design, cap,
                      [design] { return std::string(LogDesignName(design)); });
}

}  // namespace

const char* LogMatmulImplName(LogDesign design, IsaLevel cap) {
  return SelectLogRows(design, cap).name;
}

void RunLogMatmul(const LogMatmul& p, const uint8_t* codes, int64_t ld_codes, int m0, int m1,
                  float* y, int64_t ldy, LogScratch* s, IsaLevel cap) {
  assert(m1 <= static_cast<int>(s->row_exp.size()) && "scratch made for fewer rows");
  SelectLogRows(p.design, cap).fn(p, codes, ld_codes, m0, m1, y, ldy, s);
}

}  // namespace adalog::intk
