// Swin Transformer conventions on top of VitModel (vit_model.h): the window/shift row maps shared by
// the recognizer (which checks an export's index maps against them) and the executors (which
// gather and scatter rows with them), validation, counts and the text `adalog inspect` prints.
//
// Conventions (PyTorch's Swin V1, timm and torchvision alike):
//  - Tokens of stage s are grid_h x grid_w, raster order. A block with window w pads the grid
//    bottom/right with zero rows (after its LN1) to Hp x Wp, multiples of w; with shift s > 0 it
//    rolls the padded grid by (-s, -s) (torch.roll), then partitions it into windows of N = w*w
//    tokens, windows raster-ordered, tokens raster-ordered inside a window.
//  - Attention per (image, window, head): softmax(q k^T * attn_scale + rel_bias[head] +
//    attn_mask[window]) v; attn_mask is [windows][N][N] (0 / -100), present only when shifted.
//  - The window outputs are rolled back and cropped to grid_h x grid_w before the residual add.
//  - Stages after the first start with a patch merge (PatchMergeParams) of the previous grid to
//    ceil(H/2) x ceil(W/2).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/vit_model.h"

namespace adalog {

// n rounded up to a multiple of w.
inline int SwinPadded(int n, int w) { return (n + w - 1) / w * w; }

// For one image: row r of the windowed sequence (window-major, Hp/w * Wp/w windows of w*w
// tokens) takes token SwinWindowRows(...)[r] of the h x w grid, or -1 for a padding row.
std::vector<int32_t> SwinWindowRows(int grid_h, int grid_w, int window, int shift);

// For one image: merged token j (ceil(h/2) x ceil(w/2) grid) takes, in its 4 column blocks k,
// token SwinMergeRows(...)[4*j + k] of the h x w grid, or -1 for a zero block.
std::vector<int32_t> SwinMergeRows(int grid_h, int grid_w);

// The shifted-window mask PyTorch builds for a padded hp x wp grid, window w and shift s:
// [windows][N][N] of 0 (same region) or -100.
std::vector<float> SwinShiftMask(int hp, int wp, int window, int shift);

// The stage of each block, in block order.
std::vector<int> SwinBlockStages(const VitModel& m);

// Validates a Swin model (m.is_swin()): stage depths cover the blocks, every array's size.
// Throws adalog::Error naming the first inconsistent field.
void ValidateSwinModel(const VitModel& m);

int64_t CountSwinMacsPerImage(const VitModel& m);
// Parameters of the Swin-only parts (embedding norm, merges, biases): 0 for a ViT.
int64_t CountSwinExtraParameters(const VitModel& m);

// One line per stage: depth, dim, grid, heads, window and shift per block, and the merge.
std::string DescribeSwinStages(const VitModel& m);

}  // namespace adalog
