// qgemm_u8s8_s32__avxvnni and qgemm_s16s16_s32__avxvnni: the AVX2-level microkernels of
// qgemm_avx2_impl.h with the VEX-encoded vpdpbusd / vpdpwssd (AVX-VNNI: Alder Lake and later
// Intel cores, AMD Zen 5). Compiled with -mavxvnni; called only after a run-time check.
#define ADALOG_AVXVNNI 1
#include <immintrin.h>

#include "runtime/kernels/int/int_kernels.h"
#include "runtime/kernels/int/qgemm_avx2_impl.h"

namespace adalog::intk {

void QgemmU8S8AvxVnni(const uint8_t* a, int64_t lda, int m0, int m1, const PackedS8& b,
                      const Epilogue& ep, float* c, int64_t ldc) {
  avx2::GemmU8S8<avx2::U8Kind::kVnni>(a, lda, m0, m1, b, ep, c, ldc);
}

void QgemmS16S16AvxVnni(const int16_t* a, int64_t lda, int m0, int m1, const PackedS16& b,
                        const Epilogue& ep, float* c, int64_t ldc) {
  avx2::GemmS16S16<true>(a, lda, m0, m1, b, ep, c, ldc);
}

}  // namespace adalog::intk
