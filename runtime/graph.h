// The importer's generic graph IR: dense constant tensors, ONNX-like nodes, and the parsed model.
// Independent of protobuf, OpenMP and oneDNN so the fuzz target can compile it directly.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace adalog {
namespace graph {

// Element types the importer computes with. Integer and bool tensors are stored as int64;
// float and double tensors as float.
enum class DType { kFloat, kInt64 };

// Caps that keep untrusted files from causing huge allocations.
constexpr int64_t kMaxElements = int64_t{1} << 31;  // any tensor, shape only
constexpr int64_t kMaxFoldedElements = int64_t{1} << 25;  // any tensor we materialize
constexpr int kMaxRank = 8;

struct Tensor {
  DType dtype = DType::kFloat;
  std::vector<int64_t> dims;
  std::vector<float> f;    // when dtype == kFloat
  std::vector<int64_t> i;  // when dtype == kInt64
  bool has_data = false;   // false: shape-only (a dynamic activation)

  int64_t numel() const;
  int rank() const { return static_cast<int>(dims.size()); }
  // Element k as double / int64 regardless of dtype.
  double AtF(int64_t k) const { return dtype == DType::kFloat ? f[k] : static_cast<double>(i[k]); }
  // Throws adalog::Error if a float element is not an exact-enough integer in range.
  int64_t AtI(int64_t k) const;
};

// Checked element count: throws adalog::Error on negative dims, rank > kMaxRank or more than
// `cap` elements. `what` names the tensor in the message.
int64_t CheckedNumel(const std::vector<int64_t>& dims, const std::string& what,
                     int64_t cap = kMaxElements);
std::string ShapeStr(const std::vector<int64_t>& dims);

// Allocates a tensor with data, checking the materialization cap.
Tensor MakeTensor(DType dt, const std::vector<int64_t>& dims, const std::string& what);
Tensor ScalarF(float v);
Tensor VectorI(const std::vector<int64_t>& v);

struct Attr {
  enum Kind { kNone, kInt, kFloat, kInts, kFloats, kString, kTensor } kind = kNone;
  int64_t i = 0;
  float f = 0.f;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  std::string s;
  Tensor t;
};

struct Node {
  std::string op;
  std::string name;
  std::string domain;
  std::vector<std::string> inputs;   // "" = absent optional input
  std::vector<std::string> outputs;
  std::map<std::string, Attr> attrs;

  bool Has(const std::string& a) const { return attrs.count(a) != 0; }
  int64_t GetInt(const std::string& a, int64_t def) const;
  float GetFloat(const std::string& a, float def) const;
  std::vector<int64_t> GetInts(const std::string& a) const;  // empty if absent
  // "node 'name' (OpType)" for messages.
  std::string Describe() const;
};

struct ValueInfo {
  std::string name;
  int32_t elem_type = 0;           // ONNX TensorProto.DataType
  bool has_shape = false;
  std::vector<int64_t> dims;       // -1 for a symbolic dimension
  std::vector<std::string> dim_params;
};

struct Graph {
  int64_t ir_version = 0;
  int64_t opset = 0;
  std::string producer;
  std::string name;
  std::vector<Node> nodes;
  std::map<std::string, Tensor> initializers;
  std::vector<ValueInfo> inputs;   // graph inputs that are not initializers
  std::vector<std::string> outputs;
};

}  // namespace graph
}  // namespace adalog
