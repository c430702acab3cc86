// The public runtime API: model loading by format, sessions over the FP32, integer or simulated executor,
// top-k scoring.
#include "runtime/adalog_runtime.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "quant/error.h"
#include "runtime/cpu_features.h"
#include "runtime/data/npy.h"
#include "runtime/executor_fp32.h"
#include "runtime/executor_int.h"
#include "runtime/executor_sim.h"
#include "runtime/kernels/int/int_kernels.h"
#include "runtime/model_file.h"

namespace adalog {

std::shared_ptr<const LoadedModel> LoadModel(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ADALOG_CHECK(in.good(), path, ": cannot open model file");
  char head[sizeof(kQuantizedModelMagic) - 1] = {};
  in.read(head, sizeof(head));
  auto loaded = std::make_shared<LoadedModel>();
  loaded->path = path;
  if (in.gcount() == static_cast<std::streamsize>(sizeof(head)) &&
      std::memcmp(head, kQuantizedModelMagic, sizeof(head)) == 0) {
    in.close();
    loaded->format = ModelFormat::kQuantized;
    QuantizedModel qm = LoadQuantizedModel(path, &loaded->file_version);
    loaded->model = std::move(qm.model);
    loaded->plan = std::move(qm.plan);
    ValidateVitModel(loaded->model);
    return loaded;
  }
  loaded->format = ModelFormat::kOnnx;
  loaded->model = ImportOnnxVit(path, &loaded->onnx_report);
  ValidateVitModel(loaded->model);
  return loaded;
}

Session::Session(std::shared_ptr<const LoadedModel> model, const SessionOptions& options)
    : model_(std::move(model)) {
  ADALOG_CHECK(model_ != nullptr, "session: no model");
  ADALOG_CHECK(options.max_batch >= 1 && options.max_batch <= 1024, "session: max batch ",
               options.max_batch, " out of range 1..1024");
  ADALOG_CHECK(options.num_threads >= 0 && options.num_threads <= 1024, "session: threads ",
               options.num_threads, " out of range");
  ExecutorOptions eo;
  eo.max_batch = options.max_batch;
  eo.num_threads = options.num_threads;
  if (model_->format == ModelFormat::kQuantized) {
    bool simulate = options.simulate;
    if (!simulate && intk::SelectQgemmImpl(ActiveIsaLevel()) == intk::QgemmImpl::kPackedScalar) {
      // Below the AVX2 level (no AVX2 kernels: intk::SelectQgemmImpl ends at the scalar packed
      // GEMM) the integer GEMMs are scalar: measured (before the AVX2 kernels existed, with
      // ADALOG_ISA=avx2, DeiT-S W4A4, batch 1) 6.3 s per image against 0.18 s for the simulated
      // executor. AVX2 and AVX-512 CPUs run the integer executor. Unless the user insists
      // (ADALOG_EXECUTOR=int), run the simulated one and say why.
      const char* force = std::getenv("ADALOG_EXECUTOR");
      if (force == nullptr || std::string(force) != "int") {
        std::fprintf(stderr,
                     "adalog: this CPU (ISA level %s) has no AVX2, so the integer path "
                     "would run scalar GEMMs, far slower than the simulated executor; running the "
                     "simulated executor (ADALOG_EXECUTOR=int forces the integer path)\n",
                     IsaLevelName(ActiveIsaLevel()));
        simulate = true;
      }
    }
    if (!simulate) {
      // The integer path says up front what it cannot run; fall back to the simulated executor
      // with that reason (ExecutorInt::WhyUnsupported).
      const std::string why = ExecutorInt::WhyUnsupported(model_->plan, model_->model);
      if (!why.empty()) {
        std::fprintf(stderr, "adalog: %s; running the simulated executor\n", why.c_str());
        simulate = true;
      }
    }
    if (simulate) {
      sim_ = std::make_unique<ExecutorSim>(QuantizedModel{model_->model, model_->plan}, eo);
    } else {
      int_ = std::make_unique<ExecutorInt>(model_->model, model_->plan, eo);
    }
  } else {
    exec_ = std::make_unique<ExecutorFp32>(model_->model, eo);
  }
}

Session::~Session() = default;

std::vector<int64_t> Session::input_shape(int batch) const {
  const PatchEmbedParams& e = model_->model.embed;
  return {batch, e.in_channels, e.image_h, e.image_w};
}

int Session::num_classes() const { return model_->model.num_classes(); }
int Session::max_batch() const {
  return sim_ ? sim_->max_batch() : (int_ ? int_->max_batch() : exec_->max_batch());
}
std::string Session::DescribeKernels() const {
  return sim_ ? sim_->DescribeKernels() : (int_ ? int_->DescribeKernels() : exec_->DescribeKernels());
}

std::vector<float> Session::Run(const float* images, const std::vector<int64_t>& shape) {
  ADALOG_CHECK(shape.size() == 4, "input: expected shape [B,C,H,W], got rank ", shape.size());
  std::vector<float> logits(static_cast<size_t>(std::max<int64_t>(shape[0], 0)) * num_classes());
  Run(images, shape, logits.data());
  return logits;
}

void Session::Run(const float* images, const std::vector<int64_t>& shape, float* logits) {
  auto shape_str = [](const std::vector<int64_t>& s) {
    std::ostringstream os;
    os << "[";
    for (size_t i = 0; i < s.size(); ++i) os << (i ? "," : "") << s[i];
    os << "]";
    return os.str();
  };
  ADALOG_CHECK(shape.size() == 4, "input: expected shape [B,C,H,W], got ", shape_str(shape));
  const std::vector<int64_t> want = input_shape(static_cast<int>(shape[0]));
  ADALOG_CHECK(shape[1] == want[1] && shape[2] == want[2] && shape[3] == want[3], "input: shape ",
               shape_str(shape), " does not match the model's [B,", want[1], ",", want[2], ",",
               want[3], "]");
  ADALOG_CHECK(shape[0] >= 1 && shape[0] <= max_batch(), "input: batch ", shape[0],
               " outside 1..", max_batch(), " (the session's max batch)");
  ADALOG_CHECK(images != nullptr && logits != nullptr, "input: null buffer");
  const int64_t n = shape[0] * shape[1] * shape[2] * shape[3];
  CheckFinite(images, n, "input", shape);
  if (sim_) {
    sim_->Run(images, static_cast<int>(shape[0]), logits);
  } else if (int_) {
    int_->Run(images, static_cast<int>(shape[0]), logits);
  } else {
    exec_->Run(images, static_cast<int>(shape[0]), logits);
  }
}

void RunImages(Session& session, const ImageSource& source, int64_t n, float* logits, int64_t* labels) {
  ADALOG_CHECK(n >= 0 && n <= source.size(), source.path(), ": ", n, " images asked, ", source.size(),
               " available");
  const std::vector<int64_t> image = source.image_shape();
  const int64_t per = source.image_floats();
  const int classes = session.num_classes();
  std::vector<float> buffer;
  if (!source.is_npy()) buffer.resize(static_cast<size_t>(session.max_batch() * per));
  for (int64_t i = 0; i < n; i += session.max_batch()) {
    const int64_t b = std::min<int64_t>(session.max_batch(), n - i);
    const float* images = buffer.data();
    if (source.is_npy()) {
      images = source.npy().data.data() + i * per;
      if (labels != nullptr) source.LoadLabels(i, b, labels + i);
    } else {
      source.Load(i, b, buffer.data(), labels != nullptr ? labels + i : nullptr);
    }
    session.Run(images, {b, image[0], image[1], image[2]}, logits + i * classes);
  }
}

std::string RuntimeVersionString() {
  std::ostringstream os;
  os << "adalog 0.1.0\n" << DescribeCpu();
  return os.str();
}

}  // namespace adalog
