// Each reformulated objective (method §4.3) against the plain formula: the same errors (to double
// rounding) and, under FPCS, the same selected candidate, on small synthetic data.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <numeric>
#include <random>

#include "quant/log_quantizers.h"
#include "quant/uniform.h"
#include "search/fpcs.h"
#include "runtime/cpu_features.h"
#include "search/grids.h"
#include "search/log_act_out.h"
#include "search/objectives.h"
#include "tests/search/plain_reference.h"

namespace adalog::search {
namespace {

void ExpectClose(const std::vector<double>& got, const std::vector<double>& want, double rel) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], rel * std::max(1.0, std::abs(want[i]))) << "candidate " << i;
}

// Argmin per group of [groups][count] errors.
std::vector<int> Argmins(const std::vector<double>& e, int groups, int count) {
  std::vector<int> out;
  for (int g = 0; g < groups; ++g) out.push_back(StableTopK(e.data() + g * count, count, 1)[0]);
  return out;
}

TEST(Objectives, WeightSelf) {
  std::mt19937_64 rng(1);
  const int rows = 5, cols = 33;
  const auto w = plain::RandomVec(rng, rows * cols, -1, 1.5f);
  const UniformGrid g = LinearWeightGrid(w.data(), rows, cols, 4);
  std::vector<double> got;
  WeightSelfErrors(w.data(), rows, cols, g.cands, &got);
  std::vector<double> want;
  for (int r = 0; r < rows; ++r) {
    std::vector<float> row(w.begin() + r * cols, w.begin() + (r + 1) * cols);
    for (int i = 0; i < 128; ++i)
      want.push_back(plain::SumSq(row, plain::FqUniform(row, 4, {g.cands.scale(r, i), g.cands.zp(r, i)})));
  }
  ExpectClose(got, want, 1e-12);
}

TEST(Objectives, ActSelfSortedPrefixSumsEqualsPlain) {
  std::mt19937_64 rng(2);
  const int rows = 300, cols = 7;
  auto x = plain::RandomVec(rng, rows * cols, -2, 5);
  x[5] = x[6];  // duplicates
  for (bool per_channel : {false, true}) {
    for (int bits : {3, 4, 6}) {
      const UniformGrid g = per_channel ? ChannelActivationGrid(x.data(), rows, cols, bits)
                                        : TensorActivationGrid(x.data(), rows * cols, bits);
      const ActSelfObjective obj(x.data(), rows, cols, per_channel);
      std::vector<double> got;
      obj.Eval(g.cands, &got);
      std::vector<double> want;
      for (int grp = 0; grp < g.cands.groups; ++grp) {
        std::vector<float> v;
        if (per_channel) {
          for (int r = 0; r < rows; ++r) v.push_back(x[r * cols + grp]);
        } else {
          v = x;
        }
        for (int i = 0; i < 128; ++i)
          want.push_back(plain::SumSq(v, plain::FqUniform(v, bits, {g.cands.scale(grp, i), g.cands.zp(grp, i)})));
      }
      ExpectClose(got, want, 1e-9);
      EXPECT_EQ(Argmins(got, g.cands.groups, 128), Argmins(want, g.cands.groups, 128));
    }
  }
}

struct LinearCase {
  int T = 64, K = 24, N = 9;
  std::vector<float> x, w, b, y;
  explicit LinearCase(uint64_t seed, int tokens = 64) : T(tokens) {
    std::mt19937_64 rng(seed);
    x = plain::RandomVec(rng, static_cast<size_t>(T) * K, -1, 2);
    w = plain::RandomVec(rng, static_cast<size_t>(N) * K, -0.5f, 0.5f);
    b = plain::RandomVec(rng, static_cast<size_t>(N), -0.2f, 0.2f);
    y = plain::Linear(x, w, b, T, K, N);
  }
};

std::vector<float> QuantRows(const std::vector<float>& w, int N, int K, const UniformChoice& c, int bits) {
  std::vector<float> out(w.size());
  for (int o = 0; o < N; ++o) {
    const UniformQuantizer q(UniformParams{bits, c.scales[o], c.zero_points[o]});
    for (int k = 0; k < K; ++k) out[o * K + k] = q.FakeQuant(w[o * K + k]);
  }
  return out;
}

// lc's weight fake-quantized at candidate `cand` of its per-row weight grid (every row).
std::vector<float> QuantWeightAtGrid(const LinearCase& lc, int cand, int bits) {
  const UniformGrid wg = LinearWeightGrid(lc.w.data(), lc.N, lc.K, bits);
  UniformChoice wc;
  for (int o = 0; o < lc.N; ++o) {
    wc.scales.push_back(wg.cands.scale(o, cand));
    wc.zero_points.push_back(wg.cands.zp(o, cand));
  }
  return QuantRows(lc.w, lc.N, lc.K, wc, bits);
}

// Plain per-head matmul error: sum over images of ||a b' - A B'||^2 for head h, with a / A laid
// out [H][I][M][K] and b / B [H][I][N][K] (b_kn = false: out = a b^T) or [H][I][K][N] (true).
double PlainHeadMatmulErr(const std::vector<float>& a, const std::vector<float>& b,
                          const std::vector<float>& A, const std::vector<float>& B, int h, int I, int M,
                          int K, int N, bool b_kn) {
  double e = 0;
  for (int img = 0; img < I; ++img)
    for (int m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        double p = 0, q = 0;
        for (int k = 0; k < K; ++k) {
          const size_t ai = ((static_cast<size_t>(h) * I + img) * M + m) * K + k;
          const size_t bi = b_kn ? ((static_cast<size_t>(h) * I + img) * K + k) * N + n
                                 : ((static_cast<size_t>(h) * I + img) * N + n) * K + k;
          p += static_cast<double>(a[ai]) * b[bi];
          q += static_cast<double>(A[ai]) * B[bi];
        }
        e += (p - q) * (p - q);
      }
  return e;
}

// Plain per-head objective: candidate i of head h fake-quantizes head h of x into a copy of
// `base` (the other heads) and scores it with err_of(copy, h); [head][candidate].
template <typename ErrOf>
void PlainPerHead(const std::vector<float>& x, const std::vector<float>& base, int H,
                  const UniformCandidates& c, const ErrOf& err_of, std::vector<double>* e) {
  e->clear();
  const size_t per = x.size() / H;
  for (int h = 0; h < H; ++h)
    for (int i = 0; i < c.count; ++i) {
      std::vector<float> q = base;
      const UniformQuantizer uq(UniformParams{c.bits, c.scale(h, i), c.zp(h, i)});
      for (size_t j = h * per; j < (h + 1) * per; ++j) q[j] = uq.FakeQuant(x[j]);
      e->push_back(err_of(q, h));
    }
}

// LogFq (threshold count) equals the quantizers' own FakeQuant bit for bit, on random values,
// special values and the floats next to every code boundary.
TEST(Objectives, LogFqEqualsQuantizerFakeQuant) {
  std::mt19937_64 rng(12);
  std::vector<float> xs = {0.0f, -0.0f, 1.0f, -1.0f, std::numeric_limits<float>::infinity(),
                           -std::numeric_limits<float>::infinity(), std::nanf(""),
                           std::numeric_limits<float>::denorm_min(), 1e-30f, -kGeluShift, 3e38f};
  std::uniform_real_distribution<float> u01(0.0f, 1.0f);
  for (int i = 0; i < 20000; ++i) {
    const float v = std::exp2(-30.0f * u01(rng)) * (u01(rng) < 0.1f ? -1.0f : 1.0f) * 4.0f;
    xs.push_back(v);
    xs.push_back(std::nextafter(v, 0.0f));
  }
  for (LogKind kind : {LogKind::kAdaLog, LogKind::kLog2, LogKind::kLogSqrt2})
    for (int bits : {3, 4, 6})
      for (int q : {10, 37, 61, 137})
        for (float scale : {1.0f, 0.37f, 3.1f})
          for (float shift : {0.0f, kGeluShift}) {
            if (kind != LogKind::kAdaLog && q != 37) continue;
            const LogParams p{kind, bits, scale, q};
            // Values at the decision points: every float where the code steps, and neighbours.
            std::vector<float> x = xs;
            const LogQuantizer base(p);
            for (int c = 0; c <= base.zero_code(); ++c) {
              const float lvl = base.Decode(c);
              for (float m : {1.0f, 1.0905f, 1.189f, 0.917f}) {
                const float b = lvl * m;
                x.push_back(b - shift);
                x.push_back(std::nextafter(b, 0.0f) - shift);
                x.push_back(std::nextafter(b, 10.0f) - shift);
              }
            }
            std::vector<float> got(x.size()), want(x.size());
            LogFq(p, shift)(x.data(), static_cast<int64_t>(x.size()), got.data());
            if (shift == 0.0f) {
              base.FakeQuant(x.data(), static_cast<int64_t>(x.size()), want.data());
            } else {
              ShiftLogQuantizer(p, shift, false).FakeQuant(x.data(), static_cast<int64_t>(x.size()), want.data());
            }
            ASSERT_EQ(std::memcmp(got.data(), want.data(), sizeof(float) * got.size()), 0)
                << static_cast<int>(kind) << " " << bits << " " << q << " " << scale << " " << shift;
          }
}

// The uniform code thresholds reproduce the quantizer's Encode for every probed float.
TEST(Objectives, UniformCodeThresholdsEqualEncode) {
  std::mt19937_64 rng(13);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  for (int bits : {2, 3, 4, 6, 8})
    for (float scale : {0.013f, 0.37f, 1.0f, 3.1f})
      for (int z : {0, 1, (1 << bits) / 2, (1 << bits) - 1}) {
        const UniformParams p{bits, scale, z};
        const UniformQuantizer q(p);
        const std::vector<float> thr = UniformCodeThresholds(p);
        ASSERT_EQ(static_cast<int>(thr.size()), (1 << bits) - 1);
        std::vector<float> x = {0.0f, -0.0f, std::numeric_limits<float>::infinity(),
                                -std::numeric_limits<float>::infinity(), 1e-40f, -1e-40f};
        for (int i = 0; i < 3000; ++i) x.push_back(nd(rng));
        for (float t : thr) {
          x.push_back(t);
          x.push_back(std::nextafter(t, -1e30f));
          x.push_back(std::nextafter(t, 1e30f));
        }
        for (int c = 0; c < (1 << bits); ++c) {  // half-way points
          const float h = (static_cast<float>(c - z) + 0.5f) * scale;
          x.push_back(h);
          x.push_back(std::nextafter(h, -1e30f));
          x.push_back(std::nextafter(h, 1e30f));
        }
        for (float v : x) {
          int cnt = 0;
          for (float t : thr) cnt += v >= t ? 1 : 0;
          ASSERT_EQ(cnt, q.Encode(v)) << bits << " " << scale << " " << z << " x " << v;
        }
      }
}

TEST(Objectives, WeightOutGramEqualsPlainAndSelectsSameCandidate) {
  for (int tokens : {64, 10}) {  // T >= K: e^T G e by GEMM with G; T < K: ||Xq e||^2
  SCOPED_TRACE(tokens);
  const LinearCase lc(3, tokens);
  const int bits = 4;
  const UniformGrid ag = TensorActivationGrid(lc.x.data(), lc.T * lc.K, bits);
  const std::vector<float> xq = plain::FqUniform(lc.x, bits, {ag.cands.scale(0, 100), ag.cands.zp(0, 100)});
  WeightOutObjective obj(xq.data(), lc.T, lc.K, lc.y.data(), lc.b.data(), lc.N);
  const UniformGrid wg = LinearWeightGrid(lc.w.data(), lc.N, lc.K, bits);
  // The plain formula: quantize the row, run the Linear, sum the squared error of column o.
  auto plain_obj = [&](const UniformCandidates& c, std::vector<double>* err) {
    err->clear();
    for (int o = 0; o < c.groups; ++o)
      for (int i = 0; i < c.count; ++i) {
        std::vector<float> wq = lc.w;
        const UniformQuantizer q(UniformParams{c.bits, c.scale(o, i), c.zp(o, i)});
        for (int k = 0; k < lc.K; ++k) wq[o * lc.K + k] = q.FakeQuant(lc.w[o * lc.K + k]);
        err->push_back(plain::OutErr(xq, wq, lc.b, lc.y, lc.T, lc.K, lc.N, o));
      }
  };
  std::vector<double> got, want;
  obj.Eval(lc.w.data(), wg.cands, &got);
  plain_obj(wg.cands, &want);
  ExpectClose(got, want, 1e-6);
  EXPECT_EQ(Argmins(got, lc.N, 128), Argmins(want, lc.N, 128));
  // Whole FPCS: identical choices.
  const UniformChoice a = SearchUniform(
      wg, [&](const UniformCandidates& c, std::vector<double>* e) { obj.Eval(lc.w.data(), c, e); }, {});
  const UniformChoice p = SearchUniform(wg, plain_obj, {});
  EXPECT_EQ(a.scales, p.scales);
  EXPECT_EQ(a.zero_points, p.zero_points);
  }
}

// Every evaluation of e^T G e (the sweep, the float GEMM, the exact double chain over sparse
// code changes) gives the plain errors and the same FPCS result.
TEST(Objectives, WeightOutChainAndGemmFormsEqualPlain) {
  for (int bits : {3, 4, 6}) {
    for (int tokens : {80, 12}) {  // T >= K (the Gram GEMM), T < K (||Xq e||^2)
      SCOPED_TRACE(bits);
      SCOPED_TRACE(tokens);
      const LinearCase lc(7, tokens);
      const UniformGrid ag = TensorActivationGrid(lc.x.data(), lc.T * lc.K, bits);
      const std::vector<float> xq = plain::FqUniform(lc.x, bits, {ag.cands.scale(0, 90), ag.cands.zp(0, 90)});
      const UniformGrid wg = LinearWeightGrid(lc.w.data(), lc.N, lc.K, bits);
      auto plain_obj = [&](const UniformCandidates& c, std::vector<double>* err) {
        err->clear();
        for (int o = 0; o < c.groups; ++o)
          for (int i = 0; i < c.count; ++i) {
            std::vector<float> wq = lc.w;
            const UniformQuantizer q(UniformParams{c.bits, c.scale(o, i), c.zp(o, i)});
            for (int k = 0; k < lc.K; ++k) wq[o * lc.K + k] = q.FakeQuant(lc.w[o * lc.K + k]);
            err->push_back(plain::OutErr(xq, wq, lc.b, lc.y, lc.T, lc.K, lc.N, o));
          }
      };
      std::vector<double> want;
      plain_obj(wg.cands, &want);
      const UniformChoice p = SearchUniform(wg, plain_obj, {});
      for (int form : {1, 2, 3}) {
        SCOPED_TRACE(form);
        WeightOutObjective obj(xq.data(), lc.T, lc.K, lc.y.data(), lc.b.data(), lc.N);
        obj.set_quad_form(form);
        std::vector<double> got;
        obj.Eval(lc.w.data(), wg.cands, &got);
        ExpectClose(got, want, 1e-6);
        EXPECT_EQ(Argmins(got, lc.N, 128), Argmins(want, lc.N, 128));
        const UniformChoice a = SearchUniform(
            wg, [&](const UniformCandidates& c, std::vector<double>* e) { obj.Eval(lc.w.data(), c, e); }, {});
        EXPECT_EQ(a.scales, p.scales);
        EXPECT_EQ(a.zero_points, p.zero_points);
      }
    }
  }
}

// Candidates with the same integer codes u = code - z (one scale, zero points that clip nothing)
// quantize a row to the same values, so the plain objective gives them the same error and its
// top-k keeps the lower index. Every form must give them bit-identical errors too (the sweep
// would not if it summed a bound at 0 or at K as a term), whatever else it rounds.
TEST(Objectives, WeightOutEqualCodesGiveEqualErrors) {
  for (int tokens : {40, 10}) {
    SCOPED_TRACE(tokens);
    const LinearCase lc(11, tokens);
    const int bits = 6;
    const UniformGrid ag = TensorActivationGrid(lc.x.data(), lc.T * lc.K, bits);
    const std::vector<float> xq = plain::FqUniform(lc.x, bits, {ag.cands.scale(0, 90), ag.cands.zp(0, 90)});
    // Per row: scale = max|w| / 20, zero points 30..33 (codes within 10..53 of 0..63: no clip).
    UniformCandidates c;
    c.bits = bits;
    c.groups = lc.N;
    c.count = 4;
    for (int o = 0; o < lc.N; ++o) {
      float amax = 0;
      for (int k = 0; k < lc.K; ++k) amax = std::max(amax, std::abs(lc.w[static_cast<size_t>(o) * lc.K + k]));
      for (int i = 0; i < 4; ++i) {
        c.scales.push_back(amax / 20.0f);
        c.zero_points.push_back(30 + i);
      }
    }
    for (int form : {1, 2, 3}) {
      SCOPED_TRACE(form);
      WeightOutObjective obj(xq.data(), lc.T, lc.K, lc.y.data(), lc.b.data(), lc.N);
      obj.set_quad_form(form);
      std::vector<double> e;
      obj.Eval(lc.w.data(), c, &e);
      for (int o = 0; o < lc.N; ++o)
        for (int i = 1; i < 4; ++i)
          EXPECT_EQ(e[static_cast<size_t>(o) * 4 + i], e[static_cast<size_t>(o) * 4]) << "row " << o << " zp " << 30 + i;
    }
  }
}

TEST(Objectives, ActOutUniformIntegerGramEqualsPlainAndSelectsSameCandidate) {
  const LinearCase lc(4);
  for (int bits : {3, 4, 6, 8}) {
    const std::vector<float> wq = QuantWeightAtGrid(lc, 126, bits);
    ActOutObjective obj(lc.x.data(), lc.T, lc.K, lc.y.data(), lc.b.data(), lc.N);
    obj.SetWeight(wq.data());
    const UniformGrid ag = TensorActivationGrid(lc.x.data(), lc.T * lc.K, bits);
    auto plain_obj = [&](const UniformCandidates& c, std::vector<double>* err) {
      err->clear();
      for (int i = 0; i < c.count; ++i)
        err->push_back(plain::OutErr(plain::FqUniform(lc.x, bits, {c.scale(0, i), c.zp(0, i)}), wq,
                                     lc.b, lc.y, lc.T, lc.K, lc.N, -1));
    };
    std::vector<double> got, want;
    obj.EvalUniform(ag.cands, &got);
    plain_obj(ag.cands, &want);
    ExpectClose(got, want, 1e-6);
    EXPECT_EQ(Argmins(got, 1, 128), Argmins(want, 1, 128)) << "bits " << bits;
    FpcsConfig cfg;
    cfg.scale_floor = kActivationScaleFloor;
    const UniformChoice a = SearchUniform(
        ag, [&](const UniformCandidates& c, std::vector<double>* e) { obj.EvalUniform(c, e); }, cfg);
    const UniformChoice p = SearchUniform(ag, plain_obj, cfg);
    EXPECT_EQ(a.scales, p.scales) << "bits " << bits;
    EXPECT_EQ(a.zero_points, p.zero_points) << "bits " << bits;
  }
}

// The chain form of the uniform A-out (incremental integer code Gram) gives bit-identical errors
// to a from-scratch Gram per candidate: close scales of one zero point (few codes change), far
// ones (from scratch), a zero-point switch and back, a repeated candidate.
TEST(Objectives, ActOutUniformChainBitIdenticalToFullGram) {
  const LinearCase lc(11, 120);
  for (int bits : {3, 4, 6, 7}) {
    const std::vector<float> wq = QuantWeightAtGrid(lc, 120, 4);
    UniformCandidates cands;
    cands.bits = bits;
    cands.groups = 1;
    const float s0 = 4.0f / static_cast<float>((1 << bits) - 1);
    const int32_t z0 = (1 << bits) / 2;
    for (float f : {1.0f, 1.001f, 1.003f, 0.999f, 1.6f, 1.002f, 1.0f, 0.7f, 1.0005f})
      for (int32_t z : {z0, z0 - 1}) {
        cands.scales.push_back(s0 * f);
        cands.zero_points.push_back(z);
      }
    cands.count = static_cast<int>(cands.scales.size());
    ActOutObjective chain(lc.x.data(), lc.T, lc.K, lc.y.data(), lc.b.data(), lc.N);
    ActOutObjective full(lc.x.data(), lc.T, lc.K, lc.y.data(), lc.b.data(), lc.N);
    full.set_uniform_chain(false);
    chain.SetWeight(wq.data());
    full.SetWeight(wq.data());
    std::vector<double> got, want;
    chain.EvalUniform(cands, &got);
    full.EvalUniform(cands, &want);
    EXPECT_EQ(got, want) << "bits " << bits;
    EXPECT_GT(chain.chain_updates(), 0) << "bits " << bits;
    EXPECT_EQ(full.chain_updates(), 0);
  }
}

TEST(Objectives, ActOutDirectLogEqualsPlain) {
  LinearCase lc(5);
  for (auto& v : lc.x) v = std::max(v, -0.16f);  // GELU-like range
  lc.y = plain::Linear(lc.x, lc.w, lc.b, lc.T, lc.K, lc.N);
  ActOutObjective obj(lc.x.data(), lc.T, lc.K, lc.y.data(), lc.b.data(), lc.N);
  obj.SetWeight(lc.w.data());
  const std::vector<int> qs = {10, 25, 37, 80, 137};
  std::vector<double> got;
  obj.EvalDirect(5, [&](int i) { return LogFq(LogParams{LogKind::kAdaLog, 4, 2.1f, qs[i]}, kGeluShift); }, &got);
  for (int i = 0; i < 5; ++i) {
    const ShiftLogQuantizer q(LogParams{LogKind::kAdaLog, 4, 2.1f, qs[i]}, kGeluShift, false);
    std::vector<float> xq(lc.x.size());
    for (size_t j = 0; j < xq.size(); ++j) xq[j] = q.FakeQuant(lc.x[j]);
    const double want = plain::OutErr(xq, lc.w, lc.b, lc.y, lc.T, lc.K, lc.N, -1);
    EXPECT_NEAR(got[i], want, 1e-5 * want) << "q " << qs[i];
  }
}

// fc2 A-out with a shifted log input (log_act_out.h): the incremental sparse updates and the
// sweep give the plain formula's errors, and the joint AdaLog FPCS selects the same
// (scale, q) as with the plain formula.
TEST(Objectives, ShiftLogActOutIncrementalEqualsPlainAndSelectsSameCandidate) {
  LinearCase lc(17, 150);
  std::mt19937_64 rng(99);
  std::normal_distribution<float> nd(0.0f, 1.2f);
  for (auto& v : lc.x) {
    const float u = nd(rng);
    v = 0.5f * u * (1.0f + std::erf(u / std::sqrt(2.0f)));  // GELU
  }
  lc.x[3] = lc.x[4];  // duplicates
  lc.x[7] = 0.0f;
  lc.x[8] = -kGeluShift;
  lc.y = plain::Linear(lc.x, lc.w, lc.b, lc.T, lc.K, lc.N);
  const std::vector<float> wq = QuantWeightAtGrid(lc, 100, 4);
  for (LogKind kind : {LogKind::kAdaLog, LogKind::kLog2, LogKind::kLogSqrt2}) {
    for (int bits : {3, 4}) {
      SCOPED_TRACE(testing::Message() << "kind " << static_cast<int>(kind) << " bits " << bits);
      auto plain_obj = [&](const LogCandidates& c, std::vector<double>* err) {
        err->clear();
        for (size_t i = 0; i < c.qs.size(); ++i) {
          const ShiftLogQuantizer q(LogParams{kind, bits, c.scales[i], kind == LogKind::kAdaLog ? c.qs[i] : kAdaLogR},
                                    kGeluShift, false);
          std::vector<float> xq(lc.x.size());
          for (size_t j = 0; j < xq.size(); ++j) xq[j] = q.FakeQuant(lc.x[j]);
          err->push_back(plain::OutErr(xq, wq, lc.b, lc.y, lc.T, lc.K, lc.N, -1));
        }
      };
      // Candidates: several q, each at scales from far apart (many codes change) to very close
      // (few change), in an order that is not sorted.
      LogCandidates cands;
      for (int q : {37, 10, 80, 37, 137, 25}) {
        for (float s : {2.1f, 2.1001f, 1.3f, 2.2f, 2.09f, 4.0f, 2.1f, 0.9f}) {
          cands.scales.push_back(s);
          cands.qs.push_back(q);
        }
      }
      std::vector<double> want;
      plain_obj(cands, &want);
      for (double frac : {0.0, 1.0, 0.25}) {
        SCOPED_TRACE(frac);
        ShiftLogActOut obj(lc.x.data(), lc.T, lc.K, lc.y.data(), lc.b.data(), lc.N, kind, bits, kGeluShift);
        obj.set_max_changed_fraction(frac);
        // A first weight state, then the real one: SetWeight must drop the cached states.
        obj.SetWeight(lc.w.data());
        std::vector<double> got;
        obj.Eval(cands, &got);
        obj.SetWeight(wq.data());
        obj.Eval(cands, &got);  // no states yet: every candidate swept, states made at the best
        ExpectClose(got, want, 1e-5);
        EXPECT_EQ(StableTopK(got.data(), static_cast<int>(got.size()), 5),
                  StableTopK(want.data(), static_cast<int>(want.size()), 5));
        obj.Eval(cands, &got);  // again: now from the states where close enough
        ExpectClose(got, want, 1e-5);
        EXPECT_EQ(StableTopK(got.data(), static_cast<int>(got.size()), 5),
                  StableTopK(want.data(), static_cast<int>(want.size()), 5));
        if (frac == 1.0) {
          EXPECT_GT(obj.stats().changed, 0);
        }
        if (frac == 0.0) {  // only unchanged codes are reused
          EXPECT_EQ(obj.stats().changed, 0);
        }
      }
      if (kind == LogKind::kAdaLog) {
        ShiftLogActOut obj(lc.x.data(), lc.T, lc.K, lc.y.data(), lc.b.data(), lc.N, kind, bits, kGeluShift);
        obj.SetWeight(wq.data());
        const LogChoice a = SearchAdaLogJoint(
            1.0f, 3.5f, 3.0f, [&](const LogCandidates& c, std::vector<double>* e) { obj.Eval(c, e); }, true);
        const LogChoice p = SearchAdaLogJoint(1.0f, 3.5f, 3.0f, plain_obj, true);
        EXPECT_EQ(a.q, p.q);
        EXPECT_EQ(a.scale, p.scale);
        EXPECT_GT(obj.stats().incremental, 0);
      }
    }
  }
  // NaN input: every plain error is NaN.
  lc.x[5] = std::nanf("");
  ShiftLogActOut obj(lc.x.data(), lc.T, lc.K, lc.y.data(), lc.b.data(), lc.N, LogKind::kAdaLog, 4, kGeluShift);
  obj.SetWeight(wq.data());
  std::vector<double> got;
  LogCandidates one;
  one.scales = {2.0f};
  one.qs = {37};
  obj.Eval(one, &got);
  EXPECT_TRUE(std::isnan(got[0]));
}

TEST(Objectives, MatmulPerHeadEqualsPlain) {
  std::mt19937_64 rng(6);
  const int H = 3, I = 2, M = 10, K = 8, N = 10;
  const auto a = plain::RandomVec(rng, static_cast<size_t>(H) * I * M * K, -1, 1);
  const auto b = plain::RandomVec(rng, static_cast<size_t>(H) * I * N * K, -1, 1);  // [N][K] (k)
  MatmulObjective obj(a.data(), b.data(), H, I, M, K, N, /*b_transposed=*/true);
  const UniformGrid ga = HeadGrid(a.data(), H, static_cast<int64_t>(I) * M * K, 4);
  const UniformGrid gb = HeadGrid(b.data(), H, static_cast<int64_t>(I) * N * K, 4);
  auto quant_heads = [&](const std::vector<float>& v, const UniformGrid& g, int idx) {
    std::vector<float> out;
    const size_t per = v.size() / H;
    for (int h = 0; h < H; ++h) {
      std::vector<float> part(v.begin() + h * per, v.begin() + (h + 1) * per);
      const auto q = plain::FqUniform(part, 4, {g.cands.scale(h, idx), g.cands.zp(h, idx)});
      out.insert(out.end(), q.begin(), q.end());
    }
    return out;
  };
  const auto qa = quant_heads(a, ga, 126), qb = quant_heads(b, gb, 126);
  obj.SetQuantizedA(qa);
  obj.SetQuantizedB(qb);
  // Plain: sum over images of ||A k^T - Qa Qk^T||^2, per head.
  auto plain_err = [&](const std::vector<float>& A, const std::vector<float>& B, int h) {
    return PlainHeadMatmulErr(a, b, A, B, h, I, M, K, N, /*b_kn=*/false);
  };
  std::vector<double> got_a, got_b, want_a, want_b;
  obj.EvalAPerHead(ga.cands, &got_a);
  obj.EvalBPerHead(gb.cands, &got_b);
  for (int h = 0; h < H; ++h)
    for (int i = 0; i < 128; ++i) {
      want_a.push_back(plain_err(quant_heads(a, ga, i), qb, h));
      want_b.push_back(plain_err(qa, quant_heads(b, gb, i), h));
    }
  ExpectClose(got_a, want_a, 1e-5);
  ExpectClose(got_b, want_b, 1e-5);
  EXPECT_EQ(Argmins(got_a, H, 128), Argmins(want_a, H, 128));
  EXPECT_EQ(Argmins(got_b, H, 128), Argmins(want_b, H, 128));
  // The chain form keeps its per-head state across calls (FPCS steps): a second evaluation
  // from that state gives the same errors, and whole FPCS searches pick the plain choices.
  std::vector<double> again;
  obj.EvalAPerHead(ga.cands, &again);
  ExpectClose(again, got_a, 1e-9);
  auto plain_a = [&](const UniformCandidates& c, std::vector<double>* e) {
    PlainPerHead(a, qa, H, c, [&](const std::vector<float>& A, int h) { return plain_err(A, qb, h); }, e);
  };
  const UniformChoice pa = SearchUniform(ga, plain_a, {});
  for (double frac : {0.0, 0.04, 1.0}) {  // always from scratch, default, always sparse
    SCOPED_TRACE(frac);
    obj.set_chain_fraction(frac);
    std::vector<double> ga2, gb2;
    obj.EvalAPerHead(ga.cands, &ga2);
    obj.EvalBPerHead(gb.cands, &gb2);
    ExpectClose(ga2, want_a, 1e-5);
    ExpectClose(gb2, want_b, 1e-5);
    const UniformChoice fa = SearchUniform(
        ga, [&](const UniformCandidates& c, std::vector<double>* e) { obj.EvalAPerHead(c, e); }, {});
    EXPECT_EQ(fa.scales, pa.scales);
    EXPECT_EQ(fa.zero_points, pa.zero_points);
  }
  // Chains split into parts of one image (each part its own chain, a head's error the sum of its
  // parts): the same errors and choices.
  MatmulObjective split(a.data(), b.data(), H, I, M, K, N, /*b_transposed=*/true);
  split.set_chain_part_images(1);
  split.SetQuantizedA(qa);
  split.SetQuantizedB(qb);
  for (double frac : {0.0, 0.04, 1.0}) {
    SCOPED_TRACE(frac);
    split.set_chain_fraction(frac);
    std::vector<double> sa, sb;
    split.EvalAPerHead(ga.cands, &sa);
    split.EvalBPerHead(gb.cands, &sb);
    ExpectClose(sa, want_a, 1e-5);
    ExpectClose(sb, want_b, 1e-5);
    const UniformChoice fa = SearchUniform(
        ga, [&](const UniformCandidates& c, std::vector<double>* e) { split.EvalAPerHead(c, e); }, {});
    EXPECT_EQ(fa.scales, pa.scales);
    EXPECT_EQ(fa.zero_points, pa.zero_points);
  }
}


// attn @ v, searching v per head (chain form over the token-contracted H = Pq^T Pq) against
// the plain error, one call, a repeated call (state reuse) and a whole FPCS.
TEST(Objectives, MatmulAvPerHeadBEqualsPlain) {
  std::mt19937_64 rng(8);
  const int H = 2, I = 3, M = 9, K = 9, N = 5;
  const auto a = plain::RandomVec(rng, static_cast<size_t>(H) * I * M * K, 0, 0.3f);  // probs-like
  const auto b = plain::RandomVec(rng, static_cast<size_t>(H) * I * K * N, -1, 1);    // v [K][N]
  MatmulObjective obj(a.data(), b.data(), H, I, M, K, N, /*b_transposed=*/false);
  const UniformGrid gb = HeadGrid(b.data(), H, static_cast<int64_t>(I) * K * N, 4);
  std::vector<float> qa(a.size());
  for (size_t i = 0; i < a.size(); ++i) qa[i] = std::round(a[i] * 40.0f) / 40.0f;
  obj.SetQuantizedA(qa);
  auto plain_err = [&](const std::vector<float>& B, int h) {
    return PlainHeadMatmulErr(a, b, qa, B, h, I, M, K, N, /*b_kn=*/true);
  };
  auto plain_b = [&](const UniformCandidates& c, std::vector<double>* e) {
    PlainPerHead(b, b, H, c, plain_err, e);
  };
  std::vector<double> got, want, again;
  obj.EvalBPerHead(gb.cands, &got);
  plain_b(gb.cands, &want);
  ExpectClose(got, want, 1e-5);
  EXPECT_EQ(Argmins(got, H, 128), Argmins(want, H, 128));
  obj.EvalBPerHead(gb.cands, &again);
  ExpectClose(again, got, 1e-9);
  const UniformChoice p = SearchUniform(gb, plain_b, {});
  for (double frac : {0.0, 0.04, 1.0}) {  // always from scratch, default, always sparse
    SCOPED_TRACE(frac);
    obj.set_chain_fraction(frac);
    std::vector<double> g2;
    obj.EvalBPerHead(gb.cands, &g2);
    ExpectClose(g2, want, 1e-5);
    const UniformChoice f = SearchUniform(
        gb, [&](const UniformCandidates& c, std::vector<double>* e) { obj.EvalBPerHead(c, e); }, {});
    EXPECT_EQ(f.scales, p.scales);
    EXPECT_EQ(f.zero_points, p.zero_points);
  }
  // Parts of 2 images (3 images: parts of 2 and 1), each part its own chain: the same errors
  // and choices.
  MatmulObjective split(a.data(), b.data(), H, I, M, K, N, /*b_transposed=*/false);
  split.set_chain_part_images(2);
  split.SetQuantizedA(qa);
  for (double frac : {0.0, 0.04, 1.0}) {
    SCOPED_TRACE(frac);
    split.set_chain_fraction(frac);
    std::vector<double> g2;
    split.EvalBPerHead(gb.cands, &g2);
    ExpectClose(g2, want, 1e-5);
    const UniformChoice f = SearchUniform(
        gb, [&](const UniformCandidates& c, std::vector<double>* e) { split.EvalBPerHead(c, e); }, {});
    EXPECT_EQ(f.scales, p.scales);
    EXPECT_EQ(f.zero_points, p.zero_points);
  }
}

// With an identity weight every element's code shows in the error: the from-scratch codes
// (thresholds from the sorted order) and the incremental ones must equal the quantizer's Encode,
// including duplicates, +-0, -shift and values on both sides of code boundaries.
TEST(Objectives, ShiftLogActOutCodesExactOnSmallInputs) {
  const int T = 30, K = 4, N = 4;
  std::mt19937_64 rng(41);
  std::vector<float> x = plain::RandomVec(rng, static_cast<size_t>(T) * K, -0.17f, 3.0f);
  x[0] = 0.0f;
  x[1] = -0.0f;
  x[2] = -kGeluShift;
  x[3] = x[4] = x[5];
  x[6] = 2.0f - kGeluShift;  // x + d = s: code 0 boundary for s = 2
  x[7] = std::nextafter(x[6], 0.0f);
  x[8] = std::nextafter(x[6], 4.0f);
  std::vector<float> w(static_cast<size_t>(N) * K, 0.0f), b(N, 0.0f);
  for (int i = 0; i < K; ++i) w[static_cast<size_t>(i) * K + i] = 1.0f;
  const std::vector<float> y = plain::Linear(x, w, b, T, K, N);
  LogCandidates c;
  for (int q : {37, 12, 100})
    for (float sc : {2.0f, 2.0001f, 1.7f, 2.6f, 0.5f, 3.0f}) {
      c.scales.push_back(sc);
      c.qs.push_back(q);
    }
  std::vector<double> want;
  for (size_t i = 0; i < c.qs.size(); ++i) {
    const ShiftLogQuantizer q(LogParams{LogKind::kAdaLog, 4, c.scales[i], c.qs[i]}, kGeluShift, false);
    std::vector<float> xq(x.size());
    for (size_t j = 0; j < xq.size(); ++j) xq[j] = q.FakeQuant(x[j]);
    want.push_back(plain::OutErr(xq, w, b, y, T, K, N, -1));
  }
  for (double frac : {0.0, 1.0}) {
    ShiftLogActOut obj(x.data(), T, K, y.data(), b.data(), N, LogKind::kAdaLog, 4, kGeluShift);
    obj.set_max_changed_fraction(frac);
    obj.SetWeight(w.data());
    std::vector<double> got;
    obj.Eval(c, &got);  // swept
    ExpectClose(got, want, 1e-6);
    obj.Eval(c, &got);  // from the states made by the first call where allowed
    ExpectClose(got, want, 1e-6);
  }
}

// Cost probe at DeiT-S fc2 shapes (T = 32 x 197, K = 1536, N = 384): one joint AdaLog FPCS with
// the incremental A-out. Run: adalog_search_tests --gtest_also_run_disabled_tests
// --gtest_filter='*TimingFc2*'
TEST(Objectives, DISABLED_TimingFc2LogActOut) {
  const int T = 32 * 197, K = 1536, N = 384;
  std::mt19937_64 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(T) * K), w(static_cast<size_t>(N) * K), b(N, 0.01f);
  for (auto& v : x) {
    const float u = nd(rng);
    v = 0.5f * u * (1.0f + std::erf(u / std::sqrt(2.0f)));
  }
  for (auto& v : w) v = nd(rng) / std::sqrt(static_cast<float>(K));
  std::vector<float> y(static_cast<size_t>(T) * N);
  for (int t = 0; t < T; ++t)
    for (int o = 0; o < N; ++o) {
      float acc = b[o];
      for (int k = 0; k < K; ++k) acc += x[static_cast<size_t>(t) * K + k] * w[static_cast<size_t>(o) * K + k];
      y[static_cast<size_t>(t) * N + o] = acc;
    }
  std::vector<float> pos;
  for (float v : x)
    if (v > 0) pos.push_back(v);
  std::sort(pos.begin(), pos.end());
  const float ud0 = pos[pos.size() * 9 / 10] + kGeluShift, ud1 = pos.back() + kGeluShift;
  ShiftLogActOut obj(x.data(), T, K, y.data(), b.data(), N, LogKind::kAdaLog, 4, kGeluShift);
  obj.SetWeight(w.data());
  const std::clock_t c0 = std::clock();
  int stage = 0;
  const LogChoice a = SearchAdaLogJoint(
      ud0, ud1, ud1 - (ud1 - ud0) / 127.0f,
      [&](const LogCandidates& c, std::vector<double>* e) {
        const auto s0 = obj.stats();
        const std::clock_t t0 = std::clock();
        obj.Eval(c, e);
        std::printf("stage %d: %zu candidates, cpu %.2f s, %lld full, %lld incremental, %.3g%% changed/inc\n", stage++,
                    c.qs.size(), static_cast<double>(std::clock() - t0) / CLOCKS_PER_SEC,
                    static_cast<long long>(obj.stats().full - s0.full),
                    static_cast<long long>(obj.stats().incremental - s0.incremental),
                    100.0 * static_cast<double>(obj.stats().changed - s0.changed) /
                        std::max<double>(1.0, static_cast<double>(obj.stats().incremental - s0.incremental)) / (double(T) * K));
        std::fflush(stdout);
      },
      true);
  std::printf("AdaLog joint FPCS: s %g q %d, cpu %.2f s\n", a.scale, a.q,
              static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC);
  // One W-out FPCS of fc2's weight at the chosen input quantizer.
  std::clock_t c1 = std::clock();
  const ShiftLogQuantizer lq(LogParams{LogKind::kAdaLog, 4, a.scale, a.q}, kGeluShift, false);
  std::vector<float> xq(x.size());
  lq.FakeQuant(x.data(), static_cast<int64_t>(x.size()), xq.data());
  WeightOutObjective wout(xq.data(), T, K, y.data(), b.data(), N);
  std::printf("W-out G and c build: cpu %.2f s\n", static_cast<double>(std::clock() - c1) / CLOCKS_PER_SEC);
  c1 = std::clock();
  const UniformGrid wg = LinearWeightGrid(w.data(), N, K, 4);
  SearchUniform(wg, [&](const UniformCandidates& c, std::vector<double>* e) { wout.Eval(w.data(), c, e); }, {});
  std::printf("W-out FPCS: cpu %.2f s\n", static_cast<double>(std::clock() - c1) / CLOCKS_PER_SEC);
}

}  // namespace
}  // namespace adalog::search
