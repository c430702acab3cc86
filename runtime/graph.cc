// Helpers of the importer's generic graph IR (runtime/graph.h): checked sizes, attributes.
#include "runtime/graph.h"

#include <cmath>
#include <sstream>

#include "quant/error.h"

namespace adalog {
namespace graph {

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

int64_t Tensor::AtI(int64_t k) const {
  if (dtype == DType::kInt64) return i[k];
  const float v = f[k];
  ADALOG_CHECK(std::isfinite(v) && std::fabs(v) < 9.0e18f, "float value ", v,
               " used as an integer");
  return static_cast<int64_t>(v);
}

int64_t CheckedNumel(const std::vector<int64_t>& dims, const std::string& what, int64_t cap) {
  ADALOG_CHECK(dims.size() <= static_cast<size_t>(kMaxRank), what, ": rank ", dims.size(),
               " exceeds the supported maximum ", kMaxRank);
  int64_t n = 1;
  for (int64_t d : dims) {
    ADALOG_CHECK(d >= 0, what, ": negative dimension in shape ", ShapeStr(dims));
    if (d == 0) return 0;
    ADALOG_CHECK(n <= cap / d, what, ": shape ", ShapeStr(dims), " has more than ", cap,
                 " elements");
    n *= d;
  }
  return n;
}

std::string ShapeStr(const std::vector<int64_t>& dims) {
  std::ostringstream os;
  os << "[";
  for (size_t k = 0; k < dims.size(); ++k) os << (k ? "," : "") << dims[k];
  os << "]";
  return os.str();
}

Tensor MakeTensor(DType dt, const std::vector<int64_t>& dims, const std::string& what) {
  Tensor t;
  t.dtype = dt;
  t.dims = dims;
  const int64_t n = CheckedNumel(dims, what, kMaxFoldedElements);
  if (dt == DType::kFloat) {
    t.f.assign(static_cast<size_t>(n), 0.f);
  } else {
    t.i.assign(static_cast<size_t>(n), 0);
  }
  t.has_data = true;
  return t;
}

Tensor ScalarF(float v) {
  Tensor t;
  t.dtype = DType::kFloat;
  t.f = {v};
  t.has_data = true;
  return t;
}

Tensor VectorI(const std::vector<int64_t>& v) {
  Tensor t;
  t.dtype = DType::kInt64;
  t.dims = {static_cast<int64_t>(v.size())};
  t.i = v;
  t.has_data = true;
  return t;
}

int64_t Node::GetInt(const std::string& a, int64_t def) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return def;
  ADALOG_CHECK(it->second.kind == Attr::kInt, Describe(), ": attribute '", a,
               "' is not an integer");
  return it->second.i;
}

float Node::GetFloat(const std::string& a, float def) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return def;
  ADALOG_CHECK(it->second.kind == Attr::kFloat, Describe(), ": attribute '", a,
               "' is not a float");
  return it->second.f;
}

std::vector<int64_t> Node::GetInts(const std::string& a) const {
  auto it = attrs.find(a);
  if (it == attrs.end()) return {};
  ADALOG_CHECK(it->second.kind == Attr::kInts || it->second.kind == Attr::kInt, Describe(),
               ": attribute '", a, "' is not a list of integers");
  if (it->second.kind == Attr::kInt) return {it->second.i};
  return it->second.ints;
}

std::string Node::Describe() const { return "node '" + name + "' (" + op + ")"; }

}  // namespace graph
}  // namespace adalog
