// Speed of one block-reconstruction iteration (search/recon/block_grad.h): BlockRecon<float>
// Forward + Backward at batch 32, for a block of the digits model, of the shapes model and of a
// DeiT-S-shaped random model (T=197, D=384, 6 heads, hidden 1536), at 1 and 2 threads. Each
// benchmark repetition is one iteration; the median over the repetitions is the number to quote.
// Timing only: the plans are W4A4 calibrations on 4 images (the quantizer kinds a full calibration
// picks, cheaply), the inputs the FP32 block inputs of calibration images (random images for the
// DeiT-S shape), the targets the FP32 block outputs.
//   bench_recon_speed [--benchmark_filter=digits]
// ADALOG_BENCH_REPS=N changes the repetitions of BM_ReconIteration (20).
#include <benchmark/benchmark.h>
#include <dnnl.h>
#include <omp.h>

#include <Eigen/Dense>
#include <random>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/executor_fp32.h"
#include "runtime/onnx_importer.h"
#include "search/calibrate.h"
#include "search/calibration_set.h"
#include "search/recon/block_grad.h"
#include "search/recon/recon_math_kernels.h"
#include "search/recon/reconstruct.h"
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
  // The imported FP32 model, not s.qm.model (whose fc2 bias holds the folded post-GELU shift).
  adalog::ExecutorFp32 ex(fp, eo);
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

double ProcessCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

void BM_ReconIteration(benchmark::State& state, const std::string& name) {
  const Setup& s = Get(name);
  Runner& r = GetRunner(name, static_cast<int>(state.range(0)));
  // The process's CPU time (all threads: the pool's workers too), in ms per iteration; the
  // benchmark's own "CPU" column is the calling thread's only.
  double proc_cpu_ms = 0.0;
  for (auto _ : state) {
    const double c0 = ProcessCpuMs();
    const double loss = r.br->Forward(r.p, s.in.data(), kBatch, s.out.data(), nullptr);
    r.br->Backward(r.p, &r.g);
    proc_cpu_ms += ProcessCpuMs() - c0;
    benchmark::DoNotOptimize(loss);
    benchmark::DoNotOptimize(r.g.alpha[0].data());
  }
  state.counters["T"] = r.br->tokens();
  state.counters["D"] = r.br->dim();
  state.counters["proc_cpu_ms"] = benchmark::Counter(proc_cpu_ms, benchmark::Counter::kAvgIterations);
}

// ADALOG_BENCH_REPS overrides the 20 repetitions (e.g. more, to profile the iterations rather than
// the calibration that sets them up).
void Args(benchmark::internal::Benchmark* b) {
  const char* reps = std::getenv("ADALOG_BENCH_REPS");
  b->Arg(1)->Arg(2)->Iterations(1)->Repetitions(reps ? std::atoi(reps) : 20)->ReportAggregatesOnly(true)->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

// The GEMM choice (search/recon/block_grad.cc, Gemm): the digits block's fc1 products at batch 32
// on one thread, out = in W^T (2080 x 384 x 96) and dW = gout^T in (384 x 96 x 2080), by oneDNN's
// sgemm, by Eigen (float, row-major maps, as this project builds it: baseline x86-64 flags), and by
// the plain loops block_grad.cc had before (W transposed for the forward; dW row by row).
// Measured (bench/RESULTS.md "Block reconstruction speed"): CPU ms per product 0.92 / 5.0 / 8.7
// (forward), 0.92 / 5.2 / 10.2 (dW).
enum GemmImpl { kSgemm, kEigen, kLoop };
void BM_Gemm(benchmark::State& state) {
  const int impl = static_cast<int>(state.range(0));
  const bool dw = state.range(1) != 0;
  const int64_t rows = 2080, in = 96, out = 384;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> x(rows * in), w(out * in), wt(out * in), y(rows * out), g(rows * out);
  for (float& v : x) v = u(rng);
  for (float& v : w) v = u(rng);
  for (float& v : g) v = u(rng);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) wt[i * out + o] = w[o * in + i];
  std::vector<float> dwv(out * in);
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  omp_set_num_threads(1);
  for (auto _ : state) {
    if (impl == kSgemm) {
      if (!dw) {
        dnnl_sgemm('N', 'T', rows, out, in, 1.f, x.data(), in, w.data(), in, 0.f, y.data(), out);
      } else {
        dnnl_sgemm('T', 'N', out, in, rows, 1.f, g.data(), out, x.data(), in, 0.f, dwv.data(), in);
      }
    } else if (impl == kEigen) {
      Eigen::Map<const Mat> X(x.data(), rows, in), W(w.data(), out, in), G(g.data(), rows, out);
      if (!dw) {
        Eigen::Map<Mat>(y.data(), rows, out).noalias() = X * W.transpose();
      } else {
        Eigen::Map<Mat>(dwv.data(), out, in).noalias() = G.transpose() * X;
      }
    } else if (!dw) {
      for (int64_t r = 0; r < rows; ++r) {
        float* yr = y.data() + r * out;
        std::fill(yr, yr + out, 0.f);
        for (int64_t i = 0; i < in; ++i) {
          const float xi = x[r * in + i];
          const float* wi = wt.data() + i * out;
          for (int64_t o = 0; o < out; ++o) yr[o] += xi * wi[o];
        }
      }
    } else {
      std::fill(dwv.begin(), dwv.end(), 0.f);
      for (int64_t o = 0; o < out; ++o) {
        float* acc = dwv.data() + o * in;
        for (int64_t r = 0; r < rows; ++r) {
          const float gv = g[r * out + o];
          const float* xr = x.data() + r * in;
          for (int64_t i = 0; i < in; ++i) acc[i] += gv * xr[i];
        }
      }
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::DoNotOptimize(dwv.data());
  }
}
BENCHMARK(BM_Gemm)
    ->ArgNames({"impl(0=sgemm,1=eigen,2=loop)", "dW"})
    ->ArgsProduct({{kSgemm, kEigen, kLoop}, {0, 1}})
    ->Repetitions(5)
    ->ReportAggregatesOnly(true)
    ->Unit(benchmark::kMillisecond);

// impl 0: AdaRoundRegTermsF32Ref, 1: the selected kernel; b = 11 (the middle of the 20 -> 2 decay).
void BM_RegAdam(benchmark::State& state) {
  Runner& r = GetRunner("digits", 1);
  const adalog::search::AdaRoundRegTermsF32Fn reg =
      state.range(0) == 0 ? adalog::search::AdaRoundRegTermsF32Ref
                          : adalog::search::SelectAdaRoundRegTermsF32();
  BlockTrainParams<float> p = r.p, g = r.g;
  std::vector<adalog::search::AdamState> adam(p.alpha.size());
  std::vector<std::vector<float>> terms(p.alpha.size());
  for (size_t l = 0; l < p.alpha.size(); ++l) {
    adam[l].m.assign(p.alpha[l].size(), 0.f);
    adam[l].v.assign(p.alpha[l].size(), 0.f);
    terms[l].assign(p.alpha[l].size(), 0.f);
  }
  int64_t t = 0;
  for (auto _ : state) {
    ++t;
    for (size_t l = 0; l < p.alpha.size(); ++l) {
      const int64_t n = static_cast<int64_t>(p.alpha[l].size());
      reg(p.alpha[l].data(), n, 11.0, 0.01, g.alpha[l].data(), terms[l].data());
      adalog::search::AdamStepRange(p.alpha[l].data(), g.alpha[l].data(), 0, n, 1e-3, t, &adam[l]);
    }
    benchmark::DoNotOptimize(p.alpha[0].data());
  }
}
BENCHMARK(BM_RegAdam)
    ->ArgNames({"impl(0=ref,1=selected)"})
    ->Arg(0)
    ->Arg(1)
    ->Repetitions(5)
    ->ReportAggregatesOnly(true)
    ->Unit(benchmark::kMillisecond);

BENCHMARK_CAPTURE(BM_ReconIteration, digits, std::string("digits"))->Apply(Args);
BENCHMARK_CAPTURE(BM_ReconIteration, shapes, std::string("shapes"))->Apply(Args);
BENCHMARK_CAPTURE(BM_ReconIteration, deit_s, std::string("deit_s"))->Apply(Args);

}  // namespace

BENCHMARK_MAIN();
