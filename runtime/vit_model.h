// The recognized-model IR: a Vision Transformer as structured blocks, in FP32.
//
// The ONNX importer (runtime/onnx_importer.h) produces it from a folded, fused graph; the FP32
// executor runs it; search/ calibrates it; the quantized model file stores it with quantizer
// parameters. Everything the executors need is here, so the original ONNX is not needed.
//
// Conventions (all row-major, all float32):
//  - Linear: y[o] = sum_i W[o][i] * x[i] + b[o]; W is [out][in] (PyTorch nn.Linear layout).
//  - Tokens: activations are [batch][tokens][dim]; prefix tokens (cls, then dist) come first,
//    then patch tokens in raster order (row-major over the patch grid).
//  - qkv: one fused Linear with out = 3*dim, rows ordered q (head-major: head h owns rows
//    h*head_dim .. h*head_dim+head_dim-1), then k, then v. Separate q/k/v Linears in an export are
//    concatenated into this form.
//  - Attention: attn = softmax((q @ k^T) * attn_scale) per head; out = attn @ v; heads merged
//    head-major back into dim. Exports that scale q before the matmul (torchvision) are
//    normalized to this form (scaling q by a is the same as scaling scores by a).
//  - Blocks are pre-norm: x = x + proj(attn(ln1(x))); x = x + fc2(gelu(fc1(ln2(x)))).
//
// Swin: VitModel::swin (SwinLayout, below) is non-empty; blocks then also carry window_size,
// shift_size, the relative position bias and the shifted-window mask, and their widths change
// from stage to stage (see runtime/swin_model.h for the Swin conventions and helpers).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/preprocess.h"

namespace adalog {

struct LinearParams {
  int in = 0;
  int out = 0;
  std::vector<float> weight;  // [out][in]
  std::vector<float> bias;    // [out]; zeros if the export had none
};

struct LayerNormParams {
  int dim = 0;
  float eps = 1e-6f;
  std::vector<float> gamma;  // [dim]
  std::vector<float> beta;   // [dim]
};

enum class GeluKind { kErf, kTanh };

struct PatchEmbedParams {
  int in_channels = 3;
  int image_h = 224;
  int image_w = 224;
  int patch = 16;  // square kernel == stride, no padding
  int dim = 0;
  std::vector<float> weight;  // [dim][in_channels][patch][patch] (Conv OIHW)
  std::vector<float> bias;    // [dim]
  int grid_h() const { return image_h / patch; }
  int grid_w() const { return image_w / patch; }
  int num_patches() const { return grid_h() * grid_w(); }
};

struct BlockParams {
  LayerNormParams ln1;
  LinearParams qkv;  // out = 3*dim
  int heads = 0;
  float attn_scale = 0.f;  // usually head_dim^-0.5
  LinearParams proj;
  LayerNormParams ln2;
  LinearParams fc1;
  GeluKind gelu = GeluKind::kErf;
  LinearParams fc2;
  // Swin window attention (runtime/swin_model.h); window_size 0 means global attention over all
  // tokens (ViT) and the two vectors are then empty.
  int window_size = 0;
  int shift_size = 0;
  std::vector<float> rel_bias;   // [heads][N][N], N = window_size^2, added to the scaled scores
  std::vector<float> attn_mask;  // [windows][N][N] of the stage's padded grid; empty when unshifted
};

// Swin's patch merging: each 2x2 neighbourhood (x0 = (0,0), x1 = (1,0), x2 = (0,1), x3 = (1,1),
// (row, col) offsets; zero rows past an odd edge) concatenated to 4C, LayerNorm, bias-free Linear.
struct PatchMergeParams {
  LayerNormParams norm;    // over 4C
  LinearParams reduction;  // 4C -> out (2C in both families); bias zeros
};

// One Swin stage: `depth` consecutive blocks on a grid_h x grid_w token grid of width `dim`,
// followed by a patch merge unless it is the last stage.
struct SwinStage {
  int depth = 0;
  int dim = 0;
  int grid_h = 0, grid_w = 0;  // unpadded token grid (tokens raster order, row-major)
  bool has_merge = false;
  PatchMergeParams merge;
};

// The Swin structure of a VitModel (empty for a ViT).
struct SwinLayout {
  LayerNormParams embed_norm;  // LayerNorm right after the patch embedding
  std::vector<SwinStage> stages;
};

enum class Pooling {
  kClsToken,      // logits = head(norm(x)[:, 0])
  kClsDistAvg,    // DeiT distilled: (head(norm(x)[:,0]) + head_dist(norm(x)[:,1])) / 2
  kMeanPatches,   // logits = head(mean over patch tokens of norm(x))
};

// Where the position embedding is added.
enum class PosEmbedMode {
  kAfterPrefix,   // x = concat(prefix, patches) + pos_embed; pos_embed is [tokens][dim] (timm, torchvision)
  kPatchesOnly,   // x = concat(prefix, patches + pos_embed); pos_embed is [patches][dim]
};

struct VitModel {
  std::string name;        // free text, e.g. the ONNX graph name
  std::string style;       // "timm", "torchvision", "deit-distilled", ... (informational)
  PatchEmbedParams embed;
  int dim = 0;
  bool has_cls_token = true;
  bool has_dist_token = false;
  std::vector<float> cls_token;   // [dim]
  std::vector<float> dist_token;  // [dim]
  PosEmbedMode pos_mode = PosEmbedMode::kAfterPrefix;
  std::vector<float> pos_embed;   // see PosEmbedMode; empty if the model has none
  std::vector<BlockParams> blocks;
  LayerNormParams norm;           // final norm
  Pooling pooling = Pooling::kClsToken;
  LinearParams head;
  LinearParams head_dist;         // only with Pooling::kClsDistAvg
  Preprocess preprocess;          // runtime/preprocess.h; known = false when not declared
  SwinLayout swin;                // Swin only (then no prefix tokens, no pos_embed, mean pooling)

  bool is_swin() const { return !swin.stages.empty(); }

  int num_prefix_tokens() const { return (has_cls_token ? 1 : 0) + (has_dist_token ? 1 : 0); }
  int num_tokens() const { return num_prefix_tokens() + embed.num_patches(); }
  int num_classes() const { return head.out; }
  int head_dim() const { return blocks.empty() ? 0 : dim / blocks[0].heads; }
};

// Validates internal consistency (sizes of every array against the declared shapes).
// Throws adalog::Error naming the first inconsistent field. Used after import and after loading
// a model file, both of which come from untrusted input.
void ValidateVitModel(const VitModel& m);

// Parameter count and multiply-add count for one image (for `adalog inspect`).
int64_t CountParameters(const VitModel& m);
int64_t CountMacsPerImage(const VitModel& m);

}  // namespace adalog
