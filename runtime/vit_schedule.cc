// The ViT forward's schedule: steps, stages, tap points (see vit_schedule.h).
#include "runtime/vit_schedule.h"

#include <sstream>

namespace adalog {

const char* TapPointName(TapPoint tap) {
  switch (tap) {
    case TapPoint::kPatchEmbedIn: return "patch_embed.in";
    case TapPoint::kPatchEmbedOut: return "patch_embed.out";
    case TapPoint::kQkvIn: return "qkv.in";
    case TapPoint::kQkvOut: return "qkv.out";
    case TapPoint::kQ: return "q";
    case TapPoint::kK: return "k";
    case TapPoint::kV: return "v";
    case TapPoint::kAttnProbs: return "softmax.out";
    case TapPoint::kProjIn: return "proj.in";
    case TapPoint::kProjOut: return "proj.out";
    case TapPoint::kFc1In: return "fc1.in";
    case TapPoint::kFc1Out: return "fc1.out";
    case TapPoint::kGeluOut: return "gelu.out";
    case TapPoint::kFc2Out: return "fc2.out";
    case TapPoint::kHeadIn: return "head.in";
    case TapPoint::kHeadOut: return "head.out";
    case TapPoint::kHeadDistIn: return "head_dist.in";
    case TapPoint::kHeadDistOut: return "head_dist.out";
    case TapPoint::kLogits: return "logits";
    case TapPoint::kMergeIn: return "merge.in";
  }
  return "?";
}

bool IsInputTap(TapPoint tap) {
  switch (tap) {
    case TapPoint::kPatchEmbedIn:
    case TapPoint::kQkvIn:
    case TapPoint::kQ:
    case TapPoint::kK:
    case TapPoint::kV:
    case TapPoint::kAttnProbs:
    case TapPoint::kProjIn:
    case TapPoint::kFc1In:
    case TapPoint::kGeluOut:
    case TapPoint::kHeadIn:
    case TapPoint::kHeadDistIn:
    case TapPoint::kMergeIn:
      return true;
    default:
      return false;
  }
}

const char* BufName(Buf buf) {
  switch (buf) {
    case Buf::kImages: return "images";
    case Buf::kEmbedOut: return "embed_out";
    case Buf::kX: return "x";
    case Buf::kLn: return "ln";
    case Buf::kQkv: return "qkv";
    case Buf::kMerged: return "merged";
    case Buf::kLinOut: return "lin_out";
    case Buf::kHidden: return "hidden";
    case Buf::kLogits: return "logits";
    case Buf::kNumBufs: break;
  }
  return "?";
}

const char* StepOpName(StepOp op) {
  switch (op) {
    case StepOp::kPatchEmbed: return "patch_embed";
    case StepOp::kAttention: return "attention";
    case StepOp::kHead: return "head";
    case StepOp::kTokens: return "tokens";
    case StepOp::kLn1: return "ln1";
    case StepOp::kQkv: return "qkv";
    case StepOp::kProj: return "proj";
    case StepOp::kAddResidual: return "add";
    case StepOp::kLn2: return "ln2";
    case StepOp::kFc1: return "fc1";
    case StepOp::kGelu: return "gelu";
    case StepOp::kFc2: return "fc2";
    case StepOp::kEmbedNorm: return "embed_norm";
    case StepOp::kWindowAttention: return "window_attention";
    case StepOp::kPatchMerge: return "patch_merge";
    case StepOp::kMergeNorm: return "merge_norm";
    case StepOp::kMergeReduce: return "merge_reduce";
  }
  return "?";
}

bool IsRowLocal(StepOp op) {
  return op != StepOp::kPatchEmbed && op != StepOp::kAttention && op != StepOp::kHead &&
         op != StepOp::kWindowAttention && op != StepOp::kPatchMerge;
}

namespace {

// Appends steps; the caller groups them into stages at the end.
class Builder {
 public:
  explicit Builder(Schedule* s) : s_(s) {}
  Step& Add(StepOp op, int block, Buf in, Buf out, int tokens, int cols) {
    Step st;
    st.op = op;
    st.block = block;
    st.in = in;
    st.out = out;
    st.tokens = tokens;
    st.cols = cols;
    s_->steps.push_back(st);
    return s_->steps.back();
  }
  Step& Add(StepOp op, int block, Buf in, Buf out, int tokens, int cols, TapPoint tap) {
    Step& st = Add(op, block, in, out, tokens, cols);
    st.has_tap = true;
    st.tap = tap;
    return st;
  }
  int size() const { return static_cast<int>(s_->steps.size()); }

 private:
  Schedule* s_;
};

}  // namespace

namespace {

void AppendVitSteps(const VitModel& m, Schedule* sp) {
  Schedule& s = *sp;
  Builder b(&s);
  const int D = m.dim, T = m.num_tokens(), P = m.embed.num_patches();
  b.Add(StepOp::kPatchEmbed, -1, Buf::kImages, Buf::kEmbedOut, P, D, TapPoint::kPatchEmbedOut)
      .inner_taps = {TapPoint::kPatchEmbedIn};
  b.Add(StepOp::kTokens, -1, Buf::kEmbedOut, Buf::kX, T, D);
  s.embed = {0, b.size()};
  for (size_t i = 0; i < m.blocks.size(); ++i) {
    const int bi = static_cast<int>(i);
    const int hidden = m.blocks[i].fc1.out;
    const int first = b.size();
    b.Add(StepOp::kLn1, bi, Buf::kX, Buf::kLn, T, D, TapPoint::kQkvIn);
    b.Add(StepOp::kQkv, bi, Buf::kLn, Buf::kQkv, T, 3 * D, TapPoint::kQkvOut);
    b.Add(StepOp::kAttention, bi, Buf::kQkv, Buf::kMerged, T, D, TapPoint::kProjIn).inner_taps = {
        TapPoint::kQ, TapPoint::kK, TapPoint::kV, TapPoint::kAttnProbs};
    b.Add(StepOp::kProj, bi, Buf::kMerged, Buf::kLinOut, T, D, TapPoint::kProjOut);
    b.Add(StepOp::kAddResidual, bi, Buf::kLinOut, Buf::kX, T, D);
    b.Add(StepOp::kLn2, bi, Buf::kX, Buf::kLn, T, D, TapPoint::kFc1In);
    b.Add(StepOp::kFc1, bi, Buf::kLn, Buf::kHidden, T, hidden, TapPoint::kFc1Out);
    b.Add(StepOp::kGelu, bi, Buf::kHidden, Buf::kHidden, T, hidden, TapPoint::kGeluOut);
    b.Add(StepOp::kFc2, bi, Buf::kHidden, Buf::kLinOut, T, D, TapPoint::kFc2Out);
    b.Add(StepOp::kAddResidual, bi, Buf::kLinOut, Buf::kX, T, D);
    s.blocks.push_back({first, b.size()});
  }
  const int head_first = b.size();
  Step& head = b.Add(StepOp::kHead, -1, Buf::kX, Buf::kLogits, 1, m.num_classes(), TapPoint::kLogits);
  head.inner_taps = {TapPoint::kHeadIn, TapPoint::kHeadOut};
  if (m.pooling == Pooling::kClsDistAvg) {
    head.inner_taps.push_back(TapPoint::kHeadDistIn);
    head.inner_taps.push_back(TapPoint::kHeadDistOut);
  }
  s.head = {head_first, b.size()};
}

}  // namespace

Schedule BuildSchedule(const VitModel& m) {
  Schedule s;
  if (m.is_swin()) {
    AppendSwinSteps(m, &s);
  } else {
    AppendVitSteps(m, &s);
  }
  const int n_steps = static_cast<int>(s.steps.size());
  // Stages: each mixing step alone, each maximal run of row-local steps together.
  for (int i = 0; i < n_steps;) {
    Stage st;
    st.first = i;
    if (!IsRowLocal(s.steps[static_cast<size_t>(i)].op)) {
      st.kind = StageKind::kMixing;
      ++i;
    } else {
      st.kind = StageKind::kRows;
      while (i < n_steps && IsRowLocal(s.steps[static_cast<size_t>(i)].op)) ++i;
    }
    st.end = i;
    s.stages.push_back(st);
  }
  return s;
}

std::string DescribeSchedule(const Schedule& s) {
  std::ostringstream o;
  for (size_t g = 0; g < s.stages.size(); ++g) {
    const Stage& st = s.stages[g];
    o << "stage " << g << (st.kind == StageKind::kRows ? " rows:" : " mixing:");
    for (int i = st.first; i < st.end; ++i) {
      const Step& p = s.steps[static_cast<size_t>(i)];
      o << " " << StepOpName(p.op);
      if (p.block >= 0) o << "[" << p.block << "]";
      o << "(" << BufName(p.in) << "->" << BufName(p.out);
      for (TapPoint t : p.inner_taps) o << " ~" << TapPointName(t);
      if (p.has_tap) o << " @" << TapPointName(p.tap);
      o << ")";
    }
    o << "\n";
  }
  return o.str();
}

}  // namespace adalog
