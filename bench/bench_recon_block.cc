// One block's reconstruction (search/recon/reconstruct.h), measured: the ONNX model is calibrated
// in-process (W4A4 defaults, 32 images of TRAIN.npy chosen by SEED, as `adalog quantize`; a saved
// model file holds dequantized weights, so AdaRound could not start from it), then block BLOCK is
// reconstructed on all N_TRAIN images of TRAIN.npy, and the block output MSE of the simulated
// (fake-quant, inference) executor against the FP32 block output, on the FP32 block inputs, is
// printed before and after, on the optimisation images and on held-out images. A plain program
// (no Google Benchmark cases):
//   bench_recon_block MODEL.onnx TRAIN.npy N_TRAIN SEED TEST.npy N_TEST BLOCK ITERS [BATCH] [THREADS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "quant/error.h"
#include "runtime/executor_fp32.h"
#include "runtime/executor_sim.h"
#include "runtime/onnx_importer.h"
#include "search/calibrate.h"
#include "search/calibration_set.h"
#include "search/recon/reconstruct.h"

namespace {

using adalog::ExecutorFp32;
using adalog::ExecutorOptions;
using adalog::QuantizedModel;

constexpr int kChunk = 32;

// FP32 input and output of block b for every image.
void Capture(const adalog::VitModel& m, const std::vector<float>& images, int n, int b,
             int threads, std::vector<float>* in, std::vector<float>* out) {
  ExecutorOptions eo;
  eo.max_batch = kChunk;
  eo.num_threads = threads;
  ExecutorFp32 fp(m, eo);
  const size_t row = static_cast<size_t>(m.num_tokens()) * m.dim;
  const size_t img = images.size() / n;
  in->assign(row * n, 0.f);
  out->assign(row * n, 0.f);
  std::vector<float> x(row * kChunk);
  for (int i0 = 0; i0 < n; i0 += kChunk) {
    const int nb = std::min(kChunk, n - i0);
    fp.RunEmbed(images.data() + img * i0, nb, x.data());
    for (int k = 0; k < b; ++k) fp.RunBlock(k, x.data(), nb);
    std::copy(x.begin(), x.begin() + row * nb, in->begin() + row * i0);
    fp.RunBlock(b, x.data(), nb);
    std::copy(x.begin(), x.begin() + row * nb, out->begin() + row * i0);
  }
}

// Mean squared error per element of the simulated executor's block b against the targets.
double SimBlockMse(const QuantizedModel& qm, int b, const std::vector<float>& in,
                   const std::vector<float>& target, int n, int threads) {
  const adalog::VitModel sim = adalog::MakeSimulatedModel(qm);
  std::unique_ptr<adalog::Fp32Rewriter> rw = adalog::MakeFakeQuantRewriter(qm.plan, sim);
  ExecutorOptions eo;
  eo.max_batch = kChunk;
  eo.num_threads = threads;
  ExecutorFp32 ex(sim, eo);
  ex.SetRewriter(rw.get());
  const size_t row = static_cast<size_t>(sim.num_tokens()) * sim.dim;
  std::vector<float> x(row * kChunk);
  double sq = 0.0;
  for (int i0 = 0; i0 < n; i0 += kChunk) {
    const int nb = std::min(kChunk, n - i0);
    std::copy(in.begin() + row * i0, in.begin() + row * (i0 + nb), x.begin());
    ex.RunBlock(b, x.data(), nb);
    for (size_t k = 0; k < row * nb; ++k) {
      const double d = static_cast<double>(x[k]) - target[row * i0 + k];
      sq += d * d;
    }
  }
  return sq / (static_cast<double>(row) * n);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 9) {
    std::fprintf(stderr,
                 "usage: %s MODEL.onnx TRAIN.npy N_TRAIN SEED TEST.npy N_TEST BLOCK ITERS [BATCH] "
                 "[THREADS]\n",
                 argv[0]);
    return 2;
  }
  try {
    const adalog::VitModel fp = adalog::ImportOnnxVit(argv[1]);
    const int n_train = std::atoi(argv[3]), n_test = std::atoi(argv[6]);
    const uint32_t seed = static_cast<uint32_t>(std::atol(argv[4]));
    const int b = std::atoi(argv[7]);
    adalog::search::ReconOptions o;
    o.iters = std::atoi(argv[8]);
    if (argc > 9) o.batch = std::atoi(argv[9]);
    o.threads = argc > 10 ? std::atoi(argv[10]) : 1;
    adalog::search::CalibOptions co;  // W4A4, the method's defaults
    co.threads = o.threads;
    co.seed = seed;
    const auto calib = adalog::search::LoadCalibrationSet(argv[2], fp, co.num_images, seed);
    const QuantizedModel qm = adalog::search::Calibrate(fp, calib.images.data(), calib.count(), co);
    const auto train = adalog::search::LoadCalibrationSet(argv[2], qm.model, n_train);
    const auto test = adalog::search::LoadCalibrationSet(argv[5], qm.model, n_test);
    std::vector<float> xin, yin, xte, yte;
    // Inputs and targets from the imported FP32 model, as OptimizeModel takes them
    // (search/recon/optimize.cc): the calibrated model's fc2 bias holds the folded post-GELU
    // shift, so its block outputs are not the FP32 ones.
    Capture(fp, train.images, n_train, b, o.threads, &xin, &yin);
    Capture(fp, test.images, n_test, b, o.threads, &xte, &yte);
    const double before_tr = SimBlockMse(qm, b, xin, yin, n_train, o.threads);
    const double before_te = SimBlockMse(qm, b, xte, yte, n_test, o.threads);
    adalog::search::ReconStats st;
    const auto t0 = std::chrono::steady_clock::now();
    const auto p = adalog::search::ReconstructBlock(
        qm, b, xin.data(), yin.data(), n_train, o, &st,
        [](int it, double rec, double round) {
          std::printf("  iter %6d  rec %.6f  round %.3f\n", it, rec, round);
          std::fflush(stdout);
        },
        std::max(1, o.iters / 10));
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    QuantizedModel after = qm;
    adalog::search::ApplyBlockReconstruction(p, b, &after);
    const double after_tr = SimBlockMse(after, b, xin, yin, n_train, o.threads);
    const double after_te = SimBlockMse(after, b, xte, yte, n_test, o.threads);
    std::printf("block %d, %d iterations, batch %d, %d threads: %.3f s (%.4f s/iteration)\n", b,
                o.iters, o.batch, o.threads, secs, secs / o.iters);
    std::printf("simulated block output MSE vs FP32, optimisation images (%d): %.6g -> %.6g\n",
                n_train, before_tr, after_tr);
    std::printf("simulated block output MSE vs FP32, held-out images (%d):     %.6g -> %.6g\n",
                n_test, before_te, after_te);
  } catch (const adalog::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
