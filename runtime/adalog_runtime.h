// The small public API the CLI uses: load a model, open a session, run batches, score them.
// Everything thrown is adalog::Error with a message for the user.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/data/image_source.h"
#include "runtime/metrics.h"  // top-k scoring (kept visible to the API's users)
#include "runtime/onnx_importer.h"
#include "runtime/quant_plan.h"
#include "runtime/vit_model.h"

namespace adalog {

enum class ModelFormat {
  kOnnx,       // an ONNX ViT, imported by ImportOnnxVit and run in FP32
  kQuantized,  // the adalog quantized model file (magic kQuantizedModelMagic, runtime/model_file.h)
};

// First bytes of a quantized model file (docs/model_format.md).
inline constexpr char kQuantizedModelMagic[] = "ADALOGQ";

struct LoadedModel {
  std::string path;
  ModelFormat format = ModelFormat::kOnnx;
  VitModel model;             // kOnnx: FP32 parameters. kQuantized: the calibrated (rewritten)
                              // model, weights holding their dequantized values
  ImportReport onnx_report;   // filled for kOnnx
  QuantPlan plan;             // filled for kQuantized: every quantizer of the model
  uint32_t file_version = 0;  // kQuantized: the format version read from the file's header
};

// Detects the format from the file's first bytes (kQuantizedModelMagic: the quantized model file,
// validated by LoadQuantizedModel; anything else: ONNX) and loads it.
std::shared_ptr<const LoadedModel> LoadModel(const std::string& path);

struct SessionOptions {
  int max_batch = 1;    // 1..1024
  int num_threads = 0;  // 0: all OpenMP threads
  // Quantized models only (ignored for ONNX models, which always run in FP32).
  //   true:  the simulated (fake-quant) executor, the accuracy reference (executor_sim.h).
  //   false: the integer executor (executor_int.h). For a plan it cannot run exactly (log-sqrt2,
  //          twin uniform, FP32 inputs, ...) the Session falls back to the simulated executor
  //          and says so once on stderr ("adalog: integer path does not support <quantizer> for
  //          <op>; running the simulated executor"); executor_kind() tells which one runs.
  //          On a CPU without AVX-512 VNNI (integer GEMMs would be scalar, ~36x slower than the
  //          simulated executor) the simulated executor runs too, with a note on stderr, unless
  //          the environment sets ADALOG_EXECUTOR=int.
  bool simulate = false;
};

class ExecutorFp32;
class ExecutorSim;
class ExecutorInt;

// Threading contract.
//   * Run may be called from any number of threads at once on one Session. Each call takes a
//     workspace of its own from the session's pool (activations, codes, per-thread scratch, oneDNN
//     scratchpads); the loaded model and the prepared (packed) weights are shared read-only. The
//     pool starts with one workspace and grows by one the first time a call finds every workspace
//     busy (that call allocates, so it may throw adalog::Error on out-of-memory); Reserve(n)
//     allocates up front. Workspaces are kept until the session is destroyed.
//   * Outputs do not depend on concurrency: a batch gives the same bytes whether it runs alone or
//     beside other calls, and whatever the thread count.
//   * Each call runs its OpenMP parallel regions on a team of options.num_threads threads opened
//     by the calling thread (std::threads each get their own team). K concurrent calls therefore
//     use up to K * num_threads threads: under concurrency set num_threads = 1 (or cores / K) to
//     avoid oversubscription. A call made from inside an OpenMP parallel region runs its regions
//     serially (nested parallelism is off), with the same results.
//   * Sessions are independent: many sessions may share one LoadedModel (each prepares its own
//     weights); a session must not be destroyed while a call on it runs. The accessors are const
//     and safe to call concurrently with Run.
class Session {
 public:
  Session(std::shared_ptr<const LoadedModel> model, const SessionOptions& options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // images: float32, shape [B][C][H][W] with C/H/W equal to the model's input and 1 <= B <=
  // max_batch; must be finite. Returns logits [B][num_classes] row-major.
  std::vector<float> Run(const float* images, const std::vector<int64_t>& shape);
  // Same, writing into logits (B * num_classes floats).
  void Run(const float* images, const std::vector<int64_t>& shape, float* logits);

  const LoadedModel& model() const { return *model_; }
  std::vector<int64_t> input_shape(int batch) const;  // {batch, C, H, W}
  int num_classes() const;
  int max_batch() const;
  // True when the session runs the simulated (fake-quant) executor.
  bool simulated() const { return sim_ != nullptr; }
  // "fp32" (ONNX models), "sim" (simulated) or "int" (integer executor).
  const char* executor_kind() const { return sim_ ? "sim" : (int_ ? "int" : "fp32"); }
  // Kernel choices (oneDNN implementations, float-island ISA) for `adalog inspect`/verbose.
  std::string DescribeKernels() const;

  // Makes sure at least `concurrent_calls` workspaces exist (1..1024), so that many calls can run
  // at once without allocating. May throw adalog::Error.
  void Reserve(int concurrent_calls);
  // Workspaces in the pool (the most calls that have run at once, or the Reserve'd count).
  int num_workspaces() const;
  // Bytes of one workspace: the memory each additional concurrent call costs, beyond the shared
  // model and weights (the executor's activation arena; per-thread scratch and oneDNN scratchpads,
  // measured in docs/deploy.md, come on top).
  size_t workspace_bytes() const;

 private:
  struct Worker;  // one executor with its own workspace
  struct Pool;
  Worker* Acquire();
  void Release(Worker* worker);
  std::unique_ptr<Worker> NewWorker() const;

  std::shared_ptr<const LoadedModel> model_;
  // The executor prepared by the constructor (one of the three is set): the first workspace of
  // the pool, and the one other workspaces are forked from (sharing its weights).
  std::unique_ptr<ExecutorFp32> exec_;  // kOnnx
  std::unique_ptr<ExecutorSim> sim_;    // kQuantized, simulate = true
  std::unique_ptr<ExecutorInt> int_;    // kQuantized, simulate = false
  std::unique_ptr<Pool> pool_;
};

// Runs images [0, n) of `source` through `session` in batches of session.max_batch(): logits gets
// n * num_classes() floats; labels, when non-null (needs source.has_labels()), the n labels. An
// .npy runs straight from its array; a folder is decoded one batch at a time. The batches'
// shape is {b, source.image_shape()}, which Session::Run checks against the model.
void RunImages(Session& session, const ImageSource& source, int64_t n, float* logits,
               int64_t* labels = nullptr);

// "adalog <version>" + CPU features and the selected ISA level (for `adalog --version`).
std::string RuntimeVersionString();

}  // namespace adalog
