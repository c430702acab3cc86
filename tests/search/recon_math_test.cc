// The block-reconstruction training math kernels (search/recon/recon_math_kernels.h): the float
// reference and the AVX-512 kernels against the same equations in double, within stated
// tolerances (the AVX-512 ones use polynomial exp / erf / log, so they are not byte-equal to libm).
#include "search/recon/recon_math_kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "quant/adaround.h"
#include "runtime/cpu_features.h"

namespace adalog::search {
namespace {

// Runs `check` on the reference, the selected kernel and (where the CPU has it) the AVX-512 one.
template <class Fn, class Check>
void ForEachKernel(Fn ref, Fn selected, Fn avx512, const char* test, Check check) {
  check(ref, "ref");
  check(selected, "selected");
  if (IsaSupported(IsaLevel::kAvx512)) {
    check(avx512, "avx512");
  } else {
    std::printf("%s: no AVX-512 here, avx512 variant not run\n", test);
  }
}

// GELU inputs: a dense grid over [-12, 12] (the tails, where Phi or 1 - Phi underflows, and the
// centre), zeros, tiny values, odd lengths (tails of the vector loop).
std::vector<float> GeluInputs() {
  std::vector<float> x;
  for (int i = -12000; i <= 12000; ++i) x.push_back(static_cast<float>(i) * 1e-3f);
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 2.f);
  for (int i = 0; i < 4001; ++i) x.push_back(nd(rng));
  for (float v : {0.f, -0.f, 1e-30f, -1e-30f, 30.f, -30.f, 1e-4f, -1e-4f}) x.push_back(v);
  return x;
}

TEST(ReconMath, GeluErfMatchesDouble) {
  const std::vector<float> x = GeluInputs();
  const int64_t n = static_cast<int64_t>(x.size());
  ForEachKernel(GeluErfF32Ref, SelectGeluErfF32(), GeluErfF32Avx512, "ReconMath.GeluErf",
                [&](GeluErfF32Fn f, const char* name) {
    for (int64_t len : {n, int64_t{1}, int64_t{15}, int64_t{17}}) {
      std::vector<float> y(x.size(), 7.f), d(x.size(), 7.f);  // sentinels past len
      f(x.data(), y.data(), d.data(), len);
      double worst_y = 0.0, worst_d = 0.0;
      for (int64_t i = 0; i < len; ++i) {
        double dd;
        const double yd = GeluErf<double>(static_cast<double>(x[i]), &dd);
        // Abramowitz-Stegun's |erf error| < 1.5e-7 gives |Phi error| < 7.5e-8, times |x| in y;
        // 5e-7 + 1e-6 |ref| (runtime/kernels/float_kernels_tolerance.h kGeluTol) covers both.
        const double ey = std::fabs(y[i] - yd) / (5e-7 + 1e-6 * std::fabs(yd));
        const double ed = std::fabs(d[i] - dd) / (5e-7 + 1e-6 * std::fabs(dd));
        worst_y = std::max(worst_y, ey);
        worst_d = std::max(worst_d, ed);
        ASSERT_LE(ey, 1.0) << name << " x=" << x[i] << " y=" << y[i] << " ref=" << yd;
        ASSERT_LE(ed, 1.0) << name << " x=" << x[i] << " d=" << d[i] << " ref=" << dd;
      }
      for (size_t i = static_cast<size_t>(len); i < x.size(); ++i) {
        ASSERT_EQ(y[i], 7.f) << name << " wrote past n";
        ASSERT_EQ(d[i], 7.f) << name << " wrote past n";
      }
      if (len == n) {
        std::printf("ReconMath.GeluErf %s: worst error / tolerance y %.3f, d %.3f\n", name,
                    worst_y, worst_d);
      }
    }
  });
}

TEST(ReconMath, ScaledSoftmaxMatchesDouble) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> ud(-60.f, 60.f);
  ForEachKernel(ScaledSoftmaxF32Ref, SelectScaledSoftmaxF32(), ScaledSoftmaxF32Avx512,
                "ReconMath.ScaledSoftmax", [&](ScaledSoftmaxF32Fn f, const char* name) {
    for (int n : {1, 7, 16, 17, 65, 197}) {
      const int rows = 9;
      std::vector<float> p(static_cast<size_t>(rows) * n + 3);
      for (float& v : p) v = ud(rng);
      p[static_cast<size_t>(n) - 1] = 1e4f;  // one row with a dominating entry
      const std::vector<float> in = p;
      const float scale = 0.17677669f;
      f(p.data(), rows, n, scale);
      for (int r = 0; r < rows; ++r) {
        double mx = -1e300;
        for (int j = 0; j < n; ++j) mx = std::max(mx, static_cast<double>(in[r * n + j] * scale));
        double sum = 0.0;
        for (int j = 0; j < n; ++j) sum += std::exp(static_cast<double>(in[r * n + j] * scale) - mx);
        for (int j = 0; j < n; ++j) {
          const double ref = std::exp(static_cast<double>(in[r * n + j] * scale) - mx) / sum;
          // kSoftmaxTol of the runtime's float islands: exp's relative error plus the sum's order.
          ASSERT_LE(std::fabs(p[r * n + j] - ref), 1e-7 + 2e-6 * ref)
              << name << " n=" << n << " row " << r << " col " << j;
        }
      }
      for (size_t i = static_cast<size_t>(rows) * n; i < p.size(); ++i) {
        ASSERT_EQ(p[i], in[i]) << name << " wrote past the rows";
      }
    }
  });
}

TEST(ReconMath, AdaRoundSoftRowMatchesDouble) {
  std::mt19937 rng(11);
  std::normal_distribution<float> wd(0.f, 0.3f);
  std::uniform_real_distribution<float> ad(-4.f, 4.f);
  for (UniformMode mode : {UniformMode::kAsymmetric, UniformMode::kSymmetric}) {
    for (int bits : {3, 4}) {
      UniformParams up;
      up.bits = bits;
      up.mode = mode;
      up.scale = 0.0625f;
      up.zero_point = mode == UniformMode::kAsymmetric ? (1 << (bits - 1)) : 0;
      const int n = 389;
      std::vector<float> w(n), alpha(n);
      for (int i = 0; i < n; ++i) {
        w[i] = wd(rng);
        alpha[i] = ad(rng);
      }
      alpha[0] = 100.f;  // the sigmoid saturated both ways
      alpha[1] = -100.f;
      ForEachKernel(AdaRoundSoftRowF32Ref, SelectAdaRoundSoftRowF32(), AdaRoundSoftRowF32Avx512,
                    "ReconMath.AdaRoundSoftRow", [&](AdaRoundSoftRowF32Fn f, const char* name) {
        std::vector<float> ws(n + 1, 7.f), dw(n + 1, 7.f);
        f(w.data(), alpha.data(), n, up, ws.data(), dw.data());
        int inside = 0, clamped = 0;
        for (int i = 0; i < n; ++i) {
          double dd;
          const double wr = AdaRoundSoftWeight<double>(w[i], up, static_cast<double>(alpha[i]), &dd);
          // w~ = (c~ - z) s with |c~ - z| <= 8 and h within a few float ulps of 1.
          ASSERT_LE(std::fabs(ws[i] - wr), 1e-6 * up.scale) << name << " i=" << i;
          ASSERT_LE(std::fabs(dw[i] - dd), 1e-7 * up.scale) << name << " i=" << i;
          (dd == 0.0 ? clamped : inside) += 1;
        }
        ASSERT_EQ(ws[n], 7.f);
        ASSERT_EQ(dw[n], 7.f);
        EXPECT_GT(inside, n / 4) << name;  // not vacuous: both regions occur
        EXPECT_GT(clamped, 2) << name;
      });
    }
  }
}

TEST(ReconMath, AdaRoundRegTermsMatchDouble) {
  std::mt19937 rng(13);
  std::uniform_real_distribution<float> ad(-8.f, 8.f);
  const int n = 1000;
  std::vector<float> alpha(n);
  for (float& a : alpha) a = ad(rng);
  alpha[0] = 0.f;        // h = 0.5: d = 0, term 1, no gradient
  alpha[1] = 100.f;      // h clamped to 1: d = 1
  alpha[2] = -100.f;     // h clamped to 0: d = -1
  alpha[3] = 1e-3f;      // |d| tiny: |d|^b underflows
  for (double b : {20.0, 11.3, 2.0}) {
    const double weight = 0.01;
    std::vector<double> ad_(alpha.begin(), alpha.end()), gd(n, 0.25), td(n);
    AdaRoundRegularizerTerms<double>(ad_.data(), n, b, weight, gd.data(), td.data());
    double gmax = 0.0;
    for (int i = 0; i < n; ++i) gmax = std::max(gmax, std::fabs(gd[i] - 0.25));
    ASSERT_GT(gmax, 1e-3);  // the gradients are not all zero
    ForEachKernel(AdaRoundRegTermsF32Ref, SelectAdaRoundRegTermsF32(), AdaRoundRegTermsF32Avx512,
                  "ReconMath.AdaRoundRegTerms", [&](AdaRoundRegTermsF32Fn f, const char* name) {
      for (int len : {n, 1, 15, 17}) {
        std::vector<float> g(n + 1, 0.25f), t(n + 1, 7.f);  // grad accumulates onto 0.25
        f(alpha.data(), len, b, weight, g.data(), t.data());
        for (int i = 0; i < len; ++i) {
          // The float kernels see d = 2h - 1 rounded to float (within 2.4e-7, two ulps at 1), which
          // moves |d|^b by b |d|^(b-1) 2.4e-7 (the float reference has that error too); exp(b ln
          // |d|) adds a relative ~|b ln |d|| 2e-7. The gradient likewise, through |d|^(b-1) and
          // h'(alpha) <= 0.3.
          const double h = AdaRoundH<double>(alpha[i]), a = std::fabs(2.0 * h - 1.0);
          const double tol_t = 1e-6 + 2.4e-7 * b * std::pow(a, b - 1.0);
          const double tol_g = 1e-7 +
                               std::fabs(gd[i] - 0.25) *
                                   (2e-6 + 2e-7 * (b - 1.0) * std::fabs(std::log(std::max(a, 1e-30)))) +
                               weight * b * (b - 1.0) * std::pow(a, b - 2.0) * 0.6 * 2.4e-7;
          ASSERT_LE(std::fabs(t[i] - td[i]), tol_t) << name << " b=" << b << " alpha=" << alpha[i];
          ASSERT_LE(std::fabs(g[i] - gd[i]), tol_g)
              << name << " b=" << b << " alpha=" << alpha[i] << " g=" << g[i] << " ref=" << gd[i];
        }
        for (int i = len; i <= n; ++i) {
          ASSERT_EQ(g[i], 0.25f) << name << " wrote past n";
          ASSERT_EQ(t[i], 7.f) << name << " wrote past n";
        }
      }
      std::vector<float> t(n);
      f(alpha.data(), n, b, weight, nullptr, t.data());  // no gradient wanted
      EXPECT_EQ(t[0], 1.f) << name;
    });
  }
}

}  // namespace
}  // namespace adalog::search
