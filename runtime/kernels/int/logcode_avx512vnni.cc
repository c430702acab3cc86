// logcode_matmul_{u8s8,s16}__avx512vnni and logcode_buckets_s32__avx512: row exponents, decode
// of log codes to fixed-point levels, and the design's GEMM (the VNNI microkernels of
// qgemm_avx512vnni.cc) or the bucket kernel (auto-vectorized here with AVX-512 flags).
#include "runtime/kernels/int/int_kernels.h"
#include "runtime/kernels/int/logcode_rows_impl.h"

namespace adalog::intk {

void LogRowsAvx512(const LogMatmul& p, const uint8_t* codes, int64_t ld_codes, int m0, int m1,
                   float* y, int64_t ldy, LogScratch* s) {
  const int kp8 = (p.k + 63) / 64 * 64;
  const int kp16 = (p.k + 31) / 32 * 32;
  Epilogue ep;
  ep.col_scale = p.col_scale.data();
  ep.col_bias = p.col_bias.data();
  ep.row_exp = s->row_exp.data();
  int32_t lut_e = INT32_MIN;
  uint8_t lut8[257];
  int16_t lut16[257];
  for (int m = m0; m < m1; ++m) {
    const uint8_t* c = codes + m * ld_codes;
    const int32_t e = LogRowExp(p, c);
    s->row_exp[static_cast<size_t>(m)] = e;
    if (p.design == LogDesign::kBuckets) {
      detail::BucketRow(p, c, e, s->buckets.data(), s->lut64.data(), s->acc64.data(), y + m * ldy);
      continue;
    }
    if (e != lut_e) {
      if (p.design == LogDesign::kU8) {
        detail::BuildLevelLut(p.tables, e, lut8);
      } else {
        detail::BuildLevelLut(p.tables, e, lut16);
      }
      lut_e = e;
    }
    if (p.design == LogDesign::kU8) {
      detail::DecodeRow(c, p.k, kp8, lut8, s->l8.data() + static_cast<int64_t>(m) * kp8);
    } else {
      detail::DecodeRow(c, p.k, kp16, lut16, s->l16.data() + static_cast<int64_t>(m) * kp16);
    }
  }
  if (p.design == LogDesign::kU8) {
    ep.col_rowsum_mult = p.col_rowsum_mult.data();
    QgemmU8S8Avx512Vnni(s->l8.data(), kp8, m0, m1, p.packed8, ep, y, ldy);
  } else if (p.design == LogDesign::kS16) {
    QgemmS16S16Avx512Vnni(s->l16.data(), kp16, m0, m1, p.packed16, ep, y, ldy);
  }
}

}  // namespace adalog::intk
