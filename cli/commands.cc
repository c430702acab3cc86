// The bodies of the `adalog` subcommands. Each first turns ParsedArgs into a typed options struct,
// checking the combinations the parser cannot (UsageError, exit 2), then calls the runtime's public
// API (runtime/adalog_runtime.h) and data layer (runtime/data/image_source.h, runtime/metrics.h,
// runtime/plan_text.h, search/calibration_set.h), whose failures are adalog::Error (exit 1), and
// prints the results.
//
// Quantized model files run on the integer executor by default; --simulate selects the simulated
// (fake-quant) one (SessionOptions::simulate).
#include <malloc.h>
#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/output_check.h"
#include "cli/inspect_json.h"
#include "cli/json_out.h"
#include "cli/preprocess_options.h"
#include "runtime/adalog_runtime.h"
#include "runtime/data/image_folder.h"
#include "runtime/data/image_source.h"
#include "runtime/data/npy.h"
#include "runtime/metrics.h"
#include "runtime/model_file.h"
#include "runtime/plan_text.h"
#include "runtime/swin_model.h"
#include "search/calibrate.h"
#include "search/calibration_set.h"
#include "search/recon/optimize.h"

namespace adalog::cli {
namespace {

struct InspectOptions {
  std::string model;
  bool json = false;
};

struct RunOptions {
  std::string model;
  std::string input;   // float32 NCHW .npy, or an image folder
  std::string output;  // float32 [N, classes] .npy
  int threads = 0;  // 0: all cores
  int batch = 8;
  bool simulate = false;
  bool json = false;
  PreprocessRequest pre;  // image folders
};

struct EvalOptions {
  std::string model;
  std::string data;    // .npy or image folder
  std::string labels;  // .npy; required with .npy data, forbidden with a folder
  bool data_is_npy = false;
  bool json = false;
  int threads = 0;  // 0: all cores
  int batch = 8;
  int64_t limit = 0;  // 0: all
  PreprocessRequest pre;  // image folders; nothing given: the model's own (VitModel::preprocess)
  bool simulate = false;
  std::string reference_logits;  // optional [N, classes] float32 .npy
};

struct BenchOptions {
  std::string model;
  std::string data;  // optional .npy or image folder; empty: seeded random images
  PreprocessRequest pre;
  int batch = 1;
  int threads = 1;
  bool json = false;
  int warmup = 3;
  int runs = 10;
  bool simulate = false;
};

struct QuantizeOptions {
  std::string model;
  std::string calib;
  std::string output;
  int weight_bits = 4;
  int act_bits = 4;
  // Defaults: search::RecipeOptions / CalibOptions, through the command spec.
  SoftmaxQuantizer softmax = SoftmaxQuantizer::kAdaLog;
  GeluQuantizer gelu = GeluQuantizer::kAdaLog;
  int calib_size = 32;
  uint32_t seed = search::kDefaultCalibrationSeed;
  bool fpcs = true;
  search::FpcsMode fpcs_mode = search::FpcsMode::kBest;
  bool reparam = true;
  bool reparam_select = false;  // --reparam-select: with or without, by the calibration logits
  int threads = 0;
  bool json = false;
  PreprocessRequest pre;  // folders: how to preprocess; .npy: how it was preprocessed (stored)
  // --optimize (block reconstruction after calibration).
  bool optimize = false;
  int optimize_iters = 20000;
  int optimize_size = 1024;
  bool optimize_size_given = false;
  int optimize_batch = 32;
  std::string optimize_data;  // "" = the --calib source
  int optimize_qdrop = 0;     // percent
  bool optimize_quantized_inputs = false;
};

// The LN reparameterization mode of the summary: "all" (the default, every LayerNorm), "select"
// (--reparam-select: with or without, whichever gives calibration logits closer to FP32), "off".
const char* ReparamModeName(const QuantizeOptions& o) {
  return !o.reparam ? "off" : o.reparam_select ? "select" : "all";
}

InspectOptions GetInspect(const ParsedArgs& a) { return {a.positional(0), a.Flag("json")}; }

RunOptions GetRun(const ParsedArgs& a) {
  RunOptions o;
  o.model = a.positional(0);
  o.input = a.String("input");
  o.output = a.String("output");
  o.threads = static_cast<int>(a.Int("threads", 0));
  o.batch = static_cast<int>(a.Int("batch", 8));
  o.simulate = a.Flag("simulate");
  o.json = a.Flag("json");
  o.pre = GetPreprocessRequest(a, "'adalog run'");
  if (IsNpyPath(o.input)) RefusePreprocessForNpy(o.pre, "'adalog run'", o.input);
  return o;
}

EvalOptions GetEval(const ParsedArgs& a) {
  EvalOptions o;
  o.model = a.positional(0);
  o.data = a.String("data");
  o.labels = a.String("labels");
  o.data_is_npy = IsNpyPath(o.data);
  o.json = a.Flag("json");
  o.threads = static_cast<int>(a.Int("threads", 0));
  o.batch = static_cast<int>(a.Int("batch", 8));
  o.limit = a.Int("limit", 0);
  o.simulate = a.Flag("simulate");
  o.reference_logits = a.String("reference-logits");
  const std::string cmd = "'adalog eval'";
  o.pre = GetPreprocessRequest(a, cmd);
  if (o.data_is_npy) {
    if (o.labels.empty()) throw UsageError(cmd + ": --data " + o.data + " is an .npy; it needs --labels Y.npy");
    RefusePreprocessForNpy(o.pre, cmd, o.data);
  } else if (!o.labels.empty()) {
    throw UsageError(cmd + ": --labels is for .npy data; an image folder's labels are its subfolders");
  }
  return o;
}

BenchOptions GetBench(const ParsedArgs& a) {
  BenchOptions o;
  o.model = a.positional(0);
  o.batch = static_cast<int>(a.Int("batch", 1));
  o.threads = static_cast<int>(a.Int("threads", 1));
  o.json = a.Flag("json");
  o.warmup = static_cast<int>(a.Int("warmup", 3));
  o.runs = static_cast<int>(a.Int("runs", 10));
  o.simulate = a.Flag("simulate");
  o.data = a.String("data");
  o.pre = GetPreprocessRequest(a, "'adalog bench'");
  if (o.data.empty()) {
    if (o.pre.sets_fields() || o.pre.image_size != 0 || o.pre.strict) {
      throw UsageError("'adalog bench': the preprocessing options and --strict apply to --data DIR; without --data "
                       "bench times seeded random images");
    }
  } else if (IsNpyPath(o.data)) {
    RefusePreprocessForNpy(o.pre, "'adalog bench'", o.data);
  }
  return o;
}

QuantizeOptions GetQuantize(const ParsedArgs& a) {
  QuantizeOptions o;
  const std::string cmd = "'adalog quantize'";
  o.model = a.positional(0);
  o.calib = a.String("calib");
  o.output = a.String("output");
  BitWidths bits = ParseBits(a.String("bits", "W4A4"), "option '--bits' of " + cmd);
  o.weight_bits = static_cast<int>(a.Int("wbits", bits.weight_bits));
  o.act_bits = static_cast<int>(a.Int("abits", bits.act_bits));
  const search::CalibOptions defaults;
  o.softmax = a.Has("softmax") ? ParseSoftmaxQuantizer(a.String("softmax")) : defaults.recipe.softmax;
  o.gelu = a.Has("gelu") ? ParseGeluQuantizer(a.String("gelu")) : defaults.recipe.gelu;
  o.calib_size = static_cast<int>(a.Int("calib-size", defaults.num_images));
  o.seed = static_cast<uint32_t>(a.Int("seed", defaults.seed));
  o.fpcs = !a.Flag("no-fpcs");
  o.fpcs_mode = a.Has("fpcs-mode") ? search::ParseFpcsMode(a.String("fpcs-mode")) : defaults.recipe.fpcs_mode;
  if (!o.fpcs && a.Has("fpcs-mode"))
    throw UsageError(cmd + ": --fpcs-mode chooses the FPCS variant; --no-fpcs turns FPCS off");
  o.reparam = !a.Flag("no-reparam");
  o.reparam_select = a.Flag("reparam-select");
  if (!o.reparam && o.reparam_select)
    throw UsageError(cmd + ": --reparam-select chooses whether to reparameterize; --no-reparam never does");
  o.threads = static_cast<int>(a.Int("threads", 0));
  o.json = a.Flag("json");
  o.pre = GetPreprocessRequest(a, cmd);  // also with an .npy: how it was preprocessed, stored
  const search::ReconOptions recon_defaults;
  o.optimize = a.Flag("optimize");
  o.optimize_iters = static_cast<int>(a.Int("optimize-iters", recon_defaults.iters));
  o.optimize_size_given = a.Has("optimize-size");
  o.optimize_size = static_cast<int>(a.Int("optimize-size", 1024));
  o.optimize_batch = static_cast<int>(a.Int("optimize-batch", recon_defaults.batch));
  o.optimize_data = a.String("optimize-data");
  o.optimize_qdrop = static_cast<int>(a.Int("optimize-qdrop", 0));
  o.optimize_quantized_inputs = a.String("optimize-inputs") == "quantized";
  if (!o.optimize) {
    for (const char* f : {"optimize-iters", "optimize-size", "optimize-batch", "optimize-data", "optimize-qdrop",
                          "optimize-inputs"}) {
      if (a.Has(f)) throw UsageError(cmd + ": --" + f + " needs --optimize");
    }
  }
  if (o.optimize && o.optimize_size_given && o.optimize_batch > o.optimize_size) {
    throw UsageError(cmd + ": --optimize-batch " + std::to_string(o.optimize_batch) + " is more than --optimize-size " +
                     std::to_string(o.optimize_size) + " (each iteration draws distinct images)");
  }
  return o;
}

}  // namespace

namespace {

const char* PoolingName(Pooling p) {
  switch (p) {
    case Pooling::kClsToken: return "cls token";
    case Pooling::kClsDistAvg: return "cls + distillation tokens (averaged heads)";
    case Pooling::kMeanPatches: return "mean of tokens";
  }
  return "?";
}

// Opens `path` (an .npy or an image folder) for `model`, folder images preprocessed as `r` and
// the model resolve (ResolvePreprocess); prints the resolution's note and the folder's skipped
// entries on stderr. `so` carries the command's other source options.
ImageSource OpenModelInput(const std::string& path, const VitModel& m, const std::string& model_path,
                           const PreprocessRequest& r, const std::string& cmd, ImageSourceOptions so) {
  if (!IsNpyPath(path)) {
    const ResolvedPreprocess rp = ResolvePreprocess(r, m, model_path, cmd, path, /*folder=*/true);
    if (!rp.note.empty()) std::fprintf(stderr, "%s\n", rp.note.c_str());
    so.preprocess = PreprocessOptionsFrom(rp.preprocess, m.embed.image_h);
    so.strict = r.strict;
  }
  ImageSource src = ImageSource::Open(path, so);
  const std::string skipped = src.skipped_summary();
  if (!skipped.empty()) std::fprintf(stderr, "adalog: %s (--strict makes this an error)\n", skipped.c_str());
  return src;
}

// ---- quantize ----

std::atomic<bool> g_interrupted{false};

extern "C" void OnSigint(int) {
  g_interrupted.store(true);
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once (no output exists yet)
}

// Installs the SIGINT flag handler for the scope of a quantize run.
class ScopedSigint {
 public:
  ScopedSigint() {
    g_interrupted.store(false);
    prev_ = std::signal(SIGINT, OnSigint);
  }
  ~ScopedSigint() { std::signal(SIGINT, prev_ == SIG_ERR ? SIG_DFL : prev_); }
  ScopedSigint(const ScopedSigint&) = delete;
  ScopedSigint& operator=(const ScopedSigint&) = delete;

 private:
  void (*prev_)(int) = SIG_DFL;
};

// --simulate chooses between a quantized model's two executors. An FP32 ONNX model has one, so
// honouring the flag is impossible and ignoring it would report FP32 numbers to a user who asked
// for the fake-quant reference: a usage error instead.
void CheckSimulateApplies(bool simulate, const LoadedModel& m, const std::string& command) {
  if (simulate && m.format == ModelFormat::kOnnx) {
    throw UsageError(command + ": --simulate runs a quantized model's simulated (fake-quant) executor, but " +
                     m.path + " is an FP32 ONNX model, which always runs in FP32; quantize it first (adalog " +
                     "quantize) or drop --simulate");
  }
}

std::string FormatSeconds(double s) {
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600) {
    std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%ld:%02ld", t / 60, t % 60);
  }
  return buf;
}

}  // namespace

int RunInspect(const ParsedArgs& args) {
  InspectOptions o = GetInspect(args);
  auto loaded = LoadModel(o.model);
  if (o.json) {
    PrintJsonLine(InspectJson(*loaded));
    return 0;
  }
  const VitModel& m = loaded->model;
  std::printf("model      %s\n", o.model.c_str());
  if (loaded->format == ModelFormat::kOnnx) {
    const ImportReport& r = loaded->onnx_report;
    std::printf("format     ONNX (ir %lld, opset %lld, producer %s), %d nodes, %d compute nodes after folding\n",
                static_cast<long long>(r.ir_version), static_cast<long long>(r.opset),
                r.producer.empty() ? "?" : r.producer.c_str(), r.nodes_total, r.nodes_after_folding);
    std::printf("input      '%s' [%s,%d,%d,%d] float32\n", r.input_name.c_str(),
                r.dynamic_batch ? "batch" : "static", m.embed.in_channels, m.embed.image_h,
                m.embed.image_w);
  } else {
    std::printf("format     adalog quantized model file (version %u)\n", loaded->file_version);
  }
  if (!m.name.empty() || !m.style.empty()) {
    std::printf("name       %s%s%s\n", m.name.c_str(), m.style.empty() ? "" : "  style: ", m.style.c_str());
  }
  const BlockParams* b0 = m.blocks.empty() ? nullptr : &m.blocks[0];
  if (m.is_swin()) {
    std::printf("structure  Swin: patch %d -> %dx%d grid, dim %d, %zu blocks in %zu stages, MLP %d, GELU %s\n",
                m.embed.patch, m.embed.grid_h(), m.embed.grid_w(), m.dim, m.blocks.size(),
                m.swin.stages.size(), b0 ? b0->fc1.out : 0,
                b0 && b0->gelu == GeluKind::kTanh ? "tanh" : "erf");
    std::istringstream stages(DescribeSwinStages(m));
    for (std::string line; std::getline(stages, line);) std::printf("           %s\n", line.c_str());
  } else {
    std::printf("structure  patch %d -> %dx%d grid, %d tokens (%d prefix), dim %d, %zu blocks, %d heads x %d, "
                "MLP %d, GELU %s\n",
                m.embed.patch, m.embed.grid_h(), m.embed.grid_w(), m.num_tokens(), m.num_prefix_tokens(), m.dim,
                m.blocks.size(), b0 ? b0->heads : 0, m.head_dim(), b0 ? b0->fc1.out : 0,
                b0 && b0->gelu == GeluKind::kTanh ? "tanh" : "erf");
  }
  std::printf("head       %s -> %d classes\n", PoolingName(m.pooling), m.num_classes());
  const double macs = static_cast<double>(CountMacsPerImage(m));
  std::printf("size       %.3f M parameters, %.3f %s per image\n", CountParameters(m) / 1e6,
              macs >= 1e8 ? macs / 1e9 : macs / 1e6, macs >= 1e8 ? "GMAC" : "MMAC");
  // A default standing in for an undeclared preprocessing is shown as such, never as a fact.
  const std::string pre = DescribePreprocess(m.preprocess, m.embed.image_h);
  if (m.preprocess.known) {
    std::printf("preprocess %s (%s)\n", pre.c_str(),
                loaded->format == ModelFormat::kOnnx ? "ONNX metadata" : "stored by quantize");
  } else {
    std::printf("preprocess unknown (default: %s)\n", pre.c_str());
  }
  if (loaded->format == ModelFormat::kOnnx) {
    for (const std::string& note : loaded->onnx_report.notes) std::printf("note       %s\n", note.c_str());
  } else {
    std::fputs(DescribePlan(loaded->plan, m).c_str(), stdout);
  }
  return 0;
}

int RunRun(const ParsedArgs& args) {
  RunOptions o = GetRun(args);
  // Cheap checks first: nothing runs when the output cannot be written or would replace an input.
  CheckOutputPath({"--output", o.output}, {{"MODEL", o.model}, {"--input", o.input}}, "'adalog run'");
  auto loaded = LoadModel(o.model);
  CheckSimulateApplies(o.simulate, *loaded, "'adalog run'");
  ImageSourceOptions src;
  src.allow_flat = true;  // logits need no labels
  const ImageSource x = IsNpyPath(o.input) || !std::filesystem::is_directory(o.input)
                            ? ImageSource::OpenNpy(o.input)  // whatever its name
                            : OpenModelInput(o.input, loaded->model, o.model, o.pre, "'adalog run'", src);
  x.CheckNotEmpty();
  const int64_t n = x.size();
  SessionOptions so;
  so.max_batch = static_cast<int>(std::min<int64_t>(o.batch, n));
  so.num_threads = o.threads;
  so.simulate = o.simulate;
  Session session(loaded, so);
  std::vector<float> logits(static_cast<size_t>(n) * session.num_classes());
  RunImages(session, x, n, logits.data());
  WriteNpyFloat32(o.output, logits.data(), {n, session.num_classes()});
  if (o.json) {
    PrintJsonLine(Json{{"model", o.model},
                       {"input", o.input},
                       {"output", o.output},
                       {"executor", session.executor_kind()},
                       {"images", n},
                       {"classes", session.num_classes()}});
  }
  std::fprintf(stderr, "adalog: wrote %s: logits [%lld,%d]\n", o.output.c_str(), static_cast<long long>(n),
               session.num_classes());
  return 0;
}

int RunEval(const ParsedArgs& args) {
  EvalOptions o = GetEval(args);
  auto loaded = LoadModel(o.model);
  CheckSimulateApplies(o.simulate, *loaded, "'adalog eval'");
  const VitModel& m = loaded->model;
  const int classes = m.num_classes();
  const auto t0 = std::chrono::steady_clock::now();
  ImageSourceOptions so;
  so.num_classes = classes;
  if (o.data_is_npy) so.labels = o.labels;
  const ImageSource data = OpenModelInput(o.data, m, o.model, o.pre, "'adalog eval'", so);
  const int64_t n = o.limit > 0 ? std::min<int64_t>(o.limit, data.size()) : data.size();
  if (data.is_npy()) ADALOG_CHECK(n >= 1, o.data, ": no images");
  SessionOptions sess;
  sess.max_batch = static_cast<int>(std::min<int64_t>(o.batch, n));
  sess.num_threads = o.threads;
  sess.simulate = o.simulate;
  Session session(loaded, sess);
  std::vector<float> logits(static_cast<size_t>(n) * classes);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  RunImages(session, data, n, logits.data(), labels.data());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t top1 = CountTopKCorrect(logits.data(), n, classes, labels.data(), 1);
  const int64_t top5 = CountTopKCorrect(logits.data(), n, classes, labels.data(), std::min(5, classes));
  LogitsFidelity fid;
  if (!o.reference_logits.empty()) {
    const NpyFloatArray ref = ReadReferenceLogits(o.reference_logits, n, classes);
    fid = CompareLogits(logits.data(), ref.data.data(), n, classes);
  }
  const char* executor = session.executor_kind();
  if (o.json) {
    Json j{{"model", o.model},
           {"data", o.data},
           {"executor", executor},
           {"images", n},
           {"top1", Rounded(static_cast<double>(top1) / n, 6)},
           {"top5", Rounded(static_cast<double>(top5) / n, 6)},
           {"top1_correct", top1},
           {"top5_correct", top5},
           {"seconds", Rounded(seconds, 3)}};
    if (!o.reference_logits.empty()) {
      j["ref_cosine"] = Rounded(fid.mean_cosine, 6);
      j["ref_cosine_min"] = Rounded(fid.min_cosine, 6);
      j["ref_top1_agreement"] = Rounded(fid.top1_agreement, 6);
    }
    PrintJsonLine(j);
  } else {
    std::printf("%s on %s: %lld images, top-1 %.2f%% (%lld), top-5 %.2f%% (%lld), %.1f s\n", o.model.c_str(),
                o.data.c_str(), static_cast<long long>(n), 100.0 * top1 / n, static_cast<long long>(top1),
                100.0 * top5 / n, static_cast<long long>(top5), seconds);
    if (!o.reference_logits.empty()) {
      std::printf("vs %s: mean logits cosine %.6f (min %.6f), top-1 agreement %.2f%%\n",
                  o.reference_logits.c_str(), fid.mean_cosine, fid.min_cosine, 100.0 * fid.top1_agreement);
    }
  }
  return 0;
}

int RunBench(const ParsedArgs& args) {
  BenchOptions o = GetBench(args);
  auto loaded = LoadModel(o.model);
  CheckSimulateApplies(o.simulate, *loaded, "'adalog bench'");
  SessionOptions so;
  so.max_batch = o.batch;
  so.num_threads = o.threads;
  so.simulate = o.simulate;
  Session session(loaded, so);
  const std::vector<int64_t> shape = session.input_shape(o.batch);
  std::vector<float> images;
  if (o.data.empty()) {
    images = SyntheticImages(shape, 0);
  } else {
    ImageSourceOptions src;
    src.allow_flat = true;
    const ImageSource data = OpenModelInput(o.data, loaded->model, o.model, o.pre, "'adalog bench'", src);
    data.CheckNotEmpty();
    const std::vector<int64_t> want{shape[1], shape[2], shape[3]};
    ADALOG_CHECK(data.image_shape() == want, o.data, ": images are ", ShapeString(data.image_shape()),
                 " but the model expects ", ShapeString(want));
    const int64_t per = data.image_floats();
    images.resize(static_cast<size_t>(o.batch * per));
    const int64_t have = std::min<int64_t>(o.batch, data.size());
    data.Load(0, have, images.data());
    for (int64_t i = have; i < o.batch; ++i)  // fewer images than the batch: repeat them
      std::copy_n(images.data() + (i % have) * per, per, images.data() + i * per);
  }
  std::vector<float> logits(static_cast<size_t>(o.batch) * session.num_classes());
  for (int i = 0; i < o.warmup; ++i) session.Run(images.data(), shape, logits.data());
  std::vector<double> ms;
  ms.reserve(o.runs);
  for (int i = 0; i < o.runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    session.Run(images.data(), shape, logits.data());
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::vector<double> s = ms;
  std::sort(s.begin(), s.end());
  const size_t n = s.size();
  // Same statistics as bench/peers: median (mean of the middle pair), nearest-rank p90.
  const double median = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  const double p90 = s[std::min(n - 1, (9 * n + 9) / 10 - 1)];
  double mean = 0;
  for (double v : ms) mean += v / n;
  const char* format = session.executor_kind();
  // Peak resident memory of the whole process so far (load, prepare and the runs).
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  const double peak_rss_mb = static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux: KiB
  if (o.json) {
    PrintJsonLine(Json{{"peer", "adalog"},
           {"engine", std::string("adalog-") + format},
           {"model", o.model},
           {"batch", o.batch},
           {"threads", o.threads},
           {"median_ms", Rounded(median, 3)},
           {"p90_ms", Rounded(p90, 3)},
           {"min_ms", Rounded(s[0], 3)},
           {"mean_ms", Rounded(mean, 3)},
           {"images_per_s", Rounded(o.batch * 1000.0 / median, 3)},
           {"runs", o.runs},
           {"warmup", o.warmup},
           {"peak_rss_mb", Rounded(peak_rss_mb, 1)}});
  } else {
    std::printf("%s (%s) batch %d, %d thread%s: median %.2f ms, p90 %.2f ms, min %.2f ms, %.1f images/s "
                "(%d runs after %d warmup), peak RSS %.0f MB\n",
                o.model.c_str(), format, o.batch, o.threads, o.threads == 1 ? "" : "s", median, p90, s[0],
                o.batch * 1000.0 / median, o.runs, o.warmup, peak_rss_mb);
  }
  return 0;
}

// Calibration allocates and frees tensors of the capture's size (154 MB for a Swin-T stage-1 fc2
// input at 32 images) many times. glibc serves each with a fresh mmap and returns it at free, so
// every reuse page-faults and zeroes its pages again (8.5 million minor faults, 86 s of system
// time in a 16-minute swin_t calibration). Kept in the heap instead, freed blocks are reused as
// they are. Process-wide, so only this command sets it (the library leaves malloc alone).
static void KeepFreedMemoryForReuse() {
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
}

int RunQuantize(const ParsedArgs& args) {
  QuantizeOptions o = GetQuantize(args);
  KeepFreedMemoryForReuse();
  const auto t0 = std::chrono::steady_clock::now();
  // Cheap checks first: nothing long runs when the output cannot be written or would replace an
  // input (the model, the calibration file).
  std::vector<NamedPath> inputs{{"MODEL", o.model}, {"--calib", o.calib}};
  if (!o.optimize_data.empty()) inputs.push_back({"--optimize-data", o.optimize_data});
  CheckOutputPath({"-o", o.output}, inputs, "'adalog quantize'");
  auto loaded = LoadModel(o.model);
  ADALOG_CHECK(loaded->format == ModelFormat::kOnnx, o.model,
               " is already an adalog quantized model; quantize takes an FP32 ONNX model");
  const VitModel& m = loaded->model;
  ADALOG_CHECK(!(o.optimize && m.is_swin()), "'adalog quantize': --optimize (block reconstruction) does not "
               "support Swin models yet; calibrate without it");
  // The preprocessing to calibrate with, and to store in the output.
  const ResolvedPreprocess pre =
      ResolvePreprocess(o.pre, m, o.model, "'adalog quantize'", o.calib, /*folder=*/!IsNpyPath(o.calib));
  if (!pre.note.empty()) std::fprintf(stderr, "%s\n", pre.note.c_str());
  search::CalibrationSourceOptions cso;
  cso.preprocess = PreprocessOptionsFrom(pre.preprocess, m.embed.image_h);
  cso.strict = o.pre.strict;
  const search::CalibrationSet calib = search::LoadCalibrationSet(o.calib, m, o.calib_size, o.seed, cso);
  if (!calib.skipped.empty()) {
    std::fprintf(stderr, "adalog: %s (--strict makes this an error)\n", calib.skipped.c_str());
  }
  // --optimize: the optimisation images, loaded before the long calibration so that a bad source
  // fails at once. Without an explicit --optimize-size a smaller source is used whole.
  search::CalibrationSet opt_set;
  const std::string opt_src = o.optimize_data.empty() ? o.calib : o.optimize_data;
  if (o.optimize) {
    search::CalibrationSourceOptions oso = cso;
    oso.size_option = "--optimize-size";
    oso.at_most = !o.optimize_size_given;
    opt_set = search::LoadCalibrationSet(opt_src, m, o.optimize_size, o.seed, oso);
    if (!opt_set.skipped.empty()) {
      std::fprintf(stderr, "adalog: %s (--strict makes this an error)\n", opt_set.skipped.c_str());
    }
    ADALOG_CHECK(opt_set.count() >= o.optimize_batch, "'adalog quantize': --optimize-batch ", o.optimize_batch,
                 " is more than the ", opt_set.count(), " optimisation images of ", opt_src);
  }

  search::CalibOptions co;
  co.recipe.weight_bits = o.weight_bits;
  co.recipe.act_bits = o.act_bits;
  co.recipe.fpcs = o.fpcs;
  co.recipe.fpcs_mode = o.fpcs_mode;
  co.recipe.softmax = o.softmax;
  co.recipe.gelu = o.gelu;
  co.recipe.ln_reparam = o.reparam;
  co.recipe.ln_reparam_select = o.reparam_select;
  search::ValidateRecipeOptions(co.recipe);
  co.num_images = o.calib_size;
  co.threads = o.threads;
  co.seed = o.seed;

  const bool tty = isatty(fileno(stderr)) != 0;
  std::fprintf(stderr, "adalog: quantizing %s at W%dA%d (softmax %s, gelu %s%s%s) on %d of %lld calibration images\n",
               o.model.c_str(), o.weight_bits, o.act_bits, SoftmaxQuantizerName(o.softmax), GeluQuantizerName(o.gelu),
               o.fpcs ? (o.fpcs_mode == search::FpcsMode::kBest ? "" : ", official FPCS") : ", no FPCS", o.reparam ? (o.reparam_select ? ", reparam select" : "") : ", no reparam", o.calib_size,
               static_cast<long long>(calib.available));
  ScopedSigint sigint;
  const auto search_t0 = std::chrono::steady_clock::now();
  double last_log = 0;  // seconds since search_t0 of the last non-tty progress line
  auto progress = [&](int done, int total, const std::string& label) {
    if (g_interrupted.load()) throw Interrupted("interrupted (SIGINT) during calibration; no output written");
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - search_t0).count();
    const double eta = done > 0 ? el * (total - done) / done : 0.0;
    if (!tty) {
      // A log file or a pipe gets a plain line at most every kLogEvery seconds (a large model's
      // calibration runs for minutes), never the bar's escape codes.
      constexpr double kLogEvery = 30.0;
      if (el - last_log >= kLogEvery && done < total) {
        last_log = el;
        std::fprintf(stderr, "adalog: calibration %d/%d steps (%s), %s elapsed, ETA %s\n", done, total,
                     label.c_str(), FormatSeconds(el).c_str(), FormatSeconds(eta).c_str());
      }
      return;
    }
    constexpr int kWidth = 30;
    const int fill = total > 0 ? kWidth * done / total : kWidth;
    std::fprintf(stderr, "\r\033[K[%s%s] %d/%d %-20s %s elapsed, ETA %s", std::string(fill, '#').c_str(),
                 std::string(kWidth - fill, '.').c_str(), done, total, label.c_str(), FormatSeconds(el).c_str(),
                 FormatSeconds(eta).c_str());
    if (done == total) std::fprintf(stderr, "\n");
  };
  QuantizedModel qm;
  {
    const int prev_threads = omp_get_max_threads();
    if (o.threads > 0) omp_set_num_threads(o.threads);  // the search loops use the current team size
    try {
      qm = search::Calibrate(m, calib.images.data(), o.calib_size, co, progress);
    } catch (...) {
      omp_set_num_threads(prev_threads);
      if (tty) std::fprintf(stderr, "\n");
      throw;
    }
    omp_set_num_threads(prev_threads);
  }
  if (g_interrupted.load()) throw Interrupted("interrupted (SIGINT); no output written");
  const double calib_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - search_t0).count();
  double optimize_s = 0.0;
  if (o.optimize) {
    search::OptimizeOptions oo;
    oo.recon.iters = o.optimize_iters;
    oo.recon.batch = o.optimize_batch;
    oo.recon.seed = o.seed;
    oo.recon.drop_prob = o.optimize_qdrop / 100.0;
    oo.quantized_inputs = o.optimize_quantized_inputs;
    oo.recon.threads = o.threads > 0 ? o.threads : omp_get_max_threads();
    const int units = static_cast<int>(search::OptimizeUnitNames(m).size());
    // The total ETA weighs each unit's iterations by its forward's multiply-adds (the patch
    // embedding and the head cost a small fraction of a block).
    const std::vector<double> macs = search::OptimizeUnitMacs(m);
    double macs_total = 0.0;
    for (double v : macs) macs_total += v;
    std::fprintf(stderr,
                 "adalog: optimizing (block reconstruction) %d units x %d iterations, batch %d, on %d of %lld images "
                 "of %s\n",
                 units, o.optimize_iters, o.optimize_batch, opt_set.count(), static_cast<long long>(opt_set.available),
                 opt_src.c_str());
    using Clock = std::chrono::steady_clock;
    const auto opt_t0 = Clock::now();
    auto unit_t0 = opt_t0, last_print = opt_t0;
    int cur_unit = -1;
    double first_loss = 0.0;
    auto secs = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
    auto oprog = [&](int unit, int n_units, const std::string& name, int it, int iters, double loss) {
      if (g_interrupted.load()) throw Interrupted("interrupted (SIGINT) during optimization; no output written");
      const auto now = Clock::now();
      if (unit != cur_unit) {
        cur_unit = unit;
        unit_t0 = now;
        first_loss = loss;
      }
      const bool unit_done = it == iters;
      if (tty && (unit_done || secs(last_print, now) >= 0.25)) {
        last_print = now;
        const double ue = secs(unit_t0, now), te = secs(opt_t0, now);
        double done = macs[static_cast<size_t>(unit)] * it / iters;
        for (int u = 0; u < unit; ++u) done += macs[static_cast<size_t>(u)];
        std::fprintf(stderr, "\r\033[K[%d/%d %s] %d/%d loss %.4g, %s elapsed, ETA %s | total %s elapsed, ETA %s",
                     unit + 1, n_units, name.c_str(), it, iters, loss, FormatSeconds(ue).c_str(),
                     FormatSeconds(ue * (iters - it) / it).c_str(), FormatSeconds(te).c_str(),
                     FormatSeconds(te * (macs_total - done) / done).c_str());
      }
      if (unit_done) {
        std::fprintf(stderr, "%sadalog: optimized %d/%d %s: loss %.4g -> %.4g (first / last batch), %s\n",
                     tty ? "\r\033[K" : "", unit + 1, n_units, name.c_str(), first_loss, loss,
                     FormatSeconds(secs(unit_t0, now)).c_str());
      }
    };
    try {
      search::OptimizeModel(m, opt_set.images.data(), opt_set.count(), oo, &qm, oprog);
    } catch (...) {
      if (tty) std::fprintf(stderr, "\n");
      throw;
    }
    if (g_interrupted.load()) throw Interrupted("interrupted (SIGINT); no output written");
    optimize_s = secs(opt_t0, Clock::now());
    qm.plan.meta.push_back({"optimize_iters", std::to_string(o.optimize_iters)});
    qm.plan.meta.push_back({"optimize_batch", std::to_string(o.optimize_batch)});
    qm.plan.meta.push_back({"optimize_images", std::to_string(opt_set.count())});
    qm.plan.meta.push_back({"optimize_data", opt_src});
    if (o.optimize_qdrop > 0) qm.plan.meta.push_back({"optimize_qdrop", std::to_string(o.optimize_qdrop)});
    if (o.optimize_quantized_inputs) qm.plan.meta.push_back({"optimize_inputs", "quantized"});
  }
  qm.model.preprocess = pre.preprocess;  // what eval/run apply to image folders by default
  qm.plan.meta.push_back({"source", o.model});
  qm.plan.meta.push_back({"calib", o.calib});
  qm.plan.meta.push_back({"calib_available", std::to_string(calib.available)});
  if (o.fpcs) qm.plan.meta.push_back({"fpcs_mode", search::FpcsModeName(o.fpcs_mode)});
  SaveQuantizedModel(qm, o.output);  // atomic: temporary file + rename
  // A Ctrl-C during the (short) write lets it finish: the new file is complete, and removing it
  // now would lose the file it replaced too.
  if (g_interrupted.load()) {
    throw Interrupted("interrupted (SIGINT) while writing " + o.output + "; the file was written completely");
  }
  const double search_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - search_t0).count();
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(o.output, ec);
  if (o.json) {
    Json j{{"model", o.model},
           {"output", o.output},
           {"bytes", ec ? 0 : static_cast<int64_t>(bytes)},
           {"weight_bits", o.weight_bits},
           {"act_bits", o.act_bits},
           {"softmax", SoftmaxQuantizerName(o.softmax)},
           {"gelu", GeluQuantizerName(o.gelu)},
           {"fpcs", o.fpcs ? search::FpcsModeName(o.fpcs_mode) : "off"},
           {"ln_reparam", qm.plan.ln_reparam},
           {"ln_reparam_mode", ReparamModeName(o)},
           {"calib", o.calib},
           {"calib_images", o.calib_size},
           {"calib_available", calib.available},
           {"seed", o.seed},
           {"calibration_seconds", Rounded(o.optimize ? calib_s : search_s, 1)},
                       {"total_seconds", Rounded(total_s, 1)}};
    if (o.optimize) {
      j["optimize_iters"] = o.optimize_iters;
      j["optimize_batch"] = o.optimize_batch;
      j["optimize_images"] = opt_set.count();
      j["optimize_data"] = opt_src;
      j["optimize_qdrop"] = o.optimize_qdrop;
      j["optimize_inputs"] = o.optimize_quantized_inputs ? "quantized" : "fp32";
      j["optimization_seconds"] = Rounded(optimize_s, 1);
    }
    PrintJsonLine(j);
    return 0;
  }
  std::printf("quantized  %s -> %s (%.1f KiB)\n", o.model.c_str(), o.output.c_str(),
              ec ? 0.0 : static_cast<double>(bytes) / 1024.0);
  std::printf("bits       W%dA%d: weights uniform per-channel %d-bit; q/k/v per-head %d-bit; "
              "linear inputs per-tensor %d-bit; image FP32\n",
              o.weight_bits, o.act_bits, o.weight_bits, o.act_bits, o.act_bits);
  std::printf("quantizers post-softmax %s, post-GELU %s, FPCS %s, LN reparam %s (%s)\n",
              SoftmaxQuantizerName(o.softmax), GeluQuantizerName(o.gelu),
              o.fpcs ? search::FpcsModeName(o.fpcs_mode) : "off", qm.plan.ln_reparam ? "on" : "off",
              ReparamModeName(o));
  std::printf("calib      %d images of %lld from %s (seed %u%s)\n", o.calib_size,
              static_cast<long long>(calib.available), o.calib.c_str(), o.seed,
              calib.available == o.calib_size ? ", all used" : "");
  std::printf("preprocess %s%s (stored)\n", pre.preprocess.known ? "" : "unknown, default ",
              DescribePreprocess(pre.preprocess, m.embed.image_h).c_str());
  if (o.optimize) {
    std::printf("optimize   %d units x %d iterations, batch %d, on %d of %lld images from %s (seed %u)%s\n",
                static_cast<int>(search::OptimizeUnitNames(m).size()), o.optimize_iters, o.optimize_batch,
                opt_set.count(), static_cast<long long>(opt_set.available), opt_src.c_str(), o.seed,
                ((o.optimize_qdrop > 0 ? ", QDrop " + std::to_string(o.optimize_qdrop) + "%" : std::string()) +
                 (o.optimize_quantized_inputs ? ", quantized inputs" : ""))
                    .c_str());
    std::printf("time       %.1f s calibration, %.1f s optimization, %.1f s total\n", calib_s, optimize_s, total_s);
  } else {
    std::printf("time       %.1f s calibration, %.1f s total\n", search_s, total_s);
  }
  return 0;
}

int RunCommand(const ParsedArgs& args) {
  const std::string& c = args.command();
  if (c == "inspect") return RunInspect(args);
  if (c == "run") return RunRun(args);
  if (c == "eval") return RunEval(args);
  if (c == "bench") return RunBench(args);
  if (c == "quantize") return RunQuantize(args);
  if (c == "report") return RunReport(args);
  if (c == "export") return RunExport(args);
  Fail("internal: no body for subcommand '", c, "'");
}

}  // namespace adalog::cli
