// The whole-model LN reparameterization choice of calibration (RecipeOptions::ln_reparam_select):
// its result is one of the two pure variants byte for byte, it is the same for any thread count,
// and on constructed models it keeps the reparameterization where it clearly helps and drops it
// where it clearly hurts. Random-weight models: the choice's mechanics, never accuracy.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "runtime/data/npy.h"
#include "runtime/executor_fp32.h"
#include "runtime/executor_sim.h"
#include "runtime/metrics.h"
#include "runtime/model_file.h"
#include "runtime/onnx_importer.h"
#include "search/calibrate.h"
#include "tests/util/exec_random_vit.h"

namespace adalog::search {
namespace {

using testing_util::MakeRandomVit;
using testing_util::RandomImages;
using testing_util::RandomVitSpec;

enum class Mode { kSelect, kAll, kOff };

QuantizedModel CalibrateAs(const VitModel& m, const std::vector<float>& images, int n, int bits, Mode mode,
                           int threads = 0) {
  CalibOptions o;
  o.num_images = n;
  o.threads = threads;
  o.recipe.weight_bits = bits;
  o.recipe.act_bits = bits;
  o.recipe.rounds = 1;
  o.recipe.fpcs = false;  // the single-grid search: faster, and the choice does not depend on it
  o.recipe.ln_reparam = mode != Mode::kOff;
  o.recipe.ln_reparam_select = mode == Mode::kSelect;
  return Calibrate(m, images.data(), n, o);
}

// Sum of squared differences between the simulated executor's logits and the FP32 ones on the
// calibration images: the quantity the choice minimizes, recomputed here independently.
double LogitsSse(const VitModel& fp, const QuantizedModel& q, const std::vector<float>& images, int n) {
  ExecutorOptions eo;
  eo.max_batch = n;
  ExecutorFp32 ef(fp, eo);
  ExecutorSim es(q, eo);
  std::vector<float> a(static_cast<size_t>(n) * fp.num_classes()), b(a.size());
  ef.Run(images.data(), n, a.data());
  es.Run(images.data(), n, b.data());
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) e += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
  return e;
}

RandomVitSpec Spec() {
  RandomVitSpec s;
  s.Shape(32, 2, 2, 16, 4, 10);
  return s;
}

TEST(LnReparamSelect, IsOneOfThePureVariantsAndThreadIndependent) {
  // The choice only picks between two calibrations computed the same way as the default (every
  // LayerNorm) and --no-reparam, so its file must be byte-identical to one of theirs, and (like
  // the rest of the search) the same for 1, 2 and 3 threads.
  const VitModel m = MakeRandomVit(Spec());
  const int n = 6;
  const std::vector<float> images = RandomImages(m, n, 21);
  const std::string all = SerializeQuantizedModel(CalibrateAs(m, images, n, 3, Mode::kAll));
  const std::string off = SerializeQuantizedModel(CalibrateAs(m, images, n, 3, Mode::kOff));
  ASSERT_NE(all, off);  // the two variants differ, so the comparison below can fail
  const int prev = omp_get_max_threads();
  std::vector<std::string> sel;
  for (int t : {1, 2, 3}) {
    omp_set_num_threads(t);
    sel.push_back(SerializeQuantizedModel(CalibrateAs(m, images, n, 3, Mode::kSelect, t)));
  }
  omp_set_num_threads(prev);
  EXPECT_TRUE(sel[0] == all || sel[0] == off);
  EXPECT_TRUE(sel[1] == sel[0]) << "2 threads differ from 1";
  EXPECT_TRUE(sel[2] == sel[0]) << "3 threads differ from 1";
}

// Spreads each qkv / fc1 input channel of `m` by g_c (LayerNorm gamma and beta times g_c) and
// divides the next Linear's column c by g_c: the same FP function, but channel ranges 2^-3..2^3
// that one per-tensor grid cannot serve while every channel still matters to the output.
void SpreadLnChannels(VitModel* m) {
  for (BlockParams& b : m->blocks) {
    for (auto [ln, lin] : {std::pair{&b.ln1, &b.qkv}, std::pair{&b.ln2, &b.fc1}}) {
      for (int c = 0; c < ln->dim; ++c) {
        const float g = std::ldexp(1.0f, c % 7 - 3);
        ln->gamma[static_cast<size_t>(c)] *= g;
        ln->beta[static_cast<size_t>(c)] *= g;
        for (int o = 0; o < lin->out; ++o) lin->weight[static_cast<size_t>(o) * lin->in + c] /= g;
      }
    }
  }
}

TEST(LnReparamSelect, KeepsReparamWhereItClearlyHelps) {
  VitModel m = MakeRandomVit(Spec());
  SpreadLnChannels(&m);
  const int n = 6;
  const std::vector<float> images = RandomImages(m, n, 22);
  const QuantizedModel all = CalibrateAs(m, images, n, 3, Mode::kAll);
  const QuantizedModel off = CalibrateAs(m, images, n, 3, Mode::kOff);
  const double e_all = LogitsSse(m, all, images, n), e_off = LogitsSse(m, off, images, n);
  ASSERT_LT(e_all, 0.5 * e_off) << "the construction must make the reparameterization clearly better";
  const QuantizedModel sel = CalibrateAs(m, images, n, 3, Mode::kSelect);
  EXPECT_TRUE(sel.plan.ln_reparam);
  EXPECT_TRUE(SerializeQuantizedModel(sel) == SerializeQuantizedModel(all));
}

// Where the reparameterization clearly hurts: the case of the issue, digits_vit at W3A3 (3-seed
// test top-1 94.67 with it against 96.67 without, models/README.md). Calibrated here on the first
// 16 images of calib.npy, one thread. The test first checks that the case is what it claims (the
// default plan's, every LayerNorm reparameterized, has calibration logits further from FP32 and a
// lower test top-1 than the selected plan), then that the choice dropped the reparameterization.
// Measured (one run, 36 s CPU): logits squared error 16.4 selected vs 19.08; top-1 0.970 vs 0.940.
TEST(LnReparamSelect, DropsReparamWhereItClearlyHurtsDigitsW3A3) {
  const std::string dir = std::string(ADALOG_SOURCE_DIR) + "/models/digits/";
  const VitModel m = ImportOnnxVit(dir + "digits_vit.onnx");
  const NpyFloatArray calib = ReadNpyFloat32(dir + "calib.npy");
  const NpyFloatArray x = ReadNpyFloat32(dir + "test_x.npy");
  const std::vector<int64_t> labels = ReadNpyLabels(dir + "test_y.npy");
  const int n = 16, nt = static_cast<int>(x.shape[0]);
  ASSERT_GE(static_cast<int>(calib.shape[0]), n);
  ASSERT_EQ(labels.size(), static_cast<size_t>(nt));
  const std::vector<float> images(calib.data.begin(),
                                  calib.data.begin() + static_cast<int64_t>(calib.data.size()) / calib.shape[0] * n);
  CalibOptions o;
  o.num_images = n;
  o.threads = 1;
  o.recipe.weight_bits = 3;
  o.recipe.act_bits = 3;
  const int prev = omp_get_max_threads();
  omp_set_num_threads(1);
  o.recipe.ln_reparam_select = true;
  const QuantizedModel sel = Calibrate(m, images.data(), n, o);
  o.recipe.ln_reparam_select = false;
  const QuantizedModel all = Calibrate(m, images.data(), n, o);
  omp_set_num_threads(prev);
  const double e_sel = LogitsSse(m, sel, images, n), e_all = LogitsSse(m, all, images, n);
  ExecutorOptions eo;
  eo.max_batch = nt;
  eo.num_threads = 1;
  ExecutorSim ss(sel, eo), sa(all, eo);
  std::vector<float> ls(static_cast<size_t>(nt) * m.num_classes()), la(ls.size());
  ss.Run(x.data.data(), nt, ls.data());
  sa.Run(x.data.data(), nt, la.data());
  const double acc_sel = Top1Accuracy(ls.data(), nt, m.num_classes(), labels.data());
  const double acc_all = Top1Accuracy(la.data(), nt, m.num_classes(), labels.data());
  std::printf("[ info ] digits W3A3, 16 calib images: calibration logits SSE selected %.4g, every LN "
              "%.4g; test top-1 selected %.4f, every LN %.4f\n", e_sel, e_all, acc_sel, acc_all);
  EXPECT_FALSE(sel.plan.ln_reparam);
  EXPECT_TRUE(all.plan.ln_reparam);
  EXPECT_LT(e_sel, e_all);
  EXPECT_GT(acc_sel, acc_all) << "the case no longer shows the reparameterization hurting";
}

}  // namespace
}  // namespace adalog::search
