// Scalar fake-quant reference forward (see sim_reference_forward.h).
#include "tests/util/sim_reference_forward.h"

#include <cmath>
#include <utility>

#include "quant/log_quantizers.h"
#include "quant/twin_uniform.h"
#include "quant/uniform.h"

namespace adalog::test {
namespace {

using Mat = std::vector<double>;  // [rows][cols]

// W_hat: per output row, scalar FakeQuant of every element (empty plan: FP32).
std::vector<float> QuantWeight(const UniformPerChannel& q, const std::vector<float>& w, int out,
                               int in) {
  if (q.scales.empty()) return w;
  std::vector<float> r(w.size());
  for (int o = 0; o < out; ++o) {
    const UniformQuantizer u(q.channel(o));
    for (int i = 0; i < in; ++i) r[size_t(o) * in + i] = u.FakeQuant(w[size_t(o) * in + i]);
  }
  return r;
}

// y = Q_in(x) W_hat^T + b.
Mat QLinear(const LinearParams& l, const LinearQuant& q, const Mat& x, int rows) {
  const std::vector<float> w = QuantWeight(q.weight, l.weight, l.out, l.in);
  std::vector<float> xq(x.size());
  for (size_t k = 0; k < x.size(); ++k) xq[k] = SimReferenceAct(q.input, static_cast<float>(x[k]));
  Mat y(static_cast<size_t>(rows) * l.out);
  for (int r = 0; r < rows; ++r) {
    for (int o = 0; o < l.out; ++o) {
      double s = l.bias[o];
      for (int i = 0; i < l.in; ++i) s += double(w[size_t(o) * l.in + i]) * xq[size_t(r) * l.in + i];
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

float HeadQ(const UniformPerHead& q, int h, double x) {
  const float v = static_cast<float>(x);
  return q.scales.empty() ? v : UniformQuantizer(q.head(h)).FakeQuant(v);
}

}  // namespace

float SimReferenceAct(const ActQuant& q, float x) {
  switch (q.kind) {
    case ActQuant::Kind::kNone: return x;
    case ActQuant::Kind::kUniform: return UniformQuantizer(q.uniform.params).FakeQuant(x);
    case ActQuant::Kind::kTwin: return TwinUniformQuantizer(q.twin).FakeQuant(x);
    case ActQuant::Kind::kLog: {
      // Spec 2.6: y = Q(x + shift); the network sees y - shift unless the -shift lives in the
      // next layer's bias.
      const float y = LogQuantizer(q.log).FakeQuant(x + q.shift);
      return q.shift_folded ? y : y - q.shift;
    }
  }
  return x;
}

VitModel SimReferenceWeights(const QuantizedModel& qm) {
  VitModel m = qm.model;
  const QuantPlan& plan = qm.plan;
  PatchEmbedParams& e = m.embed;
  e.weight = QuantWeight(plan.patch_embed_weight, e.weight, e.dim, e.in_channels * e.patch * e.patch);
  for (size_t b = 0; b < m.blocks.size() && b < plan.blocks.size(); ++b) {
    BlockParams& mb = m.blocks[b];
    const BlockQuant& bq = plan.blocks[b];
    for (auto [l, q] : {std::pair{&mb.qkv, &bq.qkv}, std::pair{&mb.proj, &bq.proj},
                        std::pair{&mb.fc1, &bq.fc1}, std::pair{&mb.fc2, &bq.fc2}}) {
      l->weight = QuantWeight(q->weight, l->weight, l->out, l->in);
    }
  }
  m.head.weight = QuantWeight(plan.head.weight, m.head.weight, m.head.out, m.head.in);
  if (m.pooling == Pooling::kClsDistAvg) {
    m.head_dist.weight =
        QuantWeight(plan.head_dist.weight, m.head_dist.weight, m.head_dist.out, m.head_dist.in);
  }
  return m;
}

std::vector<float> SimReferenceForward(const QuantizedModel& qm, const std::vector<float>& images,
                                       int batch) {
  const VitModel& m = qm.model;
  const QuantPlan& plan = qm.plan;
  const auto& e = m.embed;
  const int D = m.dim, T = m.num_tokens(), P = e.num_patches(), pre = m.num_prefix_tokens();
  const int C = e.in_channels, H = e.image_h, W = e.image_w, p = e.patch;
  const std::vector<float> ew = QuantWeight(plan.patch_embed_weight, e.weight, D, C * p * p);
  std::vector<float> logits;
  for (int b = 0; b < batch; ++b) {
    Mat x(size_t(T) * D, 0.0);
    // Patch embedding (image FP32, weight quantized), raster order; prefix tokens first.
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
                s += double(ew[wi]) * images[ii];
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
    for (size_t bi = 0; bi < m.blocks.size(); ++bi) {
      const BlockParams& blk = m.blocks[bi];
      const BlockQuant& bq = plan.blocks[bi];
      const int heads = blk.heads, hd = D / heads;
      Mat h = LayerNorm(blk.ln1, x, T);
      Mat qkv = QLinear(blk.qkv, bq.qkv, h, T);
      Mat att(size_t(T) * D, 0.0);
      for (int hh = 0; hh < heads; ++hh) {
        // q, k, v of this head, fake-quantized per head (q unscaled: the scale follows q@k^T).
        std::vector<float> q(size_t(T) * hd), k(q.size()), v(q.size());
        for (int t = 0; t < T; ++t) {
          for (int d = 0; d < hd; ++d) {
            const size_t src = size_t(t) * 3 * D + hh * hd + d, dst = size_t(t) * hd + d;
            q[dst] = HeadQ(bq.attn.q, hh, qkv[src]);
            k[dst] = HeadQ(bq.attn.k, hh, qkv[src + D]);
            v[dst] = HeadQ(bq.attn.v, hh, qkv[src + 2 * D]);
          }
        }
        std::vector<double> sc(T);
        for (int i = 0; i < T; ++i) {
          double mx = -1e300;
          for (int j = 0; j < T; ++j) {
            double s = 0;
            for (int d = 0; d < hd; ++d) s += double(q[size_t(i) * hd + d]) * k[size_t(j) * hd + d];
            sc[j] = s * blk.attn_scale;
            mx = std::max(mx, sc[j]);
          }
          double sum = 0;
          for (int j = 0; j < T; ++j) sum += sc[j] = std::exp(sc[j] - mx);
          std::vector<float> probs(T);
          for (int j = 0; j < T; ++j) {
            probs[j] = SimReferenceAct(bq.attn.probs, static_cast<float>(sc[j] / sum));
          }
          for (int d = 0; d < hd; ++d) {
            double o = 0;
            for (int j = 0; j < T; ++j) o += double(probs[j]) * v[size_t(j) * hd + d];
            att[size_t(i) * D + hh * hd + d] = o;
          }
        }
      }
      Mat pr = QLinear(blk.proj, bq.proj, att, T);
      for (size_t kk = 0; kk < x.size(); ++kk) x[kk] += pr[kk];
      h = LayerNorm(blk.ln2, x, T);
      Mat f1 = QLinear(blk.fc1, bq.fc1, h, T);
      for (auto& val : f1) val = Gelu(val, blk.gelu);
      Mat f2 = QLinear(blk.fc2, bq.fc2, f1, T);
      for (size_t kk = 0; kk < x.size(); ++kk) x[kk] += f2[kk];
    }
    x = LayerNorm(m.norm, x, T);
    Mat pooled(D, 0.0);
    Mat out;
    if (m.pooling == Pooling::kMeanPatches) {
      for (int t = pre; t < T; ++t) {
        for (int d = 0; d < D; ++d) pooled[d] += x[size_t(t) * D + d] / P;
      }
      out = QLinear(m.head, plan.head, pooled, 1);
    } else {
      pooled.assign(x.begin(), x.begin() + D);
      out = QLinear(m.head, plan.head, pooled, 1);
      if (m.pooling == Pooling::kClsDistAvg) {
        Mat dist(x.begin() + D, x.begin() + 2 * D);
        Mat o2 = QLinear(m.head_dist, plan.head_dist, dist, 1);
        for (size_t kk = 0; kk < out.size(); ++kk) out[kk] = (out[kk] + o2[kk]) / 2;
      }
    }
    for (double val : out) logits.push_back(static_cast<float>(val));
  }
  return logits;
}

}  // namespace adalog::test
