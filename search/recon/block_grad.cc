// The differentiable transformer block of block reconstruction (see block_grad.h).
#include "search/recon/block_grad.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include <dnnl.h>
#include <omp.h>

#include "quant/adaround.h"
#include "quant/error.h"
#include "runtime/thread_pool.h"
#include "search/recon/recon_math_kernels.h"
#include "search/recon/ste_batch.h"
#include "search/recon/ste_batch_kernels.h"

namespace adalog::search {

const char* ReconLinearName(int l) {
  static const char* const kNames[] = {"qkv", "proj", "fc1", "fc2"};
  return kNames[l];
}
const char* ReconActName(int a) {
  static const char* const kNames[] = {"qkv.in", "q",        "k",      "v",
                                       "probs",  "proj.in", "fc1.in", "fc2.in"};
  return kNames[a];
}

template <typename T>
void BlockTrainParams<T>::SetZeroLike(const BlockTrainParams& o) {
  for (int l = 0; l < kNumReconLinears; ++l) alpha[l].assign(o.alpha[l].size(), T(0));
  for (int a = 0; a < kNumReconActs; ++a) act_scale[a].assign(o.act_scale[a].size(), T(0));
}

namespace {

size_t Sz(int64_t n) { return static_cast<size_t>(n); }

// Sum of n partials in index order (deterministic).
double SumInOrder(const double* p, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += p[i];
  return s;
}

// C[M][N] = beta C + op(A) op(B), row-major, op(X) = X or X^T (ta / tb), on the calling thread.
// float: oneDNN's sgemm (runtime ISA dispatch: AVX-512 / AVX2 kernels while this file is built for
// baseline x86-64), the path training runs. double (the gradient checks): plain loops with the
// same contract; BlockGrad.FloatPathMatchesDoublePath checks the float calls against them.
// Why sgemm: bench_recon_speed's BM_Gemm, the digits block's fc1 products at batch 32 on one
// thread (2080 x 384 x 96 forward, 384 x 96 x 2080 dW), median CPU ms on the shared 2-core AMD EPYC
// guest (load average 10-12): sgemm 0.92 / 0.92, Eigen (row-major float maps; search/ links it,
// but this file is built for baseline x86-64, so Eigen gets SSE2 kernels only) 5.0 / 5.2, the plain
// loops this file had 8.7 / 10.2. oneDNN is already a dependency; nothing is added.
void Gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  // One OpenMP thread: called from the pool's items below (one image, one channel block), whose
  // threads already share the cores; oneDNN's own OpenMP team would only add waits.
  const int prev = omp_get_max_threads();
  omp_set_num_threads(1);
  const dnnl_status_t st =
      dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
  omp_set_num_threads(prev);
  ADALOG_CHECK(st == dnnl_success, "block reconstruction: oneDNN sgemm failed (status ",
               static_cast<int>(st), ")");
}
void Gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  for (int64_t m = 0; m < M; ++m) {
    double* c = C + m * ldc;
    for (int64_t n = 0; n < N; ++n) c[n] = beta == 0.0 ? 0.0 : beta * c[n];
    for (int64_t k = 0; k < K; ++k) {
      const double a = ta ? A[k * lda + m] : A[m * lda + k];
      if (tb) {
        for (int64_t n = 0; n < N; ++n) c[n] += a * B[n * ldb + k];
      } else {
        const double* b = B + k * ldb;
        for (int64_t n = 0; n < N; ++n) c[n] += a * b[n];
      }
    }
  }
}

// Sums with 8 partial sums (element i goes to lane i % 8), added up as ((0 + 4) + (1 + 5)) + ((2 +
// 6) + (3 + 7)): eight independent addition chains instead of one (the single chain was
// latency-bound), the same bytes on every ISA and for every thread split, since each sum covers one
// row / one (image, head) as before. term(i) gives element i's summand in the type Acc.
template <typename Acc, typename Term>
Acc SumLanes8(int64_t n, Term term) {
  Acc a[8] = {Acc(0), Acc(0), Acc(0), Acc(0), Acc(0), Acc(0), Acc(0), Acc(0)};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) a[j] += term(i + j);
  }
  for (int j = 0; i < n; ++i, ++j) a[j] += term(i);
  return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

// The fixed partition of the soft weights and of dW = gout^T in (independent of the thread
// count): output channels of each Linear in blocks of kChannelBlock, each block summing over all
// rows of the batch in one GEMM.
constexpr int64_t kChannelBlock = 16;

template <typename T>
T Gelu(T v, GeluKind kind, T* deriv) {
  if (kind == GeluKind::kErf) return GeluErf(v, deriv);
  const T k = T(0.79788456080286535588), c = T(0.044715);
  const T th = std::tanh(k * (v + c * v * v * v));
  *deriv = T(0.5) * (T(1) + th) + T(0.5) * v * (T(1) - th * th) * k * (T(1) + T(3) * c * v * v);
  return T(0.5) * v * (T(1) + th);
}

// The block's Linear that a Linear step runs (qkv, proj, fc1, fc2).
int LinearOfStep(StepOp op) {
  switch (op) {
    case StepOp::kQkv: return kReconQkv;
    case StepOp::kProj: return kReconProj;
    case StepOp::kFc1: return kReconFc1;
    default: return kReconFc2;
  }
}

}  // namespace

template <typename T>
BlockRecon<T>::BlockRecon(const VitModel& m, int b, const BlockQuant& bq, int max_batch,
                          int threads)
    : blk_(m.blocks.at(static_cast<size_t>(b))),
      tokens_(m.num_tokens()),
      dim_(m.dim),
      hidden_(m.blocks.at(static_cast<size_t>(b)).fc1.out),
      heads_(m.blocks.at(static_cast<size_t>(b)).heads),
      hd_(m.dim / m.blocks.at(static_cast<size_t>(b)).heads),
      max_batch_(max_batch),
      threads_(std::max(1, threads)) {
  ADALOG_CHECK(blk_.window_size == 0, "block reconstruction: window attention is not supported");
  ADALOG_CHECK(max_batch > 0, "block reconstruction: max_batch must be positive");
  const Schedule sched = BuildSchedule(m);
  const StepRange r = sched.blocks.at(static_cast<size_t>(b));
  steps_.assign(sched.steps.begin() + r.first, sched.steps.begin() + r.end);

  const LinearQuant* lq[kNumReconLinears] = {&bq.qkv, &bq.proj, &bq.fc1, &bq.fc2};
  lin_ = {&blk_.qkv, &blk_.proj, &blk_.fc1, &blk_.fc2};
  for (int l = 0; l < kNumReconLinears; ++l) {
    wq_[l] = lq[l]->weight;
    ADALOG_CHECK(!wq_[l].scales.empty(), "block reconstruction: block ", b, " ",
                 ReconLinearName(l), " weight is not quantized");
    wq_[l].Validate();
    ADALOG_CHECK(wq_[l].num_channels() == lin_[l]->out, "block reconstruction: block ", b, " ",
                 ReconLinearName(l), " has ", wq_[l].num_channels(),
                 " weight channels, expected ", lin_[l]->out);
  }
  auto tensor_act = [&](const ActQuant& q, int site) {
    ActSpec& s = act_[site];
    s.kind = q.kind;
    switch (q.kind) {
      case ActQuant::Kind::kNone: break;
      case ActQuant::Kind::kUniform:
        q.uniform.Validate();
        s.bits = q.uniform.params.bits;
        s.zp = q.uniform.params.zero_point;
        s.cmin = q.uniform.params.CodeMin();
        s.cmax = q.uniform.params.CodeMax();
        break;
      case ActQuant::Kind::kLog:
        q.log.Validate();
        s.bits = q.log.bits;
        s.num = q.log.RatioNum();
        s.den = q.log.RatioDen();
        s.shift = static_cast<T>(q.shift);
        s.folded = q.shift_folded;
        s.levels.resize(Sz(int64_t{1} << s.bits));
        LogSteLevels(s.bits, s.num, s.den, s.levels.data());
        if constexpr (std::is_same_v<T, float>) {
          s.log_th.resize(Sz(int64_t{1} << s.bits));
          LogSteThresholdsF32(s.bits, s.num, s.den, s.log_th.data());
        }
        break;
      case ActQuant::Kind::kTwin:
        throw Error(std::string("block reconstruction: block ") + std::to_string(b) + " " +
                    ReconActName(site) + ": the twin-uniform quantizer is not supported");
    }
  };
  auto head_act = [&](const UniformPerHead& q, int site) {
    ActSpec& s = act_[site];
    if (q.scales.empty()) return;
    q.Validate();
    ADALOG_CHECK(q.num_heads() == heads_, "block reconstruction: block ", b, " ",
                 ReconActName(site), " has ", q.num_heads(), " heads, the model ", heads_);
    s.kind = ActQuant::Kind::kUniform;
    s.bits = q.bits;
    s.head_zp = q.zero_points;
    const UniformParams p0 = q.head(0);
    s.cmin = p0.CodeMin();
    s.cmax = p0.CodeMax();
  };
  tensor_act(bq.qkv.input, kActQkvIn);
  head_act(bq.attn.q, kActQ);
  head_act(bq.attn.k, kActK);
  head_act(bq.attn.v, kActV);
  tensor_act(bq.attn.probs, kActProbs);
  tensor_act(bq.proj.input, kActProjIn);
  tensor_act(bq.fc1.input, kActFc1In);
  tensor_act(bq.fc2.input, kActFc2In);
  // Initial scales, kept for InitialParams.
  auto tensor_scale = [&](const ActQuant& q, int site) {
    if (q.kind == ActQuant::Kind::kNone) {
      init_scale_[site].clear();
    } else {
      init_scale_[site] = {q.kind == ActQuant::Kind::kLog ? q.log.scale : q.uniform.params.scale};
    }
  };
  tensor_scale(bq.qkv.input, kActQkvIn);
  init_scale_[kActQ] = bq.attn.q.scales;
  init_scale_[kActK] = bq.attn.k.scales;
  init_scale_[kActV] = bq.attn.v.scales;
  tensor_scale(bq.attn.probs, kActProbs);
  tensor_scale(bq.proj.input, kActProjIn);
  tensor_scale(bq.fc1.input, kActFc1In);
  tensor_scale(bq.fc2.input, kActFc2In);

  const int64_t rows = static_cast<int64_t>(max_batch) * tokens_;
  const int64_t pairs = static_cast<int64_t>(max_batch) * heads_;
  const int64_t D = dim_, H = hidden_, TT = static_cast<int64_t>(tokens_) * tokens_;
  auto size_buf = [&](Buf bf, int64_t n) {
    buf_[static_cast<int>(bf)].assign(Sz(n), T(0));
    gbuf_[static_cast<int>(bf)].assign(Sz(n), T(0));
  };
  size_buf(Buf::kX, rows * D);
  size_buf(Buf::kLn, rows * D);
  size_buf(Buf::kQkv, rows * 3 * D);
  size_buf(Buf::kMerged, rows * D);
  size_buf(Buf::kLinOut, rows * D);
  size_buf(Buf::kHidden, rows * H);
  for (int l = 0; l < kNumReconLinears; ++l) {
    w_soft_[l].assign(lin_[l]->weight.size(), T(0));
    bias_[l].assign(lin_[l]->bias.begin(), lin_[l]->bias.end());
    dw_dalpha_[l].assign(lin_[l]->weight.size(), T(0));
    lin_in_[l].assign(Sz(rows * lin_[l]->in), T(0));
  }
  for (int j = 0; j < 2; ++j) {
    ln_rstd_[j].assign(Sz(rows), T(0));
    ln_xhat_[j].assign(Sz(rows * D), T(0));
  }
  gelu_d_.assign(Sz(rows * H), T(0));
  qh_.assign(Sz(rows * D), T(0));
  kh_.assign(Sz(rows * D), T(0));
  vh_.assign(Sz(rows * D), T(0));
  probs_.assign(Sz(pairs * TT), T(0));
  probs_q_.assign(Sz(pairs * TT), T(0));
  attn_scratch_.assign(Sz(threads_ * (TT + 3 * static_cast<int64_t>(tokens_) * hd_)), T(0));
  const int64_t site_n[kNumReconActs] = {rows * D, rows * D, rows * D, rows * D,
                                         pairs * TT, rows * D, rows * D, rows * H};
  for (int a = 0; a < kNumReconActs; ++a) {
    if (act_[a].kind == ActQuant::Kind::kNone) continue;
    save_[a].dxdx.assign(Sz(site_n[a]), T(0));
    save_[a].dxds.assign(Sz(site_n[a]), T(0));
  }
  diff_.assign(Sz(rows * D), T(0));
  loss_part_.assign(Sz(rows), 0.0);
  tap_part_.assign(Sz(kNumReconActs * rows), 0.0);
  attn_part_.assign(Sz(4 * pairs), 0.0);

  // The Linears' output buffers (whose gradients dW reads), and which of them a later backward
  // step overwrites before WeightGradients runs (those gradients are kept in gout_keep_).
  for (size_t s = 0; s < steps_.size(); ++s) {
    const Step& st = steps_[s];
    if (st.has_tap && IsInputTap(st.tap)) {
      const int site = SiteOfTap(st.tap);
      if (site >= 0 && act_[site].kind != ActQuant::Kind::kNone) tap_sites_.push_back(site);
    }
    if (st.op != StepOp::kQkv && st.op != StepOp::kProj && st.op != StepOp::kFc1 &&
        st.op != StepOp::kFc2) {
      continue;
    }
    const int l = LinearOfStep(st.op);
    lin_out_buf_[l] = st.out;
    bool overwritten = false;  // by a step that runs after this one in the backward
    for (size_t e = 0; e < s; ++e) overwritten |= steps_[e].in == st.out || steps_[e].out == st.out;
    if (overwritten) gout_keep_[l].assign(Sz(rows * lin_[l]->out), T(0));
    for (int64_t o0 = 0; o0 < lin_[l]->out; o0 += kChannelBlock) {
      wblocks_.push_back({l, o0, std::min<int64_t>(lin_[l]->out, o0 + kChannelBlock)});
    }
  }
  std::sort(tap_sites_.begin(), tap_sites_.end());
  tap_sites_.erase(std::unique(tap_sites_.begin(), tap_sites_.end()), tap_sites_.end());
}

template <typename T>
BlockTrainParams<T> BlockRecon<T>::InitialParams() const {
  BlockTrainParams<T> p;
  for (int l = 0; l < kNumReconLinears; ++l) {
    const LinearParams& lp = *lin_[l];
    p.alpha[l].resize(lp.weight.size());
    for (int o = 0; o < lp.out; ++o) {
      const float s = wq_[l].scales[Sz(o)];
      for (int i = 0; i < lp.in; ++i) {
        const size_t k = Sz(static_cast<int64_t>(o) * lp.in + i);
        p.alpha[l][k] = static_cast<T>(AdaRoundInitAlpha(lp.weight[k], s));
      }
    }
  }
  for (int a = 0; a < kNumReconActs; ++a) {
    p.act_scale[a].assign(init_scale_[a].begin(), init_scale_[a].end());
  }
  return p;
}

template <typename T>
int BlockRecon<T>::SiteOfTap(TapPoint tap) const {
  switch (tap) {
    case TapPoint::kQkvIn: return kActQkvIn;
    case TapPoint::kProjIn: return kActProjIn;
    case TapPoint::kFc1In: return kActFc1In;
    case TapPoint::kGeluOut: return kActFc2In;
    default: return -1;
  }
}

// partial[0] = sum over the site's elements offset .. offset + n of g * dx^/ds (SumLanes8), and
// g *= dx^/dx, in one pass over g.
template <typename T>
void BlockRecon<T>::ScaleGradMask(int site, T* g, int64_t offset, int64_t n,
                                  double* partial) const {
  const T* dxds = save_[site].dxds.data() + offset;
  const T* dxdx = save_[site].dxdx.data() + offset;
  *partial = SumLanes8<double>(n, [&](int64_t i) {
    const double t = static_cast<double>(g[i] * dxds[i]);
    g[i] *= dxdx[i];
    return t;
  });
}

// out = in W~^T + bias on the rows [r0, r1) of one image, in one GEMM; those rows of `in` are
// first saved to lin_in_[l] (the backward's dW reads them after `in`'s buffer has been reused).
template <typename T>
void BlockRecon<T>::LinearForward(int l, const T* in, T* out, int64_t r0, int64_t r1) {
  const LinearParams& lp = *lin_[l];
  const T* w = w_soft_[l].data();
  const T* bias = bias_[l].data();
  const int64_t N = lp.out, K = lp.in;
  T* saved = lin_in_[l].data() + r0 * K;
  std::copy(in + r0 * K, in + r1 * K, saved);
  for (int64_t r = r0; r < r1; ++r) std::copy(bias, bias + N, out + r * N);
  Gemm(false, true, r1 - r0, N, K, saved, K, w, K, T(1), out + r0 * N, N);
}

// gin = gout W~ (overwritten) on the rows [r0, r1) of one image. Where a later backward step
// overwrites gout's buffer, those rows of gout are first kept in gout_keep_[l] for the dW pass
// (WeightGradients), which runs after every image's backward.
template <typename T>
void BlockRecon<T>::LinearBackward(int l, const T* gout, T* gin, int64_t r0, int64_t r1) {
  const LinearParams& lp = *lin_[l];
  const int64_t N = lp.out, K = lp.in;
  if (!gout_keep_[l].empty()) {
    std::copy(gout + r0 * N, gout + r1 * N, gout_keep_[l].data() + r0 * N);
  }
  Gemm(false, false, r1 - r0, K, N, gout + r0 * N, N, w_soft_[l].data(), K, T(0), gin + r0 * K,
       K);
}

// galpha = (gout^T in) * dw~/dalpha for every Linear, by output-channel blocks (wblocks_), each
// block summing over all rows of the batch in one GEMM: the same products, in the same order, as
// when each Linear's dW ran right after its backward.
template <typename T>
void BlockRecon<T>::WeightGradients(BlockTrainParams<T>* grad) {
  const int64_t rows = static_cast<int64_t>(batch_) * tokens_;
  exec::PoolFor(static_cast<int64_t>(wblocks_.size()), threads_, [&](int, int64_t item) {
    const WeightBlock& wb = wblocks_[Sz(item)];
    const int l = wb.linear;
    const LinearParams& lp = *lin_[l];
    const int64_t N = lp.out, K = lp.in, o0 = wb.o0, o1 = wb.o1;
    const T* gout = gout_keep_[l].empty() ? gbuf_[static_cast<int>(lin_out_buf_[l])].data()
                                          : gout_keep_[l].data();
    T* acc = grad->alpha[l].data() + o0 * K;
    Gemm(true, false, o1 - o0, K, rows, gout + o0, N, lin_in_[l].data(), K, T(0), acc, K);
    const T* d = dw_dalpha_[l].data() + o0 * K;
    for (int64_t e = 0; e < (o1 - o0) * K; ++e) acc[e] *= d[e];
  });
}

// Per head of image `img`: q, k, v gathered and fake-quantized, S = q k^T, scaled softmax,
// probability quantizer, merged[:, h] = Pq v.
template <typename T>
void BlockRecon<T>::AttentionForward(const BlockTrainParams<T>& p, int64_t img) {
  const int Tk = tokens_, D = dim_, hd = hd_, H = heads_;
  const T* qkv = buf_[static_cast<int>(Buf::kQkv)].data();
  T* merged = buf_[static_cast<int>(Buf::kMerged)].data();
  const T scale = static_cast<T>(blk_.attn_scale);
  const int64_t TT = static_cast<int64_t>(Tk) * Tk;
  const int64_t b = img;
  for (int h = 0; h < H; ++h) {
    const int64_t ph = b * H + h;
    const int64_t base = ph * Tk * hd;
    T* q = qh_.data() + base;
    T* k = kh_.data() + base;
    T* v = vh_.data() + base;
    for (int i = 0; i < Tk; ++i) {
      const T* row = qkv + (b * Tk + i) * 3 * D + static_cast<int64_t>(h) * hd;
      std::copy(row, row + hd, q + i * hd);
      std::copy(row + D, row + D + hd, k + i * hd);
      std::copy(row + 2 * D, row + 2 * D + hd, v + i * hd);
    }
    Quantize(kActQ, p, h, q, base, static_cast<int64_t>(Tk) * hd);
    Quantize(kActK, p, h, k, base, static_cast<int64_t>(Tk) * hd);
    Quantize(kActV, p, h, v, base, static_cast<int64_t>(Tk) * hd);
    T* P = probs_.data() + ph * TT;
    T* Pq = probs_q_.data() + ph * TT;
    Gemm(false, true, Tk, Tk, hd, q, hd, k, hd, T(0), P, Tk);
    if constexpr (std::is_same_v<T, float>) {  // the run-time dispatched kernel
      static const ScaledSoftmaxF32Fn kSoftmax = SelectScaledSoftmaxF32();
      kSoftmax(P, Tk, Tk, scale);
    } else {
      for (int i = 0; i < Tk; ++i) {
        T* pr = P + static_cast<int64_t>(i) * Tk;
        T mx = pr[0] * scale;
        for (int j = 0; j < Tk; ++j) {
          pr[j] *= scale;
          mx = std::max(mx, pr[j]);
        }
        T sum = T(0);
        for (int j = 0; j < Tk; ++j) {
          pr[j] = std::exp(pr[j] - mx);
          sum += pr[j];
        }
        const T inv = T(1) / sum;
        for (int j = 0; j < Tk; ++j) pr[j] *= inv;
      }
    }
    std::copy(P, P + TT, Pq);
    Quantize(kActProbs, p, 0, Pq, ph * TT, TT);
    Gemm(false, false, Tk, hd, Tk, Pq, Tk, v, hd, T(0), merged + b * Tk * D + h * hd, D);
  }
}

// Per head of image `img`; the step sizes' partial sums go to attn_part_[s][image * H + head]
// (q, k, v, probs), added up in image-then-head order by Backward.
template <typename T>
void BlockRecon<T>::AttentionBackward(int64_t img, int slot) {
  const int Tk = tokens_, D = dim_, hd = hd_, H = heads_;
  const T* gmerged = gbuf_[static_cast<int>(Buf::kMerged)].data();
  T* gqkv = gbuf_[static_cast<int>(Buf::kQkv)].data();
  const T scale = static_cast<T>(blk_.attn_scale);
  const int64_t TT = static_cast<int64_t>(Tk) * Tk, Thd = static_cast<int64_t>(Tk) * hd;
  const int64_t max_pairs = static_cast<int64_t>(max_batch_) * H;
  double* part = attn_part_.data();  // [4][max_pairs]: q, k, v, probs
  T* gP = attn_scratch_.data() + slot * (TT + 3 * Thd);
  T* gq = gP + TT;
  T* gk = gq + Thd;
  T* gv = gk + Thd;
  const int64_t b = img;
  for (int h = 0; h < H; ++h) {
    const int64_t ph = b * H + h;
    const int64_t base = ph * Thd;
    const T* q = qh_.data() + base;
    const T* k = kh_.data() + base;
    const T* v = vh_.data() + base;
    const T* P = probs_.data() + ph * TT;
    const T* Pq = probs_q_.data() + ph * TT;
    const T* go = gmerged + b * Tk * D + h * hd;  // [Tk][hd], row stride D
    Gemm(false, true, Tk, Tk, hd, go, D, v, hd, T(0), gP, Tk);
    Gemm(true, false, Tk, hd, Tk, Pq, Tk, go, D, T(0), gv, hd);
    // Through the probability quantizer, then the softmax and the score scale.
    if (act_[kActProbs].kind != ActQuant::Kind::kNone) {
      ScaleGradMask(kActProbs, gP, ph * TT, TT, &part[3 * max_pairs + ph]);
    }
    for (int i = 0; i < Tk; ++i) {
      T* g = gP + static_cast<int64_t>(i) * Tk;
      const T* pr = P + static_cast<int64_t>(i) * Tk;
      const T dot = SumLanes8<T>(Tk, [&](int64_t j) { return g[j] * pr[j]; });
      for (int j = 0; j < Tk; ++j) g[j] = pr[j] * (g[j] - dot) * scale;
    }
    Gemm(false, false, Tk, hd, Tk, gP, Tk, k, hd, T(0), gq, hd);
    Gemm(true, false, Tk, hd, Tk, gP, Tk, q, hd, T(0), gk, hd);
    const int sites[3] = {kActQ, kActK, kActV};
    T* gs[3] = {gq, gk, gv};
    for (int s = 0; s < 3; ++s) {
      if (act_[sites[s]].kind == ActQuant::Kind::kNone) continue;
      ScaleGradMask(sites[s], gs[s], base, Thd, &part[s * max_pairs + ph]);
    }
    for (int i = 0; i < Tk; ++i) {
      T* row = gqkv + (b * Tk + i) * 3 * D + static_cast<int64_t>(h) * hd;
      std::copy(gq + i * hd, gq + (i + 1) * hd, row);
      std::copy(gk + i * hd, gk + (i + 1) * hd, row + D);
      std::copy(gv + i * hd, gv + (i + 1) * hd, row + 2 * D);
    }
  }
}

// One step's forward on the rows of image `img` ([img T, (img + 1) T)), then the step's input-tap
// quantizer (if any) on the same rows.
template <typename T>
void BlockRecon<T>::RunStep(const Step& st, const BlockTrainParams<T>& p, int64_t img) {
  const int64_t r0 = img * tokens_, r1 = r0 + tokens_;
  T* in = buf_[static_cast<int>(st.in)].data();
  T* out = buf_[static_cast<int>(st.out)].data();
  const int D = dim_;
  int site = -1;
  if (st.has_tap && IsInputTap(st.tap)) {
    site = SiteOfTap(st.tap);
    if (site >= 0 && act_[site].kind == ActQuant::Kind::kNone) site = -1;
  }
  switch (st.op) {
    case StepOp::kLn1:
    case StepOp::kLn2: {
      const int j = st.op == StepOp::kLn1 ? 0 : 1;
      const LayerNormParams& ln = j == 0 ? blk_.ln1 : blk_.ln2;
      for (int64_t r = r0; r < r1; ++r) {
        const T* x = in + r * D;
        T* y = out + r * D;
        T* xh = ln_xhat_[j].data() + r * D;
        const T sum = SumLanes8<T>(D, [&](int64_t i) { return x[i]; });
        const T mean = sum / static_cast<T>(D);
        const T sq = SumLanes8<T>(D, [&](int64_t i) { return (x[i] - mean) * (x[i] - mean); });
        const T rstd = T(1) / std::sqrt(sq / static_cast<T>(D) + static_cast<T>(ln.eps));
        ln_rstd_[j][Sz(r)] = rstd;
        for (int i = 0; i < D; ++i) {
          xh[i] = (x[i] - mean) * rstd;
          y[i] = xh[i] * static_cast<T>(ln.gamma[Sz(i)]) + static_cast<T>(ln.beta[Sz(i)]);
        }
      }
      break;
    }
    case StepOp::kQkv:
    case StepOp::kProj:
    case StepOp::kFc1:
    case StepOp::kFc2: LinearForward(LinearOfStep(st.op), in, out, r0, r1); break;
    case StepOp::kAttention: AttentionForward(p, img); break;
    case StepOp::kAddResidual:
      for (int64_t i = r0 * D; i < r1 * D; ++i) out[i] += in[i];
      break;
    case StepOp::kGelu: {
      T* d = gelu_d_.data();  // the derivative, for the backward
      if constexpr (std::is_same_v<T, float>) {
        if (blk_.gelu == GeluKind::kErf) {  // the run-time dispatched kernel
          static const GeluErfF32Fn kGelu = SelectGeluErfF32();
          const int64_t i0 = r0 * hidden_;
          kGelu(in + i0, out + i0, d + i0, (r1 - r0) * hidden_);
          break;
        }
      }
      for (int64_t i = r0 * hidden_; i < r1 * hidden_; ++i) out[i] = Gelu(in[i], blk_.gelu, &d[i]);
      break;
    }
    default:
      throw Error(std::string("block reconstruction: step ") + StepOpName(st.op) +
                  " is not part of a transformer block");
  }
  if (site >= 0) {
    const int64_t cols = st.cols;
    Quantize(site, p, 0, out + r0 * cols, r0 * cols, (r1 - r0) * cols);
  }
}

// Backward of the tap quantizer on image `img`'s rows of g (in place): the step size's per-row
// partial sums into tap_part_[site][row], then g *= dx^/dx.
template <typename T>
void BlockRecon<T>::TapBackward(TapPoint tap, T* g, int64_t img) {
  const int site = SiteOfTap(tap);
  if (site < 0 || act_[site].kind == ActQuant::Kind::kNone) return;
  const int64_t max_rows = static_cast<int64_t>(max_batch_) * tokens_;
  const int64_t cols = static_cast<int64_t>(save_[site].dxdx.size()) / max_rows;
  double* part = tap_part_.data() + site * max_rows;
  const int64_t r0 = img * tokens_, r1 = r0 + tokens_;
  for (int64_t r = r0; r < r1; ++r) ScaleGradMask(site, g + r * cols, r * cols, cols, &part[r]);
}

// One step's backward on the rows of image `img` (the Linears' dW waits for WeightGradients).
template <typename T>
void BlockRecon<T>::BackStep(const Step& st, int64_t img, int slot) {
  const int64_t r0 = img * tokens_, r1 = r0 + tokens_;
  T* gin = gbuf_[static_cast<int>(st.in)].data();
  T* gout = gbuf_[static_cast<int>(st.out)].data();
  const int D = dim_;
  if (st.has_tap && IsInputTap(st.tap)) TapBackward(st.tap, gout, img);
  switch (st.op) {
    case StepOp::kLn1:
    case StepOp::kLn2: {  // g_x += LN'(g_ln); the stream x is read, not written, by the LN
      const int j = st.op == StepOp::kLn1 ? 0 : 1;
      const LayerNormParams& ln = j == 0 ? blk_.ln1 : blk_.ln2;
      for (int64_t r = r0; r < r1; ++r) {
        const T* gy = gout + r * D;
        const T* xh = ln_xhat_[j].data() + r * D;
        T* gx = gin + r * D;
        const float* gam = ln.gamma.data();
        const T m1 = SumLanes8<T>(D, [&](int64_t i) { return gy[i] * static_cast<T>(gam[i]); }) /
                     static_cast<T>(D);
        const T m2 =
            SumLanes8<T>(D, [&](int64_t i) { return gy[i] * static_cast<T>(gam[i]) * xh[i]; }) /
            static_cast<T>(D);
        const T rstd = ln_rstd_[j][Sz(r)];
        for (int i = 0; i < D; ++i) {
          const T gh = gy[i] * static_cast<T>(ln.gamma[Sz(i)]);
          gx[i] += rstd * (gh - m1 - xh[i] * m2);
        }
      }
      break;
    }
    case StepOp::kQkv:
    case StepOp::kProj:
    case StepOp::kFc1:
    case StepOp::kFc2: LinearBackward(LinearOfStep(st.op), gout, gin, r0, r1); break;
    case StepOp::kAttention: AttentionBackward(img, slot); break;
    case StepOp::kAddResidual:  // x_out = x_in + lin_out: g_lin_out = g_x; g_x passes on
      std::copy(gout + r0 * D, gout + r1 * D, gin + r0 * D);
      break;
    case StepOp::kGelu: {
      const T* d = gelu_d_.data();
      for (int64_t i = r0 * hidden_; i < r1 * hidden_; ++i) gout[i] *= d[i];  // in == out
      break;
    }
    default:
      throw Error(std::string("block reconstruction: step ") + StepOpName(st.op) +
                  " is not part of a transformer block");
  }
}

template <typename T>
double BlockRecon<T>::Forward(const BlockTrainParams<T>& p, const T* x, int batch,
                              const T* target, T* out, SteMode mode) {
  ADALOG_CHECK(batch > 0 && batch <= max_batch_, "block reconstruction: batch ", batch,
               " outside 1..", max_batch_);
  batch_ = batch;
  mode_ = mode;
  if (mode != SteMode::kNormal) {
    for (int a = 0; a < kNumReconActs; ++a) {
      if (save_[a].rec.size() != save_[a].dxdx.size()) save_[a].rec.resize(save_[a].dxdx.size());
    }
  }
  for (int l = 0; l < kNumReconLinears; ++l) {
    ADALOG_CHECK(p.alpha[l].size() == lin_[l]->weight.size(), "block reconstruction: ",
                 ReconLinearName(l), " alpha has ", p.alpha[l].size(), " entries, expected ",
                 lin_[l]->weight.size());
  }
  for (int a = 0; a < kNumReconActs; ++a) {
    if (act_[a].kind == ActQuant::Kind::kNone) continue;
    const size_t want = (a == kActQ || a == kActK || a == kActV) ? Sz(heads_) : 1;
    ADALOG_CHECK(p.act_scale[a].size() == want, "block reconstruction: ", ReconActName(a),
                 " has ", p.act_scale[a].size(), " scales, expected ", want);
  }
  // Region 1: the soft-rounded weights and their derivatives (quant/adaround.h), by blocks of
  // output channels of all four Linears.
  exec::PoolFor(static_cast<int64_t>(wblocks_.size()), threads_, [&](int, int64_t item) {
    const WeightBlock& wb = wblocks_[Sz(item)];
    const int l = wb.linear;
    const LinearParams& lp = *lin_[l];
    for (int64_t o = wb.o0; o < wb.o1; ++o) {
      const UniformParams up = wq_[l].channel(o);
      if constexpr (std::is_same_v<T, float>) {  // the run-time dispatched kernel
        static const AdaRoundSoftRowF32Fn kSoft = SelectAdaRoundSoftRowF32();
        const size_t k0 = Sz(o * lp.in);
        kSoft(lp.weight.data() + k0, p.alpha[l].data() + k0, lp.in, up, w_soft_[l].data() + k0,
              dw_dalpha_[l].data() + k0);
        continue;
      }
      for (int i = 0; i < lp.in; ++i) {
        const size_t k = Sz(o * lp.in + i);
        w_soft_[l][k] = AdaRoundSoftWeight<T>(lp.weight[k], up, p.alpha[l][k], &dw_dalpha_[l][k]);
      }
    }
  });
  // Region 2: every step of one image per item, then its rows' loss partials.
  const int D = dim_;
  const int64_t row_n = static_cast<int64_t>(tokens_) * D;  // floats per image
  T* xs = buf_[static_cast<int>(Buf::kX)].data();
  exec::PoolFor(batch, threads_, [&](int, int64_t img) {
    std::copy(x + img * row_n, x + (img + 1) * row_n, xs + img * row_n);
    for (const Step& st : steps_) RunStep(st, p, img);
    if (out != nullptr) std::copy(xs + img * row_n, xs + (img + 1) * row_n, out + img * row_n);
    for (int64_t r = img * tokens_; r < (img + 1) * tokens_; ++r) {
      T* dr = diff_.data() + r * D;
      for (int i = 0; i < D; ++i) dr[i] = target ? xs[r * D + i] - target[r * D + i] : T(0);
      loss_part_[Sz(r)] = SumLanes8<double>(
          D, [&](int64_t i) { return static_cast<double>(dr[i]) * static_cast<double>(dr[i]); });
    }
  });
  const int64_t rows = static_cast<int64_t>(batch) * tokens_;
  return SumInOrder(loss_part_.data(), rows) / (static_cast<double>(batch) * D) / 10.0;
}

template <typename T>
void BlockRecon<T>::Backward(const BlockTrainParams<T>& p, BlockTrainParams<T>* grad, T* dx) {
  // The alphas' gradients are written whole by WeightGradients (no zeroing pass); the step sizes'
  // are set from the partial sums below.
  for (int l = 0; l < kNumReconLinears; ++l) grad->alpha[l].resize(p.alpha[l].size());
  for (int a = 0; a < kNumReconActs; ++a) grad->act_scale[a].assign(p.act_scale[a].size(), T(0));
  const int64_t row_n = static_cast<int64_t>(tokens_) * dim_;
  T* gx = gbuf_[static_cast<int>(Buf::kX)].data();
  const T f = static_cast<T>(2.0 / (static_cast<double>(batch_) * dim_ * 10.0));
  // Region 1: every step's backward of one image per item, in reverse step order.
  exec::PoolFor(batch_, threads_, [&](int slot, int64_t img) {
    for (int64_t i = img * row_n; i < (img + 1) * row_n; ++i) gx[i] = f * diff_[Sz(i)];
    for (size_t s = steps_.size(); s-- > 0;) BackStep(steps_[s], img, slot);
    if (dx != nullptr) std::copy(gx + img * row_n, gx + (img + 1) * row_n, dx + img * row_n);
  });
  // Region 2: the Linears' dW over the whole batch.
  WeightGradients(grad);
  // The step sizes: per-row (taps) and per-(image, head) (attention) partials in a fixed order.
  const int64_t rows = static_cast<int64_t>(batch_) * tokens_;
  const int64_t max_rows = static_cast<int64_t>(max_batch_) * tokens_;
  for (int site : tap_sites_) {
    grad->act_scale[site].assign(
        1, static_cast<T>(SumInOrder(tap_part_.data() + site * max_rows, rows)));
  }
  const int H = heads_;
  const int64_t max_pairs = static_cast<int64_t>(max_batch_) * H;
  const int sites[4] = {kActQ, kActK, kActV, kActProbs};
  for (int s = 0; s < 4; ++s) {
    const int site = sites[s];
    if (act_[site].kind == ActQuant::Kind::kNone) continue;
    std::vector<T>& g = grad->act_scale[site];
    std::fill(g.begin(), g.end(), T(0));
    for (int64_t b = 0; b < batch_; ++b) {  // image order, then head: fixed
      for (int h = 0; h < H; ++h) {
        const int idx = site == kActProbs ? 0 : h;
        g[Sz(idx)] += static_cast<T>(attn_part_[Sz(s * max_pairs + b * H + h)]);
      }
    }
  }
}

template struct BlockTrainParams<float>;
template struct BlockTrainParams<double>;
template class BlockRecon<float>;
template class BlockRecon<double>;

}  // namespace adalog::search
