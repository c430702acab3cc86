// The `adalog` Python module (pybind11): Session, quantize, inspect and evaluate over the runtime's
// public API (runtime/adalog_runtime.h) and the calibration entry point (search/calibrate.h), each
// doing what the matching `adalog` subcommand does in cli/commands.cc. docs/python.md is the
// user's guide.
//
// Contracts kept here:
//  - Every adalog::Error (untrusted input, engine failures) and every check of this file arrives in
//    Python as adalog.Error (a RuntimeError) carrying the engine's message.
//  - Images are float32 [N,C,H,W]. A C-contiguous, aligned, native-order float32 array is read in
//    place (no copy); any other float32 array (strided, Fortran-order, byte-swapped) is copied to a
//    contiguous one first (lossless); every other dtype, float64 included, is refused (converting
//    it would be a silent, lossy copy; ONNX Runtime refuses it as well).
//  - The GIL is released while models load, sessions run and calibration runs. Calibration takes
//  the
//    GIL back only to report progress, and at each progress step it lets Python handle pending
//    signals (PyErr_CheckSignals), so Ctrl-C raises KeyboardInterrupt within one step and no output
//    file is written.
#include <omp.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "quant/error.h"
#include "runtime/adalog_runtime.h"
#include "runtime/data/image_folder.h"
#include "runtime/data/image_source.h"
#include "runtime/data/npy.h"
#include "runtime/metrics.h"
#include "runtime/model_file.h"
#include "runtime/plan_text.h"
#include "search/calibrate.h"
#include "search/calibration_set.h"

namespace py = pybind11;

namespace adalog::python {
namespace {

// Session::Run may be called from several threads at once (each call takes its own workspace:
// include/adalog/adalog.h), so run() calls on one Session go in concurrently once the GIL is
// released. Set to false, the binding would serialize them with a per-Session mutex;
// `adalog._session_run_serialized` reports which.
constexpr bool kSessionRunIsThreadSafe = true;

// A float32 [N,C,H,W] view of a Python object, keeping its buffer alive.
struct Images {
  py::array holder;  // the caller's array (read in place) or its contiguous float32 copy
  const float* data = nullptr;
  std::vector<int64_t> shape;
  bool copied = false;
};

std::string TypeName(const py::handle& obj) { return py::str(py::type::of(obj).attr("__name__")); }

// `what` names the argument in messages ("input", "calib", "data").
Images AsImages(const py::handle& obj, const std::string& what) {
  if (!py::isinstance<py::array>(obj)) {
    Fail(what, ": expected a numpy array (float32 [N,C,H,W]), got ", TypeName(obj));
  }
  auto a = py::reinterpret_borrow<py::array>(obj);
  const py::dtype dt = a.dtype();
  if (dt.kind() != 'f' || dt.itemsize() != 4) {
    Fail(what, ": dtype ", py::str(dt.attr("name")).cast<std::string>(),
         ", expected float32 (convert with x.astype(numpy.float32))");
  }
  std::vector<int64_t> shape(a.shape(), a.shape() + a.ndim());
  if (a.ndim() != 4) {
    Fail(what, ": expected shape [N,C,H,W], got rank ", a.ndim(), " ", ShapeString(shape),
         a.ndim() == 3 ? " (one image: add the batch axis, x[None])" : "");
  }
  Images im;
  im.shape = shape;
  const bool aligned = reinterpret_cast<uintptr_t>(a.data()) % alignof(float) == 0;
  if (py::array_t<float, py::array::c_style>::check_(a) && aligned) {
    im.holder = a;
  } else {
    // Lossless: the dtype is float32, only the layout or byte order differs.
    im.holder = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
    if (!im.holder) throw py::error_already_set();
    im.copied = true;
  }
  im.data = static_cast<const float*>(im.holder.data());
  return im;
}

// Runs n images through the session in batches of its max batch (as RunImages does for an .npy),
// the logits going to logits[n][classes]. Called without the GIL.
void RunInBatches(Session& session, const float* images, const std::vector<int64_t>& shape,
                  float* logits) {
  const int64_t n = shape[0], per = shape[1] * shape[2] * shape[3];
  const int classes = session.num_classes();
  for (int64_t i = 0; i < n; i += session.max_batch()) {
    const int64_t b = std::min<int64_t>(session.max_batch(), n - i);
    session.Run(images + i * per, {b, shape[1], shape[2], shape[3]}, logits + i * classes);
  }
}

std::string PathString(const py::handle& obj, const std::string& what) {
  if (py::isinstance<py::str>(obj)) return obj.cast<std::string>();
  py::module_ os = py::module_::import("os");
  if (py::isinstance(obj, os.attr("PathLike")))
    return py::str(os.attr("fspath")(obj)).cast<std::string>();
  Fail(what, ": expected a path (str or os.PathLike), got ", TypeName(obj));
}

bool IsPath(const py::handle& obj) {
  return py::isinstance<py::str>(obj) ||
         py::isinstance(obj, py::module_::import("os").attr("PathLike"));
}

// ---- Session ----

class PySession {
 public:
  PySession(const py::object& path, int threads, int max_batch, bool simulate) {
    const std::string p = PathString(path, "model");
    py::gil_scoped_release nogil;  // import / load and weight packing can take seconds
    model_ = LoadModel(p);
    SessionOptions so;
    so.max_batch = max_batch;
    so.num_threads = threads;
    so.simulate = simulate;
    session_ = std::make_unique<Session>(model_, so);
  }

  py::array_t<float> Run(const py::handle& x) {
    Images in = AsImages(x, "input");
    ADALOG_CHECK(in.shape[0] >= 1, "input: no images (shape ", ShapeString(in.shape), ")");
    py::array_t<float> out({in.shape[0], static_cast<int64_t>(session_->num_classes())});
    float* logits = out.mutable_data();
    {
      py::gil_scoped_release nogil;
      std::unique_lock<std::mutex> lock(run_mutex_, std::defer_lock);
      if (!kSessionRunIsThreadSafe) lock.lock();
      RunInBatches(*session_, in.data, in.shape, logits);
    }
    return out;
  }

  const Session& session() const { return *session_; }
  const LoadedModel& model() const { return *model_; }

 private:
  std::shared_ptr<const LoadedModel> model_;
  std::unique_ptr<Session> session_;
  std::mutex run_mutex_;
};

// ---- inspect ----

const char* PoolingKey(Pooling p) {
  switch (p) {
    case Pooling::kClsToken:
      return "cls";
    case Pooling::kClsDistAvg:
      return "cls_dist";
    case Pooling::kMeanPatches:
      return "mean";
  }
  return "?";
}

py::dict Inspect(const py::object& path_obj) {
  const std::string path = PathString(path_obj, "model");
  std::shared_ptr<const LoadedModel> loaded;
  {
    py::gil_scoped_release nogil;
    loaded = LoadModel(path);
  }
  const VitModel& m = loaded->model;
  py::dict d;
  d["model"] = path;
  d["format"] = loaded->format == ModelFormat::kOnnx ? "onnx" : "quantized";
  if (loaded->format == ModelFormat::kOnnx) {
    const ImportReport& r = loaded->onnx_report;
    d["ir_version"] = r.ir_version;
    d["opset"] = r.opset;
    d["producer"] = r.producer;
    d["nodes"] = r.nodes_total;
    d["nodes_after_folding"] = r.nodes_after_folding;
    d["input_name"] = r.input_name;
    d["dynamic_batch"] = r.dynamic_batch;
    d["notes"] = r.notes;
  } else {
    d["file_version"] = loaded->file_version;
  }
  d["name"] = m.name;
  d["style"] = m.style;
  d["input_shape"] = py::make_tuple(m.embed.in_channels, m.embed.image_h, m.embed.image_w);
  const BlockParams* b0 = m.blocks.empty() ? nullptr : &m.blocks[0];
  d["patch"] = m.embed.patch;
  d["grid"] = py::make_tuple(m.embed.grid_h(), m.embed.grid_w());
  d["tokens"] = m.num_tokens();
  d["prefix_tokens"] = m.num_prefix_tokens();
  d["dim"] = m.dim;
  d["blocks"] = m.blocks.size();
  d["heads"] = b0 ? b0->heads : 0;
  d["head_dim"] = m.head_dim();
  d["mlp_dim"] = b0 ? b0->fc1.out : 0;
  d["gelu"] = b0 && b0->gelu == GeluKind::kTanh ? "tanh" : "erf";
  d["pooling"] = PoolingKey(m.pooling);
  d["num_classes"] = m.num_classes();
  d["parameters"] = CountParameters(m);
  d["macs_per_image"] = CountMacsPerImage(m);
  py::dict pre;
  pre["mean"] = std::vector<float>(m.preprocess.mean, m.preprocess.mean + 3);
  pre["std"] = std::vector<float>(m.preprocess.std, m.preprocess.std + 3);
  pre["resize_shorter"] = m.preprocess.resize_shorter;
  d["preprocess"] = pre;
  if (loaded->format == ModelFormat::kQuantized) {
    const QuantPlan& p = loaded->plan;
    py::dict plan;
    plan["weight_bits"] = p.weight_bits;
    plan["act_bits"] = p.act_bits;
    plan["softmax"] = SoftmaxQuantizerName(p.softmax_quantizer);
    plan["gelu"] = GeluQuantizerName(p.gelu_quantizer);
    plan["ln_reparam"] = p.ln_reparam;
    plan["fpcs"] = p.fpcs;
    py::dict meta;
    for (const auto& kv : p.meta) meta[py::str(kv.first)] = kv.second;
    plan["meta"] = meta;
    plan["text"] = DescribePlan(p, m);  // what `adalog inspect` prints for the plan
    d["plan"] = plan;
  }
  return d;
}

// ---- quantize ----

// "W4A4" -> (4, 4); the form `adalog quantize --bits` takes (cli/args.cc ParseBits). The range
// [2, 8] is checked by search::ValidateRecipeOptions.
std::pair<int, int> ParseBitsText(const std::string& text) {
  std::string t = text;
  for (char& c : t) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const size_t a = t.find('A');
  bool ok = t.size() >= 4 && t[0] == 'W' && a != std::string::npos && a > 1 && a + 1 < t.size() &&
            a - 1 <= 2 && t.size() - a - 1 <= 2;
  for (size_t i = 1; ok && i < t.size(); ++i) {
    if (i != a && !std::isdigit(static_cast<unsigned char>(t[i]))) ok = false;
  }
  ADALOG_CHECK(ok, "bits: '", text, "' is not of the form WxAy (e.g. W4A4, W8A8)");
  return {std::stoi(t.substr(1, a - 1)), std::stoi(t.substr(a + 1))};
}

// Fails before the long work when `output` cannot be a new file: not a directory, its directory
// exists. (Writability itself is found by SaveQuantizedModel, which writes atomically.)
void CheckOutputPath(const std::string& output, const std::string& model) {
  namespace fs = std::filesystem;
  ADALOG_CHECK(!output.empty(),
               "quantize: output= is required (the quantized model file to write)");
  ADALOG_CHECK(output != model, "quantize: output would overwrite the input model ", model);
  std::error_code ec;
  const fs::path p(output);
  ADALOG_CHECK(!fs::is_directory(p, ec), "output '", output, "' is a directory; give a file name");
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  ADALOG_CHECK(fs::is_directory(dir, ec), "output '", output, "': directory '", dir.string(),
               "' does not exist");
}

// Raises the pending Python exception (KeyboardInterrupt from Ctrl-C, or what a signal handler
// raised) as a C++ exception. Needs the GIL.
void RaisePendingSignals() {
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

py::dict Quantize(const py::object& model_obj, const py::object& calib_obj, const std::string& bits,
                  const py::object& output_obj, int wbits, int abits, const std::string& softmax,
                  const std::string& gelu, int calib_size, uint32_t seed, bool fpcs,
                  const std::optional<std::string>& fpcs_mode, bool reparam, int threads,
                  const py::object& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string model_path = PathString(model_obj, "model");
  ADALOG_CHECK(!output_obj.is_none(),
               "quantize: output= is required (the quantized model file to write)");
  const std::string output = PathString(output_obj, "output");
  CheckOutputPath(output, model_path);
  ADALOG_CHECK(progress.is_none() || PyCallable_Check(progress.ptr()),
               "quantize: progress must be callable (done, total, label) or None");
  // Options first, as `adalog quantize` checks them before any long work.
  const std::pair<int, int> wa = ParseBitsText(bits);
  const search::CalibOptions defaults;
  search::CalibOptions co;
  co.recipe.weight_bits = wbits > 0 ? wbits : wa.first;
  co.recipe.act_bits = abits > 0 ? abits : wa.second;
  co.recipe.fpcs = fpcs;
  ADALOG_CHECK(fpcs || !fpcs_mode,
               "quantize: fpcs_mode chooses the FPCS variant; fpcs=False turns FPCS off");
  co.recipe.fpcs_mode = fpcs_mode ? search::ParseFpcsMode(*fpcs_mode) : defaults.recipe.fpcs_mode;
  co.recipe.softmax = ParseSoftmaxQuantizer(softmax);
  co.recipe.gelu = ParseGeluQuantizer(gelu);
  co.recipe.ln_reparam = reparam;
  search::ValidateRecipeOptions(co.recipe);
  co.num_images = calib_size;
  co.threads = threads;
  co.seed = seed;

  std::shared_ptr<const LoadedModel> loaded;
  {
    py::gil_scoped_release nogil;
    loaded = LoadModel(model_path);
  }
  ADALOG_CHECK(loaded->format == ModelFormat::kOnnx, model_path,
               " is already an adalog quantized model; quantize takes an FP32 ONNX model");
  const VitModel& m = loaded->model;

  // The calibration images: from a path exactly as `adalog quantize --calib` loads them; from an
  // array by the same reproducible choice of calib_size images (ChooseCalibrationIndices), so an
  // array and the same array saved as .npy give the same plan.
  search::CalibrationSet calib;
  std::string calib_name;
  if (IsPath(calib_obj)) {
    calib_name = PathString(calib_obj, "calib");
    py::gil_scoped_release nogil;
    calib = search::LoadCalibrationSet(calib_name, m, calib_size, seed);
  } else {
    calib_name = "<numpy array>";
    const Images im = AsImages(calib_obj, "calib");
    const int64_t C = m.embed.in_channels, H = m.embed.image_h, W = m.embed.image_w,
                  per = C * H * W;
    ADALOG_CHECK(im.shape[1] == C && im.shape[2] == H && im.shape[3] == W,
                 "calib: calibration images are ", ShapeString(im.shape),
                 " but the model expects [N,", C, ",", H, ",", W, "]");
    ADALOG_CHECK(calib_size >= 1, "quantize: calib_size ", calib_size, " must be >= 1");
    ADALOG_CHECK(im.shape[0] >= calib_size, "calibration array has ", im.shape[0],
                 " images, calib_size asks for ", calib_size);
    calib.available = im.shape[0];
    calib.selected = search::ChooseCalibrationIndices(calib.available, calib_size, seed);
    calib.images.resize(static_cast<size_t>(calib_size * per));
    for (size_t i = 0; i < calib.selected.size(); ++i) {
      std::memcpy(calib.images.data() + i * per, im.data + calib.selected[i] * per,
                  sizeof(float) * per);
    }
    CheckFinite(calib.images.data(), static_cast<int64_t>(calib.images.size()),
                "calib: calibration images", {calib_size, C, H, W});
  }

  // Called on this thread between ops (search/calibrate.h), with the GIL released around it.
  auto hook = [&](int done, int total, const std::string& label) {
    py::gil_scoped_acquire gil;
    RaisePendingSignals();
    if (!progress.is_none()) progress(done, total, label);
  };
  const auto search_t0 = std::chrono::steady_clock::now();
  QuantizedModel qm;
  {
    py::gil_scoped_release nogil;
    const int prev_threads = omp_get_max_threads();
    if (threads > 0) omp_set_num_threads(threads);  // the search loops use the current team size
    try {
      qm = search::Calibrate(m, calib.images.data(), calib_size, co, hook);
    } catch (...) {
      omp_set_num_threads(prev_threads);
      throw;
    }
    omp_set_num_threads(prev_threads);
  }
  RaisePendingSignals();
  const double search_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - search_t0).count();
  qm.plan.meta.push_back({"source", model_path});
  qm.plan.meta.push_back({"calib", calib_name});
  qm.plan.meta.push_back({"calib_available", std::to_string(calib.available)});
  if (co.recipe.fpcs)
    qm.plan.meta.push_back({"fpcs_mode", search::FpcsModeName(co.recipe.fpcs_mode)});
  {
    py::gil_scoped_release nogil;
    SaveQuantizedModel(qm, output);  // atomic: temporary file + rename
  }
  if (PyErr_CheckSignals() != 0) {  // Ctrl-C while writing: no output is left behind
    py::error_already_set interrupted;
    std::remove(output.c_str());
    throw interrupted;
  }
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(output, ec);
  py::dict d;
  d["model"] = model_path;
  d["output"] = output;
  d["bytes"] = ec ? 0 : static_cast<int64_t>(bytes);
  d["weight_bits"] = co.recipe.weight_bits;
  d["act_bits"] = co.recipe.act_bits;
  d["softmax"] = SoftmaxQuantizerName(co.recipe.softmax);
  d["gelu"] = GeluQuantizerName(co.recipe.gelu);
  d["fpcs_mode"] =
      co.recipe.fpcs ? py::object(py::str(search::FpcsModeName(co.recipe.fpcs_mode))) : py::none();
  d["reparam"] = co.recipe.ln_reparam;
  d["calib"] = calib_name;
  d["calib_size"] = calib_size;
  d["calib_available"] = calib.available;
  d["seed"] = seed;
  d["calibration_seconds"] = search_s;
  d["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return d;
}

// ---- evaluate ----

// Labels for `n` images given as an array: 1-D integers in [0, classes).
std::vector<int64_t> AsLabels(const py::handle& obj, int64_t n, int classes) {
  ADALOG_CHECK(py::isinstance<py::array>(obj), "labels: expected a numpy array of integers, got ",
               TypeName(obj));
  auto a = py::reinterpret_borrow<py::array>(obj);
  ADALOG_CHECK(a.dtype().kind() == 'i' || a.dtype().kind() == 'u', "labels: dtype ",
               py::str(a.dtype().attr("name")).cast<std::string>(), ", expected integers");
  ADALOG_CHECK(a.ndim() == 1 && a.shape(0) == n, "labels: shape ",
               ShapeString(std::vector<int64_t>(a.shape(), a.shape() + a.ndim())), ", expected [",
               n, "]");
  auto as64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!as64) throw py::error_already_set();
  std::vector<int64_t> labels(as64.data(), as64.data() + n);
  for (int64_t i = 0; i < n; ++i) {
    ADALOG_CHECK(labels[i] >= 0 && labels[i] < classes, "labels: row ", i, " has label ", labels[i],
                 ", outside [0, ", classes, ")");
  }
  return labels;
}

// The fields of `adalog eval --json`, computed as RunEval computes them.
py::dict Evaluate(const py::object& model_obj, const py::object& data_obj,
                  const py::object& labels_obj, int threads, int batch, int64_t limit,
                  bool simulate, const py::object& reference_obj, int image_size, int resize,
                  const std::optional<std::vector<float>>& mean,
                  const std::optional<std::vector<float>>& stdev) {
  const std::string model_path = PathString(model_obj, "model");
  const bool data_is_path = IsPath(data_obj);
  const std::string data_name = data_is_path ? PathString(data_obj, "data") : "<numpy array>";
  const bool folder = data_is_path && !IsNpyPath(data_name);
  // The combinations `adalog eval` refuses (GetEval).
  if (folder) {
    ADALOG_CHECK(labels_obj.is_none(),
                 "evaluate: labels are for .npy or array data; an image folder's labels are "
                 "its subfolders");
  } else {
    ADALOG_CHECK(!labels_obj.is_none(), "evaluate: data ", data_name, " needs labels");
    ADALOG_CHECK(image_size == 0 && resize == 0 && !mean && !stdev,
                 "evaluate: image_size / resize / mean / std apply to image folders; arrays and "
                 ".npy data are used "
                 "as already preprocessed");
  }
  ADALOG_CHECK(resize == 0 || image_size == 0 || resize >= image_size, "evaluate: resize ", resize,
               " is smaller than image_size ", image_size);
  ADALOG_CHECK(!mean || mean->size() == 3, "evaluate: mean needs 3 values");
  ADALOG_CHECK(!stdev || stdev->size() == 3, "evaluate: std needs 3 values");
  for (size_t c = 0; stdev && c < stdev->size(); ++c) {
    ADALOG_CHECK((*stdev)[c] > 0.f, "evaluate: every std value must be > 0");
  }
  ADALOG_CHECK(limit >= 0, "evaluate: limit ", limit, " must be >= 0 (0: all)");
  const std::string ref_path =
      reference_obj.is_none() ? "" : PathString(reference_obj, "reference_logits");

  std::shared_ptr<const LoadedModel> loaded;
  {
    py::gil_scoped_release nogil;
    loaded = LoadModel(model_path);
  }
  const VitModel& m = loaded->model;
  const int classes = m.num_classes();
  const auto t0 = std::chrono::steady_clock::now();  // as `adalog eval`: data, session and runs
  std::vector<float> logits;
  std::vector<int64_t> labels;
  int64_t n = 0;
  std::string executor;
  // One session sized for min(batch, n) images, as `adalog eval` makes it.
  auto make_session = [&](int64_t count) {
    SessionOptions sess;
    sess.max_batch = static_cast<int>(std::min<int64_t>(batch, count));
    sess.num_threads = threads;
    sess.simulate = simulate;
    return Session(loaded, sess);
  };
  if (data_is_path) {
    ImageSourceOptions so;
    so.num_classes = classes;
    if (!folder) {
      so.labels = PathString(labels_obj, "labels");
    } else {
      so.preprocess = PreprocessOptionsFor(m);
      if (image_size != 0) so.preprocess.crop = image_size;
      if (resize != 0) so.preprocess.resize_shorter = resize;
      for (int c = 0; c < 3 && mean; ++c) so.preprocess.mean[c] = (*mean)[c];
      for (int c = 0; c < 3 && stdev; ++c) so.preprocess.std[c] = (*stdev)[c];
    }
    py::gil_scoped_release nogil;
    const ImageSource data = ImageSource::Open(data_name, so);
    if (!data.is_npy() && image_size != 0) {
      ADALOG_CHECK(image_size == m.embed.image_h && image_size == m.embed.image_w, "image_size ",
                   image_size, " does not match the model's input ", m.embed.image_h, "x",
                   m.embed.image_w);
    }
    n = limit > 0 ? std::min<int64_t>(limit, data.size()) : data.size();
    if (data.is_npy()) ADALOG_CHECK(n >= 1, data_name, ": no images");
    Session session = make_session(n);
    logits.resize(static_cast<size_t>(n) * classes);
    labels.resize(static_cast<size_t>(n));
    RunImages(session, data, n, logits.data(), labels.data());
    executor = session.executor_kind();
  } else {
    const Images im = AsImages(data_obj, "data");
    ADALOG_CHECK(!IsPath(labels_obj), "evaluate: array data takes its labels as an array too");
    const std::vector<int64_t> all_labels = AsLabels(labels_obj, im.shape[0], classes);
    n = limit > 0 ? std::min<int64_t>(limit, im.shape[0]) : im.shape[0];
    ADALOG_CHECK(n >= 1, "data: no images (shape ", ShapeString(im.shape), ")");
    labels.assign(all_labels.begin(), all_labels.begin() + n);
    py::gil_scoped_release nogil;
    Session session = make_session(n);
    logits.resize(static_cast<size_t>(n) * classes);
    std::vector<int64_t> shape = im.shape;
    shape[0] = n;
    RunInBatches(session, im.data, shape, logits.data());
    executor = session.executor_kind();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t top1 = CountTopKCorrect(logits.data(), n, classes, labels.data(), 1);
  const int64_t top5 =
      CountTopKCorrect(logits.data(), n, classes, labels.data(), std::min(5, classes));
  py::dict d;
  d["model"] = model_path;
  d["data"] = data_name;
  d["executor"] = executor;
  d["images"] = n;
  d["top1"] = static_cast<double>(top1) / n;
  d["top5"] = static_cast<double>(top5) / n;
  d["top1_correct"] = top1;
  d["top5_correct"] = top5;
  d["seconds"] = seconds;
  if (!ref_path.empty()) {
    const NpyFloatArray ref = ReadReferenceLogits(ref_path, n, classes);
    const LogitsFidelity fid = CompareLogits(logits.data(), ref.data.data(), n, classes);
    d["ref_cosine"] = fid.mean_cosine;
    d["ref_cosine_min"] = fid.min_cosine;
    d["ref_top1_agreement"] = fid.top1_agreement;
  }
  return d;
}

}  // namespace
}  // namespace adalog::python

PYBIND11_MODULE(adalog, mod) {
  using namespace adalog;
  using namespace adalog::python;
  mod.doc() =
      "adalog: post-training quantization and integer CPU runtime for Vision Transformers "
      "(docs/python.md)";
  py::register_exception<Error>(mod, "Error", PyExc_RuntimeError);
  mod.attr("_session_run_serialized") = !kSessionRunIsThreadSafe;

  py::class_<PySession>(
      mod, "Session",
      "A loaded model (ONNX: FP32; adalog quantized file: integer or simulated executor) "
      "ready to run batches of float32 [N,C,H,W] images.")
      .def(py::init<const py::object&, int, int, bool>(), py::arg("path"), py::kw_only(),
           py::arg("threads") = 0, py::arg("max_batch") = 8, py::arg("simulate") = false,
           "threads: worker threads per run() call (0: OpenMP's default; the integer executor "
           "runs them on adalog's own pool, the FP32 and simulated executors on OpenMP). "
           "max_batch: images per engine run (1..1024); run() "
           "takes any N "
           "and runs it in batches of max_batch. simulate: quantized files only, the fake-quant "
           "reference "
           "executor instead of the integer one.")
      .def("run", &PySession::Run, py::arg("x"),
           "Logits float32 [N, num_classes] of x, float32 [N,C,H,W]. A C-contiguous float32 array "
           "is read "
           "in place; other float32 layouts are copied; other dtypes raise adalog.Error. Releases "
           "the GIL.")
      .def_property_readonly("num_classes",
                             [](const PySession& s) { return s.session().num_classes(); })
      .def_property_readonly("max_batch",
                             [](const PySession& s) { return s.session().max_batch(); })
      .def_property_readonly("input_shape",
                             [](const PySession& s) {
                               const auto sh = s.session().input_shape(1);
                               return py::make_tuple(sh[1], sh[2], sh[3]);
                             })
      .def_property_readonly("executor",
                             [](const PySession& s) { return s.session().executor_kind(); })
      .def_property_readonly("format",
                             [](const PySession& s) {
                               return s.model().format == ModelFormat::kOnnx ? "onnx" : "quantized";
                             })
      .def_property_readonly("path", [](const PySession& s) { return s.model().path; })
      .def("__repr__", [](const PySession& s) {
        return "adalog.Session('" + s.model().path + "', executor=" + s.session().executor_kind() +
               ", max_batch=" + std::to_string(s.session().max_batch()) + ")";
      });

  const search::CalibOptions defaults;
  mod.def("quantize", &Quantize, py::arg("onnx_path"), py::arg("calib"), py::arg("bits") = "W4A4",
          py::kw_only(), py::arg("output") = py::none(), py::arg("wbits") = 0, py::arg("abits") = 0,
          py::arg("softmax") = SoftmaxQuantizerName(defaults.recipe.softmax),
          py::arg("gelu") = GeluQuantizerName(defaults.recipe.gelu),
          py::arg("calib_size") = defaults.num_images, py::arg("seed") = defaults.seed,
          py::arg("fpcs") = defaults.recipe.fpcs, py::arg("fpcs_mode") = py::none(),
          py::arg("reparam") = defaults.recipe.ln_reparam, py::arg("threads") = 0,
          py::arg("progress") = py::none(),
          "Calibrates an FP32 ONNX ViT and writes the quantized model file `output` (as `adalog "
          "quantize`). "
          "calib: a numpy float32 [N,C,H,W] array, an .npy path or an image folder. progress(done, "
          "total, "
          "label) is called after each op. Ctrl-C raises KeyboardInterrupt and writes nothing. "
          "Returns a dict "
          "summary.");
  mod.def("inspect", &Inspect, py::arg("path"), "What `adalog inspect` shows, as a dict.");
  mod.def("evaluate", &Evaluate, py::arg("model"), py::arg("data"), py::arg("labels") = py::none(),
          py::kw_only(), py::arg("threads") = 0, py::arg("batch") = 8, py::arg("limit") = 0,
          py::arg("simulate") = false, py::arg("reference_logits") = py::none(),
          py::arg("image_size") = 0, py::arg("resize") = 0, py::arg("mean") = py::none(),
          py::arg("std") = py::none(),
          "Top-1/top-5 of a model on data (.npy + labels .npy, an image folder, or arrays): the "
          "fields of "
          "`adalog eval --json`.");
  mod.def(
      "_input_address",
      [](const py::handle& x) {
        const Images im = AsImages(x, "input");
        return py::make_tuple(reinterpret_cast<uintptr_t>(im.data), im.copied);
      },
      py::arg("x"),
      "Test hook: (address of the buffer Session.run hands to the engine for x, whether it is a "
      "copy); the "
      "same conversion run() uses.");
  mod.def("version", &RuntimeVersionString, "adalog's version and the CPU features it uses.");
}
