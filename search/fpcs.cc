// FPCS beam search (AdaLog spec 4.5) and the non-FPCS fallback (spec 4.7).
#include "search/fpcs.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "quant/error.h"

namespace adalog::search {

float GuardScale(float s, float floor) {
  if (floor > 0.0f) s = std::max(s, floor);  // NaN compares false: handled below
  if (!(s > 0.0f) || !std::isfinite(s)) return std::numeric_limits<float>::min();
  return s;
}

std::vector<int> StableTopK(const double* err, int n, int k) {
  k = std::min(k, n);
  std::vector<int> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  auto key = [err](int i) {
    const double e = err[i];
    return std::isnan(e) ? std::numeric_limits<double>::infinity() : e;
  };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) {
    const double ea = key(a), eb = key(b);
    if (ea != eb) return ea < eb;
    const bool na = std::isnan(err[a]), nb = std::isnan(err[b]);
    if (na != nb) return nb;  // a real +inf ranks before a NaN
    return a < b;
  });
  idx.resize(static_cast<size_t>(k));
  return idx;
}

UniformChoice SearchUniform(const UniformGrid& grid, const UniformObjective& objective,
                            const FpcsConfig& cfg) {
  const UniformCandidates& g0 = grid.cands;
  const int G = g0.groups, N = g0.count;
  ADALOG_CHECK(G > 0 && N > 0, "FPCS: empty candidate grid");
  std::vector<double> err;
  UniformCandidates cur = g0;
  for (auto& s : cur.scales) s = GuardScale(s, cfg.scale_floor);
  objective(cur, &err);
  ADALOG_CHECK(err.size() == static_cast<size_t>(G) * N, "FPCS: objective returned ", err.size(),
               " errors for ", G * N, " candidates");
  UniformChoice out;
  out.scales.resize(static_cast<size_t>(G));
  out.zero_points.resize(static_cast<size_t>(G));
  auto take_best = [&](const UniformCandidates& c) {
    for (int g = 0; g < G; ++g) {
      const int b = StableTopK(err.data() + static_cast<size_t>(g) * c.count, c.count, 1)[0];
      out.scales[static_cast<size_t>(g)] = c.scale(g, b);
      out.zero_points[static_cast<size_t>(g)] = c.zp(g, b);
    }
  };
  if (!cfg.fpcs || cfg.steps <= 1) {
    take_best(cur);
    return out;
  }
  const int W = cfg.width;
  ADALOG_CHECK(W > 0 && N % W == 0 && W <= N, "FPCS: width ", W, " does not divide ", N);
  const int E = N / W;
  const std::vector<float> lin = Linspace(0.0f, 1.0f, E);
  std::vector<float> delta = grid.delta;
  for (int step = 2; step <= cfg.steps; ++step) {
    UniformCandidates next;
    next.bits = cur.bits;
    next.groups = G;
    next.count = W * E;
    next.scales.resize(static_cast<size_t>(G) * next.count);
    next.zero_points.resize(static_cast<size_t>(G) * next.count);
    for (int g = 0; g < G; ++g) {
      const std::vector<int> keep =
          StableTopK(err.data() + static_cast<size_t>(g) * cur.count, cur.count, W);
      const float d = delta[static_cast<size_t>(g)];
      for (int k = 0; k < W; ++k) {
        const float s = cur.scale(g, keep[static_cast<size_t>(k)]);
        const int32_t z = cur.zp(g, keep[static_cast<size_t>(k)]);
        for (int j = 0; j < E; ++j) {
          const size_t at = static_cast<size_t>(g) * next.count + static_cast<size_t>(k) * E + j;
          next.scales[at] = GuardScale(s + (lin[static_cast<size_t>(j)] - 0.5f) * d, cfg.scale_floor);
          next.zero_points[at] = z;
        }
      }
      delta[static_cast<size_t>(g)] = d / (static_cast<float>(E) - 0.5f);
    }
    cur = std::move(next);
    objective(cur, &err);
    ADALOG_CHECK(err.size() == static_cast<size_t>(G) * cur.count, "FPCS: objective size");
  }
  take_best(cur);
  return out;
}

std::vector<int> AdaLogQRange() {
  std::vector<int> q(static_cast<size_t>(kEqN));
  std::iota(q.begin(), q.end(), 10);
  return q;
}

int SearchAdaLogQ(float scale, const LogObjective& objective) {
  LogCandidates c;
  c.qs = AdaLogQRange();
  c.scales.assign(c.qs.size(), GuardScale(scale, 0.0f));
  std::vector<double> err;
  objective(c, &err);
  ADALOG_CHECK(err.size() == c.qs.size(), "q search: objective size");
  return c.qs[static_cast<size_t>(StableTopK(err.data(), static_cast<int>(err.size()), 1)[0])];
}

LogChoice SearchAdaLogJoint(float ud0, float ud1, float current_scale,
                            const LogObjective& objective, bool fpcs) {
  constexpr int kBaseNum = 8, kScaleNum = 16, kWidth = 32, kSteps = 6, kExpand = 4;
  std::vector<double> err;
  auto eval = [&](const LogCandidates& c) {
    objective(c, &err);
    ADALOG_CHECK(err.size() == c.qs.size(), "AdaLog search: objective size");
  };
  // q stage at the current scale.
  LogCandidates qc;
  qc.qs = AdaLogQRange();
  qc.scales.assign(qc.qs.size(), GuardScale(current_scale, 0.0f));
  eval(qc);
  if (!fpcs) {
    LogChoice out;
    out.q = qc.qs[static_cast<size_t>(StableTopK(err.data(), static_cast<int>(err.size()), 1)[0])];
    LogCandidates sc;
    for (float s : Linspace(ud0, ud1, kEqN)) {
      sc.scales.push_back(GuardScale(s, 0.0f));
      sc.qs.push_back(out.q);
    }
    eval(sc);
    out.scale = sc.scales[static_cast<size_t>(StableTopK(err.data(), kEqN, 1)[0])];
    return out;
  }
  const std::vector<int> qkeep = StableTopK(err.data(), static_cast<int>(err.size()), kBaseNum);
  // Combine stage.
  LogCandidates cur;
  const std::vector<float> grid = Linspace(ud0, ud1, kScaleNum);
  for (int qi : qkeep) {
    for (float s : grid) {
      cur.scales.push_back(GuardScale(s, 0.0f));
      cur.qs.push_back(qc.qs[static_cast<size_t>(qi)]);
    }
  }
  float delta = (ud1 - ud0) / static_cast<float>(kScaleNum - 1);
  eval(cur);
  const std::vector<float> lin = Linspace(0.0f, 1.0f, kExpand);
  for (int step = 2; step <= kSteps; ++step) {
    const std::vector<int> keep = StableTopK(err.data(), static_cast<int>(err.size()), kWidth);
    LogCandidates next;
    for (int k : keep) {
      for (int j = 0; j < kExpand; ++j) {
        next.scales.push_back(GuardScale(
            cur.scales[static_cast<size_t>(k)] + (lin[static_cast<size_t>(j)] - 0.5f) * delta, 0.0f));
        next.qs.push_back(cur.qs[static_cast<size_t>(k)]);
      }
    }
    delta = delta / (static_cast<float>(kExpand) - 0.5f);
    cur = std::move(next);
    eval(cur);
  }
  const int b = StableTopK(err.data(), static_cast<int>(err.size()), 1)[0];
  return LogChoice{cur.scales[static_cast<size_t>(b)], cur.qs[static_cast<size_t>(b)]};
}

}  // namespace adalog::search
