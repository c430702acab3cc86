// The scalar reference forward's Swin path (VitReferenceForward dispatches here for m.is_swin()),
// written from the conventions in runtime/vit_model.h and runtime/swin_model.h's header comment
// (pad, roll, partition, bias, mask, reverse, crop, merge), not from the runtime's row maps.
#include <algorithm>
#include <cmath>

#include "tests/util/reference_kernels.h"
#include "tests/util/vit_reference_forward.h"

namespace adalog::test {
namespace {

using ref::Mat;

// One block's window attention + MLP on one image's tokens x [H*W][C] (in place).
void SwinBlock(const BlockParams& blk, int block, int H, int W, const ReferenceHooks& hooks,
               Mat& x) {
  auto input = [&](TapPoint tap, int head, Mat& t) {
    if (hooks.input) hooks.input(tap, block, head, t.data(), t.size());
  };
  const int C = blk.ln1.dim, T = H * W, w = blk.window_size, s = blk.shift_size;
  const int heads = blk.heads, hd = C / heads, N = w * w;
  const int Hp = (H + w - 1) / w * w, Wp = (W + w - 1) / w * w;
  const int nwx = Wp / w, nW = (Hp / w) * nwx, R = nW * N;
  // Windowed row r -> source token of the unpadded grid, or -1 (a zero row of the padding).
  std::vector<int> src(static_cast<size_t>(R));
  for (int win = 0; win < nW; ++win) {
    for (int t = 0; t < N; ++t) {
      const int i = (win / nwx) * w + t / w, j = (win % nwx) * w + t % w;  // rolled coordinates
      const int pi = (i + s) % Hp, pj = (j + s) % Wp;  // torch.roll by (-s, -s)
      src[static_cast<size_t>(win) * N + t] = pi < H && pj < W ? pi * W + pj : -1;
    }
  }
  Mat h = ref::LayerNorm(blk.ln1, x, T);
  input(TapPoint::kQkvIn, -1, h);
  const Mat qkv = ref::Linear(blk.qkv, h, T);
  const Mat zero(static_cast<size_t>(C), 0.0);
  const Mat qkv0 = ref::Linear(blk.qkv, zero, 1);  // a padding row's qkv (the bias)
  Mat att(static_cast<size_t>(T) * C, 0.0);
  for (int hh = 0; hh < heads; ++hh) {
    Mat q(static_cast<size_t>(R) * hd), k(q.size()), v(q.size());
    for (int r = 0; r < R; ++r) {
      const int sr = src[static_cast<size_t>(r)];
      const double* row = sr < 0 ? qkv0.data() : qkv.data() + static_cast<size_t>(sr) * 3 * C;
      for (int d = 0; d < hd; ++d) {
        const size_t c = static_cast<size_t>(hh) * hd + d, o = static_cast<size_t>(r) * hd + d;
        q[o] = row[c];
        k[o] = row[c + C];
        v[o] = row[c + 2 * C];
      }
    }
    input(TapPoint::kQ, hh, q);
    input(TapPoint::kK, hh, k);
    input(TapPoint::kV, hh, v);
    Mat probs(static_cast<size_t>(R) * N);
    for (int win = 0; win < nW; ++win) {
      for (int i = 0; i < N; ++i) {
        double* p = probs.data() + (static_cast<size_t>(win) * N + i) * N;
        double mx = -INFINITY;
        for (int j = 0; j < N; ++j) {
          double dot = 0;
          for (int d = 0; d < hd; ++d) {
            dot += q[(static_cast<size_t>(win) * N + i) * hd + d] *
                   k[(static_cast<size_t>(win) * N + j) * hd + d];
          }
          p[j] = dot * blk.attn_scale + blk.rel_bias[(static_cast<size_t>(hh) * N + i) * N + j];
          if (!blk.attn_mask.empty()) {
            p[j] += blk.attn_mask[(static_cast<size_t>(win) * N + i) * N + j];
          }
          mx = std::max(mx, p[j]);
        }
        double sum = 0;
        for (int j = 0; j < N; ++j) sum += (p[j] = std::exp(p[j] - mx));
        for (int j = 0; j < N; ++j) p[j] /= sum;
      }
    }
    input(TapPoint::kAttnProbs, hh, probs);
    // Window reverse and crop: only rows of real tokens are written back.
    for (int r = 0; r < R; ++r) {
      const int sr = src[static_cast<size_t>(r)];
      if (sr < 0) continue;
      const int win = r / N;
      for (int d = 0; d < hd; ++d) {
        double acc = 0;
        for (int j = 0; j < N; ++j) {
          acc += probs[static_cast<size_t>(r) * N + j] *
                 v[(static_cast<size_t>(win) * N + j) * hd + d];
        }
        att[static_cast<size_t>(sr) * C + static_cast<size_t>(hh) * hd + d] = acc;
      }
    }
  }
  input(TapPoint::kProjIn, -1, att);
  const Mat pr = ref::Linear(blk.proj, att, T);
  for (size_t kk = 0; kk < x.size(); ++kk) x[kk] += pr[kk];
  h = ref::LayerNorm(blk.ln2, x, T);
  input(TapPoint::kFc1In, -1, h);
  Mat f1 = ref::Linear(blk.fc1, h, T);
  for (auto& val : f1) val = ref::Gelu(val, blk.gelu);
  input(TapPoint::kGeluOut, -1, f1);
  const Mat f2 = ref::Linear(blk.fc2, f1, T);
  for (size_t kk = 0; kk < x.size(); ++kk) x[kk] += f2[kk];
}

}  // namespace

std::vector<float> SwinReferenceForward(const VitModel& m, const std::vector<float>& images,
                                        int batch, const ReferenceHooks& hooks) {
  const auto& e = m.embed;
  std::vector<float> logits;
  for (int b = 0; b < batch; ++b) {
    const int P = e.grid_h() * e.grid_w();
    Mat x(static_cast<size_t>(P) * e.dim);
    for (int gy = 0; gy < e.grid_h(); ++gy) {
      for (int gx = 0; gx < e.grid_w(); ++gx) {
        for (int d = 0; d < e.dim; ++d) {
          x[static_cast<size_t>(gy * e.grid_w() + gx) * e.dim + d] =
              ref::PatchEmbedDot(e, images.data(), b, gy, gx, d);
        }
      }
    }
    x = ref::LayerNorm(m.swin.embed_norm, x, P);
    int bi = 0, merge = 0, H = 0, W = 0;
    for (const SwinStage& st : m.swin.stages) {
      H = st.grid_h;
      W = st.grid_w;
      for (int k = 0; k < st.depth; ++k, ++bi) {
        SwinBlock(m.blocks[static_cast<size_t>(bi)], bi, H, W, hooks, x);
      }
      if (!st.has_merge) continue;
      // 2x2 merge: blocks (row, col) offsets (0,0), (1,0), (0,1), (1,1); zeros past an odd edge.
      const int C = st.dim, H2 = (H + 1) / 2, W2 = (W + 1) / 2;
      Mat cat(static_cast<size_t>(H2) * W2 * 4 * C, 0.0);
      const int off[4][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};
      for (int i = 0; i < H2; ++i) {
        for (int j = 0; j < W2; ++j) {
          for (int q = 0; q < 4; ++q) {
            const int y = 2 * i + off[q][0], xx = 2 * j + off[q][1];
            if (y >= H || xx >= W) continue;
            for (int c = 0; c < C; ++c) {
              cat[(static_cast<size_t>(i * W2 + j) * 4 + q) * C + c] =
                  x[static_cast<size_t>(y * W + xx) * C + c];
            }
          }
        }
      }
      Mat n = ref::LayerNorm(st.merge.norm, cat, H2 * W2);
      if (hooks.input) hooks.input(TapPoint::kMergeIn, bi - 1, merge, n.data(), n.size());
      x = ref::Linear(st.merge.reduction, n, H2 * W2);
      ++merge;
    }
    const SwinStage& last = m.swin.stages.back();
    const int T = last.grid_h * last.grid_w, C = last.dim;
    x = ref::LayerNorm(m.norm, x, T);
    Mat pooled(static_cast<size_t>(C), 0.0);
    for (int t = 0; t < T; ++t) {
      for (int c = 0; c < C; ++c) pooled[static_cast<size_t>(c)] += x[static_cast<size_t>(t) * C + c];
    }
    for (auto& val : pooled) val /= T;
    if (hooks.input) hooks.input(TapPoint::kHeadIn, -1, -1, pooled.data(), pooled.size());
    const Mat out = ref::Linear(m.head, pooled, 1);
    for (double val : out) logits.push_back(static_cast<float>(val));
  }
  return logits;
}

}  // namespace adalog::test
