// Helpers shared by the executors: the model dimensions, 64-byte aligned workspace allocation, a
// scoped OpenMP team size (which oneDNN's OpenMP runtime follows), the patch im2col and the token
// assembly after the patch embedding.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "quant/error.h"
#include "runtime/kernels/float_kernels.h"
#include "runtime/vit_model.h"

namespace adalog::exec {

// The model dimensions both executors size their work with (each executor's Impl derives from it).
struct ModelDims {
  int D = 0;                        // embedding width
  int T = 0, P = 0, pre = 0;        // tokens per image, patches, prefix tokens
  int heads = 0, hd = 0;            // attention heads (the same in every block), head width
  int F = 0;                        // widest fc1 output
  int C = 0, ps = 0, H = 0, W = 0;  // image channels, patch size, image height and width
  int classes = 0;
  int patch_k = 0;                  // C * ps * ps: one im2col row
};

// The dimensions of a validated model; throws adalog::Error if its blocks differ in head count.
inline ModelDims DimsOf(const VitModel& m) {
  ModelDims d;
  d.D = m.dim;
  d.T = m.num_tokens();
  d.P = m.embed.num_patches();
  d.pre = m.num_prefix_tokens();
  d.heads = m.blocks[0].heads;
  for (const BlockParams& b : m.blocks) {
    ADALOG_CHECK(b.heads == d.heads, "executor: blocks with different head counts (", b.heads,
                 " vs ", d.heads, ") are not supported");
    d.F = std::max(d.F, b.fc1.out);
  }
  d.hd = d.D / d.heads;
  d.C = m.embed.in_channels;
  d.ps = m.embed.patch;
  d.H = m.embed.image_h;
  d.W = m.embed.image_w;
  d.classes = m.num_classes();
  d.patch_k = d.C * d.ps * d.ps;
  return d;
}

// im2col of the patch rows [r0, r1) (row = image * num_patches + patch) of images [B][C][H][W]:
// row r at patches + r * C*patch*patch, columns ordered (c, ky, kx) like the Conv's OIHW weight.
inline void Im2colPatchRows(const PatchEmbedParams& e, const float* images, int64_t r0,
                            int64_t r1, float* patches) {
  const int C = e.in_channels, H = e.image_h, W = e.image_w, ps = e.patch, gw = e.grid_w();
  const int64_t P = e.num_patches(), patch_k = static_cast<int64_t>(C) * ps * ps;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t img = r / P;
    const int pi = static_cast<int>(r % P), py = pi / gw, px = pi % gw;
    const float* src = images + img * C * H * W;
    float* dst = patches + r * patch_k;
    for (int c = 0; c < C; ++c) {
      for (int ky = 0; ky < ps; ++ky) {
        std::memcpy(dst + (c * ps + ky) * ps,
                    src + (static_cast<int64_t>(c) * H + py * ps + ky) * W + px * ps,
                    sizeof(float) * ps);
      }
    }
  }
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// At least 64 bytes, rounded up to whole 64-byte lines; throws adalog::Error naming `who` when
// the allocation fails.
inline void* AlignedAlloc(size_t bytes, const char* who) {
  bytes = std::max<size_t>(64, (bytes + 63) & ~size_t{63});
  void* p = std::aligned_alloc(64, bytes);
  ADALOG_CHECK(p != nullptr, who, ": out of memory allocating ", bytes, " bytes");
  return p;
}

// Sets the calling thread's OpenMP team size for a scope.
class ScopedOmpThreads {
 public:
  explicit ScopedOmpThreads(int n) : prev_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~ScopedOmpThreads() { omp_set_num_threads(prev_); }
  ScopedOmpThreads(const ScopedOmpThreads&) = delete;
  ScopedOmpThreads& operator=(const ScopedOmpThreads&) = delete;

 private:
  int prev_;
};

// Rows [r0, r1) of the residual stream x [batch*T][D]: prefix tokens (cls, then dist), then the
// patch embeddings embed_out [batch*P][D], plus the position embedding where the model adds it.
inline void AssembleTokenRows(const VitModel& m, const FloatKernels& fk, const float* embed_out,
                              float* x, int64_t r0, int64_t r1) {
  const int D = m.dim, T = m.num_tokens(), P = m.embed.num_patches();
  const int pre = m.num_prefix_tokens();
  const bool has_pos = !m.pos_embed.empty();
  const int pos_first = m.pos_mode == PosEmbedMode::kAfterPrefix ? 0 : pre;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t img = r / T;
    const int t = static_cast<int>(r % T);
    float* dst = x + r * D;
    const float* src;
    if (t < pre) {
      src = (t == 0 && m.has_cls_token) ? m.cls_token.data() : m.dist_token.data();
    } else {
      src = embed_out + (img * P + (t - pre)) * D;
    }
    if (has_pos && t >= pos_first) {
      fk.add(src, m.pos_embed.data() + static_cast<int64_t>(t - pos_first) * D, dst, D);
    } else {
      std::memcpy(dst, src, sizeof(float) * D);
    }
  }
}

// Mean pooling over patch tokens for images [img0, img1): pooled[img] = mean_{t >= prefix} ln[img*T + t].
inline void MeanPoolPatchRows(const VitModel& m, const FloatKernels& fk, const float* ln,
                              float* pooled, int64_t img0, int64_t img1) {
  const int D = m.dim, T = m.num_tokens(), pre = m.num_prefix_tokens();
  const float inv = 1.f / static_cast<float>(m.embed.num_patches());
  for (int64_t img = img0; img < img1; ++img) {
    float* dst = pooled + img * D;
    std::memcpy(dst, ln + (img * T + pre) * D, sizeof(float) * D);
    for (int t = pre + 1; t < T; ++t) fk.add(dst, ln + (img * T + t) * D, dst, D);
    for (int i = 0; i < D; ++i) dst[i] *= inv;
  }
}

// Token pick before the final norm: pooled[img] = x[img*T + 0]; for distilled models also
// pooled_dist[img] = x[img*T + 1].
inline void GatherPrefixRows(const VitModel& m, const float* x, int batch, float* pooled,
                             float* pooled_dist) {
  const int64_t D = m.dim, T = m.num_tokens();
  for (int64_t img = 0; img < batch; ++img) {
    std::memcpy(pooled + img * D, x + img * T * D, sizeof(float) * D);
    if (m.pooling == Pooling::kClsDistAvg) {
      std::memcpy(pooled_dist + img * D, x + (img * T + 1) * D, sizeof(float) * D);
    }
  }
}

}  // namespace adalog::exec
