// Speed of one block-reconstruction iteration (search/recon/block_grad.h): BlockRecon<float>
// Forward + Backward at batch 32, for a block of the digits model, of the shapes model and of a
// DeiT-S-shaped random model (T=197, D=384, 6 heads, hidden 1536), at 1 and 2 threads. Each
// benchmark repetition is one iteration; the median over the repetitions is the number to quote.
// Timing only: the plans are W4A4 calibrations on 4 images (the quantizer kinds a full calibration
// picks, cheaply), the inputs the FP32 block inputs of calibration images (random images for the
// DeiT-S shape), the targets the FP32 block outputs.
//   bench_recon_speed [--benchmark_filter=digits]   (run from the repository root)
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/executor_fp32.h"
#include "runtime/onnx_importer.h"
#include "search/calibrate.h"
#include "search/calibration_set.h"
#include "search/recon/block_grad.h"
#include "tests/util/exec_random_vit.h"

namespace {

using adalog::search::BlockRecon;
using adalog::search::BlockTrainParams;

constexpr int kBatch = 32;

struct Setup {
  adalog::QuantizedModel qm;
  int block = 0;
  std::vector<float> in, out;  // [kBatch * T][D]
};

Setup Make(const adalog::VitModel& fp, const std::vector<float>& images, int block) {
  Setup s;
  s.block = block;
  adalog::search::CalibOptions co;
  co.num_images = 4;
  co.threads = 2;
  s.qm = adalog::search::Calibrate(fp, images.data(), co.num_images, co);
  adalog::ExecutorOptions eo;
  eo.max_batch = kBatch;
  eo.num_threads = 2;
  adalog::ExecutorFp32 ex(s.qm.model, eo);
  std::vector<float> x(static_cast<size_t>(kBatch) * s.qm.model.num_tokens() * s.qm.model.dim);
  ex.RunEmbed(images.data(), kBatch, x.data());
  for (int k = 0; k < block; ++k) ex.RunBlock(k, x.data(), kBatch);
  s.in = x;
  ex.RunBlock(block, x.data(), kBatch);
  s.out = x;
  return s;
}

const Setup& Get(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Setup>> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return *it->second;
  Setup s;
  if (name == "deit_s") {
    adalog::testing_util::RandomVitSpec spec;
    spec.Shape(384, 6, 1, 224, 16, 10);
    const adalog::VitModel m = adalog::testing_util::MakeRandomVit(spec);
    s = Make(m, adalog::testing_util::RandomImages(m, kBatch, 3), 0);
  } else {
    const std::string dir = std::string(ADALOG_SOURCE_DIR) + "/models/" + name + "/";
    const adalog::VitModel m = adalog::ImportOnnxVit(dir + name + "_vit.onnx");
    const auto cs = adalog::search::LoadCalibrationSet(dir + "calib_pool.npy", m, kBatch, 1);
    s = Make(m, cs.images, 2);
  }
  return *cache.emplace(name, std::make_unique<Setup>(std::move(s))).first->second;
}

// One BlockRecon per (model, threads), built and warmed up (first touch of the workspace, oneDNN's
// JIT) once, before its first timed repetition.
struct Runner {
  std::unique_ptr<BlockRecon<float>> br;
  BlockTrainParams<float> p, g;
};

Runner& GetRunner(const std::string& name, int threads) {
  static std::map<std::string, std::unique_ptr<Runner>> cache;
  const std::string key = name + "/" + std::to_string(threads);
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  const Setup& s = Get(name);
  auto r = std::make_unique<Runner>();
  r->br = std::make_unique<BlockRecon<float>>(
      s.qm.model, s.block, s.qm.plan.blocks[static_cast<size_t>(s.block)], kBatch, threads);
  r->p = r->br->InitialParams();
  for (int w = 0; w < 2; ++w) {
    r->br->Forward(r->p, s.in.data(), kBatch, s.out.data(), nullptr);
    r->br->Backward(r->p, &r->g);
  }
  return *cache.emplace(key, std::move(r)).first->second;
}

void BM_ReconIteration(benchmark::State& state, const std::string& name) {
  const Setup& s = Get(name);
  Runner& r = GetRunner(name, static_cast<int>(state.range(0)));
  for (auto _ : state) {
    const double loss = r.br->Forward(r.p, s.in.data(), kBatch, s.out.data(), nullptr);
    r.br->Backward(r.p, &r.g);
    benchmark::DoNotOptimize(loss);
    benchmark::DoNotOptimize(r.g.alpha[0].data());
  }
  state.counters["T"] = r.br->tokens();
  state.counters["D"] = r.br->dim();
}

// ADALOG_BENCH_REPS overrides the 20 repetitions (e.g. more, to profile the iterations rather than
// the calibration that sets them up).
void Args(benchmark::internal::Benchmark* b) {
  const char* reps = std::getenv("ADALOG_BENCH_REPS");
  b->Arg(1)->Arg(2)->Iterations(1)->Repetitions(reps ? std::atoi(reps) : 20)->ReportAggregatesOnly(true)->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

BENCHMARK_CAPTURE(BM_ReconIteration, digits, std::string("digits"))->Apply(Args);
BENCHMARK_CAPTURE(BM_ReconIteration, shapes, std::string("shapes"))->Apply(Args);
BENCHMARK_CAPTURE(BM_ReconIteration, deit_s, std::string("deit_s"))->Apply(Args);

}  // namespace

BENCHMARK_MAIN();
