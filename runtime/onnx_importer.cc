// ONNX ModelProto -> graph IR -> folded graph -> VitModel (runtime/onnx_importer.h). This file
// owns the protobuf boundary: every tensor and attribute from the file is validated here.
#include "runtime/onnx_importer.h"

#include <onnx/onnx_pb.h>  // defines ONNX_API, then includes onnx-ml.pb.h

#include <cmath>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <new>
#include <sstream>

#include "quant/error.h"
#include "runtime/graph.h"
#include "runtime/passes/fold.h"
#include "runtime/passes/swin_blocks.h"
#include "runtime/passes/swin_variants.h"
#include "runtime/passes/vit_blocks.h"

namespace adalog {
namespace {

using graph::DType;
using graph::Tensor;

// Reads little-endian element k of size `sz` from raw bytes.
template <class T>
T ReadRaw(const std::string& raw, size_t k) {
  T v;
  std::memcpy(&v, raw.data() + k * sizeof(T), sizeof(T));
  return v;
}

float HalfToFloat(uint16_t h) {
  const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  float v;
  if (e == 0) {
    v = std::ldexp(static_cast<float>(m), -24);
  } else if (e == 31) {
    v = m ? NAN : INFINITY;
  } else {
    v = std::ldexp(static_cast<float>(m + 1024), e - 25);
  }
  return (h & 0x8000) ? -v : v;
}

Tensor ConvertTensor(const onnx::TensorProto& tp, const std::string& what) {
  ADALOG_CHECK(tp.data_location() != onnx::TensorProto::EXTERNAL && tp.external_data_size() == 0,
               what, ": external tensor data is not supported (save the model with all tensors "
               "inside the .onnx file)");
  Tensor t;
  for (int64_t d : tp.dims()) t.dims.push_back(d);
  const int64_t n = graph::CheckedNumel(t.dims, what);
  const int dt = tp.data_type();
  size_t esz = 0;
  switch (dt) {
    case onnx::TensorProto::FLOAT: esz = 4; t.dtype = DType::kFloat; break;
    case onnx::TensorProto::DOUBLE: esz = 8; t.dtype = DType::kFloat; break;
    case onnx::TensorProto::FLOAT16: esz = 2; t.dtype = DType::kFloat; break;
    case onnx::TensorProto::INT64: esz = 8; t.dtype = DType::kInt64; break;
    case onnx::TensorProto::INT32: esz = 4; t.dtype = DType::kInt64; break;
    case onnx::TensorProto::INT16: esz = 2; t.dtype = DType::kInt64; break;
    case onnx::TensorProto::INT8: esz = 1; t.dtype = DType::kInt64; break;
    case onnx::TensorProto::UINT8: esz = 1; t.dtype = DType::kInt64; break;
    case onnx::TensorProto::BOOL: esz = 1; t.dtype = DType::kInt64; break;
    default:
      Fail(what, ": unsupported tensor element type ", dt, " (",
           onnx::TensorProto::DataType_IsValid(dt)
               ? onnx::TensorProto::DataType_Name(static_cast<onnx::TensorProto::DataType>(dt))
               : std::string("invalid"),
           ")");
  }
  ADALOG_CHECK(n <= graph::kMaxFoldedElements * 4, what, ": ", n, " elements is too large");
  // Integer tensors are shape/index data in a ViT; stored as int64 they would grow up to 8x.
  ADALOG_CHECK(t.dtype == DType::kFloat || n <= (int64_t{1} << 24), what, ": integer tensor of ",
               n, " elements is too large");
  t.has_data = true;
  if (t.dtype == DType::kFloat) {
    t.f.resize(static_cast<size_t>(n));
  } else {
    t.i.resize(static_cast<size_t>(n));
  }
  if (tp.has_raw_data()) {
    const std::string& raw = tp.raw_data();
    ADALOG_CHECK(raw.size() == static_cast<size_t>(n) * esz, what, ": raw_data has ", raw.size(),
                 " bytes, shape ", graph::ShapeStr(t.dims), " needs ", static_cast<size_t>(n) * esz);
    for (int64_t k = 0; k < n; ++k) {
      switch (dt) {
        case onnx::TensorProto::FLOAT: t.f[k] = ReadRaw<float>(raw, k); break;
        case onnx::TensorProto::DOUBLE: t.f[k] = static_cast<float>(ReadRaw<double>(raw, k)); break;
        case onnx::TensorProto::FLOAT16: t.f[k] = HalfToFloat(ReadRaw<uint16_t>(raw, k)); break;
        case onnx::TensorProto::INT64: t.i[k] = ReadRaw<int64_t>(raw, k); break;
        case onnx::TensorProto::INT32: t.i[k] = ReadRaw<int32_t>(raw, k); break;
        case onnx::TensorProto::INT16: t.i[k] = ReadRaw<int16_t>(raw, k); break;
        case onnx::TensorProto::INT8: t.i[k] = ReadRaw<int8_t>(raw, k); break;
        case onnx::TensorProto::UINT8: t.i[k] = ReadRaw<uint8_t>(raw, k); break;
        default: t.i[k] = ReadRaw<uint8_t>(raw, k) != 0; break;  // BOOL
      }
    }
    return t;
  }
  auto check_count = [&](int have) {
    ADALOG_CHECK(have == n, what, ": has ", have, " values, shape ", graph::ShapeStr(t.dims),
                 " needs ", n);
  };
  switch (dt) {
    case onnx::TensorProto::FLOAT:
      check_count(tp.float_data_size());
      for (int64_t k = 0; k < n; ++k) t.f[k] = tp.float_data(static_cast<int>(k));
      break;
    case onnx::TensorProto::DOUBLE:
      check_count(tp.double_data_size());
      for (int64_t k = 0; k < n; ++k) t.f[k] = static_cast<float>(tp.double_data(static_cast<int>(k)));
      break;
    case onnx::TensorProto::INT64:
      check_count(tp.int64_data_size());
      for (int64_t k = 0; k < n; ++k) t.i[k] = tp.int64_data(static_cast<int>(k));
      break;
    case onnx::TensorProto::FLOAT16:
      check_count(tp.int32_data_size());
      for (int64_t k = 0; k < n; ++k) {
        t.f[k] = HalfToFloat(static_cast<uint16_t>(tp.int32_data(static_cast<int>(k))));
      }
      break;
    default:  // int32, int16, int8, uint8, bool live in int32_data
      check_count(tp.int32_data_size());
      for (int64_t k = 0; k < n; ++k) t.i[k] = tp.int32_data(static_cast<int>(k));
      if (dt == onnx::TensorProto::BOOL) {
        for (auto& v : t.i) v = v != 0;
      }
      break;
  }
  return t;
}

graph::Attr ConvertAttr(const onnx::AttributeProto& a, const std::string& what) {
  graph::Attr r;
  switch (a.type()) {
    case onnx::AttributeProto::INT: r.kind = graph::Attr::kInt; r.i = a.i(); break;
    case onnx::AttributeProto::FLOAT: r.kind = graph::Attr::kFloat; r.f = a.f(); break;
    case onnx::AttributeProto::STRING: r.kind = graph::Attr::kString; r.s = a.s(); break;
    case onnx::AttributeProto::INTS:
      r.kind = graph::Attr::kInts;
      r.ints.assign(a.ints().begin(), a.ints().end());
      break;
    case onnx::AttributeProto::FLOATS:
      r.kind = graph::Attr::kFloats;
      r.floats.assign(a.floats().begin(), a.floats().end());
      break;
    case onnx::AttributeProto::TENSOR:
      r.kind = graph::Attr::kTensor;
      r.t = ConvertTensor(a.t(), what + " attribute '" + a.name() + "'");
      break;
    case onnx::AttributeProto::GRAPH:
    case onnx::AttributeProto::GRAPHS:
      Fail(what, ": attribute '", a.name(), "' holds a subgraph (control flow is not supported)");
    default:
      r.kind = graph::Attr::kNone;  // sparse tensors, type protos: unused by supported ops
      break;
  }
  return r;
}

// Frees each initializer's protobuf data once converted, so the proto and the graph never hold
// the weights at the same time (peak memory of a large import).
graph::Graph ConvertModel(onnx::ModelProto& mp, const std::string& source) {
  graph::Graph g;
  g.ir_version = mp.ir_version();
  g.producer = mp.producer_name();
  if (!mp.producer_version().empty()) g.producer += " " + mp.producer_version();
  for (const auto& os : mp.opset_import()) {
    if (os.domain().empty() || os.domain() == "ai.onnx") g.opset = os.version();
  }
  ADALOG_CHECK(mp.has_graph(), source, ": not an ONNX model (no graph)");
  ADALOG_CHECK(g.opset != 0, source, ": no default-domain opset import");
  ADALOG_CHECK(g.opset >= 11 && g.opset <= 18, source, ": opset ", g.opset,
               " is not supported (supported: 11-18, tested 13-17)");
  const onnx::GraphProto& gp = mp.graph();
  g.name = gp.name();
  for (onnx::TensorProto& tp : *mp.mutable_graph()->mutable_initializer()) {
    ADALOG_CHECK(!tp.name().empty(), source, ": initializer without a name");
    ADALOG_CHECK(!g.initializers.count(tp.name()), source, ": initializer '", tp.name(),
                 "' defined twice");
    g.initializers[tp.name()] = ConvertTensor(tp, "initializer '" + tp.name() + "'");
    // release_ hands over the heap string (clear_ would keep its capacity).
    if (tp.has_raw_data()) delete tp.release_raw_data();
    google::protobuf::RepeatedField<float>().Swap(tp.mutable_float_data());
  }
  ADALOG_CHECK(gp.sparse_initializer_size() == 0, source, ": sparse initializers unsupported");
  for (const auto& vi : gp.input()) {
    if (g.initializers.count(vi.name())) continue;
    graph::ValueInfo v;
    v.name = vi.name();
    if (vi.type().has_tensor_type()) {
      const auto& tt = vi.type().tensor_type();
      v.elem_type = tt.elem_type();
      if (tt.has_shape()) {
        v.has_shape = true;
        for (const auto& d : tt.shape().dim()) {
          v.dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
          v.dim_params.push_back(d.has_dim_param() ? d.dim_param() : "?");
        }
      }
    }
    g.inputs.push_back(v);
  }
  for (const auto& o : gp.output()) g.outputs.push_back(o.name());
  ADALOG_CHECK(!g.outputs.empty(), source, ": graph has no outputs");
  g.nodes.reserve(gp.node_size());
  for (const auto& np : gp.node()) {
    graph::Node n;
    n.op = np.op_type();
    n.name = np.name();
    n.domain = np.domain();
    n.inputs.assign(np.input().begin(), np.input().end());
    n.outputs.assign(np.output().begin(), np.output().end());
    for (const auto& a : np.attribute()) n.attrs[a.name()] = ConvertAttr(a, n.Describe());
    g.nodes.push_back(std::move(n));
  }
  return g;
}

}  // namespace

namespace {

// The size checks, then `parse(model)` (from bytes in memory, or straight from a file stream).
template <typename Parse>
std::unique_ptr<onnx::ModelProto> ParseModel(uint64_t size, const std::string& source_name,
                                             const Parse& parse) {
  ADALOG_CHECK(size > 0, source_name, ": empty file, not an ONNX model");
  ADALOG_CHECK(size < (uint64_t{1} << 31), source_name, ": file larger than 2 GiB");
  auto mp = std::make_unique<onnx::ModelProto>();
  ADALOG_CHECK(parse(*mp), source_name,
               ": not a valid ONNX model (protobuf parse failed; truncated or not ONNX?)");
  return mp;
}

// Takes the parsed model and frees it once converted (each initializer's protobuf data as soon as
// it is converted), and folding moves the weights out of the graph, so at most two copies of the
// weights live at once: the folded graph's and the recognized model's (peak memory of a large
// import).
VitModel ImportImpl(std::unique_ptr<onnx::ModelProto> mp, ImportReport* report,
                    const std::string& source_name) {
  graph::Graph g = ConvertModel(*mp, source_name);
  std::vector<std::pair<std::string, std::string>> props;
  for (const auto& kv : mp->metadata_props()) props.emplace_back(kv.key(), kv.value());
  mp.reset();
  graph::RejectUnsupportedSwin(g);  // before folding: V2's Clip/ReduceL2 would fail there first
  ImportReport rep;
  rep.ir_version = g.ir_version;
  rep.opset = g.opset;
  rep.producer = g.producer;
  rep.nodes_total = static_cast<int>(g.nodes.size());
  const std::string graph_name = g.name;
  // Folding takes the weights over from `g` (moved, not copied); `g` is not used after this.
  const graph::Folded f = graph::FoldAndInferShapes(std::move(g), /*batch=*/2);
  rep.nodes_after_folding = static_cast<int>(f.compute.size());
  rep.dynamic_batch = f.dynamic_batch;
  rep.input_name = f.input;
  VitModel m = graph::LooksLikeSwin(f) ? graph::RecognizeSwin(f, &rep.notes)
                                        : graph::RecognizeVit(f, &rep.notes);
  m.name = graph_name;
  // Preprocessing declared by the exporter (runtime/preprocess.h); else the default, unknown.
  if (ReadPreprocessMetadata(props, source_name, &m.preprocess)) {
    ADALOG_CHECK(m.preprocess.resize_shorter == 0 || m.preprocess.resize_shorter >= m.embed.image_h, source_name,
                 ": metadata 'adalog.preprocess.resize' = ", m.preprocess.resize_shorter,
                 " is smaller than the model's input size ", m.embed.image_h);
  }
  ValidateVitModel(m);
  if (report) *report = rep;
  return m;
}

// Runs `f` with the importer's error contract: adalog::Error passes through, anything else
// becomes one naming the source.
template <typename F>
VitModel Guarded(const std::string& source_name, const F& f) {
#ifdef ADALOG_FUZZING
  return f();  // let the fuzzer see any stray exception
#else
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    Fail(source_name, ": out of memory while importing");
  } catch (const std::exception& e) {
    Fail(source_name, ": internal importer error: ", e.what());
  }
#endif
}

}  // namespace

VitModel ImportOnnxVitFromBytes(const std::string& bytes, ImportReport* report,
                                const std::string& source_name) {
  return Guarded(source_name, [&] { return ImportImpl(ParseModel(bytes.size(), source_name,
                                        [&](onnx::ModelProto& mp) { return mp.ParseFromString(bytes); }),
                             report, source_name); });
}

VitModel ImportOnnxVit(const std::string& path, ImportReport* report) {
  std::ifstream in(path, std::ios::binary);
  ADALOG_CHECK(in.good(), "cannot open ONNX file '", path, "'");
  return Guarded(path, [&] {
    // Parsed straight from the stream (protobuf reads it in blocks), so the file's bytes and the
    // parsed model are never both in memory.
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    ADALOG_CHECK(size >= 0 && !std::filesystem::is_directory(path), "cannot read ONNX file '", path,
                 "' (a directory or not a regular file)");
    in.seekg(0, std::ios::beg);
    return ImportImpl(ParseModel(static_cast<uint64_t>(size), path,
                                 [&](onnx::ModelProto& mp) { return mp.ParseFromIstream(&in); }),
                      report, path);
  });
}

}  // namespace adalog
