// qgemm_u8s8_s32__onednn: the uniform int8 GEMM through a oneDNN 2.x u8 x s8 -> s32 matmul
// (weights reordered once to the primitive's preferred layout), then this library's epilogue
// (zero-point compensation, fp32 scale and bias), so results equal every other implementation.
#include <dnnl.hpp>

#include <cmath>
#include <vector>

#include "runtime/kernels/int/int_kernels.h"

namespace adalog::intk {

void EpilogueS32Avx512(const int32_t* acc, int64_t ldacc, const uint8_t* a, int64_t lda, int k,
                       int m0, int m1, int n, const Epilogue& ep, float* c, int64_t ldc);

struct OnednnQgemm {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  dnnl::matmul prim;
  dnnl::memory::desc a_md, c_md;
  dnnl::memory w_mem;
  std::vector<int32_t> acc;
  int m = 0;
};

OnednnQgemm* MakeOnednnQgemm(const QLinear& p, int m) {
  // Without VNNI oneDNN's int8 kernels go through vpmaddubsw, whose int16 pair sums saturate
  // (255 * 128 * 2 > 32767): results would not be exact. Measured: ADALOG_ISA=avx512 caps oneDNN
  // to avx512_core and 75562 of 75648 outputs of a 197x384x384 8-bit case differed.
  if (ActiveIsaLevel() < IsaLevel::kAvx512Vnni) return nullptr;
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  auto* d = new OnednnQgemm;
  try {
    d->m = m;
    d->a_md = dnnl::memory::desc({m, p.k}, dt::u8, tag::ab);
    d->c_md = dnnl::memory::desc({m, p.n}, dt::s32, tag::ab);
    const dnnl::memory::desc b_any({p.k, p.n}, dt::s8, tag::any);
    const dnnl::matmul::desc md(d->a_md, b_any, d->c_md);
    const dnnl::matmul::primitive_desc pd(md, d->eng);
    d->prim = dnnl::matmul(pd);
    // w8 is [N][K] row-major = B[K][N] in "ba" order.
    dnnl::memory w_user({{p.k, p.n}, dt::s8, tag::ba}, d->eng,
                        const_cast<int8_t*>(p.w8.data()));
    d->w_mem = dnnl::memory(pd.weights_desc(), d->eng);
    dnnl::reorder(w_user, d->w_mem).execute(d->strm, w_user, d->w_mem);
    d->strm.wait();
    d->acc.resize(static_cast<size_t>(m) * p.n);
  } catch (const dnnl::error&) {
    delete d;
    return nullptr;
  }
  return d;
}

void FreeOnednnQgemm(OnednnQgemm* d) { delete d; }

void RunOnednnQgemm(OnednnQgemm* d, const QLinear& p, const uint8_t* a, int64_t lda, int m,
                    float* c, int64_t ldc) {
  // The primitive was made for dense rows; lda must be k (checked by the caller's contract).
  dnnl::memory am(d->a_md, d->eng, const_cast<uint8_t*>(a));
  dnnl::memory cm(d->c_md, d->eng, d->acc.data());
  d->prim.execute(d->strm, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, d->w_mem}, {DNNL_ARG_DST, cm}});
  d->strm.wait();
  const Epilogue ep = p.epilogue();
  if (IsaSupported(IsaLevel::kAvx512)) {
    EpilogueS32Avx512(d->acc.data(), p.n, a, lda, p.k, 0, m, p.n, ep, c, ldc);
    return;
  }
  for (int i = 0; i < m; ++i) {
    int64_t rowsum = 0;
    for (int t = 0; t < p.k; ++t) rowsum += a[i * lda + t];
    for (int j = 0; j < p.n; ++j) {
      int64_t acc = d->acc[static_cast<size_t>(i) * p.n + j] + int64_t{ep.col_acc_bias[j]};
      if (ep.col_rowsum_mult) acc += int64_t{ep.col_rowsum_mult[j]} * rowsum;
      c[i * ldc + j] = std::fmaf(static_cast<float>(acc), ep.col_scale[j], ep.col_bias[j]);
    }
  }
}

}  // namespace adalog::intk
