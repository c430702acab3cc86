// Faithfulness of the percentile grids (method §4.4) and FPCS (method §4.5, 4.7) against the plain
// spec implementations of plain_reference.h.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "search/fpcs.h"
#include "search/grids.h"
#include "tests/search/plain_reference.h"
#include "tests/util/expect_error.h"

namespace adalog::search {
namespace {

TEST(Grids, QuantileMatchesTorchLinearInterpolation) {
  std::vector<float> v;
  for (int i = 0; i < 10; ++i) v.push_back(static_cast<float>(9 - i));  // 0..9 shuffled order
  EXPECT_FLOAT_EQ(Quantile(v.data(), 10, 0.9), 8.1f);
  EXPECT_FLOAT_EQ(Quantile(v.data(), 10, 0.1), 0.9f);
  EXPECT_EQ(Quantile(v.data(), 10, 1.0), 9.0f);
  EXPECT_EQ(Quantile(v.data(), 10, 0.0), 0.0f);
  std::mt19937_64 rng(3);
  for (int n : {1, 2, 7, 1000, 4097}) {
    const auto x = plain::RandomVec(rng, static_cast<size_t>(n), -3, 5);
    for (double p : {0.0, 0.1, 0.9, 1.0})
      EXPECT_EQ(Quantile(x.data(), n, p), plain::Quantile(x, p)) << "n=" << n << " p=" << p;
  }
}

void ExpectGridEq(const UniformGrid& g, int group, const std::vector<plain::Cand>& ref) {
  ASSERT_EQ(g.cands.count, static_cast<int>(ref.size()));
  for (int i = 0; i < g.cands.count; ++i) {
    EXPECT_EQ(g.cands.scale(group, i), ref[static_cast<size_t>(i)].s) << "group " << group << " i " << i;
    EXPECT_EQ(g.cands.zp(group, i), ref[static_cast<size_t>(i)].z) << "group " << group << " i " << i;
  }
  EXPECT_EQ(g.delta[static_cast<size_t>(group)], ref[1].s - ref[0].s);
}

TEST(Grids, WeightGridsPerRow) {
  std::mt19937_64 rng(5);
  const int rows = 3, cols = 37;
  const auto w = plain::RandomVec(rng, rows * cols, -1, 2);
  for (int bits : {3, 4, 6, 8}) {
    const UniformGrid g = LinearWeightGrid(w.data(), rows, cols, bits);
    const int n = 1 << (bits - 1);
    for (int r = 0; r < rows; ++r) {
      std::vector<float> row(w.begin() + r * cols, w.begin() + (r + 1) * cols);
      ExpectGridEq(g, r, plain::Grid(row, bits, std::min(16, n), 0));
    }
  }
  // Spec table: 4-bit weights use zero points 4..11 and 16 scales.
  const UniformGrid g4 = LinearWeightGrid(w.data(), rows, cols, 4);
  EXPECT_EQ(g4.cands.zp(0, 0), 4);
  EXPECT_EQ(g4.cands.zp(0, 127), 11);
  // Conv: uncapped num_zp (6-bit: 16..47 with 4 scales), capped at 8 bits (decision, method §8.8).
  const UniformGrid c6 = ConvWeightGrid(w.data(), rows, cols, 6);
  EXPECT_EQ(c6.cands.zp(0, 0), 16);
  EXPECT_EQ(c6.cands.zp(0, 127), 47);
  std::vector<float> row0(w.begin(), w.begin() + cols);
  ExpectGridEq(c6, 0, plain::Grid(row0, 6, 32, 0));
  const UniformGrid c8 = ConvWeightGrid(w.data(), rows, cols, 8);
  ExpectGridEq(c8, 0, plain::Grid(row0, 8, 16, 0));
  EXPECT_GT(c8.delta[0], 0.0f);
}

TEST(Grids, ActivationGrids) {
  std::mt19937_64 rng(7);
  const int rows = 50, cols = 6;
  auto x = plain::RandomVec(rng, rows * cols, -0.5f, 3);
  for (int bits : {3, 4, 6}) {
    const UniformGrid g = TensorActivationGrid(x.data(), rows * cols, bits);
    const int n = 1 << (bits - 1);
    ExpectGridEq(g, 0, plain::Grid(x, bits, std::min(16, 2 * n), 1e-4f));
    const UniformGrid c = ChannelActivationGrid(x.data(), rows, cols, bits);
    for (int ch = 0; ch < cols; ++ch) {
      std::vector<float> col;
      for (int r = 0; r < rows; ++r) col.push_back(x[r * cols + ch]);
      ExpectGridEq(c, ch, plain::Grid(col, bits, std::min(16, 2 * n), 1e-4f));
    }
  }
  const UniformGrid g4 = TensorActivationGrid(x.data(), rows * cols, 4);
  EXPECT_EQ(g4.cands.zp(0, 0), 0);
  EXPECT_EQ(g4.cands.zp(0, 127), 15);
  // Scale floor: a constant tensor has zero range; every candidate sits at 1e-4.
  std::vector<float> flat(100, 0.25f);
  const UniformGrid gf = TensorActivationGrid(flat.data(), 100, 4);
  for (int i = 0; i < 128; ++i) EXPECT_EQ(gf.cands.scale(0, i), 1e-4f);
  // Per head: quantiles over each head's contiguous block, weight zero points.
  const UniformGrid h = HeadGrid(x.data(), 3, 100, 4);
  std::vector<float> h1(x.begin() + 100, x.begin() + 200);
  ExpectGridEq(h, 1, plain::Grid(h1, 4, 8, 0));
}

TEST(Grids, PostGeluRangeNearestRankPositive) {
  std::vector<float> x = {-0.1f, -0.17f, 0.0f};
  for (int i = 1; i <= 20; ++i) x.push_back(0.1f * i);  // positives 0.1 .. 2.0
  const auto ud = PostGeluScaleRange(x.data(), static_cast<int64_t>(x.size()), 0.16997124254703522f);
  // count 20, rank ceil(18) - 1 = 17 -> the 18th smallest positive = 1.8.
  EXPECT_FLOAT_EQ(ud.first, 0.1f * 18 + 0.16997124254703522f);
  EXPECT_FLOAT_EQ(ud.second, 0.1f * 20 + 0.16997124254703522f);
  std::vector<float> neg = {-1, -2};
  test::ExpectErrorContaining([&] { PostGeluScaleRange(neg.data(), 2, 0.17f); }, "has no positive element");
}

TEST(Grids, BadBitWidths) {
  std::vector<float> w(16, 1.0f);
  test::ExpectErrorContaining([&] { LinearWeightGrid(w.data(), 2, 8, 1); }, "unsupported bit width 1");
  test::ExpectErrorContaining([&] { TensorActivationGrid(w.data(), 16, 9); }, "unsupported bit width 9");
}

TEST(Fpcs, StableTopKTiesAndNaN) {
  const double nan = std::nan("");
  const std::vector<double> e = {3, 1, nan, 1, 0.5, 1};
  EXPECT_EQ(StableTopK(e.data(), 6, 4), (std::vector<int>{4, 1, 3, 5}));
  EXPECT_EQ(StableTopK(e.data(), 6, 6).back(), 2);
}

TEST(Fpcs, GuardScale) {
  EXPECT_EQ(GuardScale(-1.0f, 0.0f), std::numeric_limits<float>::min());
  EXPECT_EQ(GuardScale(0.0f, 0.0f), std::numeric_limits<float>::min());
  EXPECT_EQ(GuardScale(-1.0f, 1e-4f), 1e-4f);
  EXPECT_EQ(GuardScale(0.5f, 1e-4f), 0.5f);
}

// A bumpy synthetic objective with many local optima per group.
double Bumpy(int g, float s, int z) {
  const double t = std::log(static_cast<double>(s)) * 3.0 + 0.37 * g;
  return std::sin(t * 7.0) * 0.1 + (t - 0.5) * (t - 0.5) + 0.01 * (z - 6) * (z - 6);
}

TEST(Fpcs, UniformMatchesPlainSpecFpcs) {
  std::mt19937_64 rng(11);
  const int rows = 4, cols = 40;
  const auto w = plain::RandomVec(rng, rows * cols, -1, 1);
  for (bool fpcs : {true, false}) {
    for (int bits : {3, 4, 6}) {
      const UniformGrid grid = LinearWeightGrid(w.data(), rows, cols, bits);
      FpcsConfig cfg;
      cfg.fpcs = fpcs;
      const UniformChoice got = SearchUniform(
          grid,
          [](const UniformCandidates& c, std::vector<double>* err) {
            err->resize(static_cast<size_t>(c.groups) * c.count);
            for (int g = 0; g < c.groups; ++g)
              for (int i = 0; i < c.count; ++i)
                (*err)[static_cast<size_t>(g) * c.count + i] = Bumpy(g, c.scale(g, i), c.zp(g, i));
          },
          cfg);
      for (int r = 0; r < rows; ++r) {
        std::vector<float> row(w.begin() + r * cols, w.begin() + (r + 1) * cols);
        const plain::Cand want = plain::Fpcs(
            plain::Grid(row, bits, std::min(16, 1 << (bits - 1)), 0),
            [r](plain::Cand c) { return Bumpy(r, c.s, c.z); }, 0, fpcs);
        EXPECT_EQ(got.scales[static_cast<size_t>(r)], want.s) << "bits " << bits << " row " << r;
        EXPECT_EQ(got.zero_points[static_cast<size_t>(r)], want.z);
      }
    }
  }
}

void BumpyErrors(const UniformCandidates& c, std::vector<double>* err) {
  err->resize(static_cast<size_t>(c.groups) * c.count);
  for (int g = 0; g < c.groups; ++g)
    for (int i = 0; i < c.count; ++i)
      (*err)[static_cast<size_t>(g) * c.count + i] = Bumpy(g, c.scale(g, i), c.zp(g, i));
}

TEST(Fpcs, BestModeMatchesPlainReference) {
  std::mt19937_64 rng(12);
  const int rows = 4, cols = 40;
  const auto w = plain::RandomVec(rng, rows * cols, -1, 1);
  for (bool with_incumbent : {false, true}) {
    for (int bits : {3, 4, 6}) {
      const UniformGrid grid = LinearWeightGrid(w.data(), rows, cols, bits);
      FpcsConfig cfg;
      cfg.mode = FpcsMode::kBest;
      UniformChoice inc;
      for (int r = 0; r < rows; ++r) {
        // Some incumbents win (near a Bumpy minimum), others lose.
        inc.scales.push_back(r % 2 ? grid.cands.scale(r, 5) * 1.013f : std::exp((0.5 - 0.37 * r) / 3.0));
        inc.zero_points.push_back(r % 2 ? grid.cands.zp(r, 5) : 6);
      }
      const UniformChoice got = SearchUniform(grid, BumpyErrors, cfg, with_incumbent ? &inc : nullptr);
      for (int r = 0; r < rows; ++r) {
        std::vector<float> row(w.begin() + r * cols, w.begin() + (r + 1) * cols);
        const plain::Cand pinc{inc.scales[static_cast<size_t>(r)], inc.zero_points[static_cast<size_t>(r)]};
        const plain::Cand want = plain::FpcsBest(
            plain::Grid(row, bits, std::min(16, 1 << (bits - 1)), 0),
            [r](plain::Cand c) { return Bumpy(r, c.s, c.z); }, 0, with_incumbent ? &pinc : nullptr);
        EXPECT_EQ(got.scales[static_cast<size_t>(r)], want.s) << "bits " << bits << " row " << r;
        EXPECT_EQ(got.zero_points[static_cast<size_t>(r)], want.z);
      }
    }
  }
}

// Bumpy plus deterministic pseudo-random noise in the scale: a rugged objective on which the
// official search's last stage (no centres, method §8.5) regularly misses the best candidate seen.
double Noisy(int g, float s, int z) {
  const double h = std::sin(static_cast<double>(s) * 91234.567 + g * 7.0 + z) * 43758.5453;
  return Bumpy(g, s, z) + 0.3 * (h - std::floor(h));
}

void NoisyErrors(const UniformCandidates& c, std::vector<double>* err) {
  err->resize(static_cast<size_t>(c.groups) * c.count);
  for (int g = 0; g < c.groups; ++g)
    for (int i = 0; i < c.count; ++i)
      (*err)[static_cast<size_t>(g) * c.count + i] = Noisy(g, c.scale(g, i), c.zp(g, i));
}

TEST(Fpcs, BestModeNeverWorseThanAnyEvaluatedCandidate) {
  std::mt19937_64 rng(13);
  const int rows = 6, cols = 50;
  const auto w = plain::RandomVec(rng, rows * cols, -1, 1);
  int official_worse = 0;
  for (int bits : {3, 4, 6}) {
    const UniformGrid grid = LinearWeightGrid(w.data(), rows, cols, bits);
    UniformChoice inc;
    for (int r = 0; r < rows; ++r) {
      inc.scales.push_back(std::exp((0.5 - 0.37 * r) / 3.0));  // t = 0.5 exactly: the quadratic's centre
      inc.zero_points.push_back(6);
    }
    for (FpcsMode mode : {FpcsMode::kOfficial, FpcsMode::kBest}) {
      std::vector<double> min_seen(rows, std::numeric_limits<double>::infinity());
      const UniformChoice got = SearchUniform(
          grid,
          [&](const UniformCandidates& c, std::vector<double>* err) {
            NoisyErrors(c, err);
            for (int g = 0; g < c.groups; ++g)
              for (int i = 0; i < c.count; ++i)
                min_seen[static_cast<size_t>(g)] =
                    std::min(min_seen[static_cast<size_t>(g)], (*err)[static_cast<size_t>(g) * c.count + i]);
          },
          FpcsConfig{true, mode}, &inc);
      FpcsConfig nf;
      nf.fpcs = false;
      const UniformChoice top1 = SearchUniform(grid, NoisyErrors, nf);
      for (int r = 0; r < rows; ++r) {
        const double e = Noisy(r, got.scales[static_cast<size_t>(r)], got.zero_points[static_cast<size_t>(r)]);
        if (mode == FpcsMode::kBest) {
          EXPECT_EQ(e, min_seen[static_cast<size_t>(r)]) << "bits " << bits << " row " << r;
          EXPECT_LE(e, Noisy(r, inc.scales[static_cast<size_t>(r)], 6));
          EXPECT_LE(e, Noisy(r, top1.scales[static_cast<size_t>(r)], top1.zero_points[static_cast<size_t>(r)]));
        } else if (e > min_seen[static_cast<size_t>(r)]) {
          ++official_worse;  // method §8.5: the official search can end worse than a candidate it saw
        }
      }
    }
  }
  EXPECT_GT(official_worse, 0) << "the synthetic objective no longer shows the official quirk";
}

TEST(Fpcs, OfficialModeIgnoresIncumbent) {
  std::mt19937_64 rng(14);
  const auto w = plain::RandomVec(rng, 3 * 30, -1, 1);
  const UniformGrid grid = LinearWeightGrid(w.data(), 3, 30, 4);
  UniformChoice inc{{0.1f, 0.2f, 0.3f}, {6, 6, 6}};
  int calls = 0;
  auto obj = [&](const UniformCandidates& c, std::vector<double>* err) {
    ++calls;
    BumpyErrors(c, err);
  };
  const UniformChoice a = SearchUniform(grid, obj, FpcsConfig{}, &inc);
  const UniformChoice b = SearchUniform(grid, obj, FpcsConfig{});
  EXPECT_EQ(a.scales, b.scales);
  EXPECT_EQ(a.zero_points, b.zero_points);
  EXPECT_EQ(calls, 12);  // 6 stages each, no extra incumbent evaluation
  calls = 0;
  FpcsConfig best;
  best.mode = FpcsMode::kBest;
  SearchUniform(grid, obj, best, &inc);
  EXPECT_EQ(calls, 7);  // + 1 batch for the incumbent
  EXPECT_EQ(ParseFpcsMode("best"), FpcsMode::kBest);
  EXPECT_EQ(ParseFpcsMode("official"), FpcsMode::kOfficial);
  EXPECT_STREQ(FpcsModeName(FpcsMode::kBest), "best");
  EXPECT_THROW(ParseFpcsMode("fast"), Error);
}

TEST(Fpcs, PositivityGuardKeepsScalesPositive) {
  // A grid whose delta dwarfs its smallest scale: refinement would step below 0.
  UniformGrid g;
  g.cands.bits = 4;
  g.cands.groups = 1;
  g.cands.count = 128;
  for (int i = 0; i < 128; ++i) {
    g.cands.scales.push_back(1e-6f + static_cast<float>(i % 16));
    g.cands.zero_points.push_back(4 + i / 16);
  }
  g.delta = {1.0f};
  std::vector<float> seen;
  const UniformChoice c = SearchUniform(
      g,
      [&](const UniformCandidates& cc, std::vector<double>* err) {
        err->clear();
        for (float s : cc.scales) {
          EXPECT_GT(s, 0.0f);
          err->push_back(s);  // prefers the smallest scale
        }
      },
      FpcsConfig{});
  EXPECT_GT(c.scales[0], 0.0f);
}

double LogBumpy(float s, int q) {
  return std::cos(q * 0.21) * 0.3 + (s - 1.3) * (s - 1.3) + 0.001 * std::abs(q - 40);
}

TEST(Fpcs, AdaLogJointMatchesPlainSpec) {
  const LogChoice got = SearchAdaLogJoint(
      0.9f, 2.2f, 1.7f,
      [](const LogCandidates& c, std::vector<double>* err) {
        err->clear();
        for (size_t i = 0; i < c.qs.size(); ++i) err->push_back(LogBumpy(c.scales[i], c.qs[i]));
      },
      true);
  const plain::LogCand want = plain::AdaLogFpcs(0.9f, 2.2f, 1.7f, [](plain::LogCand c) {
    return LogBumpy(c.s, c.q);
  });
  EXPECT_EQ(got.scale, want.s);
  EXPECT_EQ(got.q, want.q);
  // Non-FPCS: q at the current scale, then the 128-point scale grid.
  int calls = 0;
  const LogChoice nf = SearchAdaLogJoint(
      0.9f, 2.2f, 1.7f,
      [&](const LogCandidates& c, std::vector<double>* err) {
        ++calls;
        err->clear();
        for (size_t i = 0; i < c.qs.size(); ++i) err->push_back(LogBumpy(c.scales[i], c.qs[i]));
      },
      false);
  EXPECT_EQ(calls, 2);
  int best_q = 10;
  for (int q = 10; q <= 137; ++q)
    if (LogBumpy(1.7f, q) < LogBumpy(1.7f, best_q)) best_q = q;
  EXPECT_EQ(nf.q, best_q);
  EXPECT_EQ(SearchAdaLogQ(1.7f, [](const LogCandidates& c, std::vector<double>* err) {
              err->clear();
              for (size_t i = 0; i < c.qs.size(); ++i) err->push_back(LogBumpy(c.scales[i], c.qs[i]));
            }),
            best_q);
}

TEST(Fpcs, AdaLogJointBestModeMatchesPlainAndNeverWorse) {
  for (float s_cur : {1.7f, 1.3f, 2.05f}) {
    double min_seen = std::numeric_limits<double>::infinity();
    const LogChoice got = SearchAdaLogJoint(
        0.9f, 2.2f, s_cur,
        [&](const LogCandidates& c, std::vector<double>* err) {
          err->clear();
          for (size_t i = 0; i < c.qs.size(); ++i) {
            err->push_back(LogBumpy(c.scales[i], c.qs[i]));
            min_seen = std::min(min_seen, err->back());
          }
        },
        true, FpcsMode::kBest);
    const plain::LogCand want = plain::AdaLogFpcsBest(0.9f, 2.2f, s_cur, [](plain::LogCand c) {
      return LogBumpy(c.s, c.q);
    });
    EXPECT_EQ(got.scale, want.s) << s_cur;
    EXPECT_EQ(got.q, want.q) << s_cur;
    EXPECT_EQ(LogBumpy(got.scale, got.q), min_seen) << s_cur;
    // The incumbent (s_cur, any q in 10..137) is in the q stage, so never beaten by the result.
    EXPECT_LE(LogBumpy(got.scale, got.q), LogBumpy(s_cur, 37));
  }
}

}  // namespace
}  // namespace adalog::search
