// The bodies of the `adalog` subcommands. Each first turns ParsedArgs into a typed options struct,
// checking the combinations the parser cannot (UsageError, exit 2), then calls the runtime's public
// API (runtime/adalog_runtime.h), whose failures are adalog::Error (exit 1).
//
// quantize is parsed and validated but not implemented yet (it says so and exits 1).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "runtime/adalog_runtime.h"
#include "runtime/data/image_folder.h"
#include "runtime/data/npy.h"

namespace adalog::cli {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct InspectOptions {
  std::string model;
};

struct RunOptions {
  std::string model;
  std::string input;   // float32 NCHW .npy
  std::string output;  // float32 [N, classes] .npy
  int threads = 0;  // 0: all cores
  int batch = 8;
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
  // Image-folder preprocessing; 0 / empty: the model's own (VitModel::preprocess).
  int image_size = 0;
  int resize = 0;
  std::vector<float> mean;
  std::vector<float> std;
};

struct BenchOptions {
  std::string model;
  int batch = 1;
  int threads = 1;
  bool json = false;
  int warmup = 3;
  int runs = 10;
};

struct QuantizeOptions {
  std::string model;
  std::string calib;
  std::string output;
  int weight_bits = 4;
  int act_bits = 4;
  std::string softmax = "adalog";
  std::string gelu = "adalog";
  int calib_size = 32;
  uint32_t seed = 0;
  bool fpcs = true;
  bool reparam = true;
  int threads = 0;
};

InspectOptions GetInspect(const ParsedArgs& a) { return {a.positional(0)}; }

RunOptions GetRun(const ParsedArgs& a) {
  RunOptions o;
  o.model = a.positional(0);
  o.input = a.String("input");
  o.output = a.String("output");
  o.threads = static_cast<int>(a.Int("threads", 0));
  o.batch = static_cast<int>(a.Int("batch", 8));
  if (o.input == o.output) throw UsageError("'adalog run': --input and --output name the same file");
  return o;
}

EvalOptions GetEval(const ParsedArgs& a) {
  EvalOptions o;
  o.model = a.positional(0);
  o.data = a.String("data");
  o.labels = a.String("labels");
  o.data_is_npy = EndsWith(o.data, ".npy");
  o.json = a.Flag("json");
  o.threads = static_cast<int>(a.Int("threads", 0));
  o.batch = static_cast<int>(a.Int("batch", 8));
  o.limit = a.Int("limit", 0);
  const std::string cmd = "'adalog eval'";
  if (o.data_is_npy) {
    if (o.labels.empty()) throw UsageError(cmd + ": --data " + o.data + " is an .npy; it needs --labels Y.npy");
    for (const char* opt : {"image-size", "resize", "mean", "std"}) {
      if (a.Has(opt)) {
        throw UsageError(cmd + ": --" + std::string(opt) +
                         " applies to image folders; .npy data is used as already preprocessed");
      }
    }
  } else if (!o.labels.empty()) {
    throw UsageError(cmd + ": --labels is for .npy data; an image folder's labels are its subfolders");
  }
  o.image_size = static_cast<int>(a.Int("image-size", 0));
  o.resize = static_cast<int>(a.Int("resize", 0));
  if (o.resize != 0 && o.image_size != 0 && o.resize < o.image_size) {
    throw UsageError(cmd + ": --resize " + std::to_string(o.resize) + " is smaller than --image-size " +
                     std::to_string(o.image_size));
  }
  if (a.Has("mean")) o.mean = ParseFloatList(a.String("mean"), 3, "option '--mean' of " + cmd);
  if (a.Has("std")) {
    o.std = ParseFloatList(a.String("std"), 3, "option '--std' of " + cmd);
    for (float s : o.std) {
      if (!(s > 0.f)) throw UsageError("option '--std' of " + cmd + ": every value must be > 0");
    }
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
  o.softmax = a.String("softmax", "adalog");
  o.gelu = a.String("gelu", "adalog");
  o.calib_size = static_cast<int>(a.Int("calib-size", 32));
  o.seed = static_cast<uint32_t>(a.Int("seed", 0));
  o.fpcs = !a.Flag("no-fpcs");
  o.reparam = !a.Flag("no-reparam");
  o.threads = static_cast<int>(a.Int("threads", 0));
  if (o.output == o.model) throw UsageError(cmd + ": -o would overwrite the input model " + o.model);
  return o;
}

}  // namespace

namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? "," : "") << shape[i];
  os << "]";
  return os.str();
}

const char* PoolingName(Pooling p) {
  switch (p) {
    case Pooling::kClsToken: return "cls token";
    case Pooling::kClsDistAvg: return "cls + distillation tokens (averaged heads)";
    case Pooling::kMeanPatches: return "mean of tokens";
  }
  return "?";
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

// Images [N][C][H][W] from an .npy; checks the rank here, the C/H/W match in Session::Run.
NpyFloatArray ReadImages(const std::string& path) {
  NpyFloatArray x = ReadNpyFloat32(path);
  ADALOG_CHECK(x.shape.size() == 4, path, ": images must be float32 [N,C,H,W], got shape ",
               ShapeString(x.shape));
  ADALOG_CHECK(x.shape[0] >= 1, path, ": no images (shape ", ShapeString(x.shape), ")");
  return x;
}

int64_t PerImage(const std::vector<int64_t>& shape) { return shape[1] * shape[2] * shape[3]; }

// Runs `n` images in chunks of at most session.max_batch(); logits gets n * classes floats.
void RunAll(Session& session, const float* images, const std::vector<int64_t>& shape, int64_t n,
            float* logits) {
  const int64_t per = PerImage(shape);
  const int classes = session.num_classes();
  for (int64_t i = 0; i < n; i += session.max_batch()) {
    const int64_t b = std::min<int64_t>(session.max_batch(), n - i);
    session.Run(images + i * per, {b, shape[1], shape[2], shape[3]}, logits + i * classes);
  }
}

}  // namespace

int RunInspect(const ParsedArgs& args) {
  InspectOptions o = GetInspect(args);
  auto loaded = LoadModel(o.model);
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
    std::printf("format     adalog quantized model\n");
  }
  if (!m.name.empty() || !m.style.empty()) {
    std::printf("name       %s%s%s\n", m.name.c_str(), m.style.empty() ? "" : "  style: ", m.style.c_str());
  }
  const BlockParams* b0 = m.blocks.empty() ? nullptr : &m.blocks[0];
  std::printf("structure  patch %d -> %dx%d grid, %d tokens (%d prefix), dim %d, %zu blocks, %d heads x %d, "
              "MLP %d, GELU %s\n",
              m.embed.patch, m.embed.grid_h(), m.embed.grid_w(), m.num_tokens(), m.num_prefix_tokens(), m.dim,
              m.blocks.size(), b0 ? b0->heads : 0, m.head_dim(), b0 ? b0->fc1.out : 0,
              b0 && b0->gelu == GeluKind::kTanh ? "tanh" : "erf");
  std::printf("head       %s -> %d classes\n", PoolingName(m.pooling), m.num_classes());
  const double macs = static_cast<double>(CountMacsPerImage(m));
  std::printf("size       %.3f M parameters, %.3f %s per image\n", CountParameters(m) / 1e6,
              macs >= 1e8 ? macs / 1e9 : macs / 1e6, macs >= 1e8 ? "GMAC" : "MMAC");
  std::printf("preprocess mean %.3f,%.3f,%.3f std %.3f,%.3f,%.3f\n", m.preprocess.mean[0], m.preprocess.mean[1],
              m.preprocess.mean[2], m.preprocess.std[0], m.preprocess.std[1], m.preprocess.std[2]);
  if (loaded->format == ModelFormat::kOnnx) {
    for (const std::string& note : loaded->onnx_report.notes) std::printf("note       %s\n", note.c_str());
  }
  return 0;
}

int RunRun(const ParsedArgs& args) {
  RunOptions o = GetRun(args);
  auto loaded = LoadModel(o.model);
  NpyFloatArray x = ReadImages(o.input);
  const int64_t n = x.shape[0];
  SessionOptions so;
  so.max_batch = static_cast<int>(std::min<int64_t>(o.batch, n));
  so.num_threads = o.threads;
  Session session(loaded, so);
  std::vector<float> logits(static_cast<size_t>(n) * session.num_classes());
  RunAll(session, x.data.data(), x.shape, n, logits.data());
  WriteNpyFloat32(o.output, logits.data(), {n, session.num_classes()});
  std::fprintf(stderr, "adalog: wrote %s: logits [%lld,%d]\n", o.output.c_str(), static_cast<long long>(n),
               session.num_classes());
  return 0;
}

int RunEval(const ParsedArgs& args) {
  EvalOptions o = GetEval(args);
  auto loaded = LoadModel(o.model);
  const VitModel& m = loaded->model;
  const int classes = m.num_classes();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<float> logits;
  std::vector<int64_t> labels;
  int64_t n = 0;
  if (o.data_is_npy) {
    NpyDataset d = ReadNpyDataset(o.data, o.labels, classes);
    ADALOG_CHECK(d.images.shape.size() == 4, o.data, ": images must be float32 [N,C,H,W], got shape ",
                 ShapeString(d.images.shape));
    n = o.limit > 0 ? std::min<int64_t>(o.limit, d.images.shape[0]) : d.images.shape[0];
    ADALOG_CHECK(n >= 1, o.data, ": no images");
    SessionOptions so;
    so.max_batch = static_cast<int>(std::min<int64_t>(o.batch, n));
    so.num_threads = o.threads;
    Session session(loaded, so);
    logits.resize(static_cast<size_t>(n) * classes);
    RunAll(session, d.images.data.data(), d.images.shape, n, logits.data());
    labels.assign(d.labels.begin(), d.labels.begin() + n);
  } else {
    ImageFolder folder = ScanImageFolder(o.data, classes);
    ImagePreprocessOptions pre = PreprocessOptionsFor(m);
    if (o.image_size != 0) {
      ADALOG_CHECK(o.image_size == m.embed.image_h && o.image_size == m.embed.image_w, "--image-size ",
                   o.image_size, " does not match the model's input ", m.embed.image_h, "x", m.embed.image_w);
      pre.crop = o.image_size;
    }
    if (o.resize != 0) pre.resize_shorter = o.resize;
    for (int c = 0; c < 3 && !o.mean.empty(); ++c) pre.mean[c] = o.mean[c];
    for (int c = 0; c < 3 && !o.std.empty(); ++c) pre.std[c] = o.std[c];
    n = static_cast<int64_t>(folder.items.size());
    if (o.limit > 0) n = std::min<int64_t>(n, o.limit);
    SessionOptions so;
    so.max_batch = static_cast<int>(std::min<int64_t>(o.batch, n));
    so.num_threads = o.threads;
    Session session(loaded, so);
    const std::vector<int64_t> shape = session.input_shape(session.max_batch());
    const int64_t per = PerImage(shape);
    std::vector<float> images(static_cast<size_t>(session.max_batch()) * per);
    logits.resize(static_cast<size_t>(n) * classes);
    labels.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; i += session.max_batch()) {
      const int64_t b = std::min<int64_t>(session.max_batch(), n - i);
      LoadImageBatch(folder, static_cast<size_t>(i), static_cast<size_t>(b), pre, images.data(), labels.data() + i);
      session.Run(images.data(), {b, shape[1], shape[2], shape[3]}, logits.data() + i * classes);
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t top1 = CountTopKCorrect(logits.data(), n, classes, labels.data(), 1);
  const int64_t top5 = CountTopKCorrect(logits.data(), n, classes, labels.data(), std::min(5, classes));
  if (o.json) {
    std::printf("{\"model\":\"%s\",\"data\":\"%s\",\"images\":%lld,\"top1\":%.6f,\"top5\":%.6f,"
                "\"top1_correct\":%lld,\"top5_correct\":%lld,\"seconds\":%.3f}\n",
                JsonEscape(o.model).c_str(), JsonEscape(o.data).c_str(), static_cast<long long>(n),
                static_cast<double>(top1) / n, static_cast<double>(top5) / n, static_cast<long long>(top1),
                static_cast<long long>(top5), seconds);
  } else {
    std::printf("%s on %s: %lld images, top-1 %.2f%% (%lld), top-5 %.2f%% (%lld), %.1f s\n", o.model.c_str(),
                o.data.c_str(), static_cast<long long>(n), 100.0 * top1 / n, static_cast<long long>(top1),
                100.0 * top5 / n, static_cast<long long>(top5), seconds);
  }
  return 0;
}

int RunBench(const ParsedArgs& args) {
  BenchOptions o = GetBench(args);
  auto loaded = LoadModel(o.model);
  SessionOptions so;
  so.max_batch = o.batch;
  so.num_threads = o.threads;
  Session session(loaded, so);
  const std::vector<int64_t> shape = session.input_shape(o.batch);
  std::vector<float> images(static_cast<size_t>(shape[0] * PerImage(shape)));
  std::mt19937 rng(0);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (float& v : images) v = normal(rng);
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
  const char* format = loaded->format == ModelFormat::kOnnx ? "fp32" : "quantized";
  if (o.json) {
    std::printf("{\"peer\":\"adalog\",\"engine\":\"adalog-%s\",\"model\":\"%s\",\"batch\":%d,\"threads\":%d,"
                "\"median_ms\":%.3f,\"p90_ms\":%.3f,\"min_ms\":%.3f,\"mean_ms\":%.3f,\"images_per_s\":%.3f,"
                "\"runs\":%d,\"warmup\":%d}\n",
                format, JsonEscape(o.model).c_str(), o.batch, o.threads, median, p90, s[0], mean,
                o.batch * 1000.0 / median, o.runs, o.warmup);
  } else {
    std::printf("%s (%s) batch %d, %d thread%s: median %.2f ms, p90 %.2f ms, min %.2f ms, %.1f images/s "
                "(%d runs after %d warmup)\n",
                o.model.c_str(), format, o.batch, o.threads, o.threads == 1 ? "" : "s", median, p90, s[0],
                o.batch * 1000.0 / median, o.runs, o.warmup);
  }
  return 0;
}

int RunQuantize(const ParsedArgs& args) {
  QuantizeOptions o = GetQuantize(args);
  Fail("'adalog quantize' is not implemented yet (arguments accepted: W", o.weight_bits, "A", o.act_bits,
       ", softmax ", o.softmax, ", gelu ", o.gelu, ")");
}

int RunCommand(const ParsedArgs& args) {
  const std::string& c = args.command();
  if (c == "inspect") return RunInspect(args);
  if (c == "run") return RunRun(args);
  if (c == "eval") return RunEval(args);
  if (c == "bench") return RunBench(args);
  if (c == "quantize") return RunQuantize(args);
  Fail("internal: no body for subcommand '", c, "'");
}

}  // namespace adalog::cli
