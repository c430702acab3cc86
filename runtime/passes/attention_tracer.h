// Attention recognition on a folded graph by abstract interpretation with index maps: the
// AttentionTracer walks the sub-graph from a block's LayerNorm output to the residual Add and
// proves it is multi-head self-attention (q/k/v projections, scaled q@k^T, Softmax over the keys,
// probs@v, merged heads, output projection), whatever Reshape/Transpose/Gather/Slice/Split chains
// the exporter used to split and merge heads.
//
// A "space" is a virtual [B][N][C] tensor; an index map holds, per element, the code
// (b*N + n)*C + c of the space element it copies. Space 0 is the attention input (LN output).
// A head-split is accepted iff its index maps are exactly per-head views of a projection, so any
// layout that computes the same thing is accepted and anything else is rejected with the node
// that broke the proof.
//
// Scope: global attention over all N tokens of each image, no bias or mask added to the scores.
// Swin's window attention (window partition / shift, relative position bias, attention mask)
// needs the tracer to accept those steps around the score product; the index-map machinery
// (DecodeHeads, layout ops) is the part meant to carry over.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "runtime/passes/fold.h"
#include "runtime/vit_model.h"

namespace adalog {
namespace graph {

struct AttnResult {
  LinearParams qkv, proj;  // qkv rows: q, then k, then v, each head-major
  int heads = 0;
  float scale = 0;         // the product of the scalar scales applied to q and k
  std::string out;         // residual Add output
  std::string layout;      // "fused qkv" / "separate q/k/v" (+ " (sliced)"), for the notes
  bool seq_first = false;  // the exporter ran the projections on [N][B][C] (torchvision)
};

// One tracer per block: B images of N tokens of width D; `where` prefixes every error.
class AttentionTracer {
 public:
  AttentionTracer(const Folded& f, int64_t b, int64_t n, int64_t d, std::string where)
      : f_(f), B_(b), N_(n), D_(d), where_(std::move(where)) {}

  // Traces from `y` (the LayerNorm output) to `residual`, the Add of the branch onto the
  // residual stream `x`. Throws adalog::Error naming the first node that is not attention.
  AttnResult Trace(const std::string& y, const std::string& x, const Node* residual);

 private:
  struct Space {
    int64_t c = 0;
    int linear = -1;      // the Linear that produced it (-1: the input or the merged heads)
    int from_space = -1;  // the Linear's input space
  };

  // The abstract value of one tensor.
  struct Abs {
    enum Kind { kMap, kScores, kProbs } kind = kMap;
    int space = 0;
    Tensor idx;
    double scale = 1.0;
    bool bias_open = false;  // fresh Linear output; an Add of a bias vector may follow
    // kScores / kProbs: the per-leading-index (b, h) table and roles.
    std::vector<std::pair<int64_t, int64_t>> table;
    int q_space = -1, k_space = -1, q_sec = -1, k_sec = -1;
    std::vector<int64_t> lead;  // leading dims
  };

  Abs Linear(const Node& node, const Abs& a, const Tensor& w, bool trans_w, const Tensor* bias);
  void DecodeHeads(const Abs& a, bool transposed, int* space, int* sec,
                   std::vector<std::pair<int64_t, int64_t>>* table, int64_t* hd,
                   std::vector<int64_t>* lead, const Node& at);
  [[noreturn]] void Bad(const Node& n, const std::string& why) const;

  const Folded& f_;
  int64_t B_, N_, D_;
  std::string where_;
  std::vector<Space> spaces_;
  std::vector<LinearParams> linears_;
  int64_t hd_ = 0;
  float scale_ = 0;
  int roles_space_[3] = {-1, -1, -1}, roles_sec_[3] = {-1, -1, -1};
  std::vector<std::pair<int64_t, int64_t>> table_;
  int merged_space_ = -1;
  bool seq_first_ = false;
  std::set<std::string> ops_seen_;
};

}  // namespace graph
}  // namespace adalog
