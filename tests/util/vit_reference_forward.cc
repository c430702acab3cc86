// Scalar reference forward of VitModel (see vit_reference_forward.h).
#include "tests/util/vit_reference_forward.h"

#include <cmath>

namespace adalog::test {
namespace {

using Mat = std::vector<double>;  // [rows][cols]

Mat Linear(const LinearParams& l, const Mat& x, int rows) {
  Mat y(static_cast<size_t>(rows) * l.out);
  for (int r = 0; r < rows; ++r) {
    for (int o = 0; o < l.out; ++o) {
      double s = l.bias[o];
      for (int i = 0; i < l.in; ++i) s += double(l.weight[size_t(o) * l.in + i]) * x[size_t(r) * l.in + i];
      y[size_t(r) * l.out + o] = s;
    }
  }
  return y;
}

Mat LayerNorm(const LayerNormParams& n, const Mat& x, int rows) {
  Mat y(x.size());
  for (int r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int c = 0; c < n.dim; ++c) mean += x[size_t(r) * n.dim + c];
    mean /= n.dim;
    for (int c = 0; c < n.dim; ++c) {
      const double d = x[size_t(r) * n.dim + c] - mean;
      var += d * d;
    }
    var /= n.dim;
    const double inv = 1.0 / std::sqrt(var + n.eps);
    for (int c = 0; c < n.dim; ++c) {
      y[size_t(r) * n.dim + c] = (x[size_t(r) * n.dim + c] - mean) * inv * n.gamma[c] + n.beta[c];
    }
  }
  return y;
}

double Gelu(double x, GeluKind k) {
  if (k == GeluKind::kErf) return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
  const double c = std::sqrt(2.0 / M_PI);
  return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
}

}  // namespace

std::vector<float> VitReferenceForward(const VitModel& m, const std::vector<float>& images,
                                       int batch) {
  const auto& e = m.embed;
  const int D = m.dim, T = m.num_tokens(), P = e.num_patches(), pre = m.num_prefix_tokens();
  const int C = e.in_channels, H = e.image_h, W = e.image_w, p = e.patch;
  std::vector<float> logits;
  for (int b = 0; b < batch; ++b) {
    Mat x(size_t(T) * D, 0.0);
    // Patch embedding, raster order; prefix tokens first.
    for (int gy = 0; gy < e.grid_h(); ++gy) {
      for (int gx = 0; gx < e.grid_w(); ++gx) {
        const int tok = pre + gy * e.grid_w() + gx;
        for (int d = 0; d < D; ++d) {
          double s = e.bias[d];
          for (int c = 0; c < C; ++c) {
            for (int ky = 0; ky < p; ++ky) {
              for (int kx = 0; kx < p; ++kx) {
                const size_t wi = ((size_t(d) * C + c) * p + ky) * p + kx;
                const size_t ii = ((size_t(b) * C + c) * H + gy * p + ky) * W + gx * p + kx;
                s += double(e.weight[wi]) * images[ii];
              }
            }
          }
          x[size_t(tok) * D + d] = s;
        }
      }
    }
    if (!m.pos_embed.empty() && m.pos_mode == PosEmbedMode::kPatchesOnly) {
      for (int t = 0; t < P; ++t) {
        for (int d = 0; d < D; ++d) x[size_t(pre + t) * D + d] += m.pos_embed[size_t(t) * D + d];
      }
    }
    if (m.has_cls_token) {
      for (int d = 0; d < D; ++d) x[d] = m.cls_token[d];
    }
    if (m.has_dist_token) {
      for (int d = 0; d < D; ++d) x[size_t(D) + d] = m.dist_token[d];
    }
    if (!m.pos_embed.empty() && m.pos_mode == PosEmbedMode::kAfterPrefix) {
      for (size_t k = 0; k < x.size(); ++k) x[k] += m.pos_embed[k];
    }
    for (const auto& blk : m.blocks) {
      const int heads = blk.heads, hd = D / heads;
      Mat h = LayerNorm(blk.ln1, x, T);
      Mat qkv = Linear(blk.qkv, h, T);
      Mat att(size_t(T) * D, 0.0);
      std::vector<double> sc(T);
      for (int hh = 0; hh < heads; ++hh) {
        for (int i = 0; i < T; ++i) {
          double mx = -1e300;
          for (int j = 0; j < T; ++j) {
            double s = 0;
            for (int d = 0; d < hd; ++d) {
              s += qkv[size_t(i) * 3 * D + hh * hd + d] * qkv[size_t(j) * 3 * D + D + hh * hd + d];
            }
            sc[j] = s * blk.attn_scale;
            mx = std::max(mx, sc[j]);
          }
          double sum = 0;
          for (int j = 0; j < T; ++j) sum += sc[j] = std::exp(sc[j] - mx);
          for (int d = 0; d < hd; ++d) {
            double o = 0;
            for (int j = 0; j < T; ++j) o += sc[j] / sum * qkv[size_t(j) * 3 * D + 2 * D + hh * hd + d];
            att[size_t(i) * D + hh * hd + d] = o;
          }
        }
      }
      Mat pr = Linear(blk.proj, att, T);
      for (size_t k = 0; k < x.size(); ++k) x[k] += pr[k];
      h = LayerNorm(blk.ln2, x, T);
      Mat f1 = Linear(blk.fc1, h, T);
      for (auto& v : f1) v = Gelu(v, blk.gelu);
      Mat f2 = Linear(blk.fc2, f1, T);
      for (size_t k = 0; k < x.size(); ++k) x[k] += f2[k];
    }
    x = LayerNorm(m.norm, x, T);
    Mat pooled(D, 0.0);
    Mat out;
    if (m.pooling == Pooling::kMeanPatches) {
      for (int t = pre; t < T; ++t) {
        for (int d = 0; d < D; ++d) pooled[d] += x[size_t(t) * D + d] / P;
      }
      out = Linear(m.head, pooled, 1);
    } else {
      pooled.assign(x.begin(), x.begin() + D);
      out = Linear(m.head, pooled, 1);
      if (m.pooling == Pooling::kClsDistAvg) {
        Mat dist(x.begin() + D, x.begin() + 2 * D);
        Mat o2 = Linear(m.head_dist, dist, 1);
        for (size_t k = 0; k < out.size(); ++k) out[k] = (out[k] + o2[k]) / 2;
      }
    }
    for (double v : out) logits.push_back(static_cast<float>(v));
  }
  return logits;
}

}  // namespace adalog::test
