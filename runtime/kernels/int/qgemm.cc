// Packing, prepare (weight re-centering, zero-point folding), the scalar packed fallbacks, the
// ordered implementation list of the uniform int8 GEMM, and q@k^T per head.
#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "quant/error.h"
#include "runtime/kernel_registry.h"
#include "runtime/kernels/int/int_kernels.h"

namespace adalog::intk {

int64_t PackedS8Size(int n, int k) { return int64_t{(n + 15) / 16} * ((k + 3) / 4 * 4) * 16; }
int64_t PackedS16Size(int n, int k) { return int64_t{(n + 15) / 16} * ((k + 1) / 2 * 2) * 16; }

void PackS8Into(const int8_t* b, int64_t ldb, int n, int k, PackedS8* p) {
  p->n = n;
  p->k = k;
  p->kp = (k + 3) / 4 * 4;
  int8_t* out = p->data.data();
  const int nb = (n + 15) / 16;
  int32_t max_abs = 0;
  for (int j = 0; j < n; ++j) {
    for (int t = 0; t < k; ++t) max_abs = std::max(max_abs, std::abs(int32_t{b[j * ldb + t]}));
  }
  p->max_abs = max_abs;
  for (int v = 0; v < nb; ++v) {
    int8_t* panel = out + int64_t{v} * p->kp * 16;
    for (int s = 0; s < p->kp / 4; ++s) {
      for (int col = 0; col < 16; ++col) {
        const int j = v * 16 + col;
        for (int e = 0; e < 4; ++e) {
          const int t = 4 * s + e;
          panel[s * 64 + col * 4 + e] = (j < n && t < k) ? b[j * ldb + t] : int8_t{0};
        }
      }
    }
  }
}

void PackS8(const int8_t* b, int64_t ldb, int n, int k, PackedS8* out) {
  out->data.assign(static_cast<size_t>(PackedS8Size(n, k)), 0);
  PackS8Into(b, ldb, n, k, out);
}

void PackS16(const int16_t* b, int64_t ldb, int n, int k, PackedS16* p) {
  p->n = n;
  p->k = k;
  p->kp = (k + 1) / 2 * 2;
  p->data.assign(static_cast<size_t>(PackedS16Size(n, k)), 0);
  const int nb = (n + 15) / 16;
  for (int v = 0; v < nb; ++v) {
    int16_t* panel = p->data.data() + int64_t{v} * p->kp * 16;
    for (int s = 0; s < p->kp / 2; ++s) {
      for (int col = 0; col < 16; ++col) {
        const int j = v * 16 + col;
        for (int e = 0; e < 2; ++e) {
          const int t = 2 * s + e;
          panel[s * 32 + col * 2 + e] = (j < n && t < k) ? b[j * ldb + t] : int16_t{0};
        }
      }
    }
  }
  p->max_abs = MaxAbsS16(p->data);
}

int32_t MaxAbsS16(const std::vector<int16_t>& data) {
  int32_t m = 0;
  for (int16_t v : data) m = std::max(m, std::abs(static_cast<int32_t>(v)));
  return m;
}

namespace {

inline float Finish(int64_t acc, const Epilogue& ep, int m, int n) {
  if (ep.col_acc_bias) acc += ep.col_acc_bias[n];
  float accf = static_cast<float>(acc);
  if (ep.row_exp) accf = std::ldexp(accf, -ep.row_exp[m]);
  return std::fmaf(accf, ep.col_scale[n], ep.col_bias ? ep.col_bias[n] : 0.f);
}

}  // namespace

void QgemmU8S8Packed(const uint8_t* a, int64_t lda, int m0, int m1, const PackedS8& b,
                     const Epilogue& ep, float* c, int64_t ldc) {
  for (int m = m0; m < m1; ++m) {
    const uint8_t* ar = a + m * lda;
    int64_t rowsum = 0;
    for (int t = 0; t < b.k; ++t) rowsum += ar[t];
    for (int n = 0; n < b.n; ++n) {
      const int8_t* panel = b.data.data() + int64_t{n / 16} * b.kp * 16 + (n % 16) * 4;
      int64_t acc = 0;
      for (int t = 0; t < b.k; ++t) acc += int64_t{ar[t]} * panel[(t / 4) * 64 + t % 4];
      if (ep.col_rowsum_mult) acc += int64_t{ep.col_rowsum_mult[n]} * rowsum;
      c[m * ldc + n] = Finish(acc, ep, m, n);
    }
  }
}

void QgemmS16S16Packed(const int16_t* a, int64_t lda, int m0, int m1, const PackedS16& b,
                       const Epilogue& ep, float* c, int64_t ldc) {
  for (int m = m0; m < m1; ++m) {
    const int16_t* ar = a + m * lda;
    int64_t rowsum = 0;
    for (int t = 0; t < b.k; ++t) rowsum += ar[t];
    for (int n = 0; n < b.n; ++n) {
      const int16_t* panel = b.data.data() + int64_t{n / 16} * b.kp * 16 + (n % 16) * 2;
      int64_t acc = 0;
      for (int t = 0; t < b.k; ++t) acc += int64_t{ar[t]} * panel[(t / 2) * 32 + t % 2];
      if (ep.col_rowsum_mult) acc += int64_t{ep.col_rowsum_mult[n]} * rowsum;
      c[m * ldc + n] = Finish(acc, ep, m, n);
    }
  }
}

// ---------------------------------------------------------------------------------------------
const char* QgemmImplName(QgemmImpl impl) {
  switch (impl) {
    case QgemmImpl::kAuto: return "auto";
    case QgemmImpl::kAvx512Vnni: return "qgemm_u8s8_s32__avx512vnni";
    case QgemmImpl::kAvxVnni: return "qgemm_u8s8_s32__avxvnni";
    case QgemmImpl::kAvx2: return "qgemm_u8s8_s32__avx2";
    case QgemmImpl::kOnednn: return "qgemm_u8s8_s32__onednn";
    case QgemmImpl::kPackedScalar: return "qgemm_u8s8_s32__scalar";
    case QgemmImpl::kReference: return "qgemm_u8s8_s32__reference";
  }
  return "?";
}

Epilogue QLinear::epilogue() const {
  Epilogue ep;
  ep.col_acc_bias = col_acc_bias.data();
  ep.col_rowsum_mult = col_rowsum_mult.empty() ? nullptr : col_rowsum_mult.data();
  ep.col_scale = col_scale.data();
  ep.col_bias = col_bias.data();
  return ep;
}

QLinear PrepareQLinear(const uint8_t* w, int n, int k, int bits, const float* sw,
                       const int32_t* zw, float sa, int32_t za, const float* bias) {
  ADALOG_CHECK(n > 0 && k > 0, "PrepareQLinear: n = ", n, ", k = ", k, " must be positive");
  ADALOG_CHECK(k <= kMaxK, "PrepareQLinear: k = ", k, " exceeds ", kMaxK);
  ADALOG_CHECK(bits >= 2 && bits <= 8, "PrepareQLinear: bits = ", bits);
  ADALOG_CHECK(za >= 0 && za <= 255, "PrepareQLinear: za = ", za);
  QLinear p;
  p.n = n;
  p.k = k;
  p.bits = bits;
  p.za = za;
  p.sa = sa;
  const int32_t wmax = (1 << bits) - 1;
  p.w8.resize(static_cast<size_t>(n) * k);
  p.col_acc_bias.resize(static_cast<size_t>(n));
  p.col_scale.resize(static_cast<size_t>(n));
  p.col_bias.assign(static_cast<size_t>(n), 0.f);
  if (bits == 8) p.col_rowsum_mult.resize(static_cast<size_t>(n));
  for (int j = 0; j < n; ++j) {
    ADALOG_CHECK(zw[j] >= 0 && zw[j] <= wmax, "PrepareQLinear: zw[", j, "] = ", zw[j]);
    const int32_t cj = bits == 8 ? 128 : zw[j];
    const int32_t e = cj - zw[j];
    int64_t wsum = 0;
    for (int t = 0; t < k; ++t) {
      const int32_t code = w[int64_t{j} * k + t];
      ADALOG_CHECK(code <= wmax, "PrepareQLinear: weight code ", code, " > ", wmax);
      const int32_t v = code - cj;
      p.w8[static_cast<size_t>(j) * k + t] = static_cast<int8_t>(v);
      wsum += v;
    }
    p.col_acc_bias[j] = static_cast<int32_t>(-int64_t{za} * wsum - int64_t{k} * za * e);
    if (bits == 8) p.col_rowsum_mult[j] = e;
    p.col_scale[j] = sa * sw[j];
    if (bias) p.col_bias[j] = bias[j];
  }
  PackS8(p.w8.data(), k, n, k, &p.packed);
  return p;
}

const char* AvxVnniDecline() {
  if (!GetCpuFeatures().avx_vnni) return "CPU lacks AVX-VNNI (VEX vpdpbusd)";
  const char* off = std::getenv("ADALOG_NO_AVXVNNI");
  if (off != nullptr && *off != '\0' && std::strcmp(off, "0") != 0) {
    return "disabled by ADALOG_NO_AVXVNNI";
  }
  return nullptr;
}

namespace {
struct BoundConfig {
  int32_t max_abs;  // bound on |b| of the packed s8 operand
};
}  // namespace

GemmU8S8Fn SelectQgemmU8S8Avx2(int32_t max_abs) {
  // vpmaddubsw sums two u8 x s8 products with int16 saturation: 2 * 255 * |b| <= 32767 needs
  // |b| <= 64, i.e. weights of <= 6 bits (|w - zw| <= 63) or q@k^T keys of <= 6 bits; beyond
  // that the nibble form (a = 16 a_hi + a_lo, each pass exact for any s8 b). Proofs:
  // qgemm_avx2_impl.h.
  using Impl = KernelImpl<GemmU8S8Fn, BoundConfig>;
  static const std::vector<Impl> list = {
      {"qgemm_u8s8_s32__avxvnni", IsaLevel::kAvx2,
       [](const BoundConfig&) { return AvxVnniDecline(); }, QgemmU8S8AvxVnni},
      {"qgemm_u8s8_s32_maddubsw__avx2", IsaLevel::kAvx2,
       [](const BoundConfig& c) -> const char* {
         return c.max_abs <= 64 ? nullptr
                                : "max |b| > 64: vpmaddubsw pair sums of 255 * |b| could saturate "
                                  "int16 (2 * 255 * 65 > 32767)";
       },
       QgemmU8S8MaddAvx2},
      {"qgemm_u8s8_s32_nibbles__avx2", IsaLevel::kAvx2, {}, QgemmU8S8NibblesAvx2},
      {"qgemm_u8s8_s32__scalar", IsaLevel::kRef, {}, QgemmU8S8Packed},
  };
  return SelectKernel("qgemm_u8s8_s32_avx2", list, BoundConfig{max_abs}, IsaLevel::kAvx2,
                      [max_abs] { return "max |b| " + std::to_string(max_abs); })
      .fn;
}

QgemmImpl SelectQgemmImpl(IsaLevel cap) {
  // Ordered list: own VNNI microkernel (measured faster than oneDNN at M = 197 and 1576, see
  // runtime/kernels/int/README.md), then the portable packed kernel. oneDNN is kept as an
  // explicit choice (fixed M, not row-ranged), so kAuto never selects it.
  using Impl = KernelImpl<QgemmImpl>;
  static const std::vector<Impl> list = {
      {QgemmImplName(QgemmImpl::kAvx512Vnni), IsaLevel::kAvx512Vnni, {}, QgemmImpl::kAvx512Vnni},
      {QgemmImplName(QgemmImpl::kOnednn), IsaLevel::kAvx512Vnni,
       [](const AnyConfig&) {
         return "explicit choice only (one primitive per M, rows not rangeable)";
       },
       QgemmImpl::kOnednn},
      {QgemmImplName(QgemmImpl::kAvxVnni), IsaLevel::kAvx2,
       [](const AnyConfig&) { return AvxVnniDecline(); }, QgemmImpl::kAvxVnni},
      // vpmaddubsw or the nibble form, chosen per layer by its weights' bound (RunQLinear).
      {QgemmImplName(QgemmImpl::kAvx2), IsaLevel::kAvx2, {}, QgemmImpl::kAvx2},
      {QgemmImplName(QgemmImpl::kPackedScalar), IsaLevel::kRef, {}, QgemmImpl::kPackedScalar},
  };
  return SelectKernel("qgemm_u8s8_s32", list, cap).fn;
}

void RunOnednnQgemm(OnednnQgemm* d, const QLinear& p, const uint8_t* a, int64_t lda, int m,
                    float* c, int64_t ldc);  // qgemm_onednn.cc

void RunQLinear(const QLinear& p, QgemmImpl impl, const uint8_t* a, int64_t lda, int m0, int m1,
                float* c, int64_t ldc, OnednnQgemm* dnn) {
  if (impl == QgemmImpl::kAuto) impl = SelectQgemmImpl(ActiveIsaLevel());
  switch (impl) {
    case QgemmImpl::kAvx512Vnni:
      QgemmU8S8Avx512Vnni(a, lda, m0, m1, p.packed, p.epilogue(), c, ldc);
      return;
    case QgemmImpl::kAvxVnni:
      QgemmU8S8AvxVnni(a, lda, m0, m1, p.packed, p.epilogue(), c, ldc);
      return;
    case QgemmImpl::kAvx2:
      SelectQgemmU8S8Avx2(p.packed.max_abs)(a, lda, m0, m1, p.packed, p.epilogue(), c, ldc);
      return;
    case QgemmImpl::kOnednn:
      RunOnednnQgemm(dnn, p, a, lda, m1, c, ldc);
      return;
    case QgemmImpl::kReference:  // the reference lives in kernels/reference (tests call it)
    case QgemmImpl::kPackedScalar:
    case QgemmImpl::kAuto:
      QgemmU8S8Packed(a, lda, m0, m1, p.packed, p.epilogue(), c, ldc);
      return;
  }
}

// ---------------------------------------------------------------------------------------------
Matmul1Workspace MakeMatmul1Workspace(int max_tokens, int head_dim) {
  ADALOG_CHECK(max_tokens > 0 && head_dim > 0 && head_dim <= kMaxK,
               "MakeMatmul1Workspace: tokens = ", max_tokens, ", head_dim = ", head_dim);
  Matmul1Workspace ws;
  ws.packed.data.assign(static_cast<size_t>(PackedS8Size(max_tokens, head_dim)), 0);
  ws.k8.resize(static_cast<size_t>(max_tokens) * head_dim);
  ws.col_acc_bias.resize(static_cast<size_t>(max_tokens));
  ws.col_rowsum_mult.resize(static_cast<size_t>(max_tokens));
  ws.col_scale.resize(static_cast<size_t>(max_tokens));
  return ws;
}

namespace {

// q@k^T's implementations: the VNNI one packs k - zk with vector code (and skips the row-sum
// compensation when k - zk fits s8), the portable one packs k - 128 in scalar code.
QgemmImpl SelectMatmul1(IsaLevel cap) {
  using Impl = KernelImpl<QgemmImpl>;
  static const std::vector<Impl> list = {
      {"matmul1_u8u8_s32__avx512vnni", IsaLevel::kAvx512Vnni, {}, QgemmImpl::kAvx512Vnni},
      {"matmul1_u8u8_s32__avxvnni", IsaLevel::kAvx2,
       [](const AnyConfig&) { return AvxVnniDecline(); }, QgemmImpl::kAvxVnni},
      {"matmul1_u8u8_s32__avx2", IsaLevel::kAvx2, {}, QgemmImpl::kAvx2},
      {"matmul1_u8u8_s32__scalar", IsaLevel::kRef, {}, QgemmImpl::kPackedScalar},
  };
  return SelectKernel("matmul1_u8u8_s32", list, cap).fn;
}

// The epilogue of the vector q@k^T paths, whose pack left sum_k (k - sub) of each key in
// ws->col_acc_bias: with (k - zk) = (k - sub) + ez, acc_bias = -zq * that sum - d * zq * ez, the
// row-sum term ez only when k - zk was not stored directly (ez != 0).
Epilogue Matmul1Epilogue(int tk, int d, int32_t zq, int32_t ez, float alpha, bool direct,
                         Matmul1Workspace* ws) {
  for (int j = 0; j < tk; ++j) {
    ws->col_acc_bias[j] = -zq * ws->col_acc_bias[j] - d * zq * ez;
    ws->col_rowsum_mult[j] = ez;
    ws->col_scale[j] = alpha;
  }
  Epilogue ep;
  ep.col_acc_bias = ws->col_acc_bias.data();
  ep.col_rowsum_mult = direct ? nullptr : ws->col_rowsum_mult.data();
  ep.col_scale = ws->col_scale.data();
  return ep;
}

}  // namespace

void Matmul1Head(const uint8_t* q, int64_t ldq, const uint8_t* k, int64_t ldk, int tq, int tk,
                 int d, int32_t zq, int32_t zk, float alpha, float* s, int64_t lds,
                 Matmul1Workspace* ws, IsaLevel cap) {
  assert(static_cast<size_t>(tk) * d <= ws->k8.size() && "workspace made for fewer tokens / dims");
  assert(static_cast<size_t>(tk) <= ws->col_scale.size());
  const QgemmImpl impl = SelectMatmul1(cap);
  if (impl == QgemmImpl::kAvxVnni || impl == QgemmImpl::kAvx2) {
    // As the AVX-512 path below (k - zk stored directly when it fits s8), with the pack's bound
    // max |k - sub| choosing the AVX2 kernel: 4-bit keys (|k - zk| <= 15) run vpmaddubsw with
    // int16 sums over 72 dword steps when q is 4-bit too (qgemm_avx2_impl.h).
    int32_t kmin = 0, kmax = 0;
    MinMaxU8RowsAvx2(k, ldk, tk, d, &kmin, &kmax);
    const bool direct = zk <= 128 && kmax - zk <= 127;
    const int32_t sub = direct ? zk : 128;
    const int32_t ez = sub - zk;
    const int32_t max_abs = std::max(std::abs(kmin - sub), std::abs(kmax - sub));
    PackU8MinusAvx2(k, ldk, tk, d, sub, max_abs, &ws->packed, ws->col_acc_bias.data());
    const Epilogue ep = Matmul1Epilogue(tk, d, zq, ez, alpha, direct, ws);
    const GemmU8S8Fn fn = impl == QgemmImpl::kAvxVnni ? QgemmU8S8AvxVnni : SelectQgemmU8S8Avx2(max_abs);
    fn(q, ldq, 0, tq, ws->packed, ep, s, lds);
    return;
  }
  if (impl == QgemmImpl::kAvx512Vnni) {
    // k - zk fits s8 when zk <= 128 and max k - zk <= 127 (every code of <= 7 bits, 8-bit codes
    // with zk = 128): stored directly, e = 0, no row-sum compensation. Else k - 128 and
    // e = 128 - zk as below. Either way acc is the same exact integer.
    const bool direct = zk <= 128 && MaxU8RowsAvx512(k, ldk, tk, d) - zk <= 127;
    const int32_t sub = direct ? zk : 128;
    const int32_t ez = sub - zk;  // (k - zk) = (k - sub) + ez
    PackU8MinusAvx512(k, ldk, tk, d, sub, &ws->packed, ws->col_acc_bias.data());
    const Epilogue ep = Matmul1Epilogue(tk, d, zq, ez, alpha, direct, ws);
    QgemmU8S8Avx512Vnni(q, ldq, 0, tq, ws->packed, ep, s, lds);
    return;
  }
  const int32_t e = 128 - zk;
  for (int j = 0; j < tk; ++j) {
    int32_t sum = 0;
    int8_t* dst = ws->k8.data() + static_cast<int64_t>(j) * d;
    for (int t = 0; t < d; ++t) {
      const int32_t v = k[j * ldk + t] - 128;
      dst[t] = static_cast<int8_t>(v);
      sum += v;
    }
    ws->col_acc_bias[j] = -zq * sum - d * zq * e;
    ws->col_rowsum_mult[j] = e;
    ws->col_scale[j] = alpha;
  }
  PackS8Into(ws->k8.data(), d, tk, d, &ws->packed);
  Epilogue ep;
  ep.col_acc_bias = ws->col_acc_bias.data();
  ep.col_rowsum_mult = ws->col_rowsum_mult.data();
  ep.col_scale = ws->col_scale.data();
  QgemmU8S8Packed(q, ldq, 0, tq, ws->packed, ep, s, lds);
}

}  // namespace adalog::intk
