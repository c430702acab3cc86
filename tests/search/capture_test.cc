// Streamed FP32 capture (search/capture.h) and the executor's stepping API it uses: the same
// tensors, bit for bit, as full forwards; and the scan kernels (search/scan_kernels.h): every
// implementation gives the reference's bits.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "runtime/executor_fp32.h"
#include "search/axpy.h"
#include "search/capture.h"
#include "search/gram.h"
#include "search/psort.h"
#include "search/scan_kernels.h"
#include "tests/util/exec_random_vit.h"
#include "tests/util/model_compare.h"

namespace adalog::search {
namespace {

using testing_util::MakeRandomVit;
using testing_util::RandomVitSpec;
using test::SameBits;

std::vector<float> Images(const VitModel& m, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n) * m.embed.in_channels * m.embed.image_h * m.embed.image_w);
  for (float& x : v) x = nd(rng);
  return v;
}

RandomVitSpec Spec(bool dist) {
  RandomVitSpec s;
  s.Shape(32, 2, 3, 16, 4, 10);
  s.dist = dist;
  return s;
}

TEST(Capture, SteppingApiMatchesRun) {
  for (bool dist : {false, true}) {
    const VitModel m = MakeRandomVit(Spec(dist));
    const int n = 3;
    const std::vector<float> img = Images(m, n, 4);
    ExecutorOptions eo;
    eo.max_batch = n;
    eo.num_threads = 2;
    ExecutorFp32 ex(m, eo);
    std::vector<float> want(static_cast<size_t>(n) * m.num_classes()), got(want.size());
    ex.Run(img.data(), n, want.data());
    std::vector<float> x(static_cast<size_t>(n) * m.num_tokens() * m.dim);
    ex.RunEmbed(img.data(), n, x.data());
    for (int b = 0; b < static_cast<int>(m.blocks.size()); ++b) ex.RunBlock(b, x.data(), n);
    ex.RunHead(x.data(), n, got.data());
    EXPECT_TRUE(SameBits(want, got)) << "dist " << dist;
  }
}

void ExpectSameBlock(const BlockCapture& a, const BlockCapture& b, int block) {
  EXPECT_TRUE(SameBits(a.qkv_in, b.qkv_in) && SameBits(a.qkv_out, b.qkv_out)) << block;
  EXPECT_TRUE(SameBits(a.q, b.q) && SameBits(a.k, b.k) && SameBits(a.v, b.v)) << block;
  EXPECT_TRUE(SameBits(a.probs, b.probs)) << block;
  EXPECT_TRUE(SameBits(a.proj_in, b.proj_in) && SameBits(a.proj_out, b.proj_out)) << block;
  EXPECT_TRUE(SameBits(a.fc1_in, b.fc1_in) && SameBits(a.fc1_out, b.fc1_out)) << block;
  EXPECT_TRUE(SameBits(a.gelu_out, b.gelu_out) && SameBits(a.fc2_out, b.fc2_out)) << block;
}

TEST(Capture, StreamedMatchesFullForwards) {
  for (bool dist : {false, true}) {
    const VitModel m = MakeRandomVit(Spec(dist));
    const int n = 5, batch = 2;  // a partial last batch
    const std::vector<float> img = Images(m, n, 7);
    // Reference: full forwards (CaptureEdges), and each block captured by a fresh runner
    // (which advances the stream without keeping other blocks' taps).
    CaptureRunner ref(m, img.data(), n, batch, 1);
    EdgeCapture edges;
    ref.CaptureEdges(&edges);
    std::vector<BlockCapture> want(m.blocks.size());
    for (size_t b = 0; b < m.blocks.size(); ++b) {
      CaptureRunner fresh(m, img.data(), n, batch, 1);
      fresh.CaptureBlock(static_cast<int>(b), &want[b]);
    }
    // Streamed, in model order.
    CaptureRunner cap(m, img.data(), n, batch, 2);
    EdgeCapture pe, head;
    cap.CapturePatchEmbed(&pe);
    EXPECT_TRUE(SameBits(pe.patch_in, edges.patch_in) && SameBits(pe.patch_out, edges.patch_out));
    for (size_t b = 0; b < m.blocks.size(); ++b) {
      BlockCapture c;
      cap.CaptureBlock(static_cast<int>(b), &c);
      ExpectSameBlock(c, want[b], static_cast<int>(b));
    }
    cap.CaptureHead(&head);
    EXPECT_TRUE(SameBits(head.head_in, edges.head_in) && SameBits(head.head_out, edges.head_out));
    EXPECT_TRUE(SameBits(head.head_dist_in, edges.head_dist_in) &&
                SameBits(head.head_dist_out, edges.head_dist_out));
    // Out of order (restarts the stream): still the same tensors.
    BlockCapture again;
    cap.CaptureBlock(1, &again);
    ExpectSameBlock(again, want[1], 1);
  }
}

TEST(ScanKernels, AllImplementationsGiveReferenceBits) {
  const ScanKernels& ref = RefScanKernels();
  const ScanKernels& sel = SelectScanKernels();
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t n : {1, 7, 15, 16, 17, 100, 1000}) {
    std::vector<float> x(static_cast<size_t>(n)), b(x.size()), c(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      x[i] = nd(rng);
      b[i] = nd(rng);
      c[i] = nd(rng);
    }
    if (n > 3) {
      x[0] = -0.0f;
      x[1] = 0.0f;
    }
    std::vector<float> lv(40);
    for (size_t i = 0; i < lv.size(); ++i) lv[i] = static_cast<float>(i) * 0.5f + 0.25f;
    for (int n_thr : {0, 1, 5, 15, 16, 17, 30}) {
      for (int base : {0, 3}) {
        std::vector<float> thr(static_cast<size_t>(n_thr));
        for (int j = 0; j < n_thr; ++j) thr[static_cast<size_t>(j)] = 2.5f - 0.3f * static_cast<float>(j);
        if (n_thr > 4) thr[3] = thr[2];          // equal thresholds
        if (n_thr > 1 && n > 3) x[2] = thr[1];   // an element on a threshold
        std::vector<float> o1(x.size()), o2(x.size());
        ref.threshold_levels(x.data(), n, thr.data(), n_thr, base, lv.data(), o1.data());
        sel.threshold_levels(x.data(), n, thr.data(), n_thr, base, lv.data(), o2.data());
        EXPECT_TRUE(SameBits(o1, o2)) << n << " " << n_thr << " " << base;
        // And the definition.
        for (int64_t i = 0; i < n; ++i) {
          int cnt = base;
          for (float t : thr) cnt += x[static_cast<size_t>(i)] < t ? 1 : 0;
          ASSERT_EQ(o1[static_cast<size_t>(i)], lv[static_cast<size_t>(cnt)]);
        }
      }
    }
    for (int n_thr : {0, 1, 7, 15, 16, 20}) {
      std::vector<float> thr(static_cast<size_t>(n_thr));
      for (int j = 0; j < n_thr; ++j) thr[static_cast<size_t>(j)] = -2.0f + 0.25f * static_cast<float>(j);
      if (n_thr > 4) thr[3] = thr[2];
      if (n_thr > 1 && n > 3) x[2] = thr[1];
      std::vector<uint8_t> c1(x.size()), c2(x.size());
      ref.threshold_codes(x.data(), n, thr.data(), n_thr, c1.data());
      sel.threshold_codes(x.data(), n, thr.data(), n_thr, c2.data());
      EXPECT_EQ(c1, c2) << n << " " << n_thr;
      for (int64_t i = 0; i < n; ++i) {
        int cnt = 0;
        for (float t : thr) cnt += x[static_cast<size_t>(i)] >= t ? 1 : 0;
        ASSERT_EQ(c1[static_cast<size_t>(i)], cnt);
      }
    }
    double l1, q1, l2, q2;
    ref.dot2(x.data(), b.data(), c.data(), n, &l1, &q1);
    sel.dot2(x.data(), b.data(), c.data(), n, &l2, &q2);
    EXPECT_EQ(std::memcmp(&l1, &l2, sizeof l1), 0);
    EXPECT_EQ(std::memcmp(&q1, &q2, sizeof q1), 0);
    std::vector<double> z(x.size()), a(x.size());
    for (size_t i = 0; i < z.size(); ++i) {
      z[i] = static_cast<double>(b[i]) * 1.1;
      a[i] = static_cast<double>(c[i]) / 3.0;
    }
    const double r1 = ref.residual_sq(z.data(), 0.7, a.data(), n);
    const double r2 = sel.residual_sq(z.data(), 0.7, a.data(), n);
    EXPECT_EQ(std::memcmp(&r1, &r2, sizeof r1), 0);
    double plain = 0;
    for (size_t i = 0; i < z.size(); ++i) plain += (z[i] - 0.7 * a[i]) * (z[i] - 0.7 * a[i]);
    EXPECT_NEAR(r1, plain, 1e-12 * plain);
  }
}

TEST(ScanKernels, RowUpdateGivesReferenceBits) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int K = 37;
  for (int n : {1, 8, 13, 64, 70, 384, 391}) {
    std::vector<float> w(static_cast<size_t>(K) * n);
    for (float& v : w) v = nd(rng);
    for (int cnt : {0, 1, 5, 40}) {
      std::vector<int32_t> k(static_cast<size_t>(cnt));
      std::vector<double> d(static_cast<size_t>(cnt));
      for (int e = 0; e < cnt; ++e) {
        k[static_cast<size_t>(e)] = static_cast<int32_t>(rng() % K);
        d[static_cast<size_t>(e)] = static_cast<double>(nd(rng)) / 7.0;
      }
      std::vector<double> a1(static_cast<size_t>(n)), a2;
      for (double& v : a1) v = nd(rng);
      a2 = a1;
      RowUpdateRef(a1.data(), w.data(), n, k.data(), d.data(), cnt, n);
      SelectRowUpdate()(a2.data(), w.data(), n, k.data(), d.data(), cnt, n);
      EXPECT_EQ(std::memcmp(a1.data(), a2.data(), sizeof(double) * a1.size()), 0) << n << " " << cnt;
    }
  }
}

TEST(ScanKernels, GramExactProductsAnyImplementation) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int M : {1, 6, 13, 40, 49}) {
    for (int N : {5, 32, 49, 70}) {
      // Two row counts: one block of GramAtB's rows, and several blocks (the last one partial).
      const int64_t T = N == 49 ? 2 * kGramBlockT + 57 : 57;
      std::vector<float> a(static_cast<size_t>(T) * M), b(static_cast<size_t>(T) * N);
      for (float& v : a) v = nd(rng);
      for (float& v : b) v = nd(rng) * 3.0f;
      // Plain: per element, t ascending, one accumulator.
      std::vector<double> want(static_cast<size_t>(M) * N), got(want.size());
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
          double acc = 0;
          for (int64_t t = 0; t < T; ++t)
            acc += static_cast<double>(a[static_cast<size_t>(t * M + i)]) * b[static_cast<size_t>(t * N + j)];
          want[static_cast<size_t>(i) * N + j] = acc;
        }
      GramAtB(a.data(), M, M, b.data(), N, N, T, got.data(), N, false);
      EXPECT_EQ(std::memcmp(want.data(), got.data(), sizeof(double) * want.size()), 0) << M << " " << N;
      for (int i = 0; i < M; i += kGramTileM)
        for (int j = 0; j < N; j += kGramTileN) {
          const int mi = std::min(kGramTileM, M - i), nj = std::min(kGramTileN, N - j);
          std::vector<double> r(want.size(), -1.0), s(want.size(), -1.0);
          GramTileRef(a.data(), M, b.data(), N, T, i, mi, j, nj, r.data(), N, false);
          SelectGramTile()(a.data(), M, b.data(), N, T, i, mi, j, nj, s.data(), N, false);
          EXPECT_EQ(std::memcmp(r.data(), s.data(), sizeof(double) * r.size()), 0);
          // Carried on from a first block of rows: the one-pass sums, bit for bit.
          const int64_t t1 = T / 3;
          std::vector<double> c(want.size(), -1.0);
          SelectGramTile()(a.data(), M, b.data(), N, t1, i, mi, j, nj, c.data(), N, false);
          SelectGramTile()(a.data() + t1 * M, M, b.data() + t1 * N, N, T - t1, i, mi, j, nj, c.data(), N, true);
          EXPECT_EQ(std::memcmp(r.data(), c.data(), sizeof(double) * r.size()), 0);
        }
    }
    // Symmetric: the mirrored lower triangle equals the plain sums too.
    const int64_t T = 33;
    std::vector<float> x(static_cast<size_t>(T) * M);
    for (float& v : x) v = nd(rng);
    std::vector<double> g(static_cast<size_t>(M) * M, -7.0);
    GramAtB(x.data(), M, M, x.data(), M, M, T, g.data(), M, true);
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < M; ++j) {
        double acc = 0;
        for (int64_t t = 0; t < T; ++t)
          acc += static_cast<double>(x[static_cast<size_t>(t * M + i)]) * x[static_cast<size_t>(t * M + j)];
        ASSERT_EQ(g[static_cast<size_t>(i) * M + j], acc) << i << " " << j;
      }
  }
}

TEST(ScanKernels, ParallelSortDistinctAnyThreadCount) {
  std::mt19937_64 rng(9);
  std::vector<uint64_t> keys(200003);
  for (size_t i = 0; i < keys.size(); ++i) keys[i] = (rng() & ~uint64_t{0xffffffff}) | i;
  std::vector<uint64_t> want = keys;
  std::sort(want.begin(), want.end());
  const int prev = omp_get_max_threads();
  for (int t : {1, 2, 3, 5}) {
    omp_set_num_threads(t);
    std::vector<uint64_t> got = keys;
    ParallelSortDistinct(&got);
    EXPECT_EQ(got, want) << t;
  }
  omp_set_num_threads(prev);
}

}  // namespace
}  // namespace adalog::search
