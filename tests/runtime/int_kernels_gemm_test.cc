// Bit-exact tests of the uniform integer GEMMs (runtime/kernels/int/int_kernels.h) against the
// plain references (runtime/kernels/reference/int_gemm_ref.h): every implementation, tile edges,
// odd K, bit widths 2..8, zero-point sweeps, per-head zero points, sentinel-filled outputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "quant/error.h"
#include "runtime/cpu_features.h"
#include "runtime/kernels/int/int_kernels.h"
#include "runtime/kernels/reference/int_gemm_ref.h"
#include "tests/util/isa_test_util.h"
#include "tests/util/random_codes.h"
#include "tests/util/test_util.h"

namespace adalog::intk {
namespace {

using test::kFloatSentinel;
using test::RandomCodes;
using test::Repro;

struct Case {
  int m, n, k, bits, za;
  int abits = 8;  // activation code width
};

// Checks c against ref over [m0, m1) x [0, n) and that the rest of the ldc-wide buffer kept the
// sentinel; rejects cases whose outputs are mostly zero.
void ExpectSame(const std::vector<float>& c, const std::vector<float>& ref, int rows, int m0,
                int m1, int n, int64_t ldc, const std::string& repro) {
  int64_t zeros = 0, bad = 0;
  for (int i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      const float got = c[static_cast<size_t>(i * ldc + j)];
      const bool inside = i >= m0 && i < m1 && j < n;
      if (!inside) {
        if (got != kFloatSentinel && ++bad < 3) ADD_FAILURE() << "wrote outside at " << i << "," << j << " " << repro;
        continue;
      }
      const float want = ref[static_cast<size_t>(i * n + j)];
      if (want == 0.f) ++zeros;
      if (!test::SameFloat(got, want) && ++bad < 3) {
        ADD_FAILURE() << "y[" << i << "][" << j << "] = " << got << ", reference " << want << " "
                      << repro;
      }
    }
  }
  EXPECT_EQ(bad, 0) << repro;
  const int64_t total = int64_t{m1 - m0} * n;
  EXPECT_LE(zeros * 2, total + 1) << "mostly zero outputs: vacuous case " << repro;
}

// One instance per kernel level (tests/util/isa_test_util.h: skipped, named, where the CPU lacks
// it): ref = the packed scalar GEMM / scalar q@k^T, avx2 = the AVX2 family (RunQLinear's choice,
// then every AVX2-level kernel forced: vpmaddubsw, nibbles, AVX-VNNI where the CPU has it; q@k^T
// with and without AVX-VNNI), avx512vnni = the VNNI kernels (and oneDNN).
class IntGemmIsa : public test::IsaParamTest {
 protected:
  QgemmImpl Impl() const {
    switch (GetParam()) {
      case IsaLevel::kAvx512Vnni: return QgemmImpl::kAvx512Vnni;
      case IsaLevel::kAvx2: return QgemmImpl::kAvx2;
      default: return QgemmImpl::kPackedScalar;
    }
  }
};
INSTANTIATE_TEST_SUITE_P(Isa, IntGemmIsa,
                         ::testing::Values(IsaLevel::kRef, IsaLevel::kAvx2, IsaLevel::kAvx512Vnni),
                         test::IsaParamName);

// Sets ADALOG_NO_AVXVNNI for its lifetime (the AVX2-level dispatch reads it per call), so the
// plain AVX2 kernels run on a CPU that has AVX-VNNI.
class NoAvxVnni {
 public:
  NoAvxVnni() {
    const char* old = std::getenv("ADALOG_NO_AVXVNNI");
    had_ = old != nullptr;
    if (had_) old_ = old;
    setenv("ADALOG_NO_AVXVNNI", "1", 1);
  }
  ~NoAvxVnni() {
    if (had_) {
      setenv("ADALOG_NO_AVXVNNI", old_.c_str(), 1);
    } else {
      unsetenv("ADALOG_NO_AVXVNNI");
    }
  }

 private:
  bool had_ = false;
  std::string old_;
};

// The AVX2-level u8 x s8 kernels, each forced (AVX-VNNI only where the CPU has it: reported).
std::vector<std::pair<const char*, GemmU8S8Fn>> Avx2U8Kernels() {
  std::vector<std::pair<const char*, GemmU8S8Fn>> k = {
      {"qgemm_u8s8_s32_maddubsw__avx2", QgemmU8S8MaddAvx2},
      {"qgemm_u8s8_s32_nibbles__avx2", QgemmU8S8NibblesAvx2}};
  if (GetCpuFeatures().avx_vnni) {
    k.emplace_back("qgemm_u8s8_s32__avxvnni", QgemmU8S8AvxVnni);
  } else {
    static bool said = false;
    if (!said) std::printf("[ note ] CPU lacks AVX-VNNI: qgemm_u8s8_s32__avxvnni not tested\n");
    said = true;
  }
  return k;
}

void RunCase(const Case& cs, uint64_t seed, QgemmImpl impl, bool with_onednn) {
  auto rng = test::SeededRng(seed);
  const std::string repro = Repro("seed", seed, "m", cs.m, "n", cs.n, "k", cs.k, "bits", cs.bits,
                                  "za", cs.za, "abits", cs.abits);
  const auto a = RandomCodes(rng, int64_t{cs.m} * cs.k, cs.abits);
  const auto w = RandomCodes(rng, int64_t{cs.n} * cs.k, cs.bits);
  std::uniform_int_distribution<int> zd(0, (1 << cs.bits) - 1);
  std::vector<int32_t> zw(static_cast<size_t>(cs.n));
  for (auto& z : zw) z = zd(rng);
  if (cs.n > 2) {
    zw[0] = 0;
    zw[1] = (1 << cs.bits) - 1;
  }
  const auto sw = test::UniformFloats(rng, cs.n, 1e-3f, 2e-2f);
  const auto bias = test::UniformFloats(rng, cs.n, -1.f, 1.f);
  const float sa = 0.037f;
  std::vector<float> ref(static_cast<size_t>(cs.m) * cs.n);
  ref::QLinearRef(a.data(), cs.k, cs.m, w.data(), cs.n, cs.k, sw.data(), zw.data(), sa, cs.za,
                  bias.data(), ref.data(), cs.n);
  const QLinear p = PrepareQLinear(w.data(), cs.n, cs.k, cs.bits, sw.data(), zw.data(), sa, cs.za,
                                   bias.data());
  const int64_t ldc = cs.n + 5;
  {
    std::vector<float> c(static_cast<size_t>(cs.m * ldc), kFloatSentinel);
    RunQLinear(p, impl, a.data(), cs.k, 0, cs.m, c.data(), ldc);
    ExpectSame(c, ref, cs.m, 0, cs.m, cs.n, ldc, repro + " impl=" + QgemmImplName(impl));
    // A row sub-range leaves the other rows untouched.
    if (cs.m > 2) {
      std::vector<float> c2(static_cast<size_t>(cs.m * ldc), kFloatSentinel);
      RunQLinear(p, impl, a.data(), cs.k, 1, cs.m - 1, c2.data(), ldc);
      ExpectSame(c2, ref, cs.m, 1, cs.m - 1, cs.n, ldc, repro + " rows=[1,m-1) impl=" + QgemmImplName(impl));
    }
  }
  if (impl == QgemmImpl::kAvx2) {
    for (const auto& [name, fn] : Avx2U8Kernels()) {
      std::vector<float> c(static_cast<size_t>(cs.m * ldc), kFloatSentinel);
      fn(a.data(), cs.k, 0, cs.m, p.packed, p.epilogue(), c.data(), ldc);
      ExpectSame(c, ref, cs.m, 0, cs.m, cs.n, ldc, repro + " kernel=" + name);
      if (cs.m > 2) {
        std::vector<float> c2(static_cast<size_t>(cs.m * ldc), kFloatSentinel);
        fn(a.data(), cs.k, 1, cs.m - 1, p.packed, p.epilogue(), c2.data(), ldc);
        ExpectSame(c2, ref, cs.m, 1, cs.m - 1, cs.n, ldc, repro + " rows=[1,m-1) kernel=" + name);
      }
    }
  }
  if (with_onednn) {
    OnednnQgemm* d = MakeOnednnQgemm(p, cs.m);
    if (ActiveIsaLevel() < IsaLevel::kAvx512Vnni) {
      EXPECT_EQ(d, nullptr) << "oneDNN int8 is not exact below VNNI " << repro;
      return;
    }
    ASSERT_NE(d, nullptr) << repro;
    std::vector<float> c(static_cast<size_t>(cs.m * ldc), kFloatSentinel);
    RunQLinear(p, QgemmImpl::kOnednn, a.data(), cs.k, 0, cs.m, c.data(), ldc, d);
    ExpectSame(c, ref, cs.m, 0, cs.m, cs.n, ldc, repro + " impl=onednn");
    FreeOnednnQgemm(d);
  }
}

TEST_P(IntGemmIsa, LevelSelectsItsKernels) {
  if (GetParam() != IsaLevel::kAvx2) GTEST_SKIP() << "checks the avx2 level's choice";
  const QgemmImpl impl = SelectQgemmImpl(IsaLevel::kAvx2);
  EXPECT_EQ(impl, AvxVnniDecline() == nullptr ? QgemmImpl::kAvxVnni : QgemmImpl::kAvx2);
  NoAvxVnni off;
  EXPECT_EQ(SelectQgemmImpl(IsaLevel::kAvx2), QgemmImpl::kAvx2);
  EXPECT_EQ(SelectQgemmU8S8Avx2(64), &QgemmU8S8MaddAvx2);
  EXPECT_EQ(SelectQgemmU8S8Avx2(65), &QgemmU8S8NibblesAvx2);
  EXPECT_EQ(SelectQgemmU8S8Avx2(128), &QgemmU8S8NibblesAvx2);
}

TEST_P(IntGemmIsa, QgemmBitExactTileEdgesAndOddK) {
  const int ms[] = {1, 15, 16, 17, 63, 64, 65, 197};
  const int ns[] = {1, 15, 16, 17, 63, 64, 65, 197};
  const int ks[] = {1, 3, 63, 65, 383, 384};
  uint64_t seed = 1000;
  // Every M and every N against every K, with the other dimension drawn from the list.
  for (int k : ks) {
    for (int i = 0; i < 8; ++i) {
      const int bits = 2 + static_cast<int>(seed % 7);
      const int za = static_cast<int>((seed * 37) % 256);
      RunCase({ms[i], ns[(i * 3 + k) % 8], k, bits, za}, seed++, Impl(), false);
      RunCase({ms[(i * 5 + k) % 8], ns[i], k, bits, 255 - za}, seed++, Impl(), false);
    }
  }
}

// Low-bit activation codes (the integer executor's W4A4 / W3A3 Linears): at plain AVX2 with <= 6-bit
// weights the whole K of a tile fits one int16 chunk (TileMaddOneChunk) up to K = 4 * 32767 /
// (2 * 15 * max |w - zw|); tile edges in M (around 6 and 48) and N (around 16), K a multiple of 4
// or not (the latter takes the chunked tiles), K past the one-chunk bound.
TEST_P(IntGemmIsa, QgemmLowBitActivations) {
  // At the AVX2 level the plain vpmaddubsw kernels, also on CPUs with AVX-VNNI.
  std::optional<NoAvxVnni> off;
  if (GetParam() == IsaLevel::kAvx2) off.emplace();
  uint64_t seed = 2700;
  for (int abits : {3, 4}) {
    for (int bits : {3, 4, 6}) {
      for (int k : {4, 64, 383, 384, 1536}) {
        for (int m : {1, 5, 6, 7, 47, 49}) {
          const int n = 1 + (m * 7 + k) % 40;
          const int za = static_cast<int>(seed % (1u << abits));
          RunCase({m, n, k, bits, za, abits}, seed++, Impl(), false);
        }
      }
    }
  }
}

TEST_P(IntGemmIsa, QgemmManyRowsColumnOuterOrder) {
  // More than 256 rows switches the VNNI kernel to column panels outer.
  RunCase({577, 81, 383, 8, 3}, 1500, Impl(), false);
  RunCase({300, 64, 64, 5, 200}, 1501, Impl(), GetParam() == IsaLevel::kAvx512Vnni);
}

TEST_P(IntGemmIsa, QgemmEveryBitWidthAndZeroPointSweep) {
  uint64_t seed = 2000;
  for (int bits = 2; bits <= 8; ++bits) {
    for (int za : {0, 1, 127, 128, 255}) RunCase({17, 33, 65, bits, za}, seed++, Impl(), false);
  }
}

// Extreme operands: every product at its largest magnitude with one sign per column (a = amax,
// w - zw = +-(2^bits - 1)), so the AVX2 vpmaddubsw kernel's int16 sums reach the bound its chunk
// size is proven against (2 amax max|b| per step, qgemm_avx2_impl.h) and a chunk one step too
// long overflows. Every level; K long enough for many chunks.
TEST_P(IntGemmIsa, QgemmExtremeOperands) {
  uint64_t seed = 2500;
  for (int bits = 2; bits <= 8; ++bits) {
    for (int amax : {255, 127, 15, 3}) {
      const int m = 7, n = 33, k = 1000 + bits;
      const int wmax = (1 << bits) - 1;
      std::vector<uint8_t> a(static_cast<size_t>(m) * k, static_cast<uint8_t>(amax));
      std::vector<uint8_t> w(static_cast<size_t>(n) * k);
      std::vector<int32_t> zw(static_cast<size_t>(n));
      for (int j = 0; j < n; ++j) {
        zw[j] = j % 2 ? wmax : 0;  // w - zw = +wmax (even columns), -wmax (odd columns)
        std::fill(w.begin() + int64_t{j} * k, w.begin() + int64_t{j + 1} * k,
                  static_cast<uint8_t>(j % 2 ? 0 : wmax));
      }
      const std::vector<float> sw(static_cast<size_t>(n), 1e-4f);
      const std::string repro = Repro("seed", seed++, "bits", bits, "amax", amax, "k", k);
      std::vector<float> ref(static_cast<size_t>(m) * n);
      ref::QLinearRef(a.data(), k, m, w.data(), n, k, sw.data(), zw.data(), 1.f, 0, nullptr,
                      ref.data(), n);
      const QLinear p = PrepareQLinear(w.data(), n, k, bits, sw.data(), zw.data(), 1.f, 0, nullptr);
      std::vector<float> c(static_cast<size_t>(m) * n, kFloatSentinel);
      RunQLinear(p, Impl(), a.data(), k, 0, m, c.data(), n);
      ExpectSame(c, ref, m, 0, m, n, n, repro + " impl=" + QgemmImplName(Impl()));
      if (Impl() != QgemmImpl::kAvx2) continue;
      for (const auto& [name, fn] : Avx2U8Kernels()) {
        std::vector<float> c2(static_cast<size_t>(m) * n, kFloatSentinel);
        fn(a.data(), k, 0, m, p.packed, p.epilogue(), c2.data(), n);
        ExpectSame(c2, ref, m, 0, m, n, n, repro + " kernel=" + name);
      }
    }
  }
}

// The s16 x s16 GEMMs (the log-code s16 design's kernel) against the scalar packed one (itself
// checked against the log-code reference in logcode_kernels_test.cc): nonnegative levels up to
// 32767 against |b| up to 255, tile edges, odd K, K long enough for the int64 flush; every
// kernel the CPU can run (qgemm_s16s16_s32__avxvnni included).
TEST(IntQgemm, S16KernelsMatchScalar) {
  std::vector<std::pair<const char*, GemmS16S16Fn>> kernels;
  if (IsaSupported(IsaLevel::kAvx2)) kernels.emplace_back("avx2", QgemmS16S16Avx2);
  if (GetCpuFeatures().avx_vnni) kernels.emplace_back("avxvnni", QgemmS16S16AvxVnni);
  if (IsaSupported(IsaLevel::kAvx512Vnni)) kernels.emplace_back("avx512vnni", QgemmS16S16Avx512Vnni);
  if (kernels.empty()) GTEST_SKIP() << "no vector s16 kernel on this CPU";
  uint64_t seed = 2700;
  for (const Case& cs : {Case{1, 1, 1, 8, 0}, Case{7, 17, 63, 8, 0}, Case{13, 33, 385, 4, 0},
                         Case{25, 16, 1536, 8, 0}, Case{5, 40, 4095, 8, 0}}) {
    auto rng = test::SeededRng(seed++);
    std::uniform_int_distribution<int> la(0, 32767), lb(-255, 255);
    std::vector<int16_t> a(static_cast<size_t>(cs.m) * cs.k), b(static_cast<size_t>(cs.n) * cs.k);
    for (auto& v : a) v = static_cast<int16_t>(la(rng));
    for (auto& v : b) v = static_cast<int16_t>(lb(rng));
    if (cs.k > 4) std::fill(a.begin(), a.begin() + cs.k, int16_t{32767});  // a row at the top
    PackedS16 pb;
    PackS16(b.data(), cs.k, cs.n, cs.k, &pb);
    const auto scale = test::UniformFloats(rng, cs.n, 1e-9f, 1e-8f);
    const auto bias = test::UniformFloats(rng, cs.n, -1.f, 1.f);
    std::vector<int32_t> row_exp(static_cast<size_t>(cs.m));
    for (int i = 0; i < cs.m; ++i) row_exp[i] = (i * 7) % 40;
    Epilogue ep;
    ep.col_scale = scale.data();
    ep.col_bias = bias.data();
    ep.row_exp = row_exp.data();
    std::vector<float> ref(static_cast<size_t>(cs.m) * cs.n);
    QgemmS16S16Packed(a.data(), cs.k, 0, cs.m, pb, ep, ref.data(), cs.n);
    for (const auto& [name, fn] : kernels) {
      std::vector<float> c(static_cast<size_t>(cs.m) * cs.n, kFloatSentinel);
      fn(a.data(), cs.k, 0, cs.m, pb, ep, c.data(), cs.n);
      ExpectSame(c, ref, cs.m, 0, cs.m, cs.n, cs.n,
                 Repro("seed", seed - 1, "m", cs.m, "n", cs.n, "k", cs.k) + " kernel=" + name);
    }
  }
}

// oneDNN's int8 GEMM (exact only with VNNI; below it MakeOnednnQgemm must decline).
TEST(IntQgemm, OnednnMatchesReference) {
  ADALOG_REQUIRE_OR_SKIP_ISA(IsaLevel::kAvx512Vnni);
  uint64_t seed = 3000;
  for (const Case& cs : {Case{197, 384, 384, 8, 131}, Case{17, 65, 63, 4, 7},
                         Case{64, 1152, 384, 6, 0}, Case{1, 17, 3, 3, 255}}) {
    RunCase(cs, seed++, QgemmImpl::kAvx512Vnni, true);
  }
}

TEST(IntQgemm, PrepareRejectsBadParameters) {
  std::vector<uint8_t> w(16, 3);
  std::vector<float> sw(4, 1.f);
  std::vector<int32_t> zw(4, 0);
  EXPECT_THROW(PrepareQLinear(w.data(), 4, 4, 9, sw.data(), zw.data(), 1.f, 0, nullptr), Error);
  EXPECT_THROW(PrepareQLinear(w.data(), 4, 4, 4, sw.data(), zw.data(), 1.f, 256, nullptr), Error);
  zw[2] = 16;
  EXPECT_THROW(PrepareQLinear(w.data(), 4, 4, 4, sw.data(), zw.data(), 1.f, 0, nullptr), Error);
  zw[2] = 0;
  w[5] = 200;
  EXPECT_THROW(PrepareQLinear(w.data(), 4, 4, 4, sw.data(), zw.data(), 1.f, 0, nullptr), Error);
}

// q @ k^T per head, per-head zero points, heads 1..16, tokens 1..577, head_dim 32 / 64.
void Matmul1Cases(IsaLevel cap);

TEST_P(IntGemmIsa, Matmul1BitExactPerHead) {
  Matmul1Cases(GetParam());
  if (GetParam() == IsaLevel::kAvx2 && AvxVnniDecline() == nullptr) {
    // Above: matmul1_u8u8_s32__avxvnni; now the plain AVX2 kernels.
    NoAvxVnni off;
    Matmul1Cases(GetParam());
  }
}

void Matmul1Cases(IsaLevel cap) {
  uint64_t seed = 4000;
  const int tokens[] = {1, 2, 17, 65, 197};
  for (int heads : {1, 3, 16}) {
    for (int d : {32, 64}) {
      const int t = tokens[(heads + d) % 5];
      auto rng = test::SeededRng(seed);
      const int width = heads * d;  // q and k live in a [T][heads * d] tensor (stride = width)
      const auto q = RandomCodes(rng, int64_t{t} * width, 8);
      const auto k = RandomCodes(rng, int64_t{t} * width, 8);
      Matmul1Workspace ws = MakeMatmul1Workspace(577, 64);
      for (int h = 0; h < heads; ++h) {
        const int zq = static_cast<int>((h * 53 + seed) % 256), zk = (h * 101) % 256;
        const float alpha = 0.01f * (h + 1) * 0.125f;
        const std::string repro = Repro("seed", seed, "heads", heads, "head", h, "tokens", t, "d", d);
        std::vector<float> ref(static_cast<size_t>(t) * t);
        ref::Matmul1Ref(q.data() + h * d, width, k.data() + h * d, width, t, t, d, zq, zk, alpha,
                        ref.data(), t);
        std::vector<float> s(static_cast<size_t>(t) * (t + 3), kFloatSentinel);
        Matmul1Head(q.data() + h * d, width, k.data() + h * d, width, t, t, d, zq, zk, alpha,
                    s.data(), t + 3, &ws, cap);
        ExpectSame(s, ref, t, 0, t, t, t + 3, repro + " cap=" + IsaLevelName(cap));
      }
      ++seed;
    }
  }
  // Low-bit codes (k - zk fits s8: packed directly, no row-sum compensation) and 8-bit codes on
  // both sides of that condition; head dims that are not a multiple of 4 / 64, tq != tk.
  for (int bits : {3, 4, 7, 8}) {
    const int cmax = (1 << bits) - 1;
    for (int zk : {0, cmax / 2, cmax, 127, 128, 129, 255}) {
      if (zk > 255) continue;
      for (int d : {5, 20, 64, 65, 130}) {
        const int tq = 7 + d % 5, tk = 33 + d % 7;
        auto rng = test::SeededRng(seed++);
        const auto q = RandomCodes(rng, int64_t{tq} * d, 8);
        auto k = RandomCodes(rng, int64_t{tk} * d, bits);
        k[0] = static_cast<uint8_t>(cmax);  // the largest code occurs
        Matmul1Workspace ws = MakeMatmul1Workspace(64, 130);
        const int zq = (zk * 7 + d) % 256;
        std::vector<float> ref(static_cast<size_t>(tq) * tk);
        ref::Matmul1Ref(q.data(), d, k.data(), d, tq, tk, d, zq, zk, 0.01f, ref.data(), tk);
        std::vector<float> s(static_cast<size_t>(tq) * (tk + 3), kFloatSentinel);
        Matmul1Head(q.data(), d, k.data(), d, tq, tk, d, zq, zk, 0.01f, s.data(), tk + 3, &ws,
                    cap);
        ExpectSame(s, ref, tq, 0, tq, tk, tk + 3,
                   Repro("bits", bits, "zk", zk, "d", d, "cap", IsaLevelName(cap)));
      }
    }
  }
  // Low-bit q and k (the integer executor's W4A4 / W3A3 attention): at plain AVX2 the whole head
  // dim fits one int16 chunk (2 * 15 * 15 * d / 4 <= 32767 for d <= 288), so these run
  // the one-chunk vpmaddubsw tiles (TileMaddOneChunk); tile edges both ways (tq ~6, tk ~16).
  for (int bits : {3, 4}) {
    const int cmax = (1 << bits) - 1;
    for (int d : {4, 32, 64, 128}) {
      for (int tq : {1, 5, 6, 7, 13, 197}) {
        const int tk = tq == 197 ? 197 : 1 + (tq * 5 + d) % 34;  // 1..34: around 16 and 32
        auto rng = test::SeededRng(seed++);
        const auto q = RandomCodes(rng, int64_t{tq} * d, bits);
        auto k = RandomCodes(rng, int64_t{tk} * d, bits);
        k[0] = static_cast<uint8_t>(cmax);
        const int zq = (tq * 3 + d) % (cmax + 1), zk = (tk + d) % (cmax + 1);
        Matmul1Workspace ws = MakeMatmul1Workspace(197, 128);
        std::vector<float> ref(static_cast<size_t>(tq) * tk);
        ref::Matmul1Ref(q.data(), d, k.data(), d, tq, tk, d, zq, zk, 0.02f, ref.data(), tk);
        std::vector<float> s(static_cast<size_t>(tq) * (tk + 3), kFloatSentinel);
        Matmul1Head(q.data(), d, k.data(), d, tq, tk, d, zq, zk, 0.02f, s.data(), tk + 3, &ws, cap);
        ExpectSame(s, ref, tq, 0, tq, tk, tk + 3,
                   Repro("low bits", bits, "d", d, "tq", tq, "tk", tk, "cap", IsaLevelName(cap)));
      }
    }
  }
  // The longest token count once (ViT 384: 577 tokens).
  auto rng = test::SeededRng(seed);
  const auto q = RandomCodes(rng, 577 * 64, 8);
  const auto k = RandomCodes(rng, 577 * 64, 8);
  Matmul1Workspace ws = MakeMatmul1Workspace(577, 64);
  std::vector<float> ref(577 * 577), s(577 * 577, kFloatSentinel);
  ref::Matmul1Ref(q.data(), 64, k.data(), 64, 577, 577, 64, 77, 200, 0.003f, ref.data(), 577);
  Matmul1Head(q.data(), 64, k.data(), 64, 577, 577, 64, 77, 200, 0.003f, s.data(), 577, &ws, cap);
  ExpectSame(s, ref, 577, 0, 577, 577, 577, Repro("seed", seed, "tokens", 577, "d", 64));
}

}  // namespace
}  // namespace adalog::intk
