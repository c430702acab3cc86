// Rejection of unsupported Swin variants on the raw graph (runtime/passes/swin_variants.h).
#include "runtime/passes/swin_variants.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "quant/error.h"

namespace adalog {
namespace graph {
namespace {

using Producers = std::map<std::string, const Node*>;

const Node* ProducerOf(const Producers& p, const std::string& t) {
  auto it = p.find(t);
  return it == p.end() ? nullptr : it->second;
}

// The last-axis reduction of an L2 norm: ReduceL2, or Sqrt(ReduceSumSquare(x)), over one axis that
// is -1 (an `axes` attribute; from opset 18 the axes may be an input, which is not checked here:
// the Div below must still divide the same x by it). Returns the normalized tensor's name or "".
std::string L2NormOf(const Producers& p, const Node* n) {
  if (n == nullptr) return "";
  if (n->op == "Sqrt") {
    const Node* r = ProducerOf(p, n->inputs.empty() ? "" : n->inputs[0]);
    if (r == nullptr || r->op != "ReduceSumSquare") return "";
    n = r;
  } else if (n->op != "ReduceL2") {
    return "";
  }
  if (n->inputs.empty()) return "";
  const std::vector<int64_t> axes = n->GetInts("axes");
  if (n->Has("axes") && !(axes.size() == 1 && axes[0] == -1)) return "";
  return n->inputs[0];
}

// If `t` is x / ||x|| (the norm clamped from below by Clip or Max, then broadcast by Expand),
// returns the Div node; otherwise nullptr.
const Node* NormalizingDiv(const Producers& p, const std::string& t) {
  const Node* div = ProducerOf(p, t);
  if (div == nullptr || div->op != "Div" || div->inputs.size() != 2) return nullptr;
  const Node* d = ProducerOf(p, div->inputs[1]);
  for (int hops = 0; d != nullptr && hops < 4; ++hops) {
    if (d->op != "Expand" && d->op != "Clip" && d->op != "Max" && d->op != "Identity") break;
    d = ProducerOf(p, d->inputs.empty() ? "" : d->inputs[0]);
  }
  return L2NormOf(p, d) == div->inputs[0] ? div : nullptr;
}

// Looks through element-moving ops that keep the last axis a head-dim axis for q@k^T.
const Node* NormalizedSource(const Producers& p, std::string t) {
  static const std::set<std::string> kThrough = {"Transpose", "Reshape", "Identity"};
  for (int hops = 0; hops < 4; ++hops) {
    if (const Node* div = NormalizingDiv(p, t)) return div;
    const Node* n = ProducerOf(p, t);
    if (n == nullptr || !kThrough.count(n->op) || n->inputs.empty()) return nullptr;
    t = n->inputs[0];
  }
  return nullptr;
}

}  // namespace

void RejectUnsupportedSwin(const Graph& g) {
  Producers p;
  for (const Node& n : g.nodes) {
    for (const std::string& o : n.outputs) p[o] = &n;
  }
  for (const Node& n : g.nodes) {
    if (n.op != "MatMul" || n.inputs.size() != 2) continue;
    const Node* a = NormalizedSource(p, n.inputs[0]);
    const Node* b = a ? NormalizedSource(p, n.inputs[1]) : nullptr;
    if (a == nullptr || b == nullptr) continue;
    Fail("unsupported attention: Swin V2 cosine attention at node '", n.name, "' (MatMul of q and k",
         " each L2-normalized, by nodes '", a->name, "' and '", b->name,
         "'); Swin V2 is not supported: adalog implements scaled dot-product attention, not V2's",
         " cosine attention with its log-spaced continuous position bias");
  }
}

}  // namespace graph
}  // namespace adalog
