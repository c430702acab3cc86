// Plain reference forward of a VitModel (see vit_forward_ref.h).
#include "runtime/kernels/reference/vit_forward_ref.h"

#include <cstddef>

#include "runtime/kernels/reference/float_kernels_ref.h"

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

}  // namespace

std::vector<float> VitForwardFp32(const VitModel& m, const float* images, int batch) {
  const PatchEmbedParams& e = m.embed;
  const int D = m.dim, T = m.num_tokens(), P = e.num_patches(), pre = m.num_prefix_tokens();
  const int C = e.in_channels, ps = e.patch, gw = e.grid_w(), H = e.image_h, W = e.image_w;
  const int classes = m.num_classes();
  std::vector<float> logits(static_cast<size_t>(batch) * classes);
  std::vector<float> x(static_cast<size_t>(T) * D), ln(x.size()), tmp(x.size());
  for (int b = 0; b < batch; ++b) {
    const float* img = images + static_cast<size_t>(b) * C * H * W;
    // Patch embedding: conv with kernel == stride == patch, no padding.
    for (int p = 0; p < P; ++p) {
      const int py = p / gw, px = p % gw;
      for (int o = 0; o < D; ++o) {
        double acc = e.bias[o];
        for (int c = 0; c < C; ++c)
          for (int ky = 0; ky < ps; ++ky)
            for (int kx = 0; kx < ps; ++kx)
              acc += static_cast<double>(
                         e.weight[((static_cast<size_t>(o) * C + c) * ps + ky) * ps + kx]) *
                     img[(static_cast<size_t>(c) * H + py * ps + ky) * W + px * ps + kx];
        x[static_cast<size_t>(pre + p) * D + o] = static_cast<float>(acc);
      }
    }
    int t0 = 0;
    if (m.has_cls_token) {
      for (int i = 0; i < D; ++i) x[static_cast<size_t>(t0) * D + i] = m.cls_token[i];
      ++t0;
    }
    if (m.has_dist_token) {
      for (int i = 0; i < D; ++i) x[static_cast<size_t>(t0) * D + i] = m.dist_token[i];
    }
    if (!m.pos_embed.empty()) {
      const int first = m.pos_mode == PosEmbedMode::kAfterPrefix ? 0 : pre;
      for (int t = first; t < T; ++t)
        for (int i = 0; i < D; ++i)
          x[static_cast<size_t>(t) * D + i] += m.pos_embed[static_cast<size_t>(t - first) * D + i];
    }
    for (const BlockParams& blk : m.blocks) {
      const int heads = blk.heads, hd = D / heads;
      // Attention.
      LayerNormP(x.data(), ln.data(), T, blk.ln1);
      std::vector<float> qkv(static_cast<size_t>(T) * 3 * D);
      LinearP(ln.data(), blk.qkv, qkv.data(), T);
      std::vector<float> ctx(static_cast<size_t>(T) * D), s(T);
      for (int h = 0; h < heads; ++h) {
        for (int i = 0; i < T; ++i) {
          const float* q = &qkv[static_cast<size_t>(i) * 3 * D + h * hd];
          for (int j = 0; j < T; ++j) {
            const float* k = &qkv[static_cast<size_t>(j) * 3 * D + D + h * hd];
            double acc = 0.0;
            for (int d = 0; d < hd; ++d) acc += static_cast<double>(q[d]) * k[d];
            s[j] = static_cast<float>(acc) * blk.attn_scale;
          }
          Softmax(s.data(), s.data(), 1, T);
          for (int d = 0; d < hd; ++d) {
            double acc = 0.0;
            for (int j = 0; j < T; ++j)
              acc += static_cast<double>(s[j]) * qkv[static_cast<size_t>(j) * 3 * D + 2 * D + h * hd + d];
            ctx[static_cast<size_t>(i) * D + h * hd + d] = static_cast<float>(acc);
          }
        }
      }
      LinearP(ctx.data(), blk.proj, tmp.data(), T);
      Add(x.data(), tmp.data(), x.data(), static_cast<int64_t>(T) * D);
      // MLP.
      LayerNormP(x.data(), ln.data(), T, blk.ln2);
      std::vector<float> hid(static_cast<size_t>(T) * blk.fc1.out);
      LinearP(ln.data(), blk.fc1, hid.data(), T);
      if (blk.gelu == GeluKind::kErf) {
        GeluErf(hid.data(), hid.data(), static_cast<int64_t>(hid.size()));
      } else {
        GeluTanh(hid.data(), hid.data(), static_cast<int64_t>(hid.size()));
      }
      LinearP(hid.data(), blk.fc2, tmp.data(), T);
      Add(x.data(), tmp.data(), x.data(), static_cast<int64_t>(T) * D);
    }
    LayerNormP(x.data(), ln.data(), T, m.norm);
    float* out = &logits[static_cast<size_t>(b) * classes];
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
  }
  return logits;
}

}  // namespace ref
}  // namespace adalog
