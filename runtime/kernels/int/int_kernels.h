// Integer GEMM kernels of the integer executor: the uniform int8 GEMM (Linear layers), q@k^T per
// head, and the log-code GEMMs (attn@V with AdaLog probabilities, fc2 after Shift-AdaLog), with
// their prepare steps, packed layouts and run-time dispatch. Math: quant/README.md and
// runtime/kernels/README.md; scalar references: runtime/kernels/reference/int_gemm_ref.h,
// logcode_ref.h.
//
// Common epilogue (every kernel here, all implementations, bit-exact):
//   acc[m][n] = exact integer (int64 in math; the kernels prove their int32 pieces cannot overflow)
//   y[m][n]   = fmaf(ldexpf(float(acc[m][n]), -row_exp[m]), col_scale[n], col_bias[n])
// float(acc) rounds half-to-even (cvtsi2ss / vcvtdq2ps / vcvtqq2ps); ldexpf is exact unless the
// result is subnormal (then rounded once, as _mm512_scalef_ps); fmaf rounds once. Scaling the
// accumulator (not the scale) by 2^-row_exp keeps full precision whenever the output itself is a
// normal float (a subnormal alpha 2^-E would not). row_exp is 0
// for the uniform GEMMs; col_bias is 0 when absent (fmaf(x, s, 0) = x*s rounded once, -0 -> +0).
//
// Run functions are single-threaded and take a row range; they never allocate (workspaces are
// sized at prepare). Prepare validates and throws adalog::Error.
#pragma once

#include <cstdint>
#include <vector>

#include "quant/log_quantizers.h"
#include "runtime/cpu_features.h"

namespace adalog::intk {

inline constexpr int kMaxK = 4096;  // bounds the int32 accumulators (quant/README.md)

// ---------------------------------------------------------------------------------------------
// Packed B operands (the GEMM's [N][K] "weights" side, K contiguous per output column n).
// S8:  [ceil(N/16)][Kp/4][16][4] int8,  Kp = round_up(K, 4); pad rows/columns are 0.
// S16: [ceil(N/16)][Kp/2][16][2] int16, Kp = round_up(K, 2); pad rows/columns are 0.
// One 64-byte line holds 16 columns x (4 int8 | 2 int16) consecutive k: the vpdpbusd / vpdpwssd
// operand for 16 output columns.
struct PackedS8 {
  int n = 0, k = 0, kp = 0;
  // A bound on |b| over the panels: 128 unless a packer set a tighter one (PackS8 / PackS8Into
  // compute it). The AVX2 vpmaddubsw kernel sizes its int16 sums from it (qgemm_avx2_impl.h), so
  // it must never be below the true maximum.
  int32_t max_abs = 128;
  std::vector<int8_t> data;
};
struct PackedS16 {
  int n = 0, k = 0, kp = 0;
  // A bound on |b| over the panels: 255 (u8 codes minus a zero point) unless a packer set a
  // tighter one. The VNNI kernel sizes its int32 chunks from it (a vpdpwssd lane adds at most
  // 2 * 32768 * max_abs per dword step before an int64 flush).
  int32_t max_abs = 255;
  std::vector<int16_t> data;
};
// Largest |x| over data (the packers' max_abs).
int32_t MaxAbsS16(const std::vector<int16_t>& data);
void PackS8(const int8_t* b, int64_t ldb, int n, int k, PackedS8* out);     // b: [n][k]
void PackS16(const int16_t* b, int64_t ldb, int n, int k, PackedS16* out);  // b: [n][k]
// Packs into existing storage (run time; p->data must hold PackedS8Size(n, k) bytes).
void PackS8Into(const int8_t* b, int64_t ldb, int n, int k, PackedS8* p);
int64_t PackedS8Size(int n, int k);
int64_t PackedS16Size(int n, int k);

// Epilogue arrays (see the equation above). acc[m][n] = sum_k A[m][k] B[n][k]
//   + col_rowsum_mult[n] * sum_k A[m][k]   (when col_rowsum_mult != nullptr)
//   + col_acc_bias[n]                      (when col_acc_bias != nullptr)
struct Epilogue {
  const int32_t* col_acc_bias = nullptr;     // [N]
  const int32_t* col_rowsum_mult = nullptr;  // [N]
  const float* col_scale = nullptr;          // [N], required
  const float* col_bias = nullptr;           // [N] or null (0)
  const int32_t* row_exp = nullptr;          // [M] (indexed by the absolute row) or null (0)
};

// Raw GEMM implementations (C[m][n] for m in [m0, m1), all n). A rows: lda apart.
using GemmU8S8Fn = void (*)(const uint8_t* a, int64_t lda, int m0, int m1, const PackedS8& b,
                            const Epilogue& ep, float* c, int64_t ldc);
using GemmS16S16Fn = void (*)(const int16_t* a, int64_t lda, int m0, int m1, const PackedS16& b,
                              const Epilogue& ep, float* c, int64_t ldc);
// qgemm_u8s8_s32__avx512vnni / qgemm_s16s16_s32__avx512vnni (runtime/kernels/int/*__avx512vnni.cc).
void QgemmU8S8Avx512Vnni(const uint8_t* a, int64_t lda, int m0, int m1, const PackedS8& b,
                         const Epilogue& ep, float* c, int64_t ldc);
void QgemmS16S16Avx512Vnni(const int16_t* a, int64_t lda, int m0, int m1, const PackedS16& b,
                           const Epilogue& ep, float* c, int64_t ldc);
// Matmul1Head's B operand, AVX-512: rows b[j][0..k) u8 (ldb apart) for j < n, packed as
// s8 (b - sub) into p (PackS8Into's layout, pads 0; p->data sized for n, k); row_sum[j] =
// sum_t (b[j][t] - sub). Returns max_j,t b[j][t] (0 for n = 0).
int32_t MaxU8RowsAvx512(const uint8_t* b, int64_t ldb, int n, int k);
void PackU8MinusAvx512(const uint8_t* b, int64_t ldb, int n, int k, int32_t sub, PackedS8* p,
                       int32_t* row_sum);
// AVX2 level (runtime/kernels/int/qgemm__avx2.cc, qgemm__avxvnni.cc; exactness proofs in
// qgemm_avx2_impl.h). 16-column tiles on the same packed panels.
//   qgemm_u8s8_s32_maddubsw__avx2: vpmaddubsw + int16 sums sized from the tile's max a and
//     b.max_abs; exact for any u8 a when b.max_abs <= 64 (<= 6-bit weights), and for larger |b|
//     it switches, per tile, to the nibble form when 2 max(a) b.max_abs > 32767.
//   qgemm_u8s8_s32_nibbles__avx2: a = 16 a_hi + a_lo, two vpmaddubsw passes; exact for any s8 b.
//   qgemm_u8s8_s32__avxvnni / qgemm_s16s16_s32__avxvnni: VEX vpdpbusd / vpdpwssd (AVX-VNNI).
//   qgemm_s16s16_s32__avx2: vpmaddwd, int64 flushes as the VNNI s16 kernel.
void QgemmU8S8MaddAvx2(const uint8_t* a, int64_t lda, int m0, int m1, const PackedS8& b,
                       const Epilogue& ep, float* c, int64_t ldc);
void QgemmU8S8NibblesAvx2(const uint8_t* a, int64_t lda, int m0, int m1, const PackedS8& b,
                          const Epilogue& ep, float* c, int64_t ldc);
void QgemmU8S8AvxVnni(const uint8_t* a, int64_t lda, int m0, int m1, const PackedS8& b,
                      const Epilogue& ep, float* c, int64_t ldc);
void QgemmS16S16Avx2(const int16_t* a, int64_t lda, int m0, int m1, const PackedS16& b,
                     const Epilogue& ep, float* c, int64_t ldc);
void QgemmS16S16AvxVnni(const int16_t* a, int64_t lda, int m0, int m1, const PackedS16& b,
                        const Epilogue& ep, float* c, int64_t ldc);
// The AVX2-level u8 x s8 kernel for a B bound (ordered list "qgemm_u8s8_s32_avx2": AVX-VNNI,
// vpmaddubsw when max_abs <= 64, the nibble form; ADALOG_VERBOSE prints the declines).
GemmU8S8Fn SelectQgemmU8S8Avx2(int32_t max_abs);
// "" / nullptr when the AVX-VNNI kernels may run, else why not: the CPU lacks the avx_vnni flag,
// or ADALOG_NO_AVXVNNI is set to a value other than "0" (to run and time the plain AVX2 kernels
// on a CPU that has AVX-VNNI). Read at every call (no allocation).
const char* AvxVnniDecline();
// Matmul1Head's B operand, AVX2: min and max over rows b[j][0..k) (0, 0 when empty), and the
// pack of PackU8MinusAvx512 with p->max_abs = max_abs (the caller's bound on |b - sub|).
void MinMaxU8RowsAvx2(const uint8_t* b, int64_t ldb, int n, int k, int32_t* mn, int32_t* mx);
void PackU8MinusAvx2(const uint8_t* b, int64_t ldb, int n, int k, int32_t sub, int32_t max_abs,
                     PackedS8* p, int32_t* row_sum);
// Scalar fallbacks on the packed operands (any x86-64), same results.
void QgemmU8S8Packed(const uint8_t* a, int64_t lda, int m0, int m1, const PackedS8& b,
                     const Epilogue& ep, float* c, int64_t ldc);
void QgemmS16S16Packed(const int16_t* a, int64_t lda, int m0, int m1, const PackedS16& b,
                       const Epilogue& ep, float* c, int64_t ldc);

// ---------------------------------------------------------------------------------------------
// 1. Uniform int8 Linear: y[m][n] = sa sw[n] sum_k (a[m][k] - za)(w[n][k] - zw[n]) + bias[n]
//   a: u8 activation codes [M][K], per-tensor (sa, za), za in [0, 255].
//   w: u8 weight codes [N][K], per output row (sw[n], zw[n]), `bits` in 2..8.
// Stored weight (s8): w8[n][k] = w[n][k] - c[n],  c[n] = zw[n] (bits <= 7: |w - zw| <= 127)
//                                                  c[n] = 128   (bits == 8: w - 128 in [-128, 127])
//   e[n] = c[n] - zw[n]  (0 for bits <= 7), so (w - zw) = w8 + e[n] and
//   sum_k (a - za)(w8 + e) = sum_k a w8 + e[n] sum_k a - za sum_k w8[n][k] - K za e[n]
//   col_rowsum_mult[n] = e[n] (only when bits == 8), col_acc_bias[n] = -za sum_k w8 - K za e[n],
//   col_scale[n] = sa * sw[n] (float product), col_bias[n] = bias[n] (or 0).
// |acc| < 2^31 for K <= 4096 (255 * 255 * 4096 < 2^28 per term).
// kAvx2: the AVX2 family (RunQLinear picks vpmaddubsw or the nibble form by the weights' bound,
// SelectQgemmU8S8Avx2); kAvxVnni: the AVX-VNNI kernel.
enum class QgemmImpl { kAuto, kAvx512Vnni, kAvxVnni, kAvx2, kOnednn, kPackedScalar, kReference };
const char* QgemmImplName(QgemmImpl impl);

struct OnednnQgemm;  // opaque oneDNN state (runtime/kernels/int/qgemm_onednn.cc)

struct QLinear {
  int n = 0, k = 0, bits = 8, za = 0;
  float sa = 1.f;
  std::vector<int8_t> w8;             // [N][K] stored weight (see above), reference/oneDNN input
  PackedS8 packed;                    // VNNI panels of w8
  std::vector<int32_t> col_acc_bias;  // [N]
  std::vector<int32_t> col_rowsum_mult;  // [N], empty when bits <= 7
  std::vector<float> col_scale;       // [N]
  std::vector<float> col_bias;        // [N]
  Epilogue epilogue() const;
};
// w: [n][k] u8 codes; sw, zw: [n]; bias: [n] or null. Throws adalog::Error on bad sizes/params.
QLinear PrepareQLinear(const uint8_t* w, int n, int k, int bits, const float* sw,
                       const int32_t* zw, float sa, int32_t za, const float* bias);
// The implementation kAuto picks for this CPU (ordered list; ADALOG_VERBOSE prints declines).
QgemmImpl SelectQgemmImpl(IsaLevel cap);
// y rows [m0, m1) of a [M][K] (lda) into c [M][N] (ldc). kOnednn is not row-ranged: it needs
// m0 == 0 and an OnednnQgemm made for m1 rows (MakeOnednnQgemm); other impls ignore `dnn`.
void RunQLinear(const QLinear& p, QgemmImpl impl, const uint8_t* a, int64_t lda, int m0, int m1,
                float* c, int64_t ldc, OnednnQgemm* dnn = nullptr);

// oneDNN u8 x s8 -> s32 matmul for a fixed M (weights reordered to the primitive's preferred
// layout at creation), followed by this file's epilogue. Returns null when oneDNN declines, and
// below the avx512vnni level (oneDNN's pre-VNNI int8 path saturates int16 pair sums).
OnednnQgemm* MakeOnednnQgemm(const QLinear& p, int m);
void FreeOnednnQgemm(OnednnQgemm* d);

// ---------------------------------------------------------------------------------------------
// 2. q @ k^T for one head: s[i][j] = alpha * sum_t (q[i][t] - zq)(k[j][t] - zk)
//   q: u8 [tq][d] (ldq), k: u8 [tk][d] (ldk), zq, zk in [0, 255], alpha: float (the caller's
//   sq * sk [* attention scale], one float). k is stored as k8 = k - 128 (s8), e = 128 - zk:
//   acc = sum q k8 + e sum_t q - zq sum_t k8[j] - d zq e; y = fmaf(float(acc), alpha, 0).
struct Matmul1Workspace {
  PackedS8 packed;
  std::vector<int8_t> k8;
  std::vector<int32_t> col_acc_bias, col_rowsum_mult;
  std::vector<float> col_scale;
};
Matmul1Workspace MakeMatmul1Workspace(int max_tokens, int head_dim);
// Rows [0, tq) of s (lds). Uses the VNNI kernel when available, else the packed scalar one.
void Matmul1Head(const uint8_t* q, int64_t ldq, const uint8_t* k, int64_t ldk, int tq, int tk,
                 int d, int32_t zq, int32_t zk, float alpha, float* s, int64_t lds,
                 Matmul1Workspace* ws, IsaLevel cap = ActiveIsaLevel());

// ---------------------------------------------------------------------------------------------
// 3. Log-code GEMM: y[m][n] = alpha[n] * sum_k level(c[m][k]) * (u[n][k] - zu[n]) + bias[n]
//   c: log codes (u8, 0..2^b, zero code 2^b) [M][K] with AdaLog tables (T1 = shift, m = mult,
//   D); level(c) = m[c] 2^-T1[c] / D. u: u8 uniform codes with per-column zero point zu[n].
//   attn@V: c = P codes [T][T] (K = T), u[n][k] = V[k][n] (d columns), zu = zv, alpha = s_p sv/D.
//   fc2:    c = post-GELU codes [M][K], u = W [N][K], zu = zw[n], alpha[n] = s_a sw[n] / D,
//           bias = bias' (GELU shift already folded).
// Exact integer form with a per-row exponent E (design-dependent headroom H):
//   tmin_m = T1[min_k c[m][k]]  (T1 is non-decreasing in c; the zero code is the largest code)
//   E_m    = tmin_m + H   (row all zero codes: E_m = 0, every L = 0)
//   L_E(c) = 0 if mult[c] == 0, else floor(mult[c] * 2^(E - T1[c]))   (nonnegative; a right
//            shift by more than 31 gives 0: the saturation of the table's large shifts)
//   acc    = sum_k L_E(c[m][k]) * (u[n][k] - zu[n])     (exact integer)
//   y      = fmaf(ldexpf(float(acc), -E_m), alpha[n], bias[n])
// Designs (runtime/kernels/README.md has the numbers):
//   kBuckets (a): H = 32, int64. Per row, int32 bucket sums over equal codes, then one multiply
//                 per (code, column). Exact to 2^-32 of the row's largest level.
//   kS16     (b): H = largest h with D 2^h <= 32767 (6 at 8 bits), L in int16, vpdpwssd with
//                 int32 partial sums flushed to int64 every 256 k (no overflow for K <= 4096).
//   kU8      (c): H = largest h with D 2^h <= 255 (-1 at 8 bits), L in u8, vpdpbusd against
//                 u - 128 (s8) plus (128 - zu) * sum_k L (the int8 GEMM's compensation).
// Deviation from the real-valued decode: each floored term loses < 1 unit of 2^-E, so
//   |y - y_real| <= |alpha| 2^-E sum_k |u - zu| + (fp32 epilogue rounding)   (tested).
enum class LogDesign { kBuckets, kS16, kU8 };
const char* LogDesignName(LogDesign d);
int LogDesignHeadroom(LogDesign d, int32_t D);

struct LogMatmul {
  LogDesign design = LogDesign::kU8;
  int n = 0, k = 0, bits = 4;
  int32_t zero_code = 16;
  AdaLogTables tables;
  int headroom = 0;
  std::vector<int32_t> lut_code_t1;  // [256] T1 by code (codes > 2^b never occur)
  // B operand (u - zu) in the design's layout:
  std::vector<int16_t> b16;          // kBuckets: [K][N] int16 row-major (u - zu)
  PackedS16 packed16;                // kS16: packed (u - zu)
  PackedS8 packed8;                  // kU8: packed (u - 128)
  std::vector<int32_t> col_rowsum_mult;  // kU8: 128 - zu[n]
  std::vector<float> col_scale;      // alpha[n]
  std::vector<float> col_bias;       // [N] (0 when none)
  std::vector<int32_t> zu;           // [N]
  // kS16 decode windows, one per smallest code c of a row (a row's exponent E is a function of
  // its smallest code: E(c) = 0 if mult[c] == 0, else T1[c] + H), made at prepare instead of per
  // row at run time (real softmax rows change their smallest code from row to row):
  //   window16[64 c + i] = int16(L_E(c)(c + i)) for c + i < 2^b + 1, else 0   (i < 64)
  //   window16_covers[c] bit w (w = 0: 64 codes, 1: 32 codes) = every code >= c + 64 (resp. 32)
  //                                                            has level 0 at E(c)
  std::vector<int16_t> window16;        // [2^b + 1][64]
  std::vector<uint8_t> window16_covers;  // [2^b + 1]
};
// u: [n][k] codes (ldu) with zu[n]; alpha[n]; bias or null. Throws on bad sizes / tables.
LogMatmul PrepareLogMatmul(LogDesign design, const AdaLogTables& t, const uint8_t* u,
                           int64_t ldu, int n, int k, const int32_t* zu, const float* alpha,
                           const float* bias);
// Re-packs the B operand in place (attn@V: a new V per head and image), keeping the tables.
// u[n][k] = v[k][n]: pass v with transposed=true (v: [k][n], ldv). Sizes are p.n, p.k; never
// allocates.
void RepackLogMatmulB(LogMatmul* p, const uint8_t* v, int64_t ldv, bool transposed,
                      int32_t zu, float alpha);

// Per-run scratch (decoded rows, exponents): sized at prepare for max rows.
struct LogScratch {
  std::vector<int32_t> row_exp;   // [max_m]
  std::vector<uint8_t> l8;        // [max_m][K] (kU8)
  std::vector<int16_t> l16;       // [max_m][Kp] (kS16)
  std::vector<int32_t> buckets;   // [2^b + 1][N] (kBuckets)
  std::vector<int64_t> lut64;     // [2^b + 1]
  std::vector<int64_t> acc64;     // [N] (kBuckets)
};
LogScratch MakeLogScratch(const LogMatmul& p, int max_m);
// y rows [m0, m1) of codes c [M][K] (ldc_codes) into y (ldy). cap limits the ISA (AVX-512 VNNI
// kernels when available, else scalar code computing the same bits).
void RunLogMatmul(const LogMatmul& p, const uint8_t* codes, int64_t ld_codes, int m0, int m1,
                  float* y, int64_t ldy, LogScratch* s, IsaLevel cap = ActiveIsaLevel());
// The implementation RunLogMatmul selects for this design under `cap`
// (logcode_matmul_s16__avx512vnni, ...).
const char* LogMatmulImplName(LogDesign design, IsaLevel cap);

// Row exponent and decoded level of the definition above (shared by kernels and references).
int32_t LogRowExp(const LogMatmul& p, const uint8_t* codes_row);
int64_t LogLevelFixed(const AdaLogTables& t, int32_t code, int32_t e);

}  // namespace adalog::intk
