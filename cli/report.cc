// `adalog report`: which layer a quantized model loses accuracy in, and what its quantizers see.
// Its spec, its body, the report.json writer (schema: docs/report.md) and the text table; the
// numbers come from runtime/layer_report.h, the pictures from scripts/plot_report.py.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/json_out.h"
#include "runtime/adalog_runtime.h"
#include "runtime/data/image_folder.h"
#include "runtime/data/image_source.h"
#include "runtime/layer_report.h"
#include "runtime/metrics.h"
#include "runtime/model_file.h"

extern char** environ;

namespace adalog::cli {
namespace {

constexpr int kReportSchemaVersion = 1;

struct ReportOptions {
  std::string model;  // a quantized model file
  std::string fp32;   // its FP32 ONNX; empty: the file's "source" meta entry
  std::string data;
  std::string labels;
  std::string out_dir;
  int64_t limit = 64;
  int batch = 8;
  int threads = 0;
  bool plots = true;
};

ReportOptions GetReport(const ParsedArgs& a) {
  ReportOptions o;
  o.model = a.positional(0);
  o.fp32 = a.String("fp32");
  o.data = a.String("data");
  o.labels = a.String("labels");
  o.out_dir = a.String("output");
  o.limit = a.Int("limit", 64);
  o.batch = static_cast<int>(a.Int("batch", 8));
  o.threads = static_cast<int>(a.Int("threads", 0));
  o.plots = !a.Flag("no-plots");
  if (!o.labels.empty() && !IsNpyPath(o.data)) {
    throw UsageError(
        "'adalog report': --labels is for .npy data; an image folder's labels are its subfolders");
  }
  return o;
}

// A finite number, or null (an infinite SQNR: no error at all).
Json Num(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

Json ErrorJson(const OutputError& e) {
  return Json{
      {"sqnr_db", Num(e.sqnr_db)}, {"rel_error", Num(e.rel_error)}, {"cosine", Num(e.cosine)}};
}

Json QuantizerJson(const QuantizerStats& q) {
  Json j{{"name", q.name},
         {"kind", q.kind},
         {"bits", q.bits},
         {"values", q.values},
         {"clipped_fraction", q.values ? static_cast<double>(q.clipped) / q.values : 0.0},
         {"zero_fraction", q.values ? static_cast<double>(q.zero_coded) / q.values : 0.0},
         {"sqnr_db", Num(q.sqnr_db)},
         {"code_histogram", q.code_histogram}};
  if (q.has_domain) {
    Json levels = Json::array();
    for (const QuantizerLevels& l : q.levels) {
      levels.push_back(
          {{"name", l.name}, {"kind", l.kind}, {"sqnr_db", Num(l.sqnr_db)}, {"levels", l.levels}});
    }
    j["domain"] = {{"shift", q.shift},
                   {"histogram",
                    {{"log2_lo", ValueHistogram::kLog2Lo},
                     {"log2_hi", ValueHistogram::kLog2Hi},
                     {"bins_per_octave", ValueHistogram::kBinsPerOctave},
                     {"counts", q.histogram.counts},
                     {"below", q.histogram.below},
                     {"above", q.histogram.above}}},
                   {"quantizers", levels}};
  }
  return j;
}

std::string Db(double v) {
  char buf[32];
  if (std::isfinite(v)) {
    std::snprintf(buf, sizeof(buf), "%9.2f", v);
  } else {
    std::snprintf(buf, sizeof(buf), "%9s", "inf");
  }
  return buf;
}

// The table, most damaged op (lowest local SQNR) first.
std::string TextTable(const LayerReport& r, const std::string& header) {
  std::string s = header;
  std::vector<const OpReport*> ops;
  for (const OpReport& op : r.ops) ops.push_back(&op);
  std::stable_sort(ops.begin(), ops.end(), [](const OpReport* a, const OpReport* b) {
    return a->local.sqnr_db < b->local.sqnr_db;
  });
  char line[512];
  std::snprintf(line, sizeof(line), "%-20s %9s %9s %9s %9s %9s  %s\n", "op", "local dB",
                "local cos", "acc dB", "acc cos", "acc rel",
                "input quantizers (clipped / zero-coded)");
  s += line;
  for (const OpReport* op : ops) {
    std::string q;
    for (const QuantizerStats& qs : op->quantizers) {
      if (qs.kind == "none") continue;
      char b[160];
      std::snprintf(b, sizeof(b), "%s%s %s%d %.1f%% / %.1f%%", q.empty() ? "" : "; ",
                    qs.name.c_str(), qs.kind.c_str(), qs.bits,
                    qs.values ? 100.0 * qs.clipped / qs.values : 0.0,
                    qs.values ? 100.0 * qs.zero_coded / qs.values : 0.0);
      q += b;
    }
    std::snprintf(line, sizeof(line), "%-20s %9s %9.5f %9s %9.5f %9.4f  %s\n", op->name.c_str(),
                  Db(op->local.sqnr_db).c_str(), op->local.cosine,
                  Db(op->accumulated.sqnr_db).c_str(), op->accumulated.cosine,
                  op->accumulated.rel_error, q.c_str());
    s += line;
  }
  return s;
}

void WriteFile(const std::filesystem::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
  f.close();
  ADALOG_CHECK(f.good(), "cannot write ", p.string());
}

// Runs argv without a shell (paths may hold any character); returns the exit status, -1 when it
// could not be started.
int Spawn(const std::vector<std::string>& args, bool quiet) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (quiet) {
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  }
  pid_t pid;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The plotting script: $ADALOG_PLOT_SCRIPT, else the source tree's scripts/plot_report.py.
std::string PlotScript() {
  if (const char* e = std::getenv("ADALOG_PLOT_SCRIPT")) return e;
  return std::string(ADALOG_SOURCE_DIR) + "/scripts/plot_report.py";
}

}  // namespace

CommandSpec ReportCommandSpec() {
  CommandSpec c;
  c.name = "report";
  c.summary = "Per-layer damage of a quantized model against FP32, quantizer statistics and plots.";
  c.positionals = {{"MODEL", "an adalog quantized model file"}};
  const OptionSpec data =
      Str("data", "X.npy|DIR", "float32 NCHW .npy, or an image folder", /*required=*/true);
  OptionSpec out =
      Str("output", "DIR", "directory for report.json, report.txt and the PNGs", /*required=*/true);
  out.short_name = 'o';
  OptionSpec limit = Int("limit", "N", "images to run", 1, 100000000, "64");
  limit.short_name = 'n';
  c.options = {
      data,
      Str("labels", "Y.npy", "integer labels [N] of an .npy (adds top-1 accuracies)"),
      limit,
      out,
      Str("fp32", "MODEL.onnx",
          "the FP32 model it was quantized from (default: the file's 'source' entry)"),
      Int("batch", "B", "images per inference", 1, 1024, "8"),
      Int("threads", "N", "worker threads", 1, 256, "all cores"),
      Flag("no-plots", "write report.json and report.txt only"),
  };
  c.details =
      "example:\n  adalog report model_w4a4.adalog --data test_x.npy -n 64 -o report/\n"
      "The quantized side is the simulated (fake-quant) executor, the accuracy reference. "
      "'local':\n"
      "the op run on FP32 inputs; 'accumulated': through the quantized model. Pictures need\n"
      "/usr/bin/python3 with matplotlib (Debian: python3-matplotlib). Schema: docs/report.md.\n";
  return c;
}

int RunReport(const ParsedArgs& args) {
  namespace fs = std::filesystem;
  const ReportOptions o = GetReport(args);
  auto loaded = LoadModel(o.model);
  ADALOG_CHECK(
      loaded->format == ModelFormat::kQuantized, o.model,
      " is not an adalog quantized model file; report compares one against its FP32 source");
  std::string fp32_path = o.fp32;
  if (fp32_path.empty()) {
    for (const auto& kv : loaded->plan.meta) {
      if (kv.first == "source") fp32_path = kv.second;
    }
    ADALOG_CHECK(!fp32_path.empty(), o.model,
                 " names no source model; give the FP32 ONNX with --fp32");
    std::error_code ec;
    ADALOG_CHECK(
        fs::is_regular_file(fp32_path, ec), o.model, " was quantized from '", fp32_path,
        "', which is not there (relative to this directory); give the FP32 ONNX with --fp32");
  }
  auto fp32 = LoadModel(fp32_path);
  ADALOG_CHECK(fp32->format == ModelFormat::kOnnx, fp32_path, " is not an FP32 ONNX model");
  std::error_code ec;
  ADALOG_CHECK(!fs::exists(o.out_dir, ec) || fs::is_directory(o.out_dir, ec), "-o ", o.out_dir,
               " exists and is not a directory");
  fs::create_directories(o.out_dir, ec);
  ADALOG_CHECK(!ec, "cannot create directory ", o.out_dir, ": ", ec.message());

  const VitModel& m = loaded->model;
  ImageSourceOptions so;
  so.num_classes = m.num_classes();
  so.labels = o.labels;
  if (!IsNpyPath(o.data)) so.preprocess = PreprocessOptionsFor(m);
  const ImageSource data = ImageSource::Open(o.data, so);
  data.CheckNotEmpty();
  const int64_t n = std::min<int64_t>(o.limit, data.size());
  ADALOG_CHECK(n >= 1, o.data, ": no images");
  LayerReportOptions lo;
  lo.batch = o.batch;
  lo.num_threads = o.threads;
  QuantizedModel qm{loaded->model, loaded->plan};
  const LayerReport r = BuildLayerReport(fp32->model, qm, data, n, lo);

  const int classes = m.num_classes();
  Json j;
  j["schema"] = "adalog.report";
  j["schema_version"] = kReportSchemaVersion;
  j["model"] = o.model;
  j["fp32_model"] = fp32_path;
  j["data"] = o.data;
  j["images"] = n;
  j["executor"] = "sim";
  j["weight_bits"] = loaded->plan.weight_bits;
  j["act_bits"] = loaded->plan.act_bits;
  j["softmax_quantizer"] = SoftmaxQuantizerName(loaded->plan.softmax_quantizer);
  j["gelu_quantizer"] = GeluQuantizerName(loaded->plan.gelu_quantizer);
  const LogitsFidelity fid = CompareLogits(r.quant_logits.data(), r.fp32_logits.data(), n, classes);
  j["logits"] = {{"cosine", fid.mean_cosine},
                 {"cosine_min", fid.min_cosine},
                 {"top1_agreement", fid.top1_agreement}};
  std::string acc_line;
  if (data.has_labels()) {
    std::vector<int64_t> labels(static_cast<size_t>(n));
    data.LoadLabels(0, n, labels.data());
    const double t_fp = Top1Accuracy(r.fp32_logits.data(), n, classes, labels.data());
    const double t_q = Top1Accuracy(r.quant_logits.data(), n, classes, labels.data());
    j["top1"] = {{"fp32", t_fp}, {"quantized", t_q}};
    char b[128];
    std::snprintf(b, sizeof(b), ", top-1 FP32 %.2f%% quantized %.2f%%", 100 * t_fp, 100 * t_q);
    acc_line = b;
  }
  Json ops = Json::array();
  for (const OpReport& op : r.ops) {
    Json q = Json::array();
    for (const QuantizerStats& s : op.quantizers) q.push_back(QuantizerJson(s));
    ops.push_back({{"name", op.name},
                   {"op", op.op},
                   {"block", op.block},
                   {"output", op.output},
                   {"local", ErrorJson(op.local)},
                   {"accumulated", ErrorJson(op.accumulated)},
                   {"quantizers", q}});
  }
  j["ops"] = ops;
  const fs::path dir(o.out_dir);
  WriteFile(dir / "report.json", JsonText(j, 1) + "\n");

  char head[1024];
  std::snprintf(
      head, sizeof(head),
      "adalog report: %s (W%dA%d, softmax %s, gelu %s) against %s on %lld images of %s\n"
      "quantized side: simulated executor. local = op on FP32 inputs; accumulated = through the "
      "quantized model.\nend to end: logits cosine %.6f (min %.6f), top-1 agreement %.2f%%%s\n\n",
      o.model.c_str(), loaded->plan.weight_bits, loaded->plan.act_bits,
      SoftmaxQuantizerName(loaded->plan.softmax_quantizer),
      GeluQuantizerName(loaded->plan.gelu_quantizer), fp32_path.c_str(), static_cast<long long>(n),
      o.data.c_str(), fid.mean_cosine, fid.min_cosine, 100 * fid.top1_agreement, acc_line.c_str());
  const std::string table = TextTable(r, head);
  WriteFile(dir / "report.txt", table);
  std::fputs(table.c_str(), stdout);
  std::fprintf(stderr, "adalog: wrote %s and %s\n", (dir / "report.json").c_str(),
               (dir / "report.txt").c_str());

  if (!o.plots) return 0;
  // Debian's interpreter (python3-matplotlib installs there); $ADALOG_PYTHON for another one.
  const char* py_env = std::getenv("ADALOG_PYTHON");
  const std::string python = py_env && *py_env ? py_env : "/usr/bin/python3";
  if (Spawn({python, "-c", "import matplotlib"}, true) != 0) {
    std::fprintf(
        stderr,
        "adalog: no plots: %s cannot import matplotlib (Debian: apt install python3-matplotlib); "
        "report.json and report.txt are complete\n",
        python.c_str());
    return 0;
  }
  const std::string script = PlotScript();
  if (!fs::is_regular_file(script, ec)) {
    std::fprintf(stderr,
                 "adalog: no plots: plotting script %s not found (set ADALOG_PLOT_SCRIPT)\n",
                 script.c_str());
    return 0;
  }
  const int rc = Spawn({python, script, (dir / "report.json").string(), dir.string()}, false);
  ADALOG_CHECK(rc == 0, "plotting failed: ", python, " ", script, " exited with ", rc,
               " (report.json and report.txt were written)");
  return 0;
}

}  // namespace adalog::cli
