// Sub-graph matchers on a folded graph, shared by the architecture recognizers (vit_blocks.cc;
// a Swin recognizer reuses them): Linear layers, GELU and LayerNorm regions verified on probe
// values, the patch-embedding Conv, and index maps pushed through layout ops.
//
// Contract common to every matcher: a `bool Match*` returns false when the structure is simply
// not there (the caller may try something else) and throws adalog::Error when it is there but
// in a form the runtime cannot run (e.g. a Gemm with alpha != 1). Matchers never modify `f`.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "runtime/passes/fold.h"
#include "runtime/vit_model.h"

namespace adalog {
namespace graph {

// ---- small graph queries ----

// True if `name` is a constant with one element; its value goes to *v when given.
bool IsScalarConst(const Folded& f, const std::string& name, double* v = nullptr);

// The other input of a binary node, given one of them.
const std::string& OtherInput(const Node& n, const std::string& one);

// The axes of a Reduce* node: its `axes` attribute, else its constant second input (opset 18).
std::vector<int64_t> ReduceAxes(const Node& n, const Folded& f);

// ---- index maps ----
// An index map is an int64 tensor whose elements hold the flat (row-major) index of the element
// they copy in some source tensor. Pushing one through a layout op (EvalNode on the map instead
// of the data) shows exactly which element lands where.

// Row-major iota (identity index map) of `dims`.
Tensor Iota(const std::vector<int64_t>& dims, const std::string& what);
bool IsIota(const Tensor& t);

// Evaluates layout node `n` with `map` as its first input and the graph's constants as the
// others (empty inputs stay absent).
std::vector<Tensor> EvalOnMap(const Folded& f, const Node& n, const Tensor& map);

// Follows single-consumer layout ops (not Concat / Expand) from `t`, carrying index map `m`,
// until the map is an identity of `want_dims`; returns that tensor's name. Throws naming `what`
// if no such view is reached within 16 ops.
std::string FollowLayout(const Folded& f, std::string t, Tensor m,
                         const std::vector<int64_t>& want_dims, const std::string& what);

// ---- Linear layers: MatMul(x, W[in,out]) (+ Add bias[out]) or Gemm ----

// LinearParams (weight [out][in] row-major) from an ONNX weight `w`: [in][out] for MatMul and
// Gemm without transB, [out][in] when `trans_w`. Zero bias when `bias` is null.
LinearParams MakeLinear(const Tensor& w, bool trans_w, const Tensor* bias);

struct LinearMatch {
  LinearParams p;
  std::string out;  // output tensor (after the bias Add if any)
  std::string desc;
};

// `n` as a Linear reading `x` with a constant weight; a following single-consumer Add of a
// bias vector is folded in.
bool MatchLinearAt(const Folded& f, const Node& n, const std::string& x, LinearMatch* m);
// The single consumer of `x`, as a Linear.
bool FindLinear(const Folded& f, const std::string& x, LinearMatch* m);

// ---- element-wise regions (decomposed LayerNorm, GELU), evaluated on probe values ----

struct Region {
  std::vector<const Node*> nodes;  // topological order
  std::string out;                 // the one tensor read outside the region (empty: not one)
};

// Grows the region of nodes in `ops` whose non-constant inputs are all `start` or region tensors.
// `accept` may veto further nodes (e.g. a ReduceMean that is not over the last axis).
Region GrowRegion(const Folded& f, const std::string& start, const std::set<std::string>& ops,
                  const std::function<bool(const Node&)>& accept);

// Evaluates the region with the tensors of `seed` given values (the rest from f's constants);
// returns the value of r.out.
Tensor EvalRegion(const Folded& f, const Region& r, const std::map<std::string, Tensor>& seed);

// Recognizes GELU (erf or tanh form) applied to `h`; returns its output tensor. Throws (prefixed
// by `where`) if what follows `h` is not GELU.
std::string MatchGelu(const Folded& f, const std::string& h, GeluKind* kind,
                      const std::string& where);

struct LnMatch {
  LayerNormParams p;
  std::string out;
  std::string kind;                // "LN(opset17)" or "LN(decomposed)", for the notes
  std::vector<const Node*> nodes;  // the matched nodes
};

// True if Reduce* node `n` reduces only the last axis of a rank-`rank` input, keeping dims.
bool LastAxisOnly(const Node& n, const Folded& f, int rank);

// LayerNorm over the last axis of `x`: LayerNormalization (opset 17) or its decomposition
// (verified numerically on probe rows).
bool MatchLayerNorm(const Folded& f, const std::string& x, LnMatch* m);

// ---- patch embedding ----

// The patch-embedding Conv reading the graph input (square kernel == stride, no padding, no
// dilation, one group); fills `e` and returns the Conv. Throws if there is none.
const Node* MatchPatchEmbedConv(const Folded& f, PatchEmbedParams* e);

}  // namespace graph
}  // namespace adalog
