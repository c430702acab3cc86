// The integer executor: (1) agreement with the simulated executor (the judge) on random small
// ViTs with hand-made plans, (2) bit-exactness of the executor's glue per op (encode + kernel +
// epilogue, from the tensors the executor observed) against plain scalar references, (3) the same
// output bytes with 1 and 2 threads, unsupported plans, workspace stability, and (Long*) the
// shipped trained models against the simulated executor on their whole test sets.
#include "runtime/executor_int.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "quant/error.h"
#include "quant/log_quantizers.h"
#include "quant/uniform.h"
#include "runtime/adalog_runtime.h"
#include "runtime/data/npy.h"
#include "runtime/executor_sim.h"
#include "runtime/kernels/float_kernels.h"
#include "runtime/kernels/int/logcode_writers.h"
#include "runtime/kernels/reference/logcode_ref.h"
#include "runtime/kernels/reference/logcode_writers_ref.h"
#include "runtime/model_file.h"
#include "tests/util/exec_random_vit.h"
#include "tests/util/int_glue_ref.h"
#include "tests/util/int_hand_plan.h"
#include "tests/util/expect_error.h"
#include "tests/util/isa_test_util.h"
#include "tests/util/log_design_headroom.h"

namespace adalog {
namespace {

using testing_util::MakeRandomVit;
using testing_util::RandomImages;
using testing_util::RandomVitSpec;
using namespace int_test;


// ---------------------------------------------------------------------------------------------
// (1) Integer vs simulated executor on random small ViTs, every log-code design.
//
// Why the logits are not byte-identical: the two paths round differently even where every code
// agrees (the simulated path dequantizes and sums in float through oneDNN's sgemm, the integer
// path sums exactly and rounds once in its epilogue; measured: never byte-identical, max |d| /
// max |sim| 2.4e-7 .. 5.1e-7 when no code flips). A float difference flips an activation code
// only when a value sits within that distance of a decision threshold; one flipped code moves its
// op's output by one quantization step of one element, and later blocks (random weights: no
// trained robustness) propagate it. The s16 and u8 designs add their own approximation (a floor
// per level at about T / 2^15 resp. T / 2^8 of a row's largest level, int_kernels.h "Designs"),
// which flips further codes. The per-op bit-exactness is pinned by the glue test (2) below; the
// issue's spec gates (top-1 >= 99.5%, mean cosine >= 0.9999) are asserted on the trained shipped
// models (ShippedModelsAgreeWithSimulatedExecutor).
//
// Gates: what each (case, design) measured, minus a stated margin, ASSERTED. Measured with
// `ADALOG_ISA=<level> build/tests/adalog_runtime_tests --gtest_filter=ExecutorInt.AgreesWith*`
// for every level on an AMD EPYC with AVX-512 VNNI (2 threads): avx512vnni and avx512 give the
// same numbers (same float islands and oneDNN sgemm; the integer kernels are bit-exact across
// levels), avx2 and ref differ (other float islands and sgemm kernels, hence other flips), so
// the table holds the worst of {avx512vnni, avx512} and the worst of {avx2, ref} separately and
// the test applies the one of the active level (ActiveIsaLevel(): both executors follow it).
// Margins (AgreementGate): top-1 two images of 200 (0.01) below the measurement; each cosine
// floor 1 - 2 (1 - measured) - 1e-9 (twice the measured deficit); max |int - sim| / max |sim|
// at most 1.5 x measured + 1e-6. One wrong zero point or scale step in the executor flips codes
// on many elements and fails these gates.
struct Agreement4 {
  double top1_same, mean_cos, min_cos, max_rel;
};
struct AgreementGate {
  const char* name;
  intk::LogDesign design;
  Agreement4 avx512;  // measured, worst of ADALOG_ISA=avx512vnni / avx512
  Agreement4 avx2;    // measured, worst of ADALOG_ISA=avx2 / ref
};

// clang-format off
const AgreementGate kAgreementGates[] = {
    {"adalog_w4a4", intk::LogDesign::kBuckets, {1.0000, 1.000000000, 1.000000000, 3.8776e-07}, {0.9950, 0.999608979, 0.921795900, 0.382538}},
    {"adalog_w4a4", intk::LogDesign::kS16, {1.0000, 1.000000000, 1.000000000, 3.8776e-07}, {0.9950, 0.999608979, 0.921795900, 0.382538}},
    {"adalog_w4a4", intk::LogDesign::kU8, {0.7900, 0.960428958, 0.869541651, 0.717347}, {0.7950, 0.960201739, 0.869541643, 0.717346}},
    {"adalog_w8a8", intk::LogDesign::kBuckets, {1.0000, 0.999954379, 0.995620708, 0.0852557}, {1.0000, 0.999944204, 0.996467576, 0.123078}},
    {"adalog_w8a8", intk::LogDesign::kS16, {0.9800, 0.999264344, 0.992888878, 0.167381}, {0.9800, 0.999221559, 0.992888881, 0.167381}},
    {"adalog_w8a8", intk::LogDesign::kU8, {0.9200, 0.994007475, 0.969141065, 0.341123}, {0.9200, 0.993989262, 0.969141051, 0.341123}},
    {"log2_w6a6", intk::LogDesign::kBuckets, {1.0000, 1.000000000, 1.000000000, 3.77809e-07}, {1.0000, 0.999869585, 0.976447438, 0.188399}},
    {"log2_w6a6", intk::LogDesign::kS16, {0.9900, 0.999458800, 0.983973202, 0.199192}, {0.9900, 0.999347714, 0.976447438, 0.199192}},
    {"log2_w6a6", intk::LogDesign::kU8, {0.8550, 0.982277727, 0.866510413, 0.83152}, {0.8550, 0.982277727, 0.866510428, 0.83152}},
    {"uniform_w8a8", intk::LogDesign::kBuckets, {1.0000, 0.999998110, 0.999827471, 0.0265477}, {1.0000, 0.999995940, 0.999827471, 0.0265477}},
    {"uniform_w8a8", intk::LogDesign::kS16, {1.0000, 0.999998110, 0.999827471, 0.0265477}, {1.0000, 0.999995940, 0.999827471, 0.0265477}},
    {"uniform_w8a8", intk::LogDesign::kU8, {1.0000, 0.999998110, 0.999827471, 0.0265477}, {1.0000, 0.999995940, 0.999827471, 0.0265477}},
    {"mixed_dist_w4a4", intk::LogDesign::kBuckets, {1.0000, 1.000000000, 1.000000000, 3.68142e-07}, {1.0000, 0.999931203, 0.986240686, 0.189772}},
    {"mixed_dist_w4a4", intk::LogDesign::kS16, {1.0000, 0.999798547, 0.985898051, 0.27526}, {1.0000, 0.999729751, 0.985898057, 0.27526}},
    {"mixed_dist_w4a4", intk::LogDesign::kU8, {0.7300, 0.964464516, 0.886686721, 0.616283}, {0.7300, 0.964422699, 0.886686727, 0.616283}},
    {"mixed_meanpool_tanh_w6a6", intk::LogDesign::kBuckets, {1.0000, 1.000000000, 1.000000000, 5.08587e-07}, {1.0000, 0.999992258, 0.998993315, 0.0428031}},
    {"mixed_meanpool_tanh_w6a6", intk::LogDesign::kS16, {0.9750, 0.999631736, 0.991739830, 0.14923}, {0.9700, 0.999586228, 0.991106910, 0.14923}},
    {"mixed_meanpool_tanh_w6a6", intk::LogDesign::kU8, {0.8750, 0.993832761, 0.953376990, 0.365627}, {0.8750, 0.993822516, 0.953376990, 0.365628}},
    {"adalog_nocls_w3a3", intk::LogDesign::kBuckets, {1.0000, 1.000000000, 1.000000000, 2.74532e-07}, {1.0000, 1.000000000, 1.000000000, 2.74532e-07}},
    {"adalog_nocls_w3a3", intk::LogDesign::kS16, {1.0000, 1.000000000, 1.000000000, 2.74532e-07}, {1.0000, 1.000000000, 1.000000000, 2.74532e-07}},
    {"adalog_nocls_w3a3", intk::LogDesign::kU8, {0.8800, 0.965758601, 0.608423251, 0.864505}, {0.8800, 0.965758600, 0.608423251, 0.864505}},
};
// clang-format on

void ExpectAgreementGate(const Agreement& g, const Agreement4& m) {
  EXPECT_GE(g.top1_same, m.top1_same - 0.01);
  EXPECT_GE(g.mean_cos, 1 - 2 * (1 - m.mean_cos) - 1e-9);
  EXPECT_GE(g.min_cos, 1 - 2 * (1 - m.min_cos) - 1e-9);
  EXPECT_LE(g.max_rel, 1.5 * m.max_rel + 1e-6);
}

struct SimCase {
  const char* name;
  RandomVitSpec spec;
  int wb, ab;
  PlanKind kind;
};

std::vector<SimCase> SimCases() {
  std::vector<SimCase> v;
  RandomVitSpec s;
  s.dim = 48;
  s.heads = 3;
  s.depth = 3;
  s.classes = 10;
  v.push_back({"adalog_w4a4", s, 4, 4, PlanKind::kAdaLog});
  v.push_back({"adalog_w8a8", s, 8, 8, PlanKind::kAdaLog});
  v.push_back({"log2_w6a6", s, 6, 6, PlanKind::kLog2});
  v.push_back({"uniform_w8a8", s, 8, 8, PlanKind::kUniform});
  RandomVitSpec d = s;
  d.dist = true;
  d.seed = 3;
  v.push_back({"mixed_dist_w4a4", d, 4, 4, PlanKind::kMixed});
  RandomVitSpec mp = s;
  mp.mean_pool = true;
  mp.gelu = GeluKind::kTanh;
  mp.heads = 4;
  mp.dim = 64;
  mp.seed = 5;
  v.push_back({"mixed_meanpool_tanh_w6a6", mp, 6, 6, PlanKind::kMixed});
  RandomVitSpec nc = s;
  nc.no_cls = true;
  nc.pos_mode = PosEmbedMode::kPatchesOnly;
  nc.seed = 9;
  v.push_back({"adalog_nocls_w3a3", nc, 3, 3, PlanKind::kAdaLog});
  return v;
}

TEST(ExecutorInt, AgreesWithSimulatedExecutor) {
  constexpr int kBatch = 200;
  int checked = 0;
  for (const SimCase& c : SimCases()) {
    SCOPED_TRACE(c.name);
    const VitModel m = MakeRandomVit(c.spec);
    const std::vector<float> calib = RandomImages(m, 16, 11);
    const QuantizedModel qm = MakePlan(m, calib, 16, c.wb, c.ab, c.kind);
    const std::vector<float> images = RandomImages(m, kBatch, 12);
    std::vector<float> ls(size_t(kBatch) * m.num_classes(), -2.f);
    ExecutorSim se(qm, Opts(kBatch, 2));
    se.Run(images.data(), kBatch, ls.data());
    // Not vacuous: the simulated logits spread over several top-1 classes and vary per image.
    std::vector<int> top(m.num_classes(), 0);
    for (int r = 0; r < kBatch; ++r) {
      const float* row = ls.data() + size_t(r) * m.num_classes();
      ++top[std::max_element(row, row + m.num_classes()) - row];
    }
    EXPECT_GE(std::count_if(top.begin(), top.end(), [](int v) { return v > 0; }), 3);
    EXPECT_NE(0, std::memcmp(ls.data(), ls.data() + m.num_classes(), m.num_classes() * 4));
    for (intk::LogDesign design :
         {intk::LogDesign::kBuckets, intk::LogDesign::kS16, intk::LogDesign::kU8}) {
      IntPathOptions io;
      io.attn_design = io.fc2_design = design;
      ExecutorInt ie(qm, Opts(kBatch, 2), io);
      std::vector<float> li(ls.size(), -1.f);
      ie.Run(images.data(), kBatch, li.data());
      const Agreement g = Compare(li, ls, kBatch, m.num_classes());
      std::printf("[ info ] %-26s %-20s top1 same %.4f  cos mean %.9f min %.9f  max|d|/max|sim| %.6g\n",
                  c.name, intk::LogDesignName(design), g.top1_same, g.mean_cos, g.min_cos, g.max_rel);
      SCOPED_TRACE(intk::LogDesignName(design));
      const AgreementGate* gate = nullptr;
      for (const AgreementGate& a : kAgreementGates) {
        if (std::strcmp(a.name, c.name) == 0 && a.design == design) gate = &a;
      }
      ASSERT_NE(gate, nullptr) << "no measured gate for this case and design";
      ExpectAgreementGate(g, ActiveIsaLevel() >= IsaLevel::kAvx512 ? gate->avx512 : gate->avx2);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3 * static_cast<int>(SimCases().size()));
  EXPECT_EQ(checked, static_cast<int>(std::size(kAgreementGates)));
}

// ---------------------------------------------------------------------------------------------
// (2) The executor's glue per op, bit-exact: each op's output as observed in the integer
// executor against a plain scalar reference computed from the op's observed float input and the
// plan (scalar UniformQuantizer::Encode, int64 dot products, the kernels' documented epilogue
// fmaf(float(acc), sa * sw[n], bias[n]), the log writers' scalar references and the plain log
// GEMM reference with the design's documented headroom, tests/util/log_design_headroom.h).
// Float islands are not re-derived: the reference
// starts from the executor's own observed float inputs. The references are tests/util/int_glue_ref.h.
//
// At every ISA cap (one instance per level: the integer kernels, encoders, log writers and float
// islands the executor selects for it; skipped, named, where the CPU lacks the level).
class ExecutorIntIsa : public test::IsaParamTest {};
INSTANTIATE_TEST_SUITE_P(Isa, ExecutorIntIsa, ::testing::ValuesIn(test::kAllIsaLevels),
                         test::IsaParamName);

TEST_P(ExecutorIntIsa, GlueBitExactPerOpAtRandomShapes) {
  const IsaLevel cap = GetParam();
  std::mt19937 rng(2024);
  const FloatKernels& fk = SelectFloatKernels(cap);
  ASSERT_EQ(fk.isa, std::min(cap, IsaLevel::kAvx512));
  const int kCases = 10;
  for (int cs = 0; cs < kCases; ++cs) {
    RandomVitSpec s;
    s.heads = std::uniform_int_distribution<int>(1, 16)(rng);
    const int hd = std::uniform_int_distribution<int>(1, 5)(rng) * 4 + (cs % 3 == 0 ? 1 : 0);
    s.dim = s.heads * hd;
    s.depth = 2;
    s.mlp_ratio = std::uniform_int_distribution<int>(1, 4)(rng);
    s.patch = 4;
    s.image = 4 * std::uniform_int_distribution<int>(1, 6)(rng);  // 1..36 patches
    s.dist = cs % 4 == 1;
    s.mean_pool = cs % 4 == 2;
    s.gelu = cs % 5 == 3 ? GeluKind::kTanh : GeluKind::kErf;
    s.classes = std::uniform_int_distribution<int>(2, 20)(rng);
    s.seed = 100 + cs;
    const int wb = std::uniform_int_distribution<int>(3, 8)(rng);
    const int ab = std::uniform_int_distribution<int>(3, 8)(rng);
    const PlanKind kind = static_cast<PlanKind>(cs % 4);
    const intk::LogDesign design = static_cast<intk::LogDesign>(cs % 3);
    const int batch = std::uniform_int_distribution<int>(1, 3)(rng);
    const VitModel m = MakeRandomVit(s);
    const int T = m.num_tokens();
    const std::string repro = "case " + std::to_string(cs) + ": heads " + std::to_string(s.heads) +
                              " hd " + std::to_string(hd) + " tokens " + std::to_string(T) + " W" +
                              std::to_string(wb) + "A" + std::to_string(ab) + " plan " +
                              std::to_string(cs % 4) + " design " + intk::LogDesignName(design) +
                              " batch " + std::to_string(batch) + (cs % 2 ? " fused writers" : " islands");
    SCOPED_TRACE(repro);
    const std::vector<float> images = RandomImages(m, batch, 300 + cs);
    const QuantizedModel qm = MakePlan(m, images, batch, wb, ab, kind, cs);
    IntPathOptions io;
    io.attn_design = io.fc2_design = design;
    const bool fused = cs % 2 == 1;
    io.fused_log_writers = fused;
    ExecutorOptions eo = Opts(batch, 2);
    eo.isa_cap = cap;
    ExecutorInt ie(qm, eo, io);
    // The integer GEMMs run at the cap: the VNNI kernels exactly at avx512vnni.
    EXPECT_EQ(ie.DescribeKernels().find("avx512vnni") != std::string::npos,
              cap == IsaLevel::kAvx512Vnni)
        << ie.DescribeKernels();
    Capture taps;
    ie.SetObserver(&taps);
    std::vector<float> logits(size_t(batch) * m.num_classes());
    ie.Run(images.data(), batch, logits.data());
    const int rows = batch * T;
    int diffs = 0;
    for (size_t b = 0; b < m.blocks.size(); ++b) {
      const int bi = static_cast<int>(b);
      const BlockQuant& bq = qm.plan.blocks[b];
      const BlockParams& mb = qm.model.blocks[b];
      diffs += CountBitDiffs(taps.Get(TapPoint::kQkvOut, bi),
                             LinearRef(bq.qkv, mb.qkv, taps.Get(TapPoint::kQkvIn, bi), rows), "qkv");
      diffs += CountBitDiffs(taps.Get(TapPoint::kProjIn, bi),
                             AttentionRef(bq, mb, taps.Get(TapPoint::kQkvOut, bi), batch, T, design, fk, fused),
                             "attention");
      diffs += CountBitDiffs(taps.Get(TapPoint::kProjOut, bi),
                             LinearRef(bq.proj, mb.proj, taps.Get(TapPoint::kProjIn, bi), rows), "proj");
      diffs += CountBitDiffs(taps.Get(TapPoint::kFc1Out, bi),
                             LinearRef(bq.fc1, mb.fc1, taps.Get(TapPoint::kFc1In, bi), rows), "fc1");
      diffs += CountBitDiffs(taps.Get(TapPoint::kFc2Out, bi),
                             Fc2Ref(bq, mb, taps.Get(TapPoint::kFc1Out, bi), rows, design, fk, fused), "fc2");
    }
    diffs += CountBitDiffs(taps.Get(TapPoint::kHeadOut, -1),
                           LinearRef(qm.plan.head, m.head, taps.Get(TapPoint::kHeadIn, -1), batch),
                           "head");
    if (m.pooling == Pooling::kClsDistAvg) {
      diffs += CountBitDiffs(taps.Get(TapPoint::kHeadDistOut, -1),
                             LinearRef(qm.plan.head_dist, m.head_dist,
                                       taps.Get(TapPoint::kHeadDistIn, -1), batch),
                             "head_dist");
    }
    EXPECT_EQ(diffs, 0);
    // Not vacuous: the logits vary.
    const auto [lo, hi] = std::minmax_element(logits.begin(), logits.end());
    EXPECT_LT(*lo, *hi);
    // The observed run and an unobserved run give the same bytes.
    std::vector<float> again(logits.size(), -7.f);
    ie.SetObserver(nullptr);
    ie.Run(images.data(), batch, again.data());
    EXPECT_EQ(0, std::memcmp(again.data(), logits.data(), logits.size() * 4));
  }
}

// Every ISA cap against avx512vnni (the best level), compared by bytes.
// (a) Each integer op (uniform GEMMs, q@k^T, log-code GEMMs with their encoders and the fused log
// writers) gives the same output bytes at every cap whenever its observed input bytes are the
// same (the glue test above pins each op to a scalar reference at every cap; this pins the caps
// to each other on whole runs). (b) The logits are byte-identical too. That needs the float
// islands (LayerNorm; softmax / GELU of uniform blocks; per-ISA code within named tolerances,
// float_kernels_tolerance.h) to never flip a code: measured on this plan, 5 of the 11 integer
// ops see other input bytes at ref and avx2 than at avx512vnni (0 of 11 at avx512), yet every
// code and the logits are the same bytes at every cap. A different plan or model may flip a code
// at a threshold; then (b) would need a cosine instead, and (a) still holds.
TEST_P(ExecutorIntIsa, IsaCapsGiveTheSameBytes) {
  const IsaLevel cap = GetParam();
  ADALOG_REQUIRE_OR_SKIP_ISA(IsaLevel::kAvx512Vnni);  // the level compared with
  RandomVitSpec s;
  s.dim = 48;
  s.heads = 3;
  const VitModel m = MakeRandomVit(s);
  const int batch = 3;
  const std::vector<float> images = RandomImages(m, batch, 4);
  const QuantizedModel qm = MakePlan(m, images, batch, 4, 4, PlanKind::kMixed);
  auto run = [&](IsaLevel c, Capture* taps, std::vector<float>* logits) {
    ExecutorOptions eo = Opts(batch, 1);
    eo.isa_cap = c;
    ExecutorInt ie(qm, eo);
    ie.SetObserver(taps);
    logits->assign(size_t(batch) * m.num_classes(), -3.f);
    ie.Run(images.data(), batch, logits->data());
  };
  Capture best_taps, got_taps;
  std::vector<float> best, got;
  run(IsaLevel::kAvx512Vnni, &best_taps, &best);
  run(cap, &got_taps, &got);
  // (input tap, output tap) of every integer op.
  // (The patch embedding is an FP32 oneDNN primitive, not one of them.)
  std::vector<std::tuple<TapPoint, TapPoint, int, const char*>> ops = {
      {TapPoint::kHeadIn, TapPoint::kHeadOut, -1, "head"}};
  for (int b = 0; b < static_cast<int>(m.blocks.size()); ++b) {
    ops.push_back({TapPoint::kQkvIn, TapPoint::kQkvOut, b, "qkv"});
    ops.push_back({TapPoint::kQkvOut, TapPoint::kProjIn, b, "attention"});
    ops.push_back({TapPoint::kProjIn, TapPoint::kProjOut, b, "proj"});
    ops.push_back({TapPoint::kFc1In, TapPoint::kFc1Out, b, "fc1"});
    ops.push_back({TapPoint::kFc1Out, TapPoint::kFc2Out, b, "fc2"});
  }
  int same_input = 0;
  for (const auto& [in, out, b, name] : ops) {
    const std::vector<float>& x0 = best_taps.Get(in, b);
    const std::vector<float>& x1 = got_taps.Get(in, b);
    ASSERT_EQ(x0.size(), x1.size()) << name;
    if (std::memcmp(x0.data(), x1.data(), x0.size() * 4) != 0) continue;  // an island differed
    ++same_input;
    const std::vector<float>& y0 = best_taps.Get(out, b);
    const std::vector<float>& y1 = got_taps.Get(out, b);
    ASSERT_EQ(y0.size(), y1.size()) << name;
    EXPECT_EQ(0, std::memcmp(y0.data(), y1.data(), y0.size() * 4))
        << name << " block " << b << ": same input bytes, other output bytes at "
        << IsaLevelName(cap);
  }
  const bool logits_same = std::memcmp(best.data(), got.data(), best.size() * 4) == 0;
  std::printf("[ info ] cap %s: %d of %zu integer ops with the same input bytes; logits %s\n",
              IsaLevelName(cap), same_input, ops.size(), logits_same ? "byte-identical" : "differ");
  EXPECT_GE(same_input, 1);  // not vacuous (measured: 6 at ref and avx2, 11 at avx512)
  EXPECT_TRUE(logits_same) << IsaLevelName(cap);
  // Not vacuous: the logits vary.
  EXPECT_NE(0, std::memcmp(best.data(), best.data() + m.num_classes(), m.num_classes() * 4));
}

}  // namespace
}  // namespace adalog
