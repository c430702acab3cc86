// FPCS beam search (method §4.5) and the non-FPCS fallback (method §4.7).
#include "search/fpcs.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "quant/error.h"

namespace adalog::search {

FpcsMode ParseFpcsMode(const std::string& name) {
  if (name == "official") return FpcsMode::kOfficial;
  if (name == "best") return FpcsMode::kBest;
  throw Error("unknown FPCS mode '" + name + "' (official | best)");
}

const char* FpcsModeName(FpcsMode m) { return m == FpcsMode::kBest ? "best" : "official"; }

namespace {

// NaN ranks last, as in StableTopK.
double RankKey(double e) { return std::isnan(e) ? std::numeric_limits<double>::infinity() : e; }

// One group's beam in FpcsMode::kBest: candidates with their known errors, in the order they
// were first seen (survivors carried from earlier stages first, then the new children).
struct BeamPool {
  std::vector<float> s;
  std::vector<int32_t> z;
  std::vector<double> e;
  void Add(float sc, int32_t zp, double err) {
    s.push_back(sc);
    z.push_back(zp);
    e.push_back(err);
  }
};

// The best candidate seen so far for one group: strictly lower error wins, so ties keep the one
// seen first and a NaN never replaces anything.
struct BestSeen {
  float s = 0;
  int32_t z = 0;
  double e = 0;
  bool set = false;
  void Offer(float sc, int32_t zp, double err) {
    if (!set || RankKey(err) < RankKey(e)) {
      s = sc;
      z = zp;
      e = err;
      set = true;
    }
  }
};

// A stage of the coarse-to-fine search: `width` parents per group, each refined into `children`
// candidates (storage sized, values filled by AddChildren).
UniformCandidates NextStage(int bits, int groups, int width, int children) {
  UniformCandidates next;
  next.bits = bits;
  next.groups = groups;
  next.count = width * children;
  next.scales.resize(static_cast<size_t>(groups) * next.count);
  next.zero_points.resize(static_cast<size_t>(groups) * next.count);
  return next;
}

// Parent k of group g: its lin.size() children at scales s + (lin[j] - 0.5) d (guarded), zero
// point z.
void AddChildren(UniformCandidates* next, int g, int k, float s, int32_t z, float d,
                 const std::vector<float>& lin, float scale_floor) {
  const int E = static_cast<int>(lin.size());
  for (int j = 0; j < E; ++j) {
    const size_t at = static_cast<size_t>(g) * next->count + static_cast<size_t>(k) * E + j;
    next->scales[at] = GuardScale(s + (lin[static_cast<size_t>(j)] - 0.5f) * d, scale_floor);
    next->zero_points[at] = z;
  }
}

// The initial grid with the positivity guard applied, and its errors (checked for size).
UniformCandidates EvaluateGuardedGrid(const UniformCandidates& g0, const UniformObjective& objective,
                                      const FpcsConfig& cfg, std::vector<double>* err) {
  UniformCandidates cur = g0;
  for (auto& s : cur.scales) s = GuardScale(s, cfg.scale_floor);
  objective(cur, err);
  ADALOG_CHECK(err->size() == static_cast<size_t>(g0.groups) * g0.count, "FPCS: objective returned ",
               err->size(), " errors for ", g0.groups * g0.count, " candidates");
  return cur;
}

UniformChoice SearchUniformBest(const UniformGrid& grid, const UniformObjective& objective,
                                const FpcsConfig& cfg, const UniformChoice* incumbent) {
  const UniformCandidates& g0 = grid.cands;
  const int G = g0.groups, N = g0.count, W = cfg.width;
  ADALOG_CHECK(W > 0 && N % W == 0 && W <= N, "FPCS: width ", W, " does not divide ", N);
  const int E = N / W;
  std::vector<double> err;
  UniformCandidates cur = EvaluateGuardedGrid(g0, objective, cfg, &err);
  std::vector<BeamPool> pool(static_cast<size_t>(G));
  std::vector<BestSeen> best(static_cast<size_t>(G));
  for (int g = 0; g < G; ++g) {
    for (int i = 0; i < N; ++i) {
      const double e = err[static_cast<size_t>(g) * N + i];
      pool[static_cast<size_t>(g)].Add(cur.scale(g, i), cur.zp(g, i), e);
      best[static_cast<size_t>(g)].Offer(cur.scale(g, i), cur.zp(g, i), e);
    }
  }
  if (incumbent != nullptr) {
    ADALOG_CHECK(incumbent->scales.size() == static_cast<size_t>(G) &&
                     incumbent->zero_points.size() == static_cast<size_t>(G),
                 "FPCS: incumbent has ", incumbent->scales.size(), " groups, grid ", G);
    UniformCandidates ic;
    ic.bits = g0.bits;
    ic.groups = G;
    ic.count = 1;
    for (int g = 0; g < G; ++g) {
      ic.scales.push_back(GuardScale(incumbent->scales[static_cast<size_t>(g)], cfg.scale_floor));
      ic.zero_points.push_back(incumbent->zero_points[static_cast<size_t>(g)]);
    }
    objective(ic, &err);
    ADALOG_CHECK(err.size() == static_cast<size_t>(G), "FPCS: objective size (incumbent)");
    // The incumbent competes for the result only, not for the beam: the beam (and so every
    // other candidate) stays a function of the grid and the objective alone, which keeps the
    // recipes' "same result -> stop the rounds" shortcut exact.
    for (int g = 0; g < G; ++g) {
      best[static_cast<size_t>(g)].Offer(ic.scales[static_cast<size_t>(g)], ic.zero_points[static_cast<size_t>(g)],
                                         err[static_cast<size_t>(g)]);
    }
  }
  const std::vector<float> lin = Linspace(0.0f, 1.0f, E);
  std::vector<float> delta = grid.delta;
  for (int step = 2; step <= cfg.steps && cfg.fpcs; ++step) {
    UniformCandidates next = NextStage(g0.bits, G, W, E);
    std::vector<BeamPool> carried(static_cast<size_t>(G));
    for (int g = 0; g < G; ++g) {
      const BeamPool& p = pool[static_cast<size_t>(g)];
      const std::vector<int> keep = StableTopK(p.e.data(), static_cast<int>(p.e.size()), W);
      const float d = delta[static_cast<size_t>(g)];
      for (int k = 0; k < static_cast<int>(keep.size()); ++k) {
        const size_t src = static_cast<size_t>(keep[static_cast<size_t>(k)]);
        carried[static_cast<size_t>(g)].Add(p.s[src], p.z[src], p.e[src]);
        AddChildren(&next, g, k, p.s[src], p.z[src], d, lin, cfg.scale_floor);
      }
      delta[static_cast<size_t>(g)] = d / (static_cast<float>(E) - 0.5f);
    }
    objective(next, &err);
    ADALOG_CHECK(err.size() == static_cast<size_t>(G) * next.count, "FPCS: objective size");
    for (int g = 0; g < G; ++g) {
      BeamPool& p = carried[static_cast<size_t>(g)];
      for (int i = 0; i < next.count; ++i) {
        const double e = err[static_cast<size_t>(g) * next.count + i];
        p.Add(next.scale(g, i), next.zp(g, i), e);
        best[static_cast<size_t>(g)].Offer(next.scale(g, i), next.zp(g, i), e);
      }
    }
    pool = std::move(carried);
  }
  UniformChoice out;
  for (const BestSeen& b : best) {
    out.scales.push_back(b.s);
    out.zero_points.push_back(b.z);
  }
  return out;
}

}  // namespace

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
                            const FpcsConfig& cfg, const UniformChoice* incumbent) {
  if (cfg.mode == FpcsMode::kBest && cfg.fpcs) return SearchUniformBest(grid, objective, cfg, incumbent);
  const UniformCandidates& g0 = grid.cands;
  const int G = g0.groups, N = g0.count;
  ADALOG_CHECK(G > 0 && N > 0, "FPCS: empty candidate grid");
  std::vector<double> err;
  UniformCandidates cur = EvaluateGuardedGrid(g0, objective, cfg, &err);
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
    UniformCandidates next = NextStage(cur.bits, G, W, E);
    for (int g = 0; g < G; ++g) {
      const std::vector<int> keep =
          StableTopK(err.data() + static_cast<size_t>(g) * cur.count, cur.count, W);
      const float d = delta[static_cast<size_t>(g)];
      for (int k = 0; k < W; ++k) {
        AddChildren(&next, g, k, cur.scale(g, keep[static_cast<size_t>(k)]),
                    cur.zp(g, keep[static_cast<size_t>(k)]), d, lin, cfg.scale_floor);
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
                            const LogObjective& objective, bool fpcs, FpcsMode mode) {
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
  if (mode == FpcsMode::kBest) {
    BestSeen best;
    for (size_t i = 0; i < qc.qs.size(); ++i) best.Offer(qc.scales[i], qc.qs[i], err[i]);
    // Pool: the q-stage survivors (carried, known errors) then the combine grid.
    std::vector<float> ps;
    std::vector<int> pq;
    std::vector<double> pe;
    for (int qi : qkeep) {
      ps.push_back(qc.scales[static_cast<size_t>(qi)]);
      pq.push_back(qc.qs[static_cast<size_t>(qi)]);
      pe.push_back(err[static_cast<size_t>(qi)]);
    }
    LogCandidates comb;
    for (int qi : qkeep) {
      for (float s : Linspace(ud0, ud1, kScaleNum)) {
        comb.scales.push_back(GuardScale(s, 0.0f));
        comb.qs.push_back(qc.qs[static_cast<size_t>(qi)]);
      }
    }
    eval(comb);
    for (size_t i = 0; i < comb.qs.size(); ++i) {
      ps.push_back(comb.scales[i]);
      pq.push_back(comb.qs[i]);
      pe.push_back(err[i]);
      best.Offer(comb.scales[i], comb.qs[i], err[i]);
    }
    float d = (ud1 - ud0) / static_cast<float>(kScaleNum - 1);
    const std::vector<float> lin4 = Linspace(0.0f, 1.0f, kExpand);
    for (int step = 2; step <= kSteps; ++step) {
      const std::vector<int> keep = StableTopK(pe.data(), static_cast<int>(pe.size()), kWidth);
      std::vector<float> ns;
      std::vector<int> nq;
      std::vector<double> ne;
      LogCandidates next;
      for (int k : keep) {
        ns.push_back(ps[static_cast<size_t>(k)]);
        nq.push_back(pq[static_cast<size_t>(k)]);
        ne.push_back(pe[static_cast<size_t>(k)]);
        for (int j = 0; j < kExpand; ++j) {
          next.scales.push_back(GuardScale(
              ps[static_cast<size_t>(k)] + (lin4[static_cast<size_t>(j)] - 0.5f) * d, 0.0f));
          next.qs.push_back(pq[static_cast<size_t>(k)]);
        }
      }
      d = d / (static_cast<float>(kExpand) - 0.5f);
      eval(next);
      for (size_t i = 0; i < next.qs.size(); ++i) {
        ns.push_back(next.scales[i]);
        nq.push_back(next.qs[i]);
        ne.push_back(err[i]);
        best.Offer(next.scales[i], next.qs[i], err[i]);
      }
      ps = std::move(ns);
      pq = std::move(nq);
      pe = std::move(ne);
    }
    return LogChoice{best.s, best.z};
  }
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
