// The search's streaming kernels (search/axpy.h: axpys, the sweep snapshots / combine of log A-out
// and W-out's fused SweepSubtract): every dispatched implementation gives the reference's bits.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "runtime/cpu_features.h"
#include "search/axpy.h"
#include "tests/search/plain_reference.h"

namespace adalog::search {
namespace {

// The sweep kernels (axpy.h) are bit-identical to their references: snapshots and their ids for
// events before any element, several events between two elements, events past the last one,
// odd K; combinations with skipped (-1) snapshots.
TEST(Objectives, SweepKernelsBitIdentical) {
  if (!IsaSupported(IsaLevel::kAvx512)) GTEST_SKIP() << "no AVX-512";
  std::mt19937_64 rng(8);
  constexpr int C = kSweepChunk;
  for (int K : {1, 2, 7, 64, 301}) {
    const int64_t n = 5 * K;  // positions of a larger sorted order
    std::vector<uint32_t> rp(static_cast<size_t>(K));
    std::vector<int32_t> rk(static_cast<size_t>(K));
    std::uniform_int_distribution<int64_t> pos(0, n - 1);
    std::vector<int64_t> all(static_cast<size_t>(n));
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), rng);
    std::sort(all.begin(), all.begin() + K);
    for (int r = 0; r < K; ++r) {
      rp[static_cast<size_t>(r)] = static_cast<uint32_t>(all[static_cast<size_t>(r)]);
      rk[static_cast<size_t>(r)] = static_cast<int32_t>((r * 7 + 3) % K);
    }
    const auto wc = plain::RandomVec(rng, static_cast<size_t>(K) * C, -2, 2);
    std::vector<int64_t> g;
    for (int e = 0; e < 3 * K + 5; ++e) g.push_back(pos(rng));
    g.push_back(0);
    g.push_back(n);
    g.push_back(n);
    std::sort(g.begin(), g.end());
    const int64_t nev = static_cast<int64_t>(g.size());
    std::vector<double> s_ref(static_cast<size_t>(nev + 1) * C, -7.0), s_got = s_ref;
    std::vector<int32_t> id_ref(static_cast<size_t>(nev)), id_got(static_cast<size_t>(nev));
    const int ns_ref = RefSweepKernels().snapshots(g.data(), nev, rp.data(), rk.data(), K, wc.data(),
                                                   s_ref.data(), id_ref.data());
    const int ns_got = SweepSnapshotsAvx512(g.data(), nev, rp.data(), rk.data(), K, wc.data(), s_got.data(),
                                            id_got.data());
    ASSERT_EQ(ns_got, ns_ref) << K;
    EXPECT_EQ(id_got, id_ref) << K;
    EXPECT_EQ(s_got, s_ref) << K;
    EXPECT_EQ(id_ref[0], -1) << K;  // the event at 0 precedes every element
    // The last snapshot is the sum of every element's column (m after all of them).
    std::vector<double> sum(C, 0.0);
    for (int r = 0; r < K; ++r)
      for (int o = 0; o < C; ++o) sum[static_cast<size_t>(o)] += wc[static_cast<size_t>(rk[static_cast<size_t>(r)]) * C + o];
    for (int o = 0; o < C; ++o)
      EXPECT_NEAR(s_ref[static_cast<size_t>(ns_ref - 1) * C + o], sum[static_cast<size_t>(o)], 1e-9) << K;
    const auto cs = plain::RandomVec(rng, C, -3, 3);
    std::vector<double> csd(cs.begin(), cs.end()), a;
    std::vector<int32_t> ev;
    for (int64_t e = 0; e < nev; e += 2) {
      ev.push_back(static_cast<int32_t>(e));
      a.push_back(0.37 * static_cast<double>(e % 5) - 0.6);
    }
    std::vector<double> o_ref(C), o_got(C);
    RefSweepKernels().combine(0.81, csd.data(), a.data(), ev.data(), static_cast<int>(ev.size()), id_ref.data(),
                              s_ref.data(), o_ref.data());
    SweepCombineAvx512(0.81, csd.data(), a.data(), ev.data(), static_cast<int>(ev.size()), id_ref.data(),
                       s_ref.data(), o_got.data());
    EXPECT_EQ(o_got, o_ref) << K;
  }
}

// W-out's fused sweep (SweepSubtract): the AVX-512 kernel gives the reference's bits, and both
// give the bits of the snapshot + combine pair with coefficients -1 (the form log A-out uses),
// on row counts around the two partial sums' parity and events at 0, in runs and past K.
TEST(Objectives, SweepSubtractMatchesSnapshotsAndCombine) {
  std::mt19937_64 rng(21);
  constexpr int C = kSweepChunk;
  for (int K : {1, 2, 3, 8, 65, 300}) {
    SCOPED_TRACE(K);
    std::vector<int32_t> rk(static_cast<size_t>(K));
    std::iota(rk.begin(), rk.end(), 0);
    std::shuffle(rk.begin(), rk.end(), rng);
    const auto wc = plain::RandomVec(rng, static_cast<size_t>(K) * C, -2, 2);
    const int items = 5;
    std::uniform_int_distribution<int64_t> pos(0, K);
    std::uniform_int_distribution<int32_t> it(0, items - 1);
    std::vector<std::pair<int64_t, int32_t>> evs;
    for (int e = 0; e < 2 * K + 6; ++e) evs.push_back({pos(rng), it(rng)});
    evs.push_back({0, 1});
    evs.push_back({K, 2});
    evs.push_back({K, 2});
    std::stable_sort(evs.begin(), evs.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<int64_t> g;
    std::vector<int32_t> item;
    for (const auto& e : evs) {
      g.push_back(e.first);
      item.push_back(e.second);
    }
    const int64_t nev = static_cast<int64_t>(g.size());
    const auto init = plain::RandomVec(rng, static_cast<size_t>(items) * C, -9, 9);
    std::vector<double> ref(init.begin(), init.end());
    RefSweepKernels().subtract(g.data(), item.data(), nev, rk.data(), K, wc.data(), ref.data());
    if (IsaSupported(IsaLevel::kAvx512)) {
      std::vector<double> got(init.begin(), init.end());
      SweepSubtractAvx512(g.data(), item.data(), nev, rk.data(), K, wc.data(), got.data());
      EXPECT_EQ(got, ref);
    }
    // The same sums by snapshots (rows at positions 0..K-1) and a combine per item (l0 = 1 on a
    // cs holding the item's start values).
    std::vector<uint32_t> rp(static_cast<size_t>(K));
    std::iota(rp.begin(), rp.end(), 0u);
    std::vector<double> snap(static_cast<size_t>(nev + 1) * C);
    std::vector<int32_t> sid(static_cast<size_t>(nev));
    RefSweepKernels().snapshots(g.data(), nev, rp.data(), rk.data(), K, wc.data(), snap.data(), sid.data());
    bool moved = false;
    for (int i = 0; i < items; ++i) {
      std::vector<int32_t> ev;
      for (int64_t e = 0; e < nev; ++e)
        if (item[static_cast<size_t>(e)] == i) ev.push_back(static_cast<int32_t>(e));
      const std::vector<double> a(ev.size(), -1.0);
      const std::vector<double> cs(init.begin() + i * C, init.begin() + (i + 1) * C);
      std::vector<double> out(C);
      RefSweepKernels().combine(1.0, cs.data(), a.data(), ev.data(), static_cast<int>(ev.size()), sid.data(),
                                snap.data(), out.data());
      EXPECT_EQ(out, std::vector<double>(ref.begin() + i * C, ref.begin() + (i + 1) * C)) << "item " << i;
      moved = moved || out != cs;
    }
    EXPECT_TRUE(moved);  // not vacuous: some item received rows
  }
}

// The dispatched axpy kernels are bit-identical to the reference (no fused multiply-add).
TEST(Objectives, AxpyKernelsBitIdentical) {
  std::mt19937_64 rng(3);
  for (int n : {1, 7, 16, 37, 384}) {
    const auto w = plain::RandomVec(rng, static_cast<size_t>(n), -3, 3);
    const auto a0 = plain::RandomVec(rng, static_cast<size_t>(n), -5, 5);
    std::vector<double> ref(a0.begin(), a0.end());
    const double d = 0.3713;
    AxpyF32F64Ref(ref.data(), d, w.data(), n);
    if (IsaSupported(IsaLevel::kAvx2)) {
      std::vector<double> got(a0.begin(), a0.end());
      AxpyF32F64Avx2(got.data(), d, w.data(), n);
      EXPECT_EQ(got, ref) << n;
    }
    if (IsaSupported(IsaLevel::kAvx512)) {
      std::vector<double> got(a0.begin(), a0.end());
      AxpyF32F64Avx512(got.data(), d, w.data(), n);
      EXPECT_EQ(got, ref) << n;
    }
  }
}
}  // namespace
}  // namespace adalog::search
