// The one scalar reference forward of VitModel, with hooks (see vit_reference_forward.h).
#include "tests/util/vit_reference_forward.h"

#include "tests/util/reference_kernels.h"

namespace adalog::test {

std::vector<float> VitReferenceForward(const VitModel& m, const std::vector<float>& images,
                                       int batch, const ReferenceHooks& hooks) {
  if (m.is_swin()) return SwinReferenceForward(m, images, batch, hooks);
  using ref::Mat;
  const auto& e = m.embed;
  const int D = m.dim, T = m.num_tokens(), pre = m.num_prefix_tokens();
  auto input = [&](TapPoint tap, int block, int head, Mat& x) {
    if (hooks.input) hooks.input(tap, block, head, x.data(), x.size());
  };
  std::vector<float> logits;
  for (int b = 0; b < batch; ++b) {
    Mat x(size_t(T) * D, 0.0);
    // Patch embedding, raster order; prefix tokens first.
    for (int gy = 0; gy < e.grid_h(); ++gy) {
      for (int gx = 0; gx < e.grid_w(); ++gx) {
        const int tok = pre + gy * e.grid_w() + gx;
        for (int d = 0; d < D; ++d)
          x[size_t(tok) * D + d] = ref::PatchEmbedDot(e, images.data(), b, gy, gx, d);
      }
    }
    ref::AssembleTokens(m, x.data());
    for (size_t bi = 0; bi < m.blocks.size(); ++bi) {
      const BlockParams& blk = m.blocks[bi];
      const int block = static_cast<int>(bi), heads = blk.heads, hd = D / heads;
      Mat h = ref::LayerNorm(blk.ln1, x, T);
      input(TapPoint::kQkvIn, block, -1, h);
      const Mat qkv = ref::Linear(blk.qkv, h, T);
      Mat att(size_t(T) * D, 0.0);
      for (int hh = 0; hh < heads; ++hh) {
        // This head's q, k, v (q unscaled: the scale follows q k^T).
        Mat q(size_t(T) * hd), k(q.size()), v(q.size());
        for (int t = 0; t < T; ++t) {
          for (int d = 0; d < hd; ++d) {
            const size_t src = size_t(t) * 3 * D + size_t(hh) * hd + d, dst = size_t(t) * hd + d;
            q[dst] = qkv[src];
            k[dst] = qkv[src + D];
            v[dst] = qkv[src + 2 * D];
          }
        }
        input(TapPoint::kQ, block, hh, q);
        input(TapPoint::kK, block, hh, k);
        input(TapPoint::kV, block, hh, v);
        Mat probs(size_t(T) * T);
        for (int i = 0; i < T; ++i) {
          ref::SoftmaxRow(q.data() + size_t(i) * hd, k.data(), T, hd, blk.attn_scale,
                          probs.data() + size_t(i) * T);
        }
        input(TapPoint::kAttnProbs, block, hh, probs);
        for (int i = 0; i < T; ++i) {
          for (int d = 0; d < hd; ++d) {
            att[size_t(i) * D + size_t(hh) * hd + d] =
                ref::AttnValueDot(probs.data() + size_t(i) * T, v.data(), T, hd, d);
          }
        }
      }
      input(TapPoint::kProjIn, block, -1, att);
      const Mat pr = ref::Linear(blk.proj, att, T);
      for (size_t kk = 0; kk < x.size(); ++kk) x[kk] += pr[kk];
      h = ref::LayerNorm(blk.ln2, x, T);
      input(TapPoint::kFc1In, block, -1, h);
      Mat f1 = ref::Linear(blk.fc1, h, T);
      for (auto& val : f1) val = ref::Gelu(val, blk.gelu);
      input(TapPoint::kGeluOut, block, -1, f1);
      const Mat f2 = ref::Linear(blk.fc2, f1, T);
      for (size_t kk = 0; kk < x.size(); ++kk) x[kk] += f2[kk];
    }
    x = ref::LayerNorm(m.norm, x, T);
    const bool distilled = m.pooling == Pooling::kClsDistAvg;
    Mat pooled(D), dist(distilled ? D : 0);
    ref::Pool(m, x.data(), pooled.data(), dist.data());
    input(TapPoint::kHeadIn, -1, -1, pooled);
    Mat out = ref::Linear(m.head, pooled, 1);
    if (distilled) {
      input(TapPoint::kHeadDistIn, -1, -1, dist);
      const Mat o2 = ref::Linear(m.head_dist, dist, 1);
      for (size_t kk = 0; kk < out.size(); ++kk) out[kk] = (out[kk] + o2[kk]) / 2;
    }
    for (double val : out) logits.push_back(static_cast<float>(val));
  }
  return logits;
}

}  // namespace adalog::test
