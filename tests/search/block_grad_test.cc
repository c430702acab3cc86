// The differentiable block of block reconstruction (search/recon/block_grad.h): its backward
// against central finite differences in double for every parameter kind (AdaRound alphas of the
// four Linears, every activation step size, the block input), on tiny random blocks carrying
// each quantizer kind of the hand plan; and bytes across thread counts.
#include "search/recon/block_grad.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "quant/error.h"
#include "runtime/executor_fp32.h"
#include "runtime/executor_sim.h"
#include "search/recon/reconstruct.h"
#include "runtime/cpu_features.h"
#include "search/recon/ste_batch.h"
#include "search/recon/ste_batch_kernels.h"
#include "tests/search/block_setup.h"
#include "tests/search/central_difference.h"
#include "tests/util/exec_random_vit.h"
#include "tests/util/sim_hand_plan.h"

namespace adalog::search {
namespace {

using recon_test::BlockSetup;
using recon_test::MakeSetup;
using recon_test::Perturb;

std::vector<double> ToDouble(const std::vector<float>& v) { return {v.begin(), v.end()}; }

using recon_test::CheckTensor;
using Err = recon_test::GradError;

struct GradCase {
  int block;
  GeluKind gelu;
};

class BlockGradCheck : public ::testing::TestWithParam<GradCase> {};

// Normalised tolerance of the checks: central differences in double with steps 1e-6 (relative)
// have truncation and cancellation errors near 1e-9 of the tensor's largest gradient; a wrong
// term changes whole elements by O(1) of it.
constexpr double kTol = 1e-6;

TEST_P(BlockGradCheck, MatchesCentralDifferences) {
  const GradCase c = GetParam();
  const BlockSetup s = MakeSetup(12, 2, c.gelu, 7);
  BlockRecon<double> br(s.qm.model, c.block, s.qm.plan.blocks[static_cast<size_t>(c.block)],
                        s.batch, 1);
  BlockTrainParams<double> p = br.InitialParams();
  Perturb(&p, 5 + static_cast<uint32_t>(c.block));
  std::vector<double> x = ToDouble(s.in[static_cast<size_t>(c.block)]);
  const std::vector<double> y = ToDouble(s.out[static_cast<size_t>(c.block)]);
  const double base = br.Forward(p, x.data(), s.batch, y.data(), nullptr, SteMode::kRecord);
  ASSERT_GT(base, 0.0);
  BlockTrainParams<double> g;
  std::vector<double> dx(x.size());
  br.Backward(p, &g, dx.data());
  // The frozen surrogate equals the straight-through forward at the base point.
  EXPECT_EQ(br.Forward(p, x.data(), s.batch, y.data(), nullptr, SteMode::kReplay), base);
  auto loss = [&] { return br.Forward(p, x.data(), s.batch, y.data(), nullptr, SteMode::kReplay); };

  for (int l = 0; l < kNumReconLinears; ++l) {
    const Err e = CheckTensor(&p.alpha[l], g.alpha[l], 0.0, 1e-6, loss);
    std::printf("block %d gelu %d alpha %-5s max rel err %.3g (max |g| %.3g, %d/%zu nonzero)\n",
                c.block, static_cast<int>(c.gelu), ReconLinearName(l), e.max_norm, e.max_abs_fd,
                e.nonzero, g.alpha[l].size());
    EXPECT_LT(e.max_norm, kTol) << ReconLinearName(l);
    EXPECT_GT(e.max_abs_fd, 1e-9) << ReconLinearName(l);
    EXPECT_GT(e.nonzero, static_cast<int>(g.alpha[l].size()) / 4) << ReconLinearName(l);
  }
  int scales_checked = 0;
  for (int a = 0; a < kNumReconActs; ++a) {
    if (p.act_scale[a].empty()) continue;
    const Err e = CheckTensor(&p.act_scale[a], g.act_scale[a], 1e-6, 0.0, loss);
    std::printf("block %d gelu %d scale %-7s max rel err %.3g (max |g| %.3g)\n", c.block,
                static_cast<int>(c.gelu), ReconActName(a), e.max_norm, e.max_abs_fd);
    EXPECT_LT(e.max_norm, kTol) << ReconActName(a);
    EXPECT_GT(e.max_abs_fd, 1e-9) << ReconActName(a);
    ++scales_checked;
  }
  EXPECT_GE(scales_checked, 7);  // every act but (block 5) the FP32 probabilities
  const Err ex = CheckTensor(&x, dx, 0.0, 1e-6, loss);
  std::printf("block %d gelu %d input x      max rel err %.3g (max |g| %.3g)\n", c.block,
              static_cast<int>(c.gelu), ex.max_norm, ex.max_abs_fd);
  EXPECT_LT(ex.max_norm, kTol);
  EXPECT_GT(ex.nonzero, static_cast<int>(x.size()) / 2);
}

INSTANTIATE_TEST_SUITE_P(
    Blocks, BlockGradCheck,
    ::testing::Values(GradCase{0, GeluKind::kErf},   // AdaLog / Shift-AdaLog, shift folded
                      GradCase{1, GeluKind::kErf},   // log2 / Shift-log2, not folded
                      GradCase{3, GeluKind::kErf},   // uniform / uniform
                      GradCase{4, GeluKind::kErf},   // AdaLog / Shift-AdaLog, not folded
                      GradCase{5, GeluKind::kErf},   // FP32 probabilities / Shift-log-sqrt2
                      GradCase{0, GeluKind::kTanh}),
    [](const ::testing::TestParamInfo<GradCase>& i) {
      return "block" + std::to_string(i.param.block) +
             (i.param.gelu == GeluKind::kErf ? "_erf" : "_tanh");
    });

// QDrop (search/recon/qdrop.h): with half of every activation quantizer's elements left
// unquantized, the backward still matches central differences (the mask is a function of the
// element index, so the record and replay passes drop the same elements).
TEST(BlockGrad, QDropMatchesCentralDifferences) {
  const BlockSetup s = MakeSetup(12, 2, GeluKind::kErf, 7);
  for (int b : {0, 3}) {
    BlockRecon<double> br(s.qm.model, b, s.qm.plan.blocks[static_cast<size_t>(b)], s.batch, 1);
    br.SetDrop(QDropMask(0.5, QDropMask::KeyFor(4, 17)));
    BlockTrainParams<double> p = br.InitialParams();
    Perturb(&p, 5 + static_cast<uint32_t>(b));
    std::vector<double> x = ToDouble(s.in[static_cast<size_t>(b)]);
    const std::vector<double> y = ToDouble(s.out[static_cast<size_t>(b)]);
    const double base = br.Forward(p, x.data(), s.batch, y.data(), nullptr, SteMode::kRecord);
    BlockTrainParams<double> g;
    br.Backward(p, &g);
    auto loss = [&] { return br.Forward(p, x.data(), s.batch, y.data(), nullptr, SteMode::kReplay); };
    EXPECT_EQ(loss(), base);
    for (int l = 0; l < kNumReconLinears; ++l) {
      const Err e = CheckTensor(&p.alpha[l], g.alpha[l], 0.0, 1e-6, loss);
      EXPECT_LT(e.max_norm, kTol) << b << " " << ReconLinearName(l);
      EXPECT_GT(e.nonzero, static_cast<int>(g.alpha[l].size()) / 4) << ReconLinearName(l);
    }
    for (int a = 0; a < kNumReconActs; ++a) {
      if (p.act_scale[a].empty()) continue;
      const Err e = CheckTensor(&p.act_scale[a], g.act_scale[a], 1e-6, 0.0, loss);
      EXPECT_LT(e.max_norm, kTol) << b << " " << ReconActName(a);
    }
  }
}

// Dropping every element leaves the activations unquantized: the output does not depend on the
// step sizes and their gradients are exactly 0; dropping none gives the same bytes as no mask.
TEST(BlockGrad, QDropAllAndNone) {
  const BlockSetup s = MakeSetup(12, 2, GeluKind::kErf, 7);
  const int b = 0;
  const std::vector<float>& x = s.in[b];
  const std::vector<float>& y = s.out[b];
  BlockRecon<float> br(s.qm.model, b, s.qm.plan.blocks[b], s.batch, 2);
  BlockTrainParams<float> p = br.InitialParams();
  Perturb(&p, 3);
  std::vector<float> out0(x.size()), out1(x.size()), out2(x.size());
  const double plain = br.Forward(p, x.data(), s.batch, y.data(), out0.data());
  br.SetDrop(QDropMask(0.0, 99));
  EXPECT_EQ(br.Forward(p, x.data(), s.batch, y.data(), out1.data()), plain);
  EXPECT_EQ(out0, out1);
  br.SetDrop(QDropMask(1.0, 99));
  br.Forward(p, x.data(), s.batch, y.data(), out1.data());
  BlockTrainParams<float> g;
  br.Backward(p, &g);
  for (int a = 0; a < kNumReconActs; ++a) {
    for (float v : g.act_scale[a]) EXPECT_EQ(v, 0.f) << ReconActName(a);
  }
  BlockTrainParams<float> q = p;
  for (auto& sc : q.act_scale)
    for (float& v : sc) v *= 0.5f;
  br.Forward(q, x.data(), s.batch, y.data(), out2.data());
  EXPECT_EQ(out1, out2);
  EXPECT_NE(out0, out1);
}

// The mask drops the requested fraction, independently per site and per key.
TEST(BlockGrad, QDropMaskFraction) {
  const QDropMask m(0.5, QDropMask::KeyFor(1, 1)), m2(0.5, QDropMask::KeyFor(1, 2));
  const QDropMask m3(0.25, QDropMask::KeyFor(1, 1));
  int n = 0, same_key = 0, same_site = 0, q = 0;
  constexpr int kN = 200000;
  for (int e = 0; e < kN; ++e) {
    n += m.Dropped(0, e);
    same_key += m.Dropped(0, e) == m2.Dropped(0, e);
    same_site += m.Dropped(0, e) == m.Dropped(1, e);
    q += m3.Dropped(3, e);
  }
  EXPECT_NEAR(n / double(kN), 0.5, 0.005);
  EXPECT_NEAR(same_key / double(kN), 0.5, 0.005);   // another iteration: an independent mask
  EXPECT_NEAR(same_site / double(kN), 0.5, 0.005);  // another site: an independent mask
  EXPECT_NEAR(q / double(kN), 0.25, 0.005);
  EXPECT_FALSE(QDropMask(0.0, 5).active());
  EXPECT_TRUE(QDropMask(1.0, 5).Dropped(2, 12345));
}

// The dispatched mask kernels give QDropMask::Dropped's bits, tails and large indices included.
TEST(BlockGrad, QDropBitsKernelsAgree) {
  const bool avx512 = ActiveIsaLevel() >= IsaLevel::kAvx512;
  for (double prob : {0.0, 0.1, 0.5, 0.9, 1.0}) {
    const QDropMask m(prob, QDropMask::KeyFor(7, 1234));
    for (int site : {0, 3, 7}) {
      for (int64_t e0 : {int64_t{0}, int64_t{5}, int64_t{1} << 40}) {
        for (int64_t n : {1, 7, 8, 9, 63, 1000}) {
          std::vector<uint8_t> want(static_cast<size_t>(n)), got(want.size(), 9);
          for (int64_t i = 0; i < n; ++i) want[static_cast<size_t>(i)] = m.Dropped(site, e0 + i);
          QDropBitsRef(m.key(), m.threshold(), site, e0, n, got.data());
          EXPECT_EQ(got, want) << prob << " " << site << " " << e0 << " " << n;
          if (avx512) {
            std::fill(got.begin(), got.end(), 9);
            QDropBitsAvx512(m.key(), m.threshold(), site, e0, n, got.data());
            EXPECT_EQ(got, want) << "avx512 " << prob << " " << site << " " << e0 << " " << n;
          }
        }
      }
    }
  }
}

TEST(BlockGrad, TwinPostGeluIsRefused) {
  const BlockSetup s = MakeSetup(12, 1, GeluKind::kErf, 7);
  EXPECT_THROW(BlockRecon<float>(s.qm.model, 2, s.qm.plan.blocks[2], 1, 1), Error);
}

// Forward output, loss and every gradient of blocks 0 and 3 of `s`: the same bytes on 1 ..
// `threads` threads, and no alpha gradient all zero.
void ExpectSameBytesForThreads(const BlockSetup& s, int threads, double drop = 0.0) {
  for (int b : {0, 3}) {
    std::vector<std::vector<float>> out(threads), dx(threads);
    std::vector<BlockTrainParams<float>> g(threads);
    std::vector<double> loss(threads);
    for (int t = 0; t < threads; ++t) {
      BlockRecon<float> br(s.qm.model, b, s.qm.plan.blocks[static_cast<size_t>(b)], s.batch, t + 1);
      br.SetDrop(QDropMask(drop, 77));
      BlockTrainParams<float> p = br.InitialParams();
      Perturb(&p, 3);
      const std::vector<float>& x = s.in[static_cast<size_t>(b)];
      out[t].resize(x.size());
      dx[t].resize(x.size());
      loss[t] = br.Forward(p, x.data(), s.batch, s.out[static_cast<size_t>(b)].data(), out[t].data());
      br.Backward(p, &g[t], dx[t].data());
    }
    EXPECT_GT(loss[0], 0.0);
    for (int t = 1; t < threads; ++t) {
      EXPECT_EQ(std::memcmp(&loss[0], &loss[t], sizeof(double)), 0) << t + 1;
      EXPECT_EQ(out[0], out[t]) << t + 1;
      EXPECT_EQ(dx[0], dx[t]) << t + 1;
      for (int l = 0; l < kNumReconLinears; ++l) {
        EXPECT_EQ(g[0].alpha[l], g[t].alpha[l]) << ReconLinearName(l) << " " << t + 1;
      }
      for (int a = 0; a < kNumReconActs; ++a) EXPECT_EQ(g[0].act_scale[a], g[t].act_scale[a]);
    }
    for (int l = 0; l < kNumReconLinears; ++l) {
      EXPECT_GT(*std::max_element(g[0].alpha[l].begin(), g[0].alpha[l].end()), 0.f);
    }
  }
}

// Forward output, loss and every gradient: the same bytes on 1 and 2 threads.
TEST(BlockGrad, SameBytesForOneAndTwoThreads) {
  ExpectSameBytesForThreads(MakeSetup(16, 3, GeluKind::kErf, 9), 2);
}
TEST(BlockGrad, QDropSameBytesForOneTwoThreeThreads) {
  ExpectSameBytesForThreads(MakeSetup(16, 3, GeluKind::kErf, 9), 3, 0.5);
}

}  // namespace
}  // namespace adalog::search

namespace adalog::search {
namespace {

// Writing back the starting point (h(alpha) = rounding rest, so [alpha >= 0] rounds to nearest)
// leaves the simulated weights as calibrated, and re-folds the post-GELU shift to the same bias.
TEST(BlockRecon, ApplyingTheStartingPointKeepsTheQuantizedModel) {
  const BlockSetup s = MakeSetup(12, 2, GeluKind::kErf, 7);
  for (int b : {0, 1, 3}) {  // shift folded, shift not folded, uniform post-GELU
    BlockRecon<float> br(s.qm.model, b, s.qm.plan.blocks[static_cast<size_t>(b)], 1, 1);
    QuantizedModel after = s.qm;
    ApplyBlockReconstruction(br.InitialParams(), b, &after);
    const VitModel sim0 = MakeSimulatedModel(s.qm), sim1 = MakeSimulatedModel(after);
    const BlockParams& b0 = sim0.blocks[static_cast<size_t>(b)];
    const BlockParams& b1 = sim1.blocks[static_cast<size_t>(b)];
    EXPECT_EQ(b0.qkv.weight, b1.qkv.weight) << b;
    EXPECT_EQ(b0.proj.weight, b1.proj.weight) << b;
    EXPECT_EQ(b0.fc1.weight, b1.fc1.weight) << b;
    EXPECT_EQ(b0.fc2.weight, b1.fc2.weight) << b;
    EXPECT_EQ(b0.fc2.bias.size(), b1.fc2.bias.size());
    for (size_t o = 0; o < b0.fc2.bias.size(); ++o) {
      // Unfold + fold in float32: the bias up to a few ulps of the rowsum term.
      EXPECT_NEAR(b0.fc2.bias[o], b1.fc2.bias[o], 1e-5f) << b << " " << o;
    }
    EXPECT_EQ(after.plan.blocks[static_cast<size_t>(b)].fc2.input.shift_folded,
              s.qm.plan.blocks[static_cast<size_t>(b)].fc2.input.shift_folded);
  }
}

// A short reconstruction of one tiny block lowers its straight-through loss and the simulated
// (inference) block output error on the images it trained on.
TEST(BlockRecon, ShortRunLowersTheLoss) {
  const BlockSetup s = MakeSetup(12, 4, GeluKind::kErf, 7);
  const int b = 0;
  ReconOptions o;
  o.iters = 300;
  o.batch = 2;
  o.lr_act = 1e-3;  // raised from the official 4e-5 so that 300 iterations move the step sizes
  ReconStats st;
  const BlockTrainParams<float> p = ReconstructBlock(
      s.qm, b, s.in[b].data(), s.out[b].data(), s.batch, o, &st);
  EXPECT_GT(st.first_loss, 0.0);
  EXPECT_LT(st.last_loss, 0.8 * st.first_loss);
  QuantizedModel after = s.qm;
  ApplyBlockReconstruction(p, b, &after);
  auto sim_err = [&](const QuantizedModel& qm) {
    const VitModel sim = MakeSimulatedModel(qm);
    auto rw = MakeFakeQuantRewriter(qm.plan, sim);
    ExecutorOptions eo;
    eo.max_batch = s.batch;
    eo.num_threads = 1;
    ExecutorFp32 ex(sim, eo);
    ex.SetRewriter(rw.get());
    std::vector<float> x = s.in[b];
    ex.RunBlock(b, x.data(), s.batch);
    double e = 0.0;
    for (size_t i = 0; i < x.size(); ++i) e += (x[i] - s.out[b][i]) * (x[i] - s.out[b][i]);
    return e;
  };
  const double before = sim_err(s.qm), after_err = sim_err(after);
  std::printf("tiny block 0: straight-through loss %.5g -> %.5g, simulated squared error %.5g -> %.5g\n",
              st.first_loss, st.last_loss, before, after_err);
  EXPECT_LT(after_err, before);
}

}  // namespace
}  // namespace adalog::search

namespace adalog::search {
namespace {

// With every alpha saturated to the nearest rounding (h exactly 0 or 1), the training forward is
// the judge's computation wherever the training levels are the inference levels (uniform, log2):
// the simulated executor's block output differs from it only by float evaluation order (which can
// move an element across a rounding boundary), far less than the quantization error itself. A
// quantizer at a wrong tap or with a wrong formula would not be. (Measured, this test's print:
// sums of squares 2.9e-12 / 4.0e-12 against 13.9 / 11.9 for blocks 1 / 3, no boundary crossed.)
TEST(BlockRecon, HardRoundedForwardMatchesTheSimulatedExecutor) {
  const BlockSetup s = MakeSetup(16, 3, GeluKind::kErf, 9);
  for (int b : {1, 3}) {  // log2 probs / Shift-log2 fc2 input; uniform / uniform
    const QuantizedModel& qm = s.qm;
    BlockRecon<float> br(qm.model, b, qm.plan.blocks[static_cast<size_t>(b)], s.batch, 1);
    BlockTrainParams<float> p = br.InitialParams();
    const BlockParams& mb = qm.model.blocks[static_cast<size_t>(b)];
    const BlockQuant& bq = qm.plan.blocks[static_cast<size_t>(b)];
    const LinearParams* lin[kNumReconLinears] = {&mb.qkv, &mb.proj, &mb.fc1, &mb.fc2};
    const UniformPerChannel* wq[kNumReconLinears] = {&bq.qkv.weight, &bq.proj.weight,
                                                    &bq.fc1.weight, &bq.fc2.weight};
    for (int l = 0; l < kNumReconLinears; ++l) {
      for (int o = 0; o < lin[l]->out; ++o) {
        for (int i = 0; i < lin[l]->in; ++i) {
          const size_t k = static_cast<size_t>(o) * lin[l]->in + i;
          const float t = lin[l]->weight[k] / wq[l]->scales[static_cast<size_t>(o)];
          p.alpha[l][k] = std::nearbyint(t) > std::floor(t) ? 10.f : -10.f;
        }
      }
    }
    std::vector<float> out(s.in[b].size());
    br.Forward(p, s.in[b].data(), s.batch, nullptr, out.data());
    const VitModel sim = MakeSimulatedModel(qm);
    auto rw = MakeFakeQuantRewriter(qm.plan, sim);
    ExecutorOptions eo;
    eo.max_batch = s.batch;
    eo.num_threads = 1;
    ExecutorFp32 ex(sim, eo);
    ex.SetRewriter(rw.get());
    std::vector<float> ref = s.in[b];
    ex.RunBlock(b, ref.data(), s.batch);
    double d_sim = 0.0, d_fp = 0.0;
    for (size_t i = 0; i < out.size(); ++i) {
      d_sim += (out[i] - ref[i]) * (out[i] - ref[i]);
      d_fp += (ref[i] - s.out[b][i]) * (ref[i] - s.out[b][i]);
    }
    std::printf("block %d: training forward vs simulated %.3g, simulated vs FP32 %.3g (sum sq)\n", b,
                d_sim, d_fp);
    EXPECT_GT(d_fp, 0.0);
    EXPECT_LT(d_sim, 1e-2 * d_fp) << b;
  }
}

}  // namespace
}  // namespace adalog::search

namespace adalog::search {
namespace {

// The whole loop (sampling, forward, backward, regulariser, Adam) gives the same bytes on 1 and 2
// threads.
TEST(BlockRecon, LoopSameBytesForOneAndTwoThreads) {
  const BlockSetup s = MakeSetup(16, 4, GeluKind::kErf, 9);
  BlockTrainParams<float> p[2];
  for (int t = 0; t < 2; ++t) {
    ReconOptions o;
    o.iters = 30;  // regulariser on from iteration 6
    o.batch = 3;
    o.threads = t + 1;
    p[t] = ReconstructBlock(s.qm, 0, s.in[0].data(), s.out[0].data(), s.batch, o, nullptr);
  }
  const BlockRecon<float> br(s.qm.model, 0, s.qm.plan.blocks[0], 1, 1);
  const BlockTrainParams<float> p0 = br.InitialParams();
  for (int l = 0; l < kNumReconLinears; ++l) {
    EXPECT_EQ(p[0].alpha[l], p[1].alpha[l]) << ReconLinearName(l);
    EXPECT_NE(p[0].alpha[l], p0.alpha[l]) << ReconLinearName(l);  // it did move
  }
  for (int a = 0; a < kNumReconActs; ++a) {
    EXPECT_EQ(p[0].act_scale[a], p[1].act_scale[a]) << ReconActName(a);
    if (p0.act_scale[a].empty()) continue;
    if (a == kActProbs) {
      // Block 0's probabilities are AdaLog with scale 1: no probability exceeds it, so the exact
      // straight-through gradient of the scale is 0 and it stays (docs/method.md §10).
      EXPECT_EQ(p[0].act_scale[a], p0.act_scale[a]);
    } else {
      EXPECT_NE(p[0].act_scale[a], p0.act_scale[a]) << ReconActName(a);
    }
  }
}

}  // namespace
}  // namespace adalog::search

namespace adalog::search {
namespace {

// max |a - b| / max |b| over a tensor (b the double reference; 0 for an empty pair).
double MaxRelDiff(const std::vector<float>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num = std::max(num, std::fabs(static_cast<double>(a[i]) - b[i]));
    den = std::max(den, std::fabs(b[i]));
  }
  return den > 0.0 ? num / den : num;
}

// The float path that training runs (oneDNN sgemm on fixed row chunks / channel blocks) against
// the double path that the gradient checks above verify (plain loops), from the same parameters:
// output, loss and every gradient. Batch 24 of 5 tokens gives 120 rows, so the Linears run as two
// row chunks and qkv / fc1 as several channel blocks. Tolerance: float rounding of sums of at most
// 120 products (dW) through a dozen ops gives relative differences of order 1e-6 (measured, this
// test's print: at most 2e-6 over all tensors of both blocks); a wrong transpose, leading dimension
// or chunk offset in one GEMM changes whole elements by O(1) of the tensor's largest value. A
// straight-through rounding that lands on the other side of a boundary in float than in double
// would move single elements by a quantization step; none does on this data.
TEST(BlockGrad, FloatPathMatchesDoublePath) {
  const BlockSetup s = MakeSetup(16, 24, GeluKind::kErf, 9);
  constexpr double kFloatTol = 1e-4;
  for (int b : {0, 3}) {  // AdaLog / Shift-AdaLog folded; uniform / uniform
    const BlockQuant& bq = s.qm.plan.blocks[static_cast<size_t>(b)];
    BlockRecon<float> bf(s.qm.model, b, bq, s.batch, 2);
    BlockRecon<double> bd(s.qm.model, b, bq, s.batch, 1);
    BlockTrainParams<float> pf = bf.InitialParams();
    Perturb(&pf, 3);
    BlockTrainParams<double> pd;
    for (int l = 0; l < kNumReconLinears; ++l) pd.alpha[l] = ToDouble(pf.alpha[l]);
    for (int a = 0; a < kNumReconActs; ++a) pd.act_scale[a] = ToDouble(pf.act_scale[a]);
    const std::vector<float>& x = s.in[static_cast<size_t>(b)];
    const std::vector<float>& y = s.out[static_cast<size_t>(b)];
    const std::vector<double> xd = ToDouble(x), yd = ToDouble(y);
    std::vector<float> of(x.size()), dxf(x.size());
    std::vector<double> od(x.size()), dxd(x.size());
    const double lf = bf.Forward(pf, x.data(), s.batch, y.data(), of.data());
    const double ld = bd.Forward(pd, xd.data(), s.batch, yd.data(), od.data());
    BlockTrainParams<float> gf;
    BlockTrainParams<double> gd;
    bf.Backward(pf, &gf, dxf.data());
    bd.Backward(pd, &gd, dxd.data());
    ASSERT_GT(ld, 0.0);
    double worst = std::fabs(lf - ld) / ld;
    EXPECT_LT(std::fabs(lf - ld) / ld, kFloatTol) << b;
    EXPECT_LT(MaxRelDiff(of, od), kFloatTol) << b;
    worst = std::max(worst, MaxRelDiff(of, od));
    EXPECT_LT(MaxRelDiff(dxf, dxd), kFloatTol) << b;
    worst = std::max(worst, MaxRelDiff(dxf, dxd));
    for (int l = 0; l < kNumReconLinears; ++l) {
      const double e = MaxRelDiff(gf.alpha[l], gd.alpha[l]);
      EXPECT_LT(e, kFloatTol) << b << " " << ReconLinearName(l);
      EXPECT_GT(*std::max_element(gd.alpha[l].begin(), gd.alpha[l].end()), 0.0);
      worst = std::max(worst, e);
    }
    int scales = 0;
    for (int a = 0; a < kNumReconActs; ++a) {
      if (gd.act_scale[a].empty()) continue;
      const double e = MaxRelDiff(gf.act_scale[a], gd.act_scale[a]);
      EXPECT_LT(e, kFloatTol) << b << " " << ReconActName(a);
      worst = std::max(worst, e);
      ++scales;
    }
    EXPECT_GE(scales, 8);
    std::printf("block %d: float path vs double path, largest relative difference %.3g\n", b,
                worst);
  }
}

// Forward output, loss and every gradient: the same bytes on 1, 2 and 3 threads, at a batch
// where the Linears run as several row chunks and channel blocks (120 rows, kRowChunk 64).
TEST(BlockGrad, SameBytesForOneTwoThreeThreadsSeveralChunks) {
  ExpectSameBytesForThreads(MakeSetup(16, 24, GeluKind::kErf, 9), 3);
}

}  // namespace
}  // namespace adalog::search

namespace adalog::search {
namespace {

// Values that exercise every branch: random spreads around the step size, exact ties (k + 0.5)
// steps, both clamps, zero and negative zero, tiny values, large ones past the fast rounding's
// range.
template <typename T>
std::vector<T> SteProbeValues(T s) {
  std::vector<T> v = {T(0), -T(0), s, -s, T(1e-20), T(-1e-20), T(3e7), T(-3e7), T(1e9),
                      T(5000000.5) * s, T(-6000000.5) * s, T(8388607.5) * s};
  for (int k = -40; k <= 40; ++k) v.push_back((static_cast<T>(k) + T(0.5)) * s);
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  for (int i = 0; i < 4000; ++i) {
    const double e = std::pow(2.0, 12.0 * u(rng));  // magnitudes 2^-12 .. 2^12 steps
    v.push_back(static_cast<T>(u(rng) * e * static_cast<double>(s)));
  }
  return v;
}

template <typename T>
void ExpectSameRecord(const SteRecord<T>& a, const SteRecord<T>& b, size_t i) {
  EXPECT_EQ(std::memcmp(&a.offset, &b.offset, sizeof(T)), 0) << i;
  EXPECT_EQ(a.region, b.region) << i;
}

template <typename T>
void CheckUniformBatch(int32_t z, int32_t cmin, int32_t cmax) {
  const T s = static_cast<T>(0.037);
  const std::vector<T> in = SteProbeValues(s);
  int in_range = 0;
  for (const bool record : {true, false}) {  // two code paths: with and without a record
    std::vector<T> x = in, dx(in.size()), ds(in.size());
    std::vector<SteRecord<T>> rec(in.size());
    UniformSteBatch(x.data(), static_cast<int64_t>(x.size()), s, z, cmin, cmax, dx.data(),
                    ds.data(), record ? rec.data() : nullptr);
    for (size_t i = 0; i < in.size(); ++i) {
      T rdx, rds;
      SteRecord<T> r;
      const T ref = UniformSte(in[i], s, z, cmin, cmax, &rdx, &rds, &r, false);
      EXPECT_EQ(std::memcmp(&ref, &x[i], sizeof(T)), 0) << i << " " << in[i] << " " << record;
      EXPECT_EQ(rdx, dx[i]) << i;
      EXPECT_EQ(std::memcmp(&rds, &ds[i], sizeof(T)), 0) << i << " " << record;
      if (record) ExpectSameRecord(r, rec[i], i);
      in_range += r.region == SteRegion::kIn;
    }
  }
  in_range /= 2;
  EXPECT_GT(in_range, 100);
  EXPECT_LT(in_range, static_cast<int>(in.size()) - 100);
}

template <typename T>
void CheckLogBatch(int bits, int num, int den, T shift, bool folded) {
  const T s = static_cast<T>(0.8);
  std::vector<T> in = SteProbeValues(s);
  for (T& v : in) v = std::fabs(v) - shift;  // mostly non-negative shifted inputs, some below
  std::vector<T> levels(static_cast<size_t>(1) << bits);
  LogSteLevels(bits, num, den, levels.data());
  std::vector<T> x = in, dx(in.size()), ds(in.size());
  std::vector<SteRecord<T>> rec(in.size());
  LogSteBatch(x.data(), static_cast<int64_t>(x.size()), s, bits, num, den, shift, folded,
              levels.data(), dx.data(), ds.data(), rec.data());
  int regions[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < in.size(); ++i) {
    T rdx, rds;
    SteRecord<T> r;
    const T ref = LogSte(in[i], s, bits, num, den, shift, folded, &rdx, &rds, &r, false);
    EXPECT_EQ(std::memcmp(&ref, &x[i], sizeof(T)), 0) << i << " " << in[i];
    EXPECT_EQ(std::memcmp(&rdx, &dx[i], sizeof(T)), 0) << i;
    EXPECT_EQ(std::memcmp(&rds, &ds[i], sizeof(T)), 0) << i;
    ExpectSameRecord(r, rec[i], i);
    ++regions[static_cast<int>(r.region)];
  }
  EXPECT_GT(regions[static_cast<int>(SteRegion::kIn)], 100);
  EXPECT_GT(regions[static_cast<int>(SteRegion::kHigh)], 100);
  EXPECT_GT(regions[static_cast<int>(SteRegion::kZero)], 10);
}

// The array quantizers that training runs (ste_batch.h) give the bytes of quant/ste.h's per-element
// functions, which the gradient checks difference, for every output and record.
TEST(SteBatch, UniformSameBytesAsPerElement) {
  CheckUniformBatch<float>(8, 0, 15);    // asymmetric 4 bit
  CheckUniformBatch<float>(0, -8, 7);    // symmetric 4 bit
  CheckUniformBatch<double>(3, 0, 7);    // asymmetric 3 bit
}

// Every ISA variant of the float uniform kernel (and the one the dispatcher picks) gives the
// bytes of quant/ste.h's per-element UniformSte, at lengths with and without a scalar tail, with
// -0, NaN and infinities among the probes.
void CheckUniformKernel(UniformSteBatchF32Fn fn, const char* name, int32_t z, int32_t cmin,
                        int32_t cmax) {
  const float s = 0.037f;
  std::vector<float> all = SteProbeValues(s);
  all.push_back(std::numeric_limits<float>::quiet_NaN());
  all.push_back(-std::numeric_limits<float>::infinity());
  all.push_back(std::numeric_limits<float>::infinity());
  all.push_back(-0.3f * s);
  for (const size_t n : {all.size(), size_t{16}, size_t{37}, size_t{5}}) {
    // Take the last n probes so the special values are inside every short run.
    const std::vector<float> in(all.end() - static_cast<std::ptrdiff_t>(n), all.end());
    std::vector<float> x = in, dx(n, -7.0f), ds(n, -7.0f);  // sentinels: every slot is written
    fn(x.data(), static_cast<int64_t>(n), s, z, cmin, cmax, dx.data(), ds.data());
    int in_range = 0;
    for (size_t i = 0; i < n; ++i) {
      float rdx, rds;
      SteRecord<float> r;
      const float ref = UniformSte(in[i], s, z, cmin, cmax, &rdx, &rds, &r, false);
      EXPECT_EQ(std::memcmp(&ref, &x[i], sizeof(float)), 0) << name << " " << n << " " << i;
      EXPECT_EQ(std::memcmp(&rdx, &dx[i], sizeof(float)), 0) << name << " " << n << " " << i;
      EXPECT_EQ(std::memcmp(&rds, &ds[i], sizeof(float)), 0) << name << " " << n << " " << i;
      in_range += r.region == SteRegion::kIn;
    }
    if (n == all.size()) {
      EXPECT_GT(in_range, 100) << name;
      EXPECT_LT(in_range, static_cast<int>(n) - 100) << name;
    }
  }
}

TEST(SteBatch, UniformKernelsSameBytes) {
  for (const auto& q : {std::array<int32_t, 3>{8, 0, 15}, std::array<int32_t, 3>{0, -8, 7},
                        std::array<int32_t, 3>{3, 0, 7}}) {
    CheckUniformKernel(UniformSteBatchF32Ref, "ref", q[0], q[1], q[2]);
    CheckUniformKernel(SelectUniformSteBatchF32(), "selected", q[0], q[1], q[2]);
    if (IsaSupported(IsaLevel::kAvx512)) {
      CheckUniformKernel(UniformSteBatchF32Avx512, "avx512", q[0], q[1], q[2]);
    } else {
      std::printf("SteBatch.UniformKernelsSameBytes: no AVX-512 here, avx512 variant not run\n");
    }
  }
}

// The thresholds give LogSte's code for every float near a threshold (where a code can change)
// and along a stride through all of [1e-15, 1].
void CheckLogThresholds(int bits, int num, int den) {
  const int K = 1 << bits;
  std::vector<float> th(static_cast<size_t>(K));
  LogSteThresholdsF32(bits, num, den, th.data());
  auto code = [&](float u) {
    return RoundHalfEvenFast((-std::log2(u) * static_cast<float>(num)) / static_cast<float>(den));
  };
  auto by_th = [&](float u) {
    int r = 0;
    for (int k = 0; k < K; ++k) r += u <= th[static_cast<size_t>(k)];
    return r;
  };
  auto bits_of = [](float f) { uint32_t b; std::memcpy(&b, &f, 4); return b; };
  auto from = [](uint32_t b) { float f; std::memcpy(&f, &b, 4); return f; };
  const uint32_t b_min = bits_of(1e-15f), b_max = bits_of(1.0f);
  int64_t checked = 0, bad = 0;
  auto check = [&](uint32_t b) {
    const float u = from(b);
    const float c = code(u);
    const int want = c >= static_cast<float>(K) ? K : static_cast<int>(c);
    bad += by_th(u) != want;
    ++checked;
  };
  int inside = 0;
  for (int k = 0; k < K; ++k) {
    if (th[static_cast<size_t>(k)] < 0.0f) continue;
    ++inside;
    const uint32_t b = bits_of(th[static_cast<size_t>(k)]);
    for (int64_t d = -4096; d <= 4096; ++d) {
      const int64_t bb = static_cast<int64_t>(b) + d;
      if (bb >= b_min && bb <= b_max) check(static_cast<uint32_t>(bb));
    }
  }
  for (uint32_t b = b_min; b <= b_max; b += 199) check(b);
  check(b_max);
  EXPECT_EQ(bad, 0) << bits << " " << num << "/" << den;
  EXPECT_GT(inside, K / 2) << "thresholds inside the range";
  EXPECT_GT(checked, 2000000);
}

TEST(SteBatch, LogThresholdsGiveTheCode) {
  CheckLogThresholds(4, 1, 1);
  CheckLogThresholds(3, 2, 1);
  CheckLogThresholds(4, 37, 23);
  CheckLogThresholds(4, 37, 29);
  CheckLogThresholds(6, 37, 29);
}

// Every ISA variant of the float log kernel gives LogSte's bytes per element.
void CheckLogKernel(LogSteBatchF32Fn fn, const char* name, int bits, int num, int den, float shift,
                    bool folded, float s) {
  std::vector<float> all = SteProbeValues(s);
  for (float& v : all) v = std::fabs(v) - shift;
  if (s == 1.0f && shift == 0.0f) {  // u = x exactly: every threshold and its float neighbours
    std::vector<float> t(static_cast<size_t>(1) << bits);
    LogSteThresholdsF32(bits, num, den, t.data());
    for (const float v : t) {
      if (v < 0.0f) continue;
      all.insert(all.end(), {v, std::nextafter(v, 2.0f), std::nextafter(v, 0.0f)});
    }
  }
  // No NaN among these probes: ste_batch.h's LogSteBatch (the reference here) already returns a
  // NaN of the other sign than LogSte for a NaN input (found while writing this test; left as it
  // was). The NaN case is checked below as "NaN in, NaN out" in every variant.
  all.push_back(std::numeric_limits<float>::infinity());
  all.push_back(-std::numeric_limits<float>::infinity());
  std::vector<float> levels(static_cast<size_t>(1) << bits), th(levels.size());
  LogSteLevels(bits, num, den, levels.data());
  LogSteThresholdsF32(bits, num, den, th.data());
  for (const size_t n : {all.size(), size_t{16}, size_t{37}, size_t{5}}) {
    const std::vector<float> in(all.end() - static_cast<std::ptrdiff_t>(n), all.end());
    std::vector<float> x = in, dx(n, -7.0f), ds(n, -7.0f);  // sentinels: every slot is written
    fn(x.data(), static_cast<int64_t>(n), s, bits, num, den, shift, folded, levels.data(),
       th.data(), dx.data(), ds.data());
    int regions[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < n; ++i) {
      float rdx, rds;
      SteRecord<float> r;
      const float ref = LogSte(in[i], s, bits, num, den, shift, folded, &rdx, &rds, &r, false);
      EXPECT_EQ(std::memcmp(&ref, &x[i], sizeof(float)), 0) << name << " " << n << " " << i;
      EXPECT_EQ(std::memcmp(&rdx, &dx[i], sizeof(float)), 0) << name << " " << n << " " << i;
      EXPECT_EQ(std::memcmp(&rds, &ds[i], sizeof(float)), 0) << name << " " << n << " " << i;
      ++regions[static_cast<int>(r.region)];
    }
    if (n == all.size()) {
      std::vector<float> nx(37, 0.3f), ndx(37), nds(37);
      nx[3] = nx[20] = nx[36] = std::numeric_limits<float>::quiet_NaN();
      fn(nx.data(), 37, s, bits, num, den, shift, folded, levels.data(), th.data(), ndx.data(),
         nds.data());
      for (const int j : {3, 20, 36}) EXPECT_TRUE(std::isnan(nx[static_cast<size_t>(j)])) << name;
      EXPECT_FALSE(std::isnan(nx[4])) << name;
      EXPECT_GT(regions[static_cast<int>(SteRegion::kIn)], 100) << name;
      EXPECT_GT(regions[static_cast<int>(SteRegion::kHigh)], 100) << name;
      EXPECT_GT(regions[static_cast<int>(SteRegion::kZero)], bits <= 4 ? 10 : 0) << name;
    }
  }
}

TEST(SteBatch, LogKernelsSameBytes) {
  struct Case { int bits, num, den; float shift; bool folded; float s; };
  for (const Case& c : {Case{4, 1, 1, 0.f, false, 0.8f}, Case{3, 2, 1, 0.f, false, 0.8f},
                        Case{4, 37, 23, 0.17f, true, 0.8f}, Case{4, 37, 29, 0.17f, false, 0.8f},
                        Case{5, 37, 29, 0.17f, false, 0.8f}, Case{4, 37, 23, 0.f, false, 1.0f},
                        Case{3, 2, 1, 0.f, false, 1.0f}}) {
    CheckLogKernel(LogSteBatchF32Ref, "ref", c.bits, c.num, c.den, c.shift, c.folded, c.s);
    CheckLogKernel(SelectLogSteBatchF32(), "selected", c.bits, c.num, c.den, c.shift, c.folded,
                   c.s);
    if (IsaSupported(IsaLevel::kAvx512)) {
      CheckLogKernel(LogSteBatchF32Avx512, "avx512", c.bits, c.num, c.den, c.shift, c.folded, c.s);
    }
  }
}

TEST(SteBatch, LogSameBytesAsPerElement) {
  CheckLogBatch<float>(4, 1, 1, 0.f, false);      // log2 probabilities
  CheckLogBatch<float>(3, 2, 1, 0.f, false);      // log-sqrt2
  CheckLogBatch<float>(4, 37, 23, 0.17f, true);   // AdaLog-like ratio, shifted, folded
  CheckLogBatch<float>(4, 37, 29, 0.17f, false);  // shifted, not folded
  CheckLogBatch<double>(4, 37, 23, 0.17, false);
}

TEST(SteBatch, RoundHalfEvenFastIsNearbyint) {
  const float fs[] = {0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 4194303.5f, 4194304.5f, 8388607.5f,
                      0.49999997f, -0.49999997f, 1e30f, -0.f};
  for (float f : fs) {
    const float a = RoundHalfEvenFast(f), b = std::nearbyint(f);
    EXPECT_EQ(std::memcmp(&a, &b, sizeof(float)), 0) << f;
  }
  const double ds[] = {0.5, 2.5, -3.5, 2251799813685247.5, 4503599627370495.5, -0.0};
  for (double d : ds) {
    const double a = RoundHalfEvenFast(d), b = std::nearbyint(d);
    EXPECT_EQ(std::memcmp(&a, &b, sizeof(double)), 0) << d;
  }
}

}  // namespace
}  // namespace adalog::search
