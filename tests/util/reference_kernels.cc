// Scalar op math of the test reference forward (see reference_kernels.h).
#include "tests/util/reference_kernels.h"

#include <algorithm>
#include <cmath>

namespace adalog::test::ref {

void LayerNormRows(const LayerNormParams& n, const double* x, int rows, double* y) {
  const int D = n.dim;
  for (int r = 0; r < rows; ++r) {
    const double* xr = x + size_t(r) * D;
    double mean = 0, var = 0;
    for (int c = 0; c < D; ++c) mean += xr[c];
    mean /= D;
    for (int c = 0; c < D; ++c) {
      const double d = xr[c] - mean;
      var += d * d;
    }
    var /= D;
    const double inv = 1.0 / std::sqrt(var + n.eps);
    for (int c = 0; c < D; ++c)
      y[size_t(r) * D + c] = (xr[c] - mean) * inv * n.gamma[c] + n.beta[c];
  }
}

Mat LayerNorm(const LayerNormParams& n, const Mat& x, int rows) {
  Mat y(x.size());
  LayerNormRows(n, x.data(), rows, y.data());
  return y;
}

double LinearDot(const LinearParams& l, int o, const double* x, double* mag) {
  const float* w = l.weight.data() + size_t(o) * l.in;
  double s = l.bias[o], m = std::fabs(l.bias[o]);
  for (int i = 0; i < l.in; ++i) {
    const double t = double(w[i]) * x[i];
    s += t;
    m += std::fabs(t);
  }
  if (mag) *mag = m;
  return s;
}

Mat Linear(const LinearParams& l, const Mat& x, int rows) {
  Mat y(static_cast<size_t>(rows) * l.out);
  for (int r = 0; r < rows; ++r) {
    for (int o = 0; o < l.out; ++o)
      y[size_t(r) * l.out + o] = LinearDot(l, o, x.data() + size_t(r) * l.in);
  }
  return y;
}

double PatchEmbedDot(const PatchEmbedParams& e, const float* images, int b, int gy, int gx, int d,
                     double* mag) {
  const int C = e.in_channels, H = e.image_h, W = e.image_w, p = e.patch;
  double s = e.bias[d], m = std::fabs(e.bias[d]);
  for (int c = 0; c < C; ++c) {
    for (int ky = 0; ky < p; ++ky) {
      for (int kx = 0; kx < p; ++kx) {
        const size_t wi = ((size_t(d) * C + c) * p + ky) * p + kx;
        const size_t ii = ((size_t(b) * C + c) * H + gy * p + ky) * W + gx * p + kx;
        const double t = double(e.weight[wi]) * images[ii];
        s += t;
        m += std::fabs(t);
      }
    }
  }
  if (mag) *mag = m;
  return s;
}

void AssembleTokens(const VitModel& m, double* x) {
  const int D = m.dim, T = m.num_tokens(), P = m.embed.num_patches(), pre = m.num_prefix_tokens();
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
    for (size_t k = 0; k < size_t(T) * D; ++k) x[k] += m.pos_embed[k];
  }
}

void SoftmaxRow(const double* q, const double* k, int tokens, int hd, double scale, double* probs) {
  double mx = -1e300;
  for (int j = 0; j < tokens; ++j) {
    double s = 0;
    for (int d = 0; d < hd; ++d) s += q[d] * k[size_t(j) * hd + d];
    probs[j] = s * scale;
    mx = std::max(mx, probs[j]);
  }
  double sum = 0;
  for (int j = 0; j < tokens; ++j) sum += probs[j] = std::exp(probs[j] - mx);
  for (int j = 0; j < tokens; ++j) probs[j] = probs[j] / sum;
}

double AttnValueDot(const double* p, const double* v, int tokens, int hd, int d, double* mag) {
  double o = 0, m = 0;
  for (int j = 0; j < tokens; ++j) {
    const double t = p[j] * v[size_t(j) * hd + d];
    o += t;
    m += std::fabs(t);
  }
  if (mag) *mag = m;
  return o;
}

double Gelu(double x, GeluKind k) {
  if (k == GeluKind::kErf) return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
  const double c = std::sqrt(2.0 / M_PI);
  return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
}

void Pool(const VitModel& m, const double* xn, double* pooled, double* dist) {
  const int D = m.dim, T = m.num_tokens(), P = m.embed.num_patches(), pre = m.num_prefix_tokens();
  if (m.pooling == Pooling::kMeanPatches) {
    for (int d = 0; d < D; ++d) pooled[d] = 0.0;
    for (int t = pre; t < T; ++t) {
      for (int d = 0; d < D; ++d) pooled[d] += xn[size_t(t) * D + d] / P;
    }
    return;
  }
  for (int d = 0; d < D; ++d) pooled[d] = xn[d];
  if (m.pooling == Pooling::kClsDistAvg) {
    for (int d = 0; d < D; ++d) dist[d] = xn[size_t(D) + d];
  }
}

}  // namespace adalog::test::ref
