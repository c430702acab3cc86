// The forward's order of steps, defined once: BuildSchedule turns a VitModel into the list of
// steps (embed, each block's steps with their tap points, the tail) that every executor walks
// (FP32, simulated = FP32 + rewriter, integer, and the plain reference). An executor supplies one
// implementation per StepOp; it never restates the order.
//
// Two kinds of step:
//  - row-local: output row r of the step depends only on row r of its input (LayerNorm, the
//    Linears, GELU, the residual add; token assembly reads the matching patch row). An executor
//    may run such a step on any row range, and may run a run of them chunk by chunk.
//  - token-mixing: the step reads other rows (patch embedding's pixels, attention, pooling).
// A Stage is either one token-mixing step or a maximal run of consecutive row-local steps; runs
// cross block boundaries (block b's proj .. fc2, add, block b+1's LN1, qkv form one stage), which
// is how the integer executor fuses them into one row-chunk parallel region.
//
// Data path: each step names its input and output tensor (Buf); executors keep one buffer per
// Buf, so the flow of a tensor from one step to the next is readable in the schedule alone.
//
// Taps: a step's `tap` is reported on its output (rows x cols) after it ran, by the walker, when
// an observer / rewriter is set. `inner_taps` are fired by a mixing step's implementation itself
// (per-head tensors, the head's operands), listed here so the whole tap order is in one place.
//
// Swin (swin_schedule.cc, conventions in swin_model.h): kEmbedNorm after the patch embedding,
// kWindowAttention in place of kAttention (row-local steps do not care about a window permutation
// of rows, so padding, cyclic shift and window partition are its row gather, window reverse and
// crop its scatter), and between stages kPatchMerge (mixing: 2x2 neighbours into [B*T/4][4C] rows)
// then the row-local kMergeNorm / kMergeReduce; Step::tokens / cols are the stage's. Executors
// that do not implement these steps refuse Swin models when they are made.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/vit_model.h"

namespace adalog {

// Where a tensor was observed. Row-major; rows/cols as given to OnTensor.
enum class TapPoint {
  kPatchEmbedIn,   // im2col patches [B*P][C*p*p]           (input of the patch-embed GEMM)
  kPatchEmbedOut,  // [B*P][dim]                            (conv output, before tokens/pos)
  kQkvIn,          // ln1(x) [B*T][dim]
  kQkvOut,         // [B*T][3*dim]
  kQ,              // per (image, head): [T][head_dim]
  kK,              // per (image, head): [T][head_dim]
  kV,              // per (image, head): [T][head_dim]
  kAttnProbs,      // per (image, head): softmax output [T][T]
  kProjIn,         // heads merged attn @ v [B*T][dim]
  kProjOut,        // [B*T][dim] (before the residual add)
  kFc1In,          // ln2(x) [B*T][dim]
  kFc1Out,         // [B*T][hidden] (GELU input)
  kGeluOut,        // [B*T][hidden] (fc2 input)
  kFc2Out,         // [B*T][dim] (before the residual add)
  kHeadIn,         // pooled, normed features [B][dim]
  kHeadOut,        // [B][classes]
  kHeadDistIn,     // distilled models only: [B][dim]
  kHeadDistOut,    // distilled models only: [B][classes]
  kLogits,         // final logits [B][classes]
  kMergeIn,        // Swin only: the patch merge's normed 4C rows [B*T'][4C] (reduction input);
                   // block = the last block of the stage the merge ends
};
const char* TapPointName(TapPoint tap);
// Input-side taps: the tensor a GEMM consumes next (a rewriter may change it in place).
bool IsInputTap(TapPoint tap);

struct TapInfo {
  TapPoint tap;
  int block;   // transformer block index; -1 outside blocks (patch embed, head)
  int image;   // image index within the batch for per-head taps; -1 when rows span the batch
  int head;    // head index for per-head taps; -1 otherwise
  int batch;   // images in this Run
  int tokens;  // tokens per image (rows per image for [B*T] taps)
};

// The forward's named tensors (one buffer each in every executor's workspace).
enum class Buf : uint8_t {
  kImages,    // [B][C][H][W], the caller's input
  kEmbedOut,  // [B*P][dim] patch embeddings (conv output)
  kX,         // [B*T][dim] the residual stream
  kLn,        // [B*T][dim] a LayerNorm's output (qkv / fc1 input)
  kQkv,       // [B*T][3*dim]
  kMerged,    // [B*T][dim] attention output, heads merged (proj input)
  kLinOut,    // [B*T][dim] proj / fc2 output before its residual add
  kHidden,    // [B*T][hidden] fc1 output; the GELU step rewrites it into fc2's input
  kLogits,    // [B][classes], the caller's output
  kNumBufs
};
const char* BufName(Buf buf);

enum class StepOp : uint8_t {
  // Token-mixing.
  kPatchEmbed,  // images -> embed_out: im2col + GEMM (inner tap kPatchEmbedIn)
  kAttention,   // qkv -> merged: per (image, head) softmax(q k^T * scale) v (inner kQ, kK, kV,
                // kAttnProbs)
  kHead,        // x -> logits: final norm, pooling, head(s) (inner kHeadIn, kHeadOut and for
                // distilled models kHeadDistIn, kHeadDistOut)
  // Row-local.
  kTokens,       // embed_out -> x: prefix tokens, patch rows, position embedding
  kLn1,          // x -> ln
  kQkv,          // ln -> qkv
  kProj,         // merged -> lin_out
  kAddResidual,  // x += lin_out (in = lin_out, out = x)
  kLn2,          // x -> ln
  kFc1,          // ln -> hidden
  kGelu,         // hidden -> hidden (fc2's input; the integer executor writes its codes)
  kFc2,          // hidden -> lin_out
  // Swin (runtime/swin_schedule.cc; swin_model.h has the conventions).
  kEmbedNorm,        // embed_out -> x: LayerNorm of the patch rows (row-local)
  kWindowAttention,  // qkv -> merged: per (image, window, head) over the block's window rows
                     // (padding, shift and partition are the gather; window reverse and crop the
                     // scatter), scores + relative position bias + mask (mixing)
  kPatchMerge,       // x -> hidden: the 2x2 gather into [B*T/4][4C] rows (mixing)
  kMergeNorm,        // hidden -> ln: LayerNorm over 4C (row-local)
  kMergeReduce,      // ln -> x: the bias-free 4C -> C' Linear (row-local)
};
const char* StepOpName(StepOp op);
bool IsRowLocal(StepOp op);

struct Step {
  StepOp op;
  int block = -1;        // transformer block; -1 outside blocks
  Buf in, out;
  int tokens = 0;        // tokens per image at this step (rows = batch * tokens)
  int cols = 0;          // width of an `out` row
  bool has_tap = false;  // report `out` at `tap` after the step
  TapPoint tap = TapPoint::kLogits;
  std::vector<TapPoint> inner_taps;  // fired by a mixing step's implementation, in this order
};

enum class StageKind : uint8_t { kMixing, kRows };

struct Stage {
  StageKind kind;
  int first = 0, end = 0;  // steps [first, end)
};

struct StepRange {
  int first = 0, end = 0;
};

struct Schedule {
  std::vector<Step> steps;
  std::vector<Stage> stages;
  // The stepping API's parts (ExecutorFp32::RunEmbed / RunBlock / RunHead): steps before block 0,
  // the steps of each block, the steps after the last block.
  StepRange embed;
  std::vector<StepRange> blocks;
  StepRange head;
};

// The schedule of a (validated) model.
Schedule BuildSchedule(const VitModel& m);
// Swin's steps (runtime/swin_schedule.cc): patch embed and its norm, each block (a merge's steps,
// block -1, close the StepRange of the stage's last block), the head. Used by BuildSchedule for
// m.is_swin(); the caller groups the steps into stages.
void AppendSwinSteps(const VitModel& m, Schedule* s);
// One line per stage, its steps with block, tensors and taps (docs, debugging, tests).
std::string DescribeSchedule(const Schedule& s);

}  // namespace adalog
