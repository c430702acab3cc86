// Per-op calibration recipes (method §4.6).
#include "search/recipes.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "quant/error.h"
#include "quant/log_quantizers.h"
#include "quant/twin_uniform.h"
#include "quant/uniform.h"
#include "search/grids.h"
#include "search/log_act_out.h"
#include "search/objectives.h"
#include "search/reparam.h"

namespace adalog::search {
namespace {

UniformPerChannel ToPerChannel(const UniformChoice& c, int bits) {
  UniformPerChannel p;
  p.bits = bits;
  p.axis = 0;
  p.scales = c.scales;
  p.zero_points = c.zero_points;
  return p;
}

UniformPerHead ToPerHead(const UniformChoice& c, int bits) {
  UniformPerHead p;
  p.bits = bits;
  p.scales = c.scales;
  p.zero_points = c.zero_points;
  return p;
}

// The candidate at `index` of every group (initial values, method §4.4 table: index eq_n - 2).
UniformChoice GridPick(const UniformGrid& g, int index) {
  UniformChoice c;
  for (int grp = 0; grp < g.cands.groups; ++grp) {
    c.scales.push_back(GuardScale(g.cands.scale(grp, index), 0.0f));
    c.zero_points.push_back(g.cands.zp(grp, index));
  }
  return c;
}

FpcsConfig WeightCfg(const RecipeOptions& o) {
  FpcsConfig c;
  c.fpcs = o.fpcs;
  c.mode = o.fpcs_mode;
  return c;
}
FpcsConfig ActCfg(const RecipeOptions& o) {
  FpcsConfig c;
  c.fpcs = o.fpcs;
  c.mode = o.fpcs_mode;
  c.scale_floor = kActivationScaleFloor;
  return c;
}

std::vector<float> FakeQuantAll(const FakeQuantFn& fq, const float* x, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  // Chunked so that large tensors use every thread; the result is elementwise, hence exact.
  const int64_t chunk = 1 << 16, nchunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (nchunks > 1)
  for (int64_t i = 0; i < nchunks; ++i) {
    const int64_t b = i * chunk;
    fq(x + b, std::min(chunk, n - b), out.data() + b);
  }
  return out;
}

std::vector<float> QuantHeads(const float* x, int heads, int64_t per_head, const UniformChoice& c,
                              int bits) {
  std::vector<float> out(static_cast<size_t>(heads) * per_head);
  for (int h = 0; h < heads; ++h) {
    const std::vector<float> q = FakeQuantAll(
        UniformFq(UniformParams{bits, c.scales[static_cast<size_t>(h)], c.zero_points[static_cast<size_t>(h)]}),
        x + h * per_head, per_head);
    std::copy(q.begin(), q.end(), out.begin() + h * per_head);
  }
  return out;
}

UniformObjective WSelf(const LinearParams& lin) {
  return [&lin](const UniformCandidates& c, std::vector<double>* e) {
    WeightSelfErrors(lin.weight.data(), lin.out, lin.in, c, e);
  };
}

// W-out search of lin's weight with the input already quantized to xq. `incumbent`: the
// weight's current quantizer (used by FpcsMode::kBest only).
UniformChoice SearchWeightOut(const std::vector<float>& xq, int64_t T, const float* y,
                              const LinearParams& lin, const UniformGrid& wgrid,
                              const RecipeOptions& o, const UniformChoice* incumbent) {
  WeightOutObjective wout(xq.data(), T, lin.in, y, lin.bias.empty() ? nullptr : lin.bias.data(),
                          lin.out);
  return SearchUniform(
      wgrid,
      [&](const UniformCandidates& c, std::vector<double>* e) { wout.Eval(lin.weight.data(), c, e); },
      WeightCfg(o), incumbent);
}

// Rounds are coordinate descent between two searches, each a deterministic function of the
// other's last result (and of fixed data). Once a result repeats, every later round repeats the
// last one exactly, so the loops below stop there: the same plan as running all rounds. With
// FpcsMode::kBest a search also sees its own previous result (the incumbent), but only as a
// competitor for the result: min(beam result, incumbent) repeats once the beam's inputs repeat.
bool Same(const UniformChoice& a, const UniformChoice& b) {
  return a.scales == b.scales && a.zero_points == b.zero_points;
}


}  // namespace

void ValidateRecipeOptions(const RecipeOptions& o) {
  ADALOG_CHECK(o.weight_bits >= kMinBits && o.weight_bits <= kMaxBits,
               "calibration: unsupported weight bit width ", o.weight_bits, " (supported: ",
               kMinBits, "..", kMaxBits, ")");
  ADALOG_CHECK(o.act_bits >= kMinBits && o.act_bits <= kMaxBits,
               "calibration: unsupported activation bit width ", o.act_bits, " (supported: ",
               kMinBits, "..", kMaxBits, ")");
  ADALOG_CHECK(o.rounds >= 1, "calibration: rounds must be >= 1, got ", o.rounds);
}

// ---------------------------------------------------------------------------------------------
LinearQuant CalibrateUniformLinear(const float* x, int64_t T, const float* y,
                                   const LinearParams& lin, int act_bits, const RecipeOptions& o) {
  const int K = lin.in, N = lin.out;
  const UniformGrid wgrid = LinearWeightGrid(lin.weight.data(), N, K, o.weight_bits);
  UniformChoice wc = SearchUniform(wgrid, WSelf(lin), WeightCfg(o));
  const UniformGrid agrid = TensorActivationGrid(x, T * K, act_bits);
  const ActSelfObjective aself(x, T, K, /*per_channel=*/false);
  UniformChoice ac = SearchUniform(
      agrid, [&](const UniformCandidates& c, std::vector<double>* e) { aself.Eval(c, e); }, ActCfg(o));
  ActOutObjective aout(x, T, K, y, lin.bias.empty() ? nullptr : lin.bias.data(), N);
  for (int round = 0; round < o.rounds; ++round) {
    const std::vector<float> xq =
        FakeQuantAll(UniformFq(UniformParams{act_bits, ac.scales[0], ac.zero_points[0]}), x, T * K);
    const UniformChoice wprev = wc;
    wc = SearchWeightOut(xq, T, y, lin, wgrid, o, &wprev);
    // Same weight as the previous round: the A-out search would return the same activation.
    if (round > 0 && Same(wc, wprev)) break;
    const std::vector<float> wq = QuantizeWeight(lin, ToPerChannel(wc, o.weight_bits));
    aout.SetWeight(wq.data());
    const UniformChoice aprev = ac;
    ac = SearchUniform(
        agrid, [&](const UniformCandidates& c, std::vector<double>* e) { aout.EvalUniform(c, e); },
        ActCfg(o), &aprev);
    if (Same(ac, aprev)) break;  // the next W-out would see the same input
  }
  LinearQuant out;
  out.weight = ToPerChannel(wc, o.weight_bits);
  out.input.kind = ActQuant::Kind::kUniform;
  out.input.uniform.params = UniformParams{act_bits, ac.scales[0], ac.zero_points[0]};
  return out;
}

LinearQuant CalibrateLnLinear(float* x, int64_t T, const float* y, LayerNormParams* ln,
                              LinearParams* lin, const RecipeOptions& o) {
  if (o.ln_reparam) {
    const int C = lin->in;
    const UniformGrid cgrid = ChannelActivationGrid(x, T, C, o.act_bits);
    const ActSelfObjective cself(x, T, C, /*per_channel=*/true);
    const UniformChoice pc = SearchUniform(
        cgrid, [&](const UniformCandidates& c, std::vector<double>* e) { cself.Eval(c, e); },
        ActCfg(o));
    ApplyLnReparam(ComputeLnReparam(pc), ln, lin, x, T);
  }
  return CalibrateUniformLinear(x, T, y, *lin, o.act_bits, o);
}

// ---------------------------------------------------------------------------------------------
LinearQuant CalibratePostGeluLinear(const float* x, int64_t T, const float* y, LinearParams* fc2,
                                    const RecipeOptions& o) {
  if (o.gelu == GeluQuantizer::kUniform) return CalibrateUniformLinear(x, T, y, *fc2, o.act_bits, o);
  const int K = fc2->in, N = fc2->out;
  const int64_t TK = T * K;
  const UniformGrid wgrid = LinearWeightGrid(fc2->weight.data(), N, K, o.weight_bits);
  UniformChoice wc = SearchUniform(wgrid, WSelf(*fc2), WeightCfg(o));
  ActOutObjective aout(x, T, K, y, fc2->bias.empty() ? nullptr : fc2->bias.data(), N);
  LinearQuant out;
  const int b = o.act_bits;
  if (o.gelu == GeluQuantizer::kTwin) {
    // PTQ4ViT twin uniform (method §2.2): s1 = 0.16997 / n fixed; s0 in {2^i s1 : i = -5..24}, all
    // 30 evaluated (the official loop skips i = 24, method §8.16); 3 x (s0 search, W-out).
    TwinUniformParams tp;
    tp.bits = b;
    tp.scale_neg = TwinUniformDefaultNegScale(b);
    float amax = 0;
    for (int64_t i = 0; i < TK; ++i) amax = std::max(amax, std::abs(x[i]));
    tp.scale_pos = GuardScale(amax / (static_cast<float>(1 << (b - 1)) - 0.5f), 0.0f);
    for (int round = 0; round < o.rounds; ++round) {
      const std::vector<float> wq = QuantizeWeight(*fc2, ToPerChannel(wc, o.weight_bits));
      aout.SetWeight(wq.data());
      std::vector<double> err;
      aout.EvalDirect(30, [&](int i) {
        TwinUniformParams p = tp;
        p.scale_pos = std::ldexp(tp.scale_neg, i - 5);
        return TwinFq(p);
      }, &err);
      const float prev = tp.scale_pos;
      tp.scale_pos = std::ldexp(tp.scale_neg, StableTopK(err.data(), 30, 1)[0] - 5);
      // Same input quantizer as the previous round: W-out (and every later round) repeats.
      if (round > 0 && tp.scale_pos == prev) break;
      const std::vector<float> xq = FakeQuantAll(TwinFq(tp), x, TK);
      const UniformChoice wprev = wc;
      wc = SearchWeightOut(xq, T, y, *fc2, wgrid, o, &wprev);
    }
    out.weight = ToPerChannel(wc, o.weight_bits);
    out.input.kind = ActQuant::Kind::kTwin;
    out.input.twin = tp;
    return out;
  }
  // Log kinds: Shift-AdaLog / Shift-Log2 / Shift-LogSqrt2 with delta = -min GELU.
  const float delta = kGeluShift;
  const auto ud = PostGeluScaleRange(x, TK, delta);
  const std::vector<float> ud_grid = Linspace(ud.first, ud.second, kEqN);
  LogParams lp;
  ADALOG_CHECK(IsLogQuantizer(o.gelu, &lp.kind), "internal: GELU quantizer ", GeluQuantizerName(o.gelu),
               " is not a log quantizer");
  lp.bits = b;
  lp.scale = GuardScale(ud_grid[kEqN - 2], 0.0f);
  lp.q = kAdaLogR;
  // Exact incremental A-out (log_act_out.h): the same errors as aout.EvalDirect up to rounding.
  ShiftLogActOut lout(x, T, K, y, fc2->bias.empty() ? nullptr : fc2->bias.data(), N, lp.kind, b,
                      delta);
  for (int round = 0; round < o.rounds; ++round) {
    const std::vector<float> wq = QuantizeWeight(*fc2, ToPerChannel(wc, o.weight_bits));
    lout.SetWeight(wq.data());
    const LogParams prev = lp;
    if (lp.kind == LogKind::kAdaLog) {
      const LogChoice lc = SearchAdaLogJoint(
          ud.first, ud.second, lp.scale,
          [&](const LogCandidates& c, std::vector<double>* e) { lout.Eval(c, e); }, o.fpcs,
          o.fpcs_mode);
      lp.scale = lc.scale;
      lp.q = lc.q;
    } else {
      // Decision (method §8.17): a fair ablation searches the log2 / log-sqrt2 quantizer's OWN
      // scale (uniform FPCS over linspace(ud0, ud1, 128), width 16) instead of reusing the
      // AdaLog-searched scale under another base as the official code does.
      UniformGrid sg;
      sg.cands.bits = b;
      sg.cands.groups = 1;
      sg.cands.count = kEqN;
      sg.cands.scales = ud_grid;
      sg.cands.zero_points.assign(kEqN, 0);
      sg.delta = {ud_grid[1] - ud_grid[0]};
      UniformChoice sprev;  // the current scale (zero point unused by the log quantizers)
      sprev.scales = {lp.scale};
      sprev.zero_points = {0};
      const UniformChoice sc = SearchUniform(
          sg,
          [&](const UniformCandidates& c, std::vector<double>* e) {
            LogCandidates lc;
            for (int i = 0; i < c.count; ++i) {
              lc.scales.push_back(c.scale(0, i));
              lc.qs.push_back(kAdaLogR);
            }
            lout.Eval(lc, e);
          },
          WeightCfg(o), round > 0 ? &sprev : nullptr);
      lp.scale = sc.scales[0];
    }
    // Same (scale, q) as the previous round: W-out returns the previous weight, and the next
    // joint search (same weight, same starting scale) the same (scale, q).
    if (round > 0 && lp.scale == prev.scale && lp.q == prev.q) break;
    const std::vector<float> xq = FakeQuantAll(LogFq(lp, delta), x, TK);
    const UniformChoice wprev = wc;
    wc = SearchWeightOut(xq, T, y, *fc2, wgrid, o, &wprev);
  }
  if (std::getenv("ADALOG_SEARCH_STATS")) {
    // Diagnostics only: the final fc2 A-out (both quantizers at their final values) against the
    // energy of the FP output, for comparing quantizer choices layer by layer.
    const std::vector<float> wq = QuantizeWeight(*fc2, ToPerChannel(wc, o.weight_bits));
    lout.SetWeight(wq.data());
    std::vector<double> e;
    lout.Eval(LogCandidates{{lp.scale}, {lp.q}}, &e);
    double yy = 0;
    for (int64_t i = 0; i < T * N; ++i) yy += static_cast<double>(y[i]) * y[i];
    std::fprintf(stderr, "[search] fc2 %s W%dA%d scale %.6g q %d: A-out %.6g, relative %.6g\n",
                 GeluQuantizerName(o.gelu), o.weight_bits, b, static_cast<double>(lp.scale), lp.q, e[0], e[0] / yy);
  }
  if (std::getenv("ADALOG_SEARCH_STATS"))
    std::fprintf(stderr, "[search] fc2 A-out: %lld from scratch, %lld incremental, %.3g%% of codes updated per incremental\n",
                 static_cast<long long>(lout.stats().full), static_cast<long long>(lout.stats().incremental),
                 100.0 * static_cast<double>(lout.stats().changed) /
                     (static_cast<double>(std::max<int64_t>(1, lout.stats().incremental)) * static_cast<double>(TK)));
  out.weight = ToPerChannel(wc, o.weight_bits);
  out.input.kind = ActQuant::Kind::kLog;
  out.input.log = lp;
  out.input.shift = delta;
  out.input.shift_folded = true;
  FoldGeluShiftIntoBias(fc2, out.weight, delta);
  return out;
}

// ---------------------------------------------------------------------------------------------
void CalibrateQkMatmul(const float* q, const float* k, int heads, int images, int tokens,
                       int head_dim, const RecipeOptions& o, AttentionQuant* out) {
  MatmulObjective mm(q, k, heads, images, tokens, head_dim, tokens, /*b_transposed=*/true);
  const int b = o.act_bits;
  const UniformGrid ga = HeadGrid(q, heads, mm.a_per_head(), b);
  const UniformGrid gb = HeadGrid(k, heads, mm.b_per_head(), b);
  UniformChoice ca = GridPick(ga, kEqN - 2), cb = GridPick(gb, kEqN - 2);
  for (int round = 0; round < o.rounds; ++round) {
    mm.SetQuantizedB(QuantHeads(k, heads, mm.b_per_head(), cb, b));
    const UniformChoice aprev = ca, bprev = cb;
    ca = SearchUniform(
        ga, [&](const UniformCandidates& c, std::vector<double>* e) { mm.EvalAPerHead(c, e); },
        WeightCfg(o), &aprev);
    if (round > 0 && Same(ca, aprev)) break;  // B's search would repeat
    mm.SetQuantizedA(QuantHeads(q, heads, mm.a_per_head(), ca, b));
    cb = SearchUniform(
        gb, [&](const UniformCandidates& c, std::vector<double>* e) { mm.EvalBPerHead(c, e); },
        WeightCfg(o), &bprev);
    if (Same(cb, bprev)) break;  // A's next search would repeat
  }
  out->q = ToPerHead(ca, b);
  out->k = ToPerHead(cb, b);
}

void CalibrateAvMatmul(const float* probs, const float* v, int heads, int images, int tokens,
                       int head_dim, const RecipeOptions& o, AttentionQuant* out) {
  MatmulObjective mm(probs, v, heads, images, tokens, tokens, head_dim, /*b_transposed=*/false);
  const int b = o.act_bits;
  const UniformGrid gb = HeadGrid(v, heads, mm.b_per_head(), b);
  UniformChoice cb = GridPick(gb, kEqN - 2);
  const int64_t all_probs = static_cast<int64_t>(heads) * mm.a_per_head();
  ActQuant& pq = out->probs;
  if (o.softmax == SoftmaxQuantizer::kUniform) {
    // Per-tensor uniform probabilities: activation grid (floor 1e-4), init grid[126].
    const UniformGrid ga = TensorActivationGrid(probs, all_probs, b);
    UniformChoice ca = GridPick(ga, kEqN - 2);
    for (int round = 0; round < o.rounds; ++round) {
      mm.SetQuantizedB(QuantHeads(v, heads, mm.b_per_head(), cb, b));
      const UniformChoice aprev = ca, bprev = cb;
      ca = SearchUniform(
          ga,
          [&](const UniformCandidates& c, std::vector<double>* e) {
            mm.EvalATensor(c.count, [&](int i) {
              return UniformFq(UniformParams{b, c.scale(0, i), c.zp(0, i)});
            }, e);
          },
          ActCfg(o), &aprev);
      if (round > 0 && Same(ca, aprev)) break;  // B's search would repeat
      mm.SetQuantizedA(FakeQuantAll(UniformFq(UniformParams{b, ca.scales[0], ca.zero_points[0]}), probs, all_probs));
      cb = SearchUniform(
          gb, [&](const UniformCandidates& c, std::vector<double>* e) { mm.EvalBPerHead(c, e); },
          WeightCfg(o), &bprev);
      if (Same(cb, bprev)) break;  // A's next search would repeat
    }
    pq.kind = ActQuant::Kind::kUniform;
    pq.uniform.params = UniformParams{b, ca.scales[0], ca.zero_points[0]};
  } else {
    // Log kinds at scale 1 (method §8.18). AdaLog: rounds x (exhaustive q search, B FPCS);
    // log2 / log-sqrt2: one B search (method §4.6-E).
    LogParams lp;
    ADALOG_CHECK(IsLogQuantizer(o.softmax, &lp.kind), "internal: softmax quantizer ",
                 SoftmaxQuantizerName(o.softmax), " is not a log quantizer");
    lp.bits = b;
    lp.scale = 1.0f;
    lp.q = kAdaLogR;
    const int rounds = lp.kind == LogKind::kAdaLog ? o.rounds : 1;
    for (int round = 0; round < rounds; ++round) {
      const int qprev = lp.q;
      const UniformChoice bprev = cb;
      if (lp.kind == LogKind::kAdaLog) {
        mm.SetQuantizedB(QuantHeads(v, heads, mm.b_per_head(), cb, b));
        lp.q = SearchAdaLogQ(1.0f, [&](const LogCandidates& c, std::vector<double>* e) {
          mm.EvalATensor(static_cast<int>(c.qs.size()), [&](int i) {
            return LogFq(LogParams{LogKind::kAdaLog, b, c.scales[static_cast<size_t>(i)], c.qs[static_cast<size_t>(i)]}, 0.0f);
          }, e);
        });
        if (round > 0 && lp.q == qprev) break;  // B's search would repeat
      }
      mm.SetQuantizedA(FakeQuantAll(LogFq(lp, 0.0f), probs, all_probs));
      cb = SearchUniform(
          gb, [&](const UniformCandidates& c, std::vector<double>* e) { mm.EvalBPerHead(c, e); },
          WeightCfg(o), &bprev);
      if (Same(cb, bprev)) break;  // the next q search would repeat
    }
    if (std::getenv("ADALOG_SEARCH_STATS")) {
      // Diagnostics only: the final attn@v output error with both operands at their final values.
      mm.SetQuantizedB(QuantHeads(v, heads, mm.b_per_head(), cb, b));
      std::vector<double> e;
      mm.EvalATensor(1, [&](int) { return LogFq(lp, 0.0f); }, &e);
      std::fprintf(stderr, "[search] attn@v %s A%d q %d: MM error %.6g\n", SoftmaxQuantizerName(o.softmax), b, lp.q, e[0]);
    }
    pq.kind = ActQuant::Kind::kLog;
    pq.log = lp;
    pq.shift = 0.0f;
    pq.shift_folded = false;
  }
  out->v = ToPerHead(cb, b);
}

// ---------------------------------------------------------------------------------------------
UniformPerChannel CalibratePatchEmbed(const float* patches, int64_t rows, const float* y,
                                      const PatchEmbedParams& pe, const RecipeOptions& o) {
  const int K = pe.in_channels * pe.patch * pe.patch;
  const UniformGrid wgrid = ConvWeightGrid(pe.weight.data(), pe.dim, K, o.weight_bits);
  WeightOutObjective wout(patches, rows, K, y, pe.bias.empty() ? nullptr : pe.bias.data(), pe.dim);
  const UniformChoice wc = SearchUniform(
      wgrid, [&](const UniformCandidates& c, std::vector<double>* e) { wout.Eval(pe.weight.data(), c, e); },
      WeightCfg(o));
  return ToPerChannel(wc, o.weight_bits);
}

}  // namespace adalog::search
