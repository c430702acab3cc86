// The bodies of the `adalog` subcommands. Each first turns ParsedArgs into a typed options struct,
// checking the combinations the parser cannot (UsageError, exit 2), then calls the runtime.
//
// Wiring status: the runtime's public API (runtime/adalog_runtime.h) is not in the tree yet, so
// inspect/run/eval/bench end in NotAvailable() after validating their arguments; quantize is
// parsed and validated but not implemented. Replace each NotAvailable() call with the real call.
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"

namespace adalog::cli {
namespace {

int DefaultThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

[[noreturn]] void NotAvailable(const std::string& command) {
  Fail("'adalog ", command,
       "' is not available yet: the runtime API (runtime/adalog_runtime.h) is not wired into the CLI");
}

struct InspectOptions {
  std::string model;
};

struct RunOptions {
  std::string model;
  std::string input;   // float32 NCHW .npy
  std::string output;  // float32 [N, classes] .npy
  int threads = 1;
  int batch = 8;
};

struct EvalOptions {
  std::string model;
  std::string data;    // .npy or image folder
  std::string labels;  // .npy; required with .npy data, forbidden with a folder
  bool data_is_npy = false;
  bool json = false;
  int threads = 1;
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
  int threads = 1;
};

InspectOptions GetInspect(const ParsedArgs& a) { return {a.positional(0)}; }

RunOptions GetRun(const ParsedArgs& a) {
  RunOptions o;
  o.model = a.positional(0);
  o.input = a.String("input");
  o.output = a.String("output");
  o.threads = static_cast<int>(a.Int("threads", DefaultThreads()));
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
  o.threads = static_cast<int>(a.Int("threads", DefaultThreads()));
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
  o.threads = static_cast<int>(a.Int("threads", DefaultThreads()));
  if (o.output == o.model) throw UsageError(cmd + ": -o would overwrite the input model " + o.model);
  return o;
}

}  // namespace

int RunInspect(const ParsedArgs& args) {
  InspectOptions o = GetInspect(args);
  (void)o;
  NotAvailable("inspect");
}

int RunRun(const ParsedArgs& args) {
  RunOptions o = GetRun(args);
  (void)o;
  NotAvailable("run");
}

int RunEval(const ParsedArgs& args) {
  EvalOptions o = GetEval(args);
  (void)o;
  NotAvailable("eval");
}

int RunBench(const ParsedArgs& args) {
  BenchOptions o = GetBench(args);
  (void)o;
  NotAvailable("bench");
}

int RunQuantize(const ParsedArgs& args) {
  QuantizeOptions o = GetQuantize(args);
  (void)o;
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
