// Faithfulness of each per-op recipe (method §4.6): on fixed small synthetic data the chosen
// (scale, zero point, q) and the model rewrites equal what a plain implementation of the method's
// grids, FPCS and objectives (plain_reference.h) selects.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <utility>
#include <vector>

#include "quant/log_quantizers.h"
#include "quant/uniform.h"
#include "search/recipes.h"
#include "tests/search/plain_reference.h"

namespace adalog::search {
namespace {

using plain::Cand;

// Scales chosen by the recipe and by the plain implementation agree on the coarse grid and the
// first refinements; in the last two FPCS levels (spacing 1e-6..1e-4 relative to the scale) the
// objective is flat around its minimum, and the two implementations' different roundings (the
// recipe's float GEMM of e^T G e, the plain double loops) can break such near-ties differently.
// So scales are compared to 1e-4 relative, while zero points and q must match exactly. Exact
// candidate selection by the objectives on full grids is tested in objectives_test.
::testing::AssertionResult ScaleEq(float got, float want) {
  if (got == want || std::abs(got - want) <= 1e-4f * std::abs(want))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "scale " << got << " vs plain " << want;
}

std::vector<float> Row(const std::vector<float>& w, int o, int K) {
  return std::vector<float>(w.begin() + o * K, w.begin() + (o + 1) * K);
}

// Plain recipe A (method §4.6-A) over x [T][K], W [N][K].
struct PlainLinearResult {
  std::vector<Cand> w;
  Cand a;
};

std::vector<float> QuantW(const std::vector<float>& W, int N, int K, int bits, const std::vector<Cand>& wc) {
  std::vector<float> out;
  for (int o = 0; o < N; ++o) {
    const auto q = plain::FqUniform(Row(W, o, K), bits, wc[o]);
    out.insert(out.end(), q.begin(), q.end());
  }
  return out;
}

// Per-row W-out FPCS with input xq. best: FpcsMode::kBest with the rows of `incumbent` (the
// weight's current quantizer).
std::vector<Cand> PlainWeightOut(const std::vector<float>& xq, const std::vector<float>& W,
                                 const std::vector<float>& b, const std::vector<float>& y, int T,
                                 int K, int N, int bits, int num_zp, bool best = false,
                                 const std::vector<Cand>* incumbent = nullptr) {
  std::vector<Cand> wc;
  for (int o = 0; o < N; ++o) {
    const auto row = Row(W, o, K);
    const auto err = [&](Cand c) {
      std::vector<float> wq = W;
      const auto q = plain::FqUniform(row, bits, c);
      std::copy(q.begin(), q.end(), wq.begin() + o * K);
      return plain::OutErr(xq, wq, b, y, T, K, N, o);
    };
    const auto grid = plain::Grid(row, bits, num_zp, 0);
    wc.push_back(best ? plain::FpcsBest(grid, err, 0, incumbent ? &(*incumbent)[o] : nullptr)
                      : plain::Fpcs(grid, err, 0));
  }
  return wc;
}

// best: FpcsMode::kBest, every round's search with the previous result as its incumbent (the
// self searches have none). All 3 rounds always run (the recipe may stop early).
PlainLinearResult PlainRecipeA(const std::vector<float>& x, const std::vector<float>& W,
                               const std::vector<float>& b, const std::vector<float>& y, int T,
                               int K, int N, int wb, int ab, bool best = false) {
  PlainLinearResult r;
  const int wzp = std::min(16, 1 << (wb - 1)), azp = std::min(16, 2 << (ab - 1));
  auto fpcs = [best](const std::vector<Cand>& grid, const std::function<double(Cand)>& err, float floor,
                     const Cand* inc) {
    return best ? plain::FpcsBest(grid, err, floor, inc) : plain::Fpcs(grid, err, floor);
  };
  for (int o = 0; o < N; ++o) {
    const auto row = Row(W, o, K);
    r.w.push_back(fpcs(plain::Grid(row, wb, wzp, 0),
                       [&](Cand c) { return plain::SumSq(row, plain::FqUniform(row, wb, c)); }, 0, nullptr));
  }
  const auto agrid = plain::Grid(x, ab, azp, 1e-4f);
  r.a = fpcs(agrid, [&](Cand c) { return plain::SumSq(x, plain::FqUniform(x, ab, c)); }, 1e-4f, nullptr);
  for (int round = 0; round < 3; ++round) {
    const std::vector<Cand> wprev = r.w;
    r.w = PlainWeightOut(plain::FqUniform(x, ab, r.a), W, b, y, T, K, N, wb, wzp, best, &wprev);
    const auto wq = QuantW(W, N, K, wb, r.w);
    const Cand aprev = r.a;
    r.a = fpcs(agrid, [&](Cand c) {
      return plain::OutErr(plain::FqUniform(x, ab, c), wq, b, y, T, K, N, -1);
    }, 1e-4f, &aprev);
  }
  return r;
}

void ExpectLinearEq(const LinearQuant& got, const PlainLinearResult& want) {
  ASSERT_EQ(got.weight.scales.size(), want.w.size());
  for (size_t o = 0; o < want.w.size(); ++o) {
    EXPECT_TRUE(ScaleEq(got.weight.scales[o], want.w[o].s)) << "row " << o;
    EXPECT_EQ(got.weight.zero_points[o], want.w[o].z) << "row " << o;
  }
  EXPECT_EQ(got.input.kind, ActQuant::Kind::kUniform);
  EXPECT_TRUE(ScaleEq(got.input.uniform.params.scale, want.a.s));
  EXPECT_EQ(got.input.uniform.params.zero_point, want.a.z);
}

struct LinCase {
  int T, K, N;
  LinearParams lin;
  std::vector<float> x, y;
  LinCase(int t, int k, int n, uint64_t seed, float xlo, float xhi) : T(t), K(k), N(n) {
    std::mt19937_64 rng(seed);
    x = plain::RandomVec(rng, static_cast<size_t>(T) * K, xlo, xhi);
    // A few outlier channels, as after LayerNorm in real ViTs.
    for (int t2 = 0; t2 < T; ++t2) x[t2 * K + 1] *= 4.0f;
    lin.in = K;
    lin.out = N;
    lin.weight = plain::RandomVec(rng, static_cast<size_t>(N) * K, -0.6f, 0.6f);
    lin.bias = plain::RandomVec(rng, static_cast<size_t>(N), -0.1f, 0.1f);
    y = plain::Linear(x, lin.weight, lin.bias, T, K, N);
  }
};

TEST(Recipes, UniformLinearMatchesPlain) {
  for (int bits : {3, 4}) {
    const LinCase c(40, 12, 6, 21 + bits, -1.0f, 1.5f);
    RecipeOptions o;
    o.fpcs_mode = FpcsMode::kOfficial;  // compared with the official plain FPCS
    o.weight_bits = o.act_bits = bits;
    const LinearQuant got = CalibrateUniformLinear(c.x.data(), c.T, c.y.data(), c.lin, bits, o);
    ExpectLinearEq(got, PlainRecipeA(c.x, c.lin.weight, c.lin.bias, c.y, c.T, c.K, c.N, bits, bits));
  }
}

TEST(Recipes, UniformLinearBestFpcsMatchesPlain) {
  for (int bits : {3, 4}) {
    const LinCase c(40, 12, 6, 21 + bits, -1.0f, 1.5f);
    RecipeOptions o;
    o.weight_bits = o.act_bits = bits;
    o.fpcs_mode = FpcsMode::kBest;
    const LinearQuant got = CalibrateUniformLinear(c.x.data(), c.T, c.y.data(), c.lin, bits, o);
    ExpectLinearEq(got, PlainRecipeA(c.x, c.lin.weight, c.lin.bias, c.y, c.T, c.K, c.N, bits, bits, true));
  }
}

TEST(Recipes, LnReparamMatchesPlainAndPreservesFunction) {
  LinCase c(40, 10, 6, 31, -1.0f, 1.0f);
  LayerNormParams ln;
  ln.dim = c.K;
  std::mt19937_64 rng(32);
  ln.gamma = plain::RandomVec(rng, c.K, 0.5f, 1.5f);
  ln.beta = plain::RandomVec(rng, c.K, -0.2f, 0.2f);
  RecipeOptions o;
  o.fpcs_mode = FpcsMode::kOfficial;  // compared with the official plain FPCS
  std::vector<float> x = c.x;
  LayerNormParams ln2 = ln;
  LinearParams lin2 = c.lin;
  const LinearQuant got = CalibrateLnLinear(x.data(), c.T, c.y.data(), &ln2, &lin2, o);
  // Plain: per-channel A-self FPCS, then the formulas of method §2.8.
  std::vector<Cand> pc;
  for (int ch = 0; ch < c.K; ++ch) {
    std::vector<float> col;
    for (int t = 0; t < c.T; ++t) col.push_back(c.x[t * c.K + ch]);
    pc.push_back(plain::Fpcs(plain::Grid(col, 4, 16, 1e-4f),
                             [&](Cand cc) { return plain::SumSq(col, plain::FqUniform(col, 4, cc)); }, 1e-4f));
  }
  double ss = 0, zs = 0;
  for (auto& p : pc) {
    ss += p.s;
    zs += p.z;
  }
  const float s_star = static_cast<float>(ss / c.K);
  const int z_star = static_cast<int>(std::nearbyint(static_cast<float>(zs / c.K)));
  std::vector<float> r, beta;
  for (auto& p : pc) {
    r.push_back(p.s / s_star);
    beta.push_back((-static_cast<float>(p.z) * p.s) / r.back() - (-static_cast<float>(z_star) * s_star));
  }
  LayerNormParams lnw = ln;
  LinearParams linw = c.lin;
  std::vector<float> xw = c.x;
  for (int ch = 0; ch < c.K; ++ch) {
    lnw.gamma[ch] /= r[ch];
    lnw.beta[ch] = lnw.beta[ch] / r[ch] - beta[ch];
  }
  for (int o2 = 0; o2 < c.N; ++o2) {
    double acc = 0;
    for (int ch = 0; ch < c.K; ++ch) {
      linw.weight[o2 * c.K + ch] *= r[ch];
      acc += static_cast<double>(linw.weight[o2 * c.K + ch]) * beta[ch];
    }
    linw.bias[o2] = static_cast<float>(linw.bias[o2] + acc);
  }
  for (int t = 0; t < c.T; ++t)
    for (int ch = 0; ch < c.K; ++ch) xw[t * c.K + ch] = xw[t * c.K + ch] / r[ch] - beta[ch];
  EXPECT_EQ(ln2.gamma, lnw.gamma);
  EXPECT_EQ(ln2.beta, lnw.beta);
  EXPECT_EQ(lin2.weight, linw.weight);
  EXPECT_EQ(lin2.bias, linw.bias);
  EXPECT_EQ(x, xw);
  ExpectLinearEq(got, PlainRecipeA(xw, linw.weight, linw.bias, c.y, c.T, c.K, c.N, 4, 4));
  // FP identity: the rewritten Linear on the rewritten input reproduces the original output.
  const auto y2 = plain::Linear(x, lin2.weight, lin2.bias, c.T, c.K, c.N);
  for (size_t i = 0; i < y2.size(); ++i) EXPECT_NEAR(y2[i], c.y[i], 1e-4f);
}

float Gelu(float v) { return 0.5f * v * (1.0f + std::erf(v / std::sqrt(2.0f))); }

// fc2's case: the inputs through GELU, the targets recomputed from them.
LinCase PostGeluCase(int t, int k, int n, uint64_t seed, float xlo, float xhi) {
  LinCase c(t, k, n, seed, xlo, xhi);
  for (auto& v : c.x) v = Gelu(v);
  c.y = plain::Linear(c.x, c.lin.weight, c.lin.bias, c.T, c.K, c.N);
  return c;
}

// Plain recipe C's first weight choice: 4-bit FPCS (official, or best) on each row's own error.
std::vector<Cand> PlainWeightRows(const LinCase& c, bool best) {
  std::vector<Cand> wc;
  for (int o2 = 0; o2 < c.N; ++o2) {
    const auto row = Row(c.lin.weight, o2, c.K);
    const auto err = [&](Cand cc) { return plain::SumSq(row, plain::FqUniform(row, 4, cc)); };
    const auto grid = plain::Grid(row, 4, 8, 0);
    wc.push_back(best ? plain::FpcsBest(grid, err, 0) : plain::Fpcs(grid, err, 0));
  }
  return wc;
}

// The shifted log quantizer's scale range [ud0, ud1]: from the 90th percentile of the positive
// inputs to the largest, each plus the shift d.
std::pair<float, float> ShiftScaleRange(const std::vector<float>& x, float d) {
  std::vector<float> pos;
  for (float v : x)
    if (v > 0) pos.push_back(v);
  std::sort(pos.begin(), pos.end());
  return {pos[static_cast<size_t>(std::ceil(pos.size() * 0.9)) - 1] + d, pos.back() + d};
}

// x through ShiftLogQuantizer(p, d) (shift not folded), element by element.
std::vector<float> FqShiftLog(const std::vector<float>& x, const LogParams& p, float d) {
  const ShiftLogQuantizer lq(p, d, false);
  std::vector<float> out;
  for (float v : x) out.push_back(lq.FakeQuant(v));
  return out;
}

// got's per-row weight scales and zero points are the plain choice wc.
void ExpectWeightRowsEq(const LinearQuant& got, const std::vector<Cand>& wc) {
  for (size_t o2 = 0; o2 < wc.size(); ++o2) {
    EXPECT_TRUE(ScaleEq(got.weight.scales[o2], wc[o2].s));
    EXPECT_EQ(got.weight.zero_points[o2], wc[o2].z);
  }
}

// Recipe C (post-GELU fc2: Shift-AdaLog input, per-row weights, alternating rounds) against the
// plain re-implementation, with the official FPCS or the best-candidate FPCS.
void ExpectPostGeluAdaLogMatchesPlain(FpcsMode mode) {
  const bool best = mode == FpcsMode::kBest;
  const LinCase c = PostGeluCase(40, 16, 5, 41, -2.5f, 3.0f);
  RecipeOptions o;
  o.fpcs_mode = mode;
  LinearParams fc2 = c.lin;
  const LinearQuant got = CalibratePostGeluLinear(c.x.data(), c.T, c.y.data(), &fc2, o);
  // Plain recipe C.
  const int T = c.T, K = c.K, N = c.N;
  const float d = kGeluShift;
  std::vector<Cand> wc = PlainWeightRows(c, best);
  const auto [ud0, ud1] = ShiftScaleRange(c.x, d);
  auto fq_log = [&](float s, int q) { return FqShiftLog(c.x, LogParams{LogKind::kAdaLog, 4, s, q}, d); };
  plain::LogCand a{plain::Linspace(ud0, ud1, 128)[126], 37};
  for (int round = 0; round < 3; ++round) {
    const auto wq = QuantW(c.lin.weight, N, K, 4, wc);
    const auto log_err = [&](plain::LogCand lc) {
      return plain::OutErr(fq_log(lc.s, lc.q), wq, c.lin.bias, c.y, T, K, N, -1);
    };
    a = best ? plain::AdaLogFpcsBest(ud0, ud1, a.s, log_err) : plain::AdaLogFpcs(ud0, ud1, a.s, log_err);
    const std::vector<Cand> wprev = wc;
    wc = best ? PlainWeightOut(fq_log(a.s, a.q), c.lin.weight, c.lin.bias, c.y, T, K, N, 4, 8, true, &wprev)
              : PlainWeightOut(fq_log(a.s, a.q), c.lin.weight, c.lin.bias, c.y, T, K, N, 4, 8);
  }
  EXPECT_EQ(got.input.kind, ActQuant::Kind::kLog);
  EXPECT_EQ(got.input.log.kind, LogKind::kAdaLog);
  EXPECT_TRUE(ScaleEq(got.input.log.scale, a.s));
  EXPECT_EQ(got.input.log.q, a.q);
  EXPECT_TRUE(got.input.shift_folded);
  ExpectWeightRowsEq(got, wc);
  // Bias fold: bias' = bias - delta * rowsum(W_hat); then fc2 on Q(x + d) (no -d) plus bias'
  // equals fc2 on Q(x + d) - d with the old bias.
  const auto wq = QuantW(c.lin.weight, N, K, 4, wc);
  for (int o2 = 0; o2 < N; ++o2) {
    double rs = 0;
    for (int k = 0; k < K; ++k) rs += wq[o2 * K + k];
    EXPECT_NEAR(fc2.bias[o2], c.lin.bias[o2] - d * rs, 1e-6);
  }
}

TEST(Recipes, PostGeluAdaLogMatchesPlainAndFoldsShift) {
  ExpectPostGeluAdaLogMatchesPlain(FpcsMode::kOfficial);  // compared with the official plain FPCS
}

TEST(Recipes, PostGeluAdaLogBestFpcsMatchesPlain) { ExpectPostGeluAdaLogMatchesPlain(FpcsMode::kBest); }

TEST(Recipes, PostGeluLog2SearchesItsOwnScale) {
  const LinCase c = PostGeluCase(32, 8, 4, 51, -2.0f, 3.0f);
  for (const char* kind : {"log2", "logsqrt2", "twin", "uniform"}) {
    RecipeOptions o;
    o.fpcs_mode = FpcsMode::kOfficial;  // compared with the official plain FPCS
    o.gelu = ParseGeluQuantizer(kind);
    LinearParams fc2 = c.lin;
    const LinearQuant got = CalibratePostGeluLinear(c.x.data(), c.T, c.y.data(), &fc2, o);
    if (std::string(kind) == "log2" || std::string(kind) == "logsqrt2") {
      EXPECT_EQ(got.input.kind, ActQuant::Kind::kLog) << kind;
      EXPECT_NE(got.input.log.kind, LogKind::kAdaLog) << kind;
      EXPECT_GT(got.input.log.scale, 0.0f);
    } else if (std::string(kind) == "twin") {
      EXPECT_EQ(got.input.kind, ActQuant::Kind::kTwin);
      EXPECT_EQ(fc2.bias, c.lin.bias);
    } else {
      EXPECT_EQ(got.input.kind, ActQuant::Kind::kUniform);
      EXPECT_EQ(fc2.bias, c.lin.bias);
    }
  }
}

TEST(Recipes, PostGeluLog2OwnScaleMatchesPlain) {
  // Decision of method §8.17: the log2 ablation searches its own scale: uniform FPCS over
  // linspace(ud0, ud1, 128) (width 16, expansion 8) on A-out, alternating with W-out.
  const LinCase c = PostGeluCase(32, 12, 4, 91, -2.0f, 3.0f);
  RecipeOptions o;
  o.fpcs_mode = FpcsMode::kOfficial;  // compared with the official plain FPCS
  o.gelu = GeluQuantizer::kLog2;
  LinearParams fc2 = c.lin;
  const LinearQuant got = CalibratePostGeluLinear(c.x.data(), c.T, c.y.data(), &fc2, o);
  const int T = c.T, K = c.K, N = c.N;
  const float d = kGeluShift;
  std::vector<Cand> wc = PlainWeightRows(c, /*best=*/false);
  const auto [ud0, ud1] = ShiftScaleRange(c.x, d);
  std::vector<Cand> sgrid;
  for (float s : plain::Linspace(ud0, ud1, 128)) sgrid.push_back({s, 0});
  auto fq = [&](float s) { return FqShiftLog(c.x, LogParams{LogKind::kLog2, 4, s, 37}, d); };
  float s = sgrid[126].s;
  for (int round = 0; round < 3; ++round) {
    const auto wq = QuantW(c.lin.weight, N, K, 4, wc);
    s = plain::Fpcs(sgrid, [&](Cand cc) { return plain::OutErr(fq(cc.s), wq, c.lin.bias, c.y, T, K, N, -1); }, 0).s;
    wc = PlainWeightOut(fq(s), c.lin.weight, c.lin.bias, c.y, T, K, N, 4, 8);
  }
  EXPECT_EQ(got.input.log.kind, LogKind::kLog2);
  EXPECT_TRUE(ScaleEq(got.input.log.scale, s));
  ExpectWeightRowsEq(got, wc);
}

// Per-head data [H][I][rows][cols].
struct HeadCase {
  int H = 2, I = 2, T = 9, hd = 6;
  std::vector<float> q, k, v, probs;
  explicit HeadCase(uint64_t seed) {
    std::mt19937_64 rng(seed);
    q = plain::RandomVec(rng, static_cast<size_t>(H) * I * T * hd, -2, 2);
    k = plain::RandomVec(rng, q.size(), -1.5f, 2.5f);
    v = plain::RandomVec(rng, q.size(), -1, 1);
    probs.resize(static_cast<size_t>(H) * I * T * T);
    for (int r = 0; r < H * I * T; ++r) {  // softmax of random scores, peaky rows
      double sum = 0;
      std::vector<double> e(T);
      for (int j = 0; j < T; ++j) sum += e[j] = std::exp(4.0 * std::uniform_real_distribution<double>(-1, 1)(rng));
      for (int j = 0; j < T; ++j) probs[r * T + j] = static_cast<float>(e[j] / sum);
    }
  }
};

// Plain sum over heads h in `hs` and images of ||A op(B) - QA op(QB)||^2.
double PlainMmErr(const std::vector<float>& a, const std::vector<float>& b, const std::vector<float>& qa,
                  const std::vector<float>& qb, int H, int I, int M, int K, int N, bool bt, int h_only) {
  double e = 0;
  for (int h = 0; h < H; ++h) {
    if (h_only >= 0 && h != h_only) continue;
    for (int img = 0; img < I; ++img) {
      const size_t ao = static_cast<size_t>(h * I + img) * M * K, bo = static_cast<size_t>(h * I + img) * K * N;
      for (int m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n) {
          double p = 0, s = 0;
          for (int kk = 0; kk < K; ++kk) {
            const size_t ai = ao + m * K + kk, bi = bo + (bt ? n * K + kk : kk * N + n);
            p += static_cast<double>(a[ai]) * b[bi];
            s += static_cast<double>(qa[ai]) * qb[bi];
          }
          e += (p - s) * (p - s);
        }
    }
  }
  return e;
}

std::vector<float> Head(const std::vector<float>& x, int H, int h) {
  const size_t per = x.size() / H;
  return std::vector<float>(x.begin() + h * per, x.begin() + (h + 1) * per);
}

std::vector<float> FqHeads(const std::vector<float>& x, int H, const std::vector<Cand>& c, int bits) {
  std::vector<float> out;
  for (int h = 0; h < H; ++h) {
    const auto q = plain::FqUniform(Head(x, H, h), bits, c[h]);
    out.insert(out.end(), q.begin(), q.end());
  }
  return out;
}

// Replace head h of a full quantized tensor.
std::vector<float> WithHead(std::vector<float> all, int H, int h, const std::vector<float>& part) {
  std::copy(part.begin(), part.end(), all.begin() + h * (all.size() / H));
  return all;
}

// The plain per-head search's start: each head's 4-bit grid of x (width 8) and its candidate 126.
struct HeadGrids {
  HeadGrids(const std::vector<float>& x, int H) {
    for (int h = 0; h < H; ++h) {
      grids.push_back(plain::Grid(Head(x, H, h), 4, 8, 0));
      cands.push_back(grids[h][126]);
    }
  }
  std::vector<std::vector<Cand>> grids;
  std::vector<Cand> cands;
};

// got's per-head scales and zero points are the plain choice c.
void ExpectHeadsEq(const UniformPerHead& got, const std::vector<Cand>& c) {
  for (size_t h = 0; h < c.size(); ++h) {
    EXPECT_TRUE(ScaleEq(got.scales[h], c[h].s)) << "head " << h;
    EXPECT_EQ(got.zero_points[h], c[h].z) << "head " << h;
  }
}

TEST(Recipes, QkMatmulMatchesPlain) {
  const HeadCase hc(61);
  RecipeOptions o;
  o.fpcs_mode = FpcsMode::kOfficial;  // compared with the official plain FPCS
  AttentionQuant got;
  CalibrateQkMatmul(hc.q.data(), hc.k.data(), hc.H, hc.I, hc.T, hc.hd, o, &got);
  const int H = hc.H;
  HeadGrids a(hc.q, H), b(hc.k, H);
  const auto& ga = a.grids;
  const auto& gb = b.grids;
  std::vector<Cand>& ca = a.cands;
  std::vector<Cand>& cb = b.cands;
  for (int round = 0; round < 3; ++round) {
    const auto qk = FqHeads(hc.k, H, cb, 4);
    for (int h = 0; h < H; ++h)
      ca[h] = plain::Fpcs(ga[h], [&](Cand c) {
        const auto qa = WithHead(hc.q, H, h, plain::FqUniform(Head(hc.q, H, h), 4, c));
        return PlainMmErr(hc.q, hc.k, qa, qk, H, hc.I, hc.T, hc.hd, hc.T, true, h);
      }, 0);
    const auto qq = FqHeads(hc.q, H, ca, 4);
    for (int h = 0; h < H; ++h)
      cb[h] = plain::Fpcs(gb[h], [&](Cand c) {
        const auto qb = WithHead(hc.k, H, h, plain::FqUniform(Head(hc.k, H, h), 4, c));
        return PlainMmErr(hc.q, hc.k, qq, qb, H, hc.I, hc.T, hc.hd, hc.T, true, h);
      }, 0);
  }
  ExpectHeadsEq(got.q, ca);
  ExpectHeadsEq(got.k, cb);
}

TEST(Recipes, AvMatmulAdaLogMatchesPlain) {
  const HeadCase hc(71);
  RecipeOptions o;
  o.fpcs_mode = FpcsMode::kOfficial;  // compared with the official plain FPCS
  AttentionQuant got;
  CalibrateAvMatmul(hc.probs.data(), hc.v.data(), hc.H, hc.I, hc.T, hc.hd, o, &got);
  const int H = hc.H;
  HeadGrids v(hc.v, H);
  const auto& gv = v.grids;
  std::vector<Cand>& cv = v.cands;
  auto fq_probs = [&](int q) {
    const LogQuantizer lq(LogParams{LogKind::kAdaLog, 4, 1.0f, q});
    std::vector<float> out;
    for (float p : hc.probs) out.push_back(lq.FakeQuant(p));
    return out;
  };
  int q = 37;
  for (int round = 0; round < 3; ++round) {
    const auto qv = FqHeads(hc.v, H, cv, 4);
    double best = 0;
    for (int qq = 10; qq <= 137; ++qq) {
      const double e = PlainMmErr(hc.probs, hc.v, fq_probs(qq), qv, H, hc.I, hc.T, hc.T, hc.hd, false, -1);
      if (qq == 10 || e < best) {
        best = e;
        q = qq;
      }
    }
    const auto qp = fq_probs(q);
    for (int h = 0; h < H; ++h)
      cv[h] = plain::Fpcs(gv[h], [&](Cand c) {
        const auto qb = WithHead(hc.v, H, h, plain::FqUniform(Head(hc.v, H, h), 4, c));
        return PlainMmErr(hc.probs, hc.v, qp, qb, H, hc.I, hc.T, hc.T, hc.hd, false, h);
      }, 0);
  }
  EXPECT_EQ(got.probs.kind, ActQuant::Kind::kLog);
  EXPECT_EQ(got.probs.log.scale, 1.0f);
  EXPECT_EQ(got.probs.log.q, q);
  ExpectHeadsEq(got.v, cv);
  // Softmax options produce the advertised quantizer kinds.
  for (const char* kind : {"log2", "logsqrt2", "uniform"}) {
    RecipeOptions o2;
    o2.fpcs_mode = FpcsMode::kOfficial;  // compared with the official plain FPCS
    o2.softmax = ParseSoftmaxQuantizer(kind);
    AttentionQuant a2;
    CalibrateAvMatmul(hc.probs.data(), hc.v.data(), hc.H, hc.I, hc.T, hc.hd, o2, &a2);
    EXPECT_EQ(a2.probs.kind, std::string(kind) == "uniform" ? ActQuant::Kind::kUniform : ActQuant::Kind::kLog);
  }
}

TEST(Recipes, PatchEmbedMatchesPlain) {
  const int rows = 30, C = 2, p = 2, K = C * p * p, D = 5;
  std::mt19937_64 rng(81);
  PatchEmbedParams pe;
  pe.in_channels = C;
  pe.patch = p;
  pe.dim = D;
  pe.weight = plain::RandomVec(rng, static_cast<size_t>(D) * K, -1, 1);
  pe.bias = plain::RandomVec(rng, D, -0.1f, 0.1f);
  const auto x = plain::RandomVec(rng, static_cast<size_t>(rows) * K, -2, 2);
  const auto y = plain::Linear(x, pe.weight, pe.bias, rows, K, D);
  for (int bits : {4, 6}) {
    RecipeOptions o;
    o.fpcs_mode = FpcsMode::kOfficial;  // compared with the official plain FPCS
    o.weight_bits = bits;
    const UniformPerChannel got = CalibratePatchEmbed(x.data(), rows, y.data(), pe, o);
    const auto want = PlainWeightOut(x, pe.weight, pe.bias, y, rows, K, D, bits, 1 << (bits - 1));
    for (int o2 = 0; o2 < D; ++o2) {
      EXPECT_TRUE(ScaleEq(got.scales[o2], want[o2].s)) << "bits " << bits << " row " << o2;
      EXPECT_EQ(got.zero_points[o2], want[o2].z);
    }
  }
}

}  // namespace
}  // namespace adalog::search
