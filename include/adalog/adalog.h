// The installed public C++ API of adalog: load a model (ONNX ViT or quantized .adalog file), open a
// Session, run batches of images to logits, from one thread or many. Nothing internal is exposed:
// LoadedModel is opaque here and Session keeps its executors behind a pointer to implementation.
//
// Errors: every function reports failure by throwing adalog::Error (<adalog/error.h>, derived
// from std::runtime_error) with a message naming the culprit; nothing returns a status. Chosen
// because the library's failures are all of one kind (bad input or resources at load / session /
// input-validation time) and the project's own CLI already treats them so; a caller that wants a
// status catches adalog::Error at its boundary (failures inside oneDNN or allocation failures are
// rethrown as adalog::Error too). Session::Run throws only for invalid inputs (shape, batch,
// NaN/Inf) or when resources run out (growing its workspace pool; the FP32 executor's first run
// of a new batch size, which builds its oneDNN primitives).
//
// Build: find_package(adalog REQUIRED); target_link_libraries(app adalog::adalog). See
// docs/deploy.md for the threading model, memory per session and per concurrent call, and ISAs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "adalog/error.h"

namespace adalog {

// A loaded model (opaque outside the library): ONNX models in FP32, quantized files with their
// plan. Immutable once loaded; share it between sessions and threads freely.
struct LoadedModel;

// Detects the format from the file's first bytes (the quantized file's magic "ADALOGQ", else
// ONNX), loads and validates it. Throws adalog::Error.
std::shared_ptr<const LoadedModel> LoadModel(const std::string& path);

struct SessionOptions {
  int max_batch = 1;    // 1..1024
  int num_threads = 0;  // threads per Run call; 0: omp_get_max_threads() (OMP_NUM_THREADS, or
                        // all cores)
  // Quantized models only (ignored for ONNX models, which always run in FP32).
  //   true:  the simulated (fake-quant) executor, the accuracy reference.
  //   false: the integer executor. For a plan it cannot run exactly (log-sqrt2, twin uniform,
  //          FP32 inputs, ...) the Session falls back to the simulated executor and says so once
  //          on stderr; executor_kind() tells which one runs. On a CPU without AVX2 (scalar
  //          integer GEMMs only) the simulated executor runs too, with a note on stderr, unless
  //          the environment sets ADALOG_EXECUTOR=int.
  bool simulate = false;
};

// Threading contract.
//   * Run may be called from any number of threads at once on one Session. Each call takes a
//     workspace of its own from the session's pool (activations, codes, per-thread scratch, oneDNN
//     scratchpads); the loaded model and the prepared (packed) weights are shared read-only. The
//     pool starts with one workspace and grows by one the first time a call finds every workspace
//     busy (that call allocates, so it may throw adalog::Error on out-of-memory); Reserve(n)
//     allocates up front. Workspaces are kept until the session is destroyed.
//   * Outputs do not depend on concurrency: a batch gives the same bytes whether it runs alone or
//     beside other calls, and whatever the thread count.
//   * Each call runs its parallel regions on a team of options.num_threads threads that belongs
//     to the calling thread (std::threads each get their own team): the integer executor on the
//     runtime's own thread pool, the FP32 and simulated executors on OpenMP (oneDNN's team). K
//     concurrent calls therefore use up to K * num_threads threads: under concurrency set
//     num_threads = 1 (or cores / K) to avoid oversubscription. A call made from inside an OpenMP
//     parallel region runs its regions serially, with the same results.
//   * Sessions are independent: many sessions may share one LoadedModel (each prepares its own
//     weights); a session must not be destroyed while a call on it runs. The const accessors are
//     safe to call concurrently with Run.
class Session {
 public:
  // Prepares the executor (packs weights, allocates the first workspace). Throws adalog::Error.
  Session(std::shared_ptr<const LoadedModel> model, const SessionOptions& options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // images: float32, shape [B][C][H][W] with C/H/W equal to the model's input and 1 <= B <=
  // max_batch; must be finite. Returns logits [B][num_classes] row-major.
  std::vector<float> Run(const float* images, const std::vector<int64_t>& shape);
  // Same, writing into logits (B * num_classes floats).
  void Run(const float* images, const std::vector<int64_t>& shape, float* logits);

  const LoadedModel& model() const;
  std::vector<int64_t> input_shape(int batch) const;  // {batch, C, H, W}
  int num_classes() const;
  int max_batch() const;
  // True when the session runs the simulated (fake-quant) executor.
  bool simulated() const;
  // "fp32" (ONNX models), "sim" (simulated) or "int" (integer executor).
  const char* executor_kind() const;
  // Kernel choices (oneDNN implementations, float-island ISA) for `adalog inspect`/verbose.
  std::string DescribeKernels() const;

  // Makes sure at least `concurrent_calls` workspaces exist (1..1024), so that many calls can run
  // at once without allocating. Throws adalog::Error.
  void Reserve(int concurrent_calls);
  // Workspaces in the pool (the most calls that have run at once, or the Reserve'd count).
  int num_workspaces() const;
  // Bytes of one workspace's activation arena: what each additional concurrent call costs beyond
  // the shared model and weights, less its per-thread scratch and oneDNN scratchpads (docs/deploy.md
  // gives measured totals).
  size_t workspace_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "adalog <version>" + CPU features and the selected ISA level.
std::string RuntimeVersionString();

}  // namespace adalog
