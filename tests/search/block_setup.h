// The tiny reconstruction setup shared by the block-reconstruction tests (block_grad_test.cc,
// recon_torch_test.cc): a random ViT of depth 6 whose block b carries the hand plan's quantizer
// choice b (tests/util/sim_hand_plan.h: AdaLog / log2 / log-sqrt2 / uniform / FP32 probabilities,
// shifted log (folded or not), twin or uniform post-GELU), its W4A4 hand plan, and every block's
// FP32 input and output; plus the perturbation that moves a starting point off the calibrated one.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "runtime/executor_fp32.h"
#include "runtime/quant_plan.h"
#include "runtime/vit_model.h"
#include "search/recon/block_grad.h"
#include "tests/util/exec_random_vit.h"
#include "tests/util/sim_hand_plan.h"

namespace adalog::search::recon_test {

struct BlockSetup {
  QuantizedModel qm;
  std::vector<std::vector<float>> in, out;  // per block: [batch * tokens][dim]
  int batch = 0;
};

// dim (2 heads), 4 patches + cls = 5 tokens, mlp ratio 2, `gelu` everywhere, seeded.
inline BlockSetup MakeSetup(int dim, int batch, GeluKind gelu, uint32_t seed) {
  testing_util::RandomVitSpec spec;
  spec.Shape(dim, 2, 6, 4, 2, 3);
  spec.mlp_ratio = 2;
  spec.gelu = gelu;
  spec.seed = seed;
  const VitModel m = testing_util::MakeRandomVit(spec);
  const std::vector<float> images = testing_util::RandomImages(m, batch, seed + 100);
  BlockSetup s;
  s.batch = batch;
  s.qm = testing_util::MakeHandPlan(m, images, batch, 4, 4);
  ExecutorOptions eo;
  eo.max_batch = batch;
  eo.num_threads = 1;
  // Inputs and targets from the FP32 model itself, as OptimizeModel takes them
  // (search/recon/optimize.cc): the plan's model may hold a folded post-GELU shift in fc2's bias.
  ExecutorFp32 fp(m, eo);
  std::vector<float> x(static_cast<size_t>(batch) * m.num_tokens() * m.dim);
  fp.RunEmbed(images.data(), batch, x.data());
  for (size_t b = 0; b < m.blocks.size(); ++b) {
    s.in.push_back(x);
    fp.RunBlock(static_cast<int>(b), x.data(), batch);
    s.out.push_back(x);
  }
  return s;
}

// Moves the starting point off the calibrated one so that every gradient is generic: alphas
// perturbed, step sizes shrunk so that some elements clamp (the log quantizers' scale gradient
// comes only from elements above the scale).
template <typename T>
void Perturb(BlockTrainParams<T>* p, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  for (auto& a : p->alpha)
    for (T& v : a) v += static_cast<T>(u(rng));
  for (int a = 0; a < kNumReconActs; ++a) {
    const double f = a == kActProbs ? 0.4 : (a == kActFc2In ? 0.6 : 0.8);
    for (T& s : p->act_scale[a]) s *= static_cast<T>(f);
  }
}

}  // namespace adalog::search::recon_test
