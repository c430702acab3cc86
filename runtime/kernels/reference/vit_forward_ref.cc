// Plain reference forward of a VitModel (see vit_forward_ref.h): the schedule (vit_schedule.h)
// walked one image at a time with scalar step implementations.
#include "runtime/kernels/reference/vit_forward_ref.h"

#include <algorithm>
#include <cstddef>

#include "quant/error.h"
#include "runtime/kernels/reference/float_kernels_ref.h"
#include "runtime/vit_schedule.h"

namespace adalog {
namespace ref {

void Linear(const float* x, const float* w, const float* b, float* y, int m, int n, int k) {
  for (int i = 0; i < m; ++i) {
    for (int o = 0; o < n; ++o) {
      double acc = 0.0;
      for (int j = 0; j < k; ++j) {
        acc += static_cast<double>(x[static_cast<size_t>(i) * k + j]) * w[static_cast<size_t>(o) * k + j];
      }
      y[static_cast<size_t>(i) * n + o] = static_cast<float>(acc + (b ? b[o] : 0.f));
    }
  }
}

namespace {

void LinearP(const float* x, const LinearParams& l, float* y, int m) {
  Linear(x, l.weight.data(), l.bias.data(), y, m, l.out, l.in);
}

void LayerNormP(const float* x, float* y, int rows, const LayerNormParams& n) {
  LayerNorm(x, y, rows, n.dim, n.gamma.data(), n.beta.data(), n.eps);
}

// The scalar implementation of one schedule step for one image (rows = st.tokens).
void RefStep(const VitModel& m, const Step& st, const float* img, std::vector<float>* bufs,
             float* out_logits) {
  auto B = [bufs](Buf b) { return bufs[static_cast<int>(b)].data(); };
  const PatchEmbedParams& e = m.embed;
  const int D = m.dim, T = m.num_tokens(), P = e.num_patches(), pre = m.num_prefix_tokens();
  const BlockParams* blk = st.block >= 0 ? &m.blocks[static_cast<size_t>(st.block)] : nullptr;
  const float* in = st.in == Buf::kImages ? img : B(st.in);
  float* out = st.out == Buf::kLogits ? out_logits : B(st.out);
  switch (st.op) {
    case StepOp::kPatchEmbed: {  // conv with kernel == stride == patch, no padding
      const int C = e.in_channels, ps = e.patch, gw = e.grid_w(), H = e.image_h, W = e.image_w;
      for (int p = 0; p < P; ++p) {
        const int py = p / gw, px = p % gw;
        for (int o = 0; o < D; ++o) {
          double acc = e.bias[o];
          for (int c = 0; c < C; ++c)
            for (int ky = 0; ky < ps; ++ky)
              for (int kx = 0; kx < ps; ++kx)
                acc += static_cast<double>(
                           e.weight[((static_cast<size_t>(o) * C + c) * ps + ky) * ps + kx]) *
                       in[(static_cast<size_t>(c) * H + py * ps + ky) * W + px * ps + kx];
          out[static_cast<size_t>(p) * D + o] = static_cast<float>(acc);
        }
      }
      break;
    }
    case StepOp::kTokens: {
      const int first = m.pos_mode == PosEmbedMode::kAfterPrefix ? 0 : pre;
      for (int t = 0; t < T; ++t) {
        const float* src = t < pre ? ((t == 0 && m.has_cls_token) ? m.cls_token.data()
                                                                  : m.dist_token.data())
                                   : in + static_cast<size_t>(t - pre) * D;
        float* dst = out + static_cast<size_t>(t) * D;
        for (int i = 0; i < D; ++i) dst[i] = src[i];
        if (!m.pos_embed.empty() && t >= first) {
          for (int i = 0; i < D; ++i) dst[i] += m.pos_embed[static_cast<size_t>(t - first) * D + i];
        }
      }
      break;
    }
    case StepOp::kLn1: LayerNormP(in, out, T, blk->ln1); break;
    case StepOp::kLn2: LayerNormP(in, out, T, blk->ln2); break;
    case StepOp::kQkv: LinearP(in, blk->qkv, out, T); break;
    case StepOp::kProj: LinearP(in, blk->proj, out, T); break;
    case StepOp::kFc1: LinearP(in, blk->fc1, out, T); break;
    case StepOp::kFc2: LinearP(in, blk->fc2, out, T); break;
    case StepOp::kAddResidual: Add(out, in, out, static_cast<int64_t>(T) * D); break;
    case StepOp::kGelu: {
      const int64_t n = static_cast<int64_t>(T) * st.cols;
      if (blk->gelu == GeluKind::kErf) {
        GeluErf(out, out, n);
      } else {
        GeluTanh(out, out, n);
      }
      break;
    }
    case StepOp::kAttention: {
      const int heads = blk->heads, hd = D / heads;
      const float* qkv = in;
      std::vector<float> s(T);
      for (int h = 0; h < heads; ++h) {
        for (int i = 0; i < T; ++i) {
          const float* q = &qkv[static_cast<size_t>(i) * 3 * D + h * hd];
          for (int j = 0; j < T; ++j) {
            const float* k = &qkv[static_cast<size_t>(j) * 3 * D + D + h * hd];
            double acc = 0.0;
            for (int d = 0; d < hd; ++d) acc += static_cast<double>(q[d]) * k[d];
            s[j] = static_cast<float>(acc) * blk->attn_scale;
          }
          Softmax(s.data(), s.data(), 1, T);
          for (int d = 0; d < hd; ++d) {
            double acc = 0.0;
            for (int j = 0; j < T; ++j)
              acc += static_cast<double>(s[j]) * qkv[static_cast<size_t>(j) * 3 * D + 2 * D + h * hd + d];
            out[static_cast<size_t>(i) * D + h * hd + d] = static_cast<float>(acc);
          }
        }
      }
      break;
    }
    case StepOp::kHead: {  // final norm over every token, pooling, head(s)
      const int classes = m.num_classes();
      std::vector<float> ln(static_cast<size_t>(T) * D);
      LayerNormP(in, ln.data(), T, m.norm);
      if (m.pooling == Pooling::kClsToken) {
        LinearP(ln.data(), m.head, out, 1);
      } else if (m.pooling == Pooling::kClsDistAvg) {
        std::vector<float> a(classes), d(classes);
        LinearP(ln.data(), m.head, a.data(), 1);
        LinearP(ln.data() + D, m.head_dist, d.data(), 1);
        for (int c = 0; c < classes; ++c) out[c] = (a[c] + d[c]) * 0.5f;
      } else {
        std::vector<float> mean(D);
        for (int i = 0; i < D; ++i) {
          double acc = 0.0;
          for (int t = pre; t < T; ++t) acc += ln[static_cast<size_t>(t) * D + i];
          mean[i] = static_cast<float>(acc / P);
        }
        LinearP(mean.data(), m.head, out, 1);
      }
      break;
    }
    default:
      Fail("reference forward: Swin step ", StepOpName(st.op), " is not implemented");
  }
}

}  // namespace

// Walks the model's schedule one image at a time.
std::vector<float> VitForwardFp32(const VitModel& m, const float* images, int batch) {
  ADALOG_CHECK(!m.is_swin(), "reference forward: Swin models are not supported yet");
  const Schedule sched = BuildSchedule(m);
  const PatchEmbedParams& e = m.embed;
  const int D = m.dim, T = m.num_tokens(), P = e.num_patches(), classes = m.num_classes();
  int F = 0;
  for (const BlockParams& b : m.blocks) F = std::max(F, b.fc1.out);
  std::vector<float> bufs[static_cast<int>(Buf::kNumBufs)];
  const size_t td = static_cast<size_t>(T) * D;
  bufs[static_cast<int>(Buf::kEmbedOut)].resize(static_cast<size_t>(P) * D);
  for (Buf b : {Buf::kX, Buf::kLn, Buf::kMerged, Buf::kLinOut}) bufs[static_cast<int>(b)].resize(td);
  bufs[static_cast<int>(Buf::kQkv)].resize(3 * td);
  bufs[static_cast<int>(Buf::kHidden)].resize(static_cast<size_t>(T) * F);
  std::vector<float> logits(static_cast<size_t>(batch) * classes);
  const size_t image_size = static_cast<size_t>(e.in_channels) * e.image_h * e.image_w;
  for (int b = 0; b < batch; ++b) {
    for (const Step& st : sched.steps) {
      RefStep(m, st, images + b * image_size, bufs, &logits[static_cast<size_t>(b) * classes]);
    }
  }
  return logits;
}

}  // namespace ref
}  // namespace adalog
