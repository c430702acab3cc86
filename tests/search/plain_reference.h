// Plain, deliberately naive implementations of the method's candidate grids, FPCS and
// objectives (method §4.3-4.5), written from the method text (docs/method.md) for the faithfulness tests. Never
// optimized and never calling search/ code: quantizers come from quant/ (the one definition).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "quant/log_quantizers.h"
#include "quant/uniform.h"

namespace adalog::plain {

// torch.quantile, linear interpolation, on a sorted copy.
inline float Quantile(std::vector<float> v, double p) {
  std::sort(v.begin(), v.end());
  const float rank = static_cast<float>(p) * static_cast<float>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank)), hi = static_cast<size_t>(std::ceil(rank));
  const float w = rank - static_cast<float>(lo);
  const float a = v[lo], b = v[hi];
  return w < 0.5f ? a + w * (b - a) : b - (b - a) * (1.0f - w);
}

inline std::vector<float> Linspace(float a, float b, int n) {
  std::vector<float> out;
  const float step = n > 1 ? (b - a) / static_cast<float>(n - 1) : 0.0f;
  for (int i = 0; i < n; ++i)
    out.push_back(n == 1 ? a : (i < n / 2 ? a + step * i : b - step * (n - 1 - i)));
  return out;
}

struct Cand {
  float s;
  int z;
};

// Spec 4.4 grid for one group of values.
inline std::vector<Cand> Grid(const std::vector<float>& x, int bits, int num_zp, float floor) {
  const int n = 1 << (bits - 1);
  const float u90 = Quantile(x, 0.9), u100 = Quantile(x, 1.0), l10 = Quantile(x, 0.1),
              l0 = Quantile(x, 0.0);
  const float dmin = u90 - l10, dmax = u100 - l0;
  const int num_scale = 128 / num_zp;
  const std::vector<float> t = Linspace(0, 1, num_scale);
  std::vector<Cand> out;
  for (int zi = 0; zi < num_zp; ++zi)
    for (int si = 0; si < num_scale; ++si) {
      float s = (dmin + t[si] * (dmax - dmin)) / static_cast<float>((1 << bits) - 1);
      if (floor > 0) s = std::max(s, floor);
      out.push_back({s, n - num_zp / 2 + zi});
    }
  return out;
}

// Indices of the k smallest errors, stable (lowest index first among ties).
inline std::vector<int> TopK(const std::vector<double>& e, int k) {
  std::vector<int> idx(e.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return e[a] < e[b]; });
  idx.resize(k);
  return idx;
}

// Spec 4.5 FPCS for ONE group: err(candidate) -> error.
inline Cand Fpcs(const std::vector<Cand>& grid, const std::function<double(Cand)>& err,
                 float floor, bool fpcs = true) {
  std::vector<Cand> cur = grid;
  auto guard = [&](float s) {
    if (floor > 0) s = std::max(s, floor);
    return s > 0 ? s : std::numeric_limits<float>::min();
  };
  for (auto& c : cur) c.s = guard(c.s);
  float delta = grid[1].s - grid[0].s;
  std::vector<double> e;
  for (auto& c : cur) e.push_back(err(c));
  if (!fpcs) return cur[TopK(e, 1)[0]];
  for (int step = 2; step <= 6; ++step) {
    const std::vector<int> keep = TopK(e, 16);
    const std::vector<float> lin = Linspace(0, 1, 8);
    std::vector<Cand> next;
    for (int k : keep)
      for (int j = 0; j < 8; ++j) next.push_back({guard(cur[k].s + (lin[j] - 0.5f) * delta), cur[k].z});
    delta = delta / 7.5f;
    cur = next;
    e.clear();
    for (auto& c : cur) e.push_back(err(c));
  }
  return cur[TopK(e, 1)[0]];
}

struct LogCand {
  float s;
  int q;
};

// Spec 4.5 AdaLog joint FPCS.
inline LogCand AdaLogFpcs(float ud0, float ud1, float s_cur,
                          const std::function<double(LogCand)>& err) {
  std::vector<double> e;
  for (int q = 10; q <= 137; ++q) e.push_back(err({s_cur, q}));
  const std::vector<int> qkeep = TopK(e, 8);
  std::vector<LogCand> cur;
  for (int qi : qkeep)
    for (float s : Linspace(ud0, ud1, 16)) cur.push_back({s, 10 + qi});
  float delta = (ud1 - ud0) / 15.0f;
  e.clear();
  for (auto& c : cur) e.push_back(err(c));
  for (int step = 2; step <= 6; ++step) {
    const std::vector<int> keep = TopK(e, 32);
    std::vector<LogCand> next;
    const std::vector<float> lin = Linspace(0, 1, 4);
    for (int k : keep)
      for (int j = 0; j < 4; ++j) next.push_back({cur[k].s + (lin[j] - 0.5f) * delta, cur[k].q});
    delta /= 3.5f;
    cur = next;
    e.clear();
    for (auto& c : cur) e.push_back(err(c));
  }
  return cur[TopK(e, 1)[0]];
}

// ---- the improved FPCS (adalog's FpcsMode::kBest, search/fpcs.h), written from its description:
// the official candidates, but (1) the answer is the best candidate evaluated anywhere (first seen
// wins ties), (2) each stage's top-W is taken over the previous survivors (with their known
// errors, listed first in rank order) and their new children, (3) an optional incumbent is
// evaluated once after the grid and competes for the answer only.
struct Seen {
  Cand c;
  double e;
};

inline Cand FpcsBest(const std::vector<Cand>& grid, const std::function<double(Cand)>& err,
                     float floor, const Cand* incumbent = nullptr) {
  auto guard = [&](float s) {
    if (floor > 0) s = std::max(s, floor);
    return s > 0 ? s : std::numeric_limits<float>::min();
  };
  std::vector<Seen> seen, pool;
  for (Cand c : grid) {
    c.s = guard(c.s);
    pool.push_back({c, err(c)});
  }
  seen = pool;
  if (incumbent) {
    const Cand c{guard(incumbent->s), incumbent->z};
    seen.push_back({c, err(c)});
  }
  float delta = grid[1].s - grid[0].s;
  const std::vector<float> lin = Linspace(0, 1, 8);
  for (int step = 2; step <= 6; ++step) {
    std::vector<double> e;
    for (const Seen& p : pool) e.push_back(p.e);
    const std::vector<int> keep = TopK(e, 16);
    std::vector<Seen> next;
    for (int k : keep) next.push_back(pool[k]);
    for (int k : keep)
      for (int j = 0; j < 8; ++j) {
        const Cand c{guard(pool[k].c.s + (lin[j] - 0.5f) * delta), pool[k].c.z};
        next.push_back({c, err(c)});
        seen.push_back(next.back());
      }
    delta = delta / 7.5f;
    pool = next;
  }
  Seen best = seen[0];
  for (const Seen& s : seen)
    if (s.e < best.e) best = s;
  return best.c;
}

// The AdaLog joint search in the same mode: the q stage at s_cur (which evaluates the incumbent
// (s_cur, current q)), the 8 q-stage survivors then the 8 x 16 combine grid as the first pool,
// 5 elitist refinement levels; answer = best (scale, q) evaluated anywhere.
inline LogCand AdaLogFpcsBest(float ud0, float ud1, float s_cur,
                              const std::function<double(LogCand)>& err) {
  struct LogSeen {
    LogCand c;
    double e;
  };
  std::vector<LogSeen> seen, pool;
  std::vector<double> e;
  for (int q = 10; q <= 137; ++q) {
    seen.push_back({{s_cur, q}, err({s_cur, q})});
    e.push_back(seen.back().e);
  }
  const std::vector<int> qkeep = TopK(e, 8);
  for (int qi : qkeep) pool.push_back(seen[qi]);
  for (int qi : qkeep)
    for (float s : Linspace(ud0, ud1, 16)) {
      const LogCand c{s, 10 + qi};
      pool.push_back({c, err(c)});
      seen.push_back(pool.back());
    }
  float delta = (ud1 - ud0) / 15.0f;
  const std::vector<float> lin = Linspace(0, 1, 4);
  for (int step = 2; step <= 6; ++step) {
    e.clear();
    for (const LogSeen& p : pool) e.push_back(p.e);
    const std::vector<int> keep = TopK(e, 32);
    std::vector<LogSeen> next;
    for (int k : keep) next.push_back(pool[k]);
    for (int k : keep)
      for (int j = 0; j < 4; ++j) {
        const LogCand c{pool[k].c.s + (lin[j] - 0.5f) * delta, pool[k].c.q};
        next.push_back({c, err(c)});
        seen.push_back(next.back());
      }
    delta /= 3.5f;
    pool = next;
  }
  LogSeen best = seen[0];
  for (const LogSeen& s : seen)
    if (s.e < best.e) best = s;
  return best.c;
}

// ---- objectives, straight from the formulas (double sums of float fake-quant values) ----
inline std::vector<float> FqUniform(const std::vector<float>& x, int bits, Cand c) {
  const UniformQuantizer q(UniformParams{bits, c.s, c.z});
  std::vector<float> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = q.FakeQuant(x[i]);
  return out;
}

inline double SumSq(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    e += d * d;
  }
  return e;
}

// y [T][N] = x [T][K] * w [N][K]^T + b, in double, rounded to float at the end.
inline std::vector<float> Linear(const std::vector<float>& x, const std::vector<float>& w,
                                 const std::vector<float>& b, int T, int K, int N) {
  std::vector<float> y(static_cast<size_t>(T) * N);
  for (int t = 0; t < T; ++t)
    for (int o = 0; o < N; ++o) {
      double s = b.empty() ? 0.0 : b[o];
      for (int k = 0; k < K; ++k) s += static_cast<double>(x[t * K + k]) * w[o * K + k];
      y[t * N + o] = static_cast<float>(s);
    }
  return y;
}

// ||Y - (xq wq^T + b)||^2 restricted to output column o (or all columns for o < 0), in double.
inline double OutErr(const std::vector<float>& xq, const std::vector<float>& wq,
                     const std::vector<float>& b, const std::vector<float>& y, int T, int K, int N,
                     int o_only) {
  double e = 0;
  for (int t = 0; t < T; ++t)
    for (int o = 0; o < N; ++o) {
      if (o_only >= 0 && o != o_only) continue;
      double s = b.empty() ? 0.0 : b[o];
      for (int k = 0; k < K; ++k) s += static_cast<double>(xq[t * K + k]) * wq[o * K + k];
      const double d = y[t * N + o] - s;
      e += d * d;
    }
  return e;
}

inline std::vector<float> RandomVec(std::mt19937_64& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

}  // namespace adalog::plain
