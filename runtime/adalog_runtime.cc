// The public runtime API: model loading by format, sessions over the FP32, integer or simulated executor,
// top-k scoring.
#include "runtime/adalog_runtime.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

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

namespace {

// Runs f; a failure that is not already an adalog::Error (oneDNN's dnnl::error, std::bad_alloc:
// both mean resources ran out) is rethrown as one, so the public API throws one type.
template <typename F>
void AsError(const char* what, const F& f) {
  try {
    f();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    Fail(what, ": ", e.what());
  }
}

// One executor of the session with its own workspace: the constructor's (borrowed) or a fork of it.
struct Worker {
  ExecutorFp32* fp32 = nullptr;
  ExecutorSim* sim = nullptr;
  ExecutorInt* integer = nullptr;
  std::unique_ptr<ExecutorFp32> own_fp32;
  std::unique_ptr<ExecutorSim> own_sim;
  std::unique_ptr<ExecutorInt> own_int;

  void Run(const float* images, int batch, float* logits) {
    if (sim) {
      sim->Run(images, batch, logits);
    } else if (integer) {
      integer->Run(images, batch, logits);
    } else {
      fp32->Run(images, batch, logits);
    }
  }
};

}  // namespace

struct Session::Impl {
  std::shared_ptr<const LoadedModel> model;
  // The executor prepared by the constructor (one of the three is set): the first workspace of
  // the pool, and the one other workspaces are forked from (sharing its weights).
  std::unique_ptr<ExecutorFp32> exec;  // kOnnx
  std::unique_ptr<ExecutorSim> sim;    // kQuantized, simulate = true
  std::unique_ptr<ExecutorInt> integer;  // kQuantized, simulate = false

  // Workers by ownership (`all`) and the idle ones (`idle`, a stack: the most recently used
  // first, its workspace likeliest in cache). `mu` guards both; no executor runs under it.
  mutable std::mutex mu;
  std::vector<std::unique_ptr<Worker>> all;
  std::vector<Worker*> idle;

  std::unique_ptr<Worker> NewWorker() const {
    auto w = std::make_unique<Worker>();
    if (sim) {
      w->own_sim = sim->Fork();
      w->sim = w->own_sim.get();
    } else if (integer) {
      w->own_int = integer->Fork();
      w->integer = w->own_int.get();
    } else {
      w->own_fp32 = exec->Fork();
      w->fp32 = w->own_fp32.get();
    }
    return w;
  }

  Worker* Acquire() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!idle.empty()) {
        Worker* w = idle.back();
        idle.pop_back();
        return w;
      }
    }
    // Every workspace is busy: fork one more outside the lock (forking reads only the prepared
    // state, so the running calls are not disturbed).
    std::unique_ptr<Worker> w;
    AsError("session: cannot allocate a workspace for a concurrent call", [&] { w = NewWorker(); });
    Worker* raw = w.get();
    std::lock_guard<std::mutex> lock(mu);
    all.push_back(std::move(w));
    return raw;
  }

  void Release(Worker* w) {
    std::lock_guard<std::mutex> lock(mu);
    idle.push_back(w);
  }
};

Session::Session(std::shared_ptr<const LoadedModel> model, const SessionOptions& options)
    : impl_(std::make_unique<Impl>()) {
  impl_->model = std::move(model);
  const LoadedModel* model_ = impl_->model.get();
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
    AsError("session: preparing the executor failed", [&] {
      if (simulate) {
        impl_->sim =
            std::make_unique<ExecutorSim>(QuantizedModel{model_->model, model_->plan}, eo);
      } else {
        impl_->integer = std::make_unique<ExecutorInt>(model_->model, model_->plan, eo);
      }
    });
  } else {
    AsError("session: preparing the executor failed",
            [&] { impl_->exec = std::make_unique<ExecutorFp32>(model_->model, eo); });
  }
  auto first = std::make_unique<Worker>();
  first->fp32 = impl_->exec.get();
  first->sim = impl_->sim.get();
  first->integer = impl_->integer.get();
  impl_->idle.push_back(first.get());
  impl_->all.push_back(std::move(first));
}

Session::~Session() = default;

void Session::Reserve(int concurrent_calls) {
  ADALOG_CHECK(concurrent_calls >= 1 && concurrent_calls <= 1024, "session: reserve ",
               concurrent_calls, " out of range 1..1024");
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      if (static_cast<int>(impl_->all.size()) >= concurrent_calls) return;
    }
    std::unique_ptr<Worker> w;
    AsError("session: cannot allocate a workspace", [&] { w = impl_->NewWorker(); });
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->idle.push_back(w.get());
    impl_->all.push_back(std::move(w));
  }
}

int Session::num_workspaces() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return static_cast<int>(impl_->all.size());
}

size_t Session::workspace_bytes() const {
  const Impl& i = *impl_;
  return i.sim ? i.sim->workspace_bytes()
               : (i.integer ? i.integer->workspace_bytes() : i.exec->workspace_bytes());
}

const LoadedModel& Session::model() const { return *impl_->model; }
bool Session::simulated() const { return impl_->sim != nullptr; }
const char* Session::executor_kind() const {
  return impl_->sim ? "sim" : (impl_->integer ? "int" : "fp32");
}

std::vector<int64_t> Session::input_shape(int batch) const {
  const PatchEmbedParams& e = impl_->model->model.embed;
  return {batch, e.in_channels, e.image_h, e.image_w};
}

int Session::num_classes() const { return impl_->model->model.num_classes(); }
int Session::max_batch() const {
  const Impl& i = *impl_;
  return i.sim ? i.sim->max_batch() : (i.integer ? i.integer->max_batch() : i.exec->max_batch());
}
std::string Session::DescribeKernels() const {
  const Impl& i = *impl_;
  return i.sim ? i.sim->DescribeKernels()
               : (i.integer ? i.integer->DescribeKernels() : i.exec->DescribeKernels());
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
  Impl* impl = impl_.get();
  Worker* w = impl->Acquire();
  struct Return {  // back to the pool however Run leaves
    Impl* impl;
    Worker* w;
    ~Return() { impl->Release(w); }
  } give_back{impl, w};
  // The FP32 executor builds its oneDNN primitives at the first run of each batch size.
  AsError("session: run failed", [&] { w->Run(images, static_cast<int>(shape[0]), logits); });
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
