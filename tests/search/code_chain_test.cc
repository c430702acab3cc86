// The chain machinery (search/code_chain.h) against brute force: code steps equal the
// quantizer's Encode at every sorted position, change ranges cover exactly the positions whose
// values differ (ascending, with the right values), buckets are stable, chain orders as stated.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "quant/uniform.h"
#include "search/code_chain.h"

namespace adalog::search {
namespace {

std::vector<int> Values(const CodeSteps& s, int64_t n) {
  std::vector<int> v(static_cast<size_t>(n), -9999);
  ForEachRange(s, n, [&](int64_t a, int64_t b, int u) {
    for (int64_t p = a; p < b; ++p) v[static_cast<size_t>(p)] = u;
  });
  return v;
}

TEST(CodeChain, SortWithIndexOrdersByValueThenIndex) {
  const std::vector<float> x = {0.5f, -1.0f, 0.0f, 0.5f, -0.0f, 3.0f, -1.0f};
  SortedValues s;
  SortWithIndex(x.data(), static_cast<int64_t>(x.size()), &s);
  EXPECT_EQ(s.idx, (std::vector<uint32_t>{1, 6, 4, 2, 0, 3, 5}));  // -0 just below +0
  for (size_t p = 0; p < x.size(); ++p) EXPECT_EQ(s.val[p], x[s.idx[p]]);
}

TEST(CodeChain, UniformStepsEqualEncodeAtEverySortedPosition) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> d(-3.0f, 5.0f);
  std::vector<float> x(500);
  for (auto& v : x) v = d(rng);
  x[7] = x[8];  // duplicates
  SortedValues s;
  SortWithIndex(x.data(), static_cast<int64_t>(x.size()), &s);
  int distinct_levels_seen = 0;
  for (int bits : {2, 3, 4, 6}) {
    for (float scale : {0.02f, 0.1f, 0.9f}) {
      for (int32_t z : {0, 3, (1 << bits) - 1}) {
        const UniformQuantizer q(UniformParams{bits, scale, z});
        CodeSteps steps;
        UniformSteps(q, z, s.val.data(), static_cast<int64_t>(x.size()), &steps);
        EXPECT_EQ(steps.lo, -z);
        EXPECT_EQ(steps.bounds.size(), static_cast<size_t>((1 << bits) - 1));
        const std::vector<int> u = Values(steps, static_cast<int64_t>(x.size()));
        std::vector<int> seen;
        for (size_t p = 0; p < x.size(); ++p) {
          ASSERT_EQ(u[p], q.Encode(s.val[p]) - z) << bits << " " << scale << " " << z << " p " << p;
          seen.push_back(u[p]);
        }
        seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
        distinct_levels_seen = std::max(distinct_levels_seen, static_cast<int>(seen.size()));
      }
    }
  }
  EXPECT_GE(distinct_levels_seen, 30);  // the data spans many codes (not a vacuous check)
}

TEST(CodeChain, ForEachChangeVisitsExactlyTheChangedPositionsInOrder) {
  std::mt19937_64 rng(5);
  const int64_t n = 300;
  auto random_steps = [&](int levels) {
    CodeSteps s;
    s.lo = static_cast<int>(rng() % 7) - 3;
    std::uniform_int_distribution<int64_t> pos(0, n);
    for (int j = 0; j + 1 < levels; ++j) s.bounds.push_back(pos(rng));
    std::sort(s.bounds.begin(), s.bounds.end());
    return s;
  };
  int64_t total_changed = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const CodeSteps a = trial == 0 ? CodeSteps{} : random_steps(1 + static_cast<int>(rng() % 16));
    const CodeSteps b = random_steps(1 + static_cast<int>(rng() % 16));
    const std::vector<int> va = Values(a, n), vb = Values(b, n);
    std::vector<int64_t> visited;
    ForEachChange(a, b, n, [&](int64_t lo, int64_t hi, int ua, int ub) {
      ASSERT_LT(lo, hi);
      ASSERT_NE(ua, ub);
      for (int64_t p = lo; p < hi; ++p) {
        ASSERT_EQ(ua, va[static_cast<size_t>(p)]) << p;
        ASSERT_EQ(ub, vb[static_cast<size_t>(p)]) << p;
        visited.push_back(p);
      }
    });
    std::vector<int64_t> want;
    for (int64_t p = 0; p < n; ++p)
      if (va[static_cast<size_t>(p)] != vb[static_cast<size_t>(p)]) want.push_back(p);
    ASSERT_EQ(visited, want) << "trial " << trial;  // ascending, each once
    EXPECT_EQ(CountChanged(a, b, n), static_cast<int64_t>(want.size()));
    total_changed += static_cast<int64_t>(want.size());
    // Stable buckets by idx % 5 (idx: a permutation of the positions).
    std::vector<uint32_t> idx(static_cast<size_t>(n));
    for (int64_t p = 0; p < n; ++p) idx[static_cast<size_t>(p)] = static_cast<uint32_t>((p * 37) % n);
    std::vector<int64_t> start;
    std::vector<int64_t> slot_pos(want.size(), -1);
    std::vector<int> slot_delta(want.size(), 0);
    const int64_t got = BucketChanges(a, b, idx.data(), n, 5, [](uint32_t i) { return i % 5; }, &start,
                                      [&](int64_t at, uint32_t i, int ua, int ub) {
                                        slot_pos[static_cast<size_t>(at)] = i;
                                        slot_delta[static_cast<size_t>(at)] = ub - ua;
                                      });
    ASSERT_EQ(got, static_cast<int64_t>(want.size()));
    ASSERT_EQ(start.size(), 6u);
    std::vector<int64_t> expect_pos;
    for (int bucket = 0; bucket < 5; ++bucket)
      for (int64_t p : want)
        if (idx[static_cast<size_t>(p)] % 5 == static_cast<uint32_t>(bucket)) {
          expect_pos.push_back(idx[static_cast<size_t>(p)]);
          EXPECT_EQ(slot_delta[expect_pos.size() - 1], vb[static_cast<size_t>(p)] - va[static_cast<size_t>(p)]);
        }
    EXPECT_EQ(slot_pos, expect_pos);
  }
  EXPECT_GT(total_changed, 1000);
}

TEST(CodeChain, ChainOrders) {
  UniformCandidates c;
  c.groups = 1;
  c.count = 6;
  c.bits = 4;
  c.scales = {0.3f, 0.1f, 0.3f, 0.2f, 0.1f, 0.3f};
  c.zero_points = {2, 5, 1, 2, 5, 1};
  EXPECT_EQ(ScaleOrder(c, 0), (std::vector<int>{1, 4, 3, 2, 5, 0}));
  EXPECT_EQ(KeyThenScaleOrder(c.zero_points, c.scales), (std::vector<int>{3, 0, 1, 4, 2, 5}));
}

}  // namespace
}  // namespace adalog::search
