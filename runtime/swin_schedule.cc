// Swin's steps of the one schedule (vit_schedule.h; conventions in swin_model.h): the same block
// steps as ViT with kWindowAttention in place of kAttention and each stage's token count and width,
// kEmbedNorm after the patch embedding, and a patch merge (kPatchMerge, kMergeNorm, kMergeReduce)
// between stages. Padded window rows never exist as rows: LN1 / qkv run over the real tokens and
// the window attention reads a padding row's qkv as the qkv bias (the qkv of a zero row).
#include "runtime/swin_model.h"
#include "runtime/vit_schedule.h"

namespace adalog {

void AppendSwinSteps(const VitModel& m, Schedule* s) {
  auto add = [s](StepOp op, int block, Buf in, Buf out, int tokens, int cols) -> Step& {
    Step st;
    st.op = op;
    st.block = block;
    st.in = in;
    st.out = out;
    st.tokens = tokens;
    st.cols = cols;
    s->steps.push_back(st);
    return s->steps.back();
  };
  auto tap = [](Step& st, TapPoint t) {
    st.has_tap = true;
    st.tap = t;
  };
  auto size = [s] { return static_cast<int>(s->steps.size()); };
  const int P = m.embed.num_patches();
  tap(add(StepOp::kPatchEmbed, -1, Buf::kImages, Buf::kEmbedOut, P, m.dim), TapPoint::kPatchEmbedOut);
  s->steps.back().inner_taps = {TapPoint::kPatchEmbedIn};
  add(StepOp::kEmbedNorm, -1, Buf::kEmbedOut, Buf::kX, P, m.dim);
  s->embed = {0, size()};
  int bi = 0;
  for (const SwinStage& stage : m.swin.stages) {
    const int T = stage.grid_h * stage.grid_w, D = stage.dim;
    for (int k = 0; k < stage.depth; ++k, ++bi) {
      const int hidden = m.blocks[static_cast<size_t>(bi)].fc1.out;
      const int first = size();
      tap(add(StepOp::kLn1, bi, Buf::kX, Buf::kLn, T, D), TapPoint::kQkvIn);
      tap(add(StepOp::kQkv, bi, Buf::kLn, Buf::kQkv, T, 3 * D), TapPoint::kQkvOut);
      Step& at = add(StepOp::kWindowAttention, bi, Buf::kQkv, Buf::kMerged, T, D);
      tap(at, TapPoint::kProjIn);
      at.inner_taps = {TapPoint::kQ, TapPoint::kK, TapPoint::kV, TapPoint::kAttnProbs};
      tap(add(StepOp::kProj, bi, Buf::kMerged, Buf::kLinOut, T, D), TapPoint::kProjOut);
      add(StepOp::kAddResidual, bi, Buf::kLinOut, Buf::kX, T, D);
      tap(add(StepOp::kLn2, bi, Buf::kX, Buf::kLn, T, D), TapPoint::kFc1In);
      tap(add(StepOp::kFc1, bi, Buf::kLn, Buf::kHidden, T, hidden), TapPoint::kFc1Out);
      tap(add(StepOp::kGelu, bi, Buf::kHidden, Buf::kHidden, T, hidden), TapPoint::kGeluOut);
      tap(add(StepOp::kFc2, bi, Buf::kHidden, Buf::kLinOut, T, D), TapPoint::kFc2Out);
      add(StepOp::kAddResidual, bi, Buf::kLinOut, Buf::kX, T, D);
      s->blocks.push_back({first, size()});
    }
    if (stage.has_merge) {
      const int T2 = ((stage.grid_h + 1) / 2) * ((stage.grid_w + 1) / 2);
      add(StepOp::kPatchMerge, -1, Buf::kX, Buf::kHidden, T2, 4 * D);
      add(StepOp::kMergeNorm, -1, Buf::kHidden, Buf::kLn, T2, 4 * D);
      add(StepOp::kMergeReduce, -1, Buf::kLn, Buf::kX, T2, stage.merge.reduction.out)
          .inner_taps = {TapPoint::kMergeIn};
      s->blocks.back().end = size();
    }
  }
  const int head_first = size();
  Step& head = add(StepOp::kHead, -1, Buf::kX, Buf::kLogits, 1, m.num_classes());
  tap(head, TapPoint::kLogits);
  head.inner_taps = {TapPoint::kHeadIn, TapPoint::kHeadOut};
  s->head = {head_first, size()};
}

}  // namespace adalog
