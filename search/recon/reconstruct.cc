// One block's reconstruction loop and the write-back (see reconstruct.h).
#include "search/recon/reconstruct.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "quant/adaround.h"
#include "quant/error.h"
#include "quant/log_quantizers.h"
#include "quant/uniform.h"
#include "runtime/thread_pool.h"
#include "search/recon/recon_math_kernels.h"

namespace adalog::search {

void AdamStepRange(float* param, const float* grad, int64_t i0, int64_t i1, double lr, int64_t t,
                   AdamState* s) {
  constexpr double kB1 = 0.9, kB2 = 0.999, kEps = 1e-8;
  const double bc1 = 1.0 - std::pow(kB1, static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(kB2, static_cast<double>(t));
  const float step = static_cast<float>(lr / bc1);
  const float sbc2 = static_cast<float>(std::sqrt(bc2));
  for (int64_t i = i0; i < i1; ++i) {
    const float g = grad[i];
    float& m = s->m[static_cast<size_t>(i)];
    float& v = s->v[static_cast<size_t>(i)];
    m = static_cast<float>(kB1) * m + static_cast<float>(1.0 - kB1) * g;
    v = static_cast<float>(kB2) * v + static_cast<float>(1.0 - kB2) * g * g;
    param[i] -= step * m / (std::sqrt(v) / sbc2 + static_cast<float>(kEps));
  }
}

void AdamStep(float* param, const float* grad, int64_t n, double lr, int64_t t, AdamState* s) {
  if (static_cast<int64_t>(s->m.size()) != n) {
    s->m.assign(static_cast<size_t>(n), 0.f);
    s->v.assign(static_cast<size_t>(n), 0.f);
  }
  AdamStepRange(param, grad, 0, n, lr, t, s);
}

namespace {

// The quantized model's block with a folded post-GELU shift unfolded: training runs Q(x + d) - d
// with the unfolded bias, as the official code (bias_reparamed is set only after reconstruction).
// The unfolded bias is bias' + d * rowsum(W^), W^ the calibrated quantized weight (float32; the
// original bias up to the rounding of the fold).
void UnfoldShift(QuantizedModel* qm, int b) {
  BlockParams& mb = qm->model.blocks[static_cast<size_t>(b)];
  ActQuant& a = qm->plan.blocks[static_cast<size_t>(b)].fc2.input;
  if (a.kind != ActQuant::Kind::kLog || !a.shift_folded) return;
  std::vector<float> w_hat = mb.fc2.weight;
  FakeQuantize(qm->plan.blocks[static_cast<size_t>(b)].fc2.weight, w_hat.data(),
               {mb.fc2.out, mb.fc2.in}, w_hat.data());
  for (int o = 0; o < mb.fc2.out; ++o) {
    double rs = 0.0;
    for (int i = 0; i < mb.fc2.in; ++i) rs += w_hat[static_cast<size_t>(o) * mb.fc2.in + i];
    mb.fc2.bias[static_cast<size_t>(o)] += static_cast<float>(a.shift * rs);
  }
  a.shift_folded = false;
}

}  // namespace

BlockTrainParams<float> ReconstructBlock(
    const QuantizedModel& qm_in, int b, const float* inputs, const float* targets, int n,
    const ReconOptions& o, ReconStats* stats,
    const std::function<void(int, double, double)>& progress, int report_every) {
  ADALOG_CHECK(n >= o.batch && o.batch > 0, "block reconstruction: ", n,
               " images for batch ", o.batch);
  QuantizedModel qm = qm_in;
  UnfoldShift(&qm, b);
  BlockRecon<float> br(qm.model, b, qm.plan.blocks[static_cast<size_t>(b)], o.batch, o.threads);
  BlockTrainParams<float> p = br.InitialParams(), g;
  const int64_t row = static_cast<int64_t>(br.tokens()) * br.dim();  // floats per image
  std::vector<float> xb(static_cast<size_t>(o.batch * row)), yb(xb.size());
  std::vector<int> perm(static_cast<size_t>(n));
  std::mt19937 rng(o.seed);
  AdamState adam_w[kNumReconLinears], adam_a[kNumReconActs];
  // Fixed pieces of the alphas (independent of the thread count) for the regulariser and Adam.
  struct AlphaPiece {
    int l;
    int64_t i0, i1;
  };
  constexpr int64_t kAlphaPiece = 4096;
  std::vector<AlphaPiece> pieces;
  std::vector<float> reg_terms[kNumReconLinears];
  for (int l = 0; l < kNumReconLinears; ++l) {
    const int64_t n_l = static_cast<int64_t>(p.alpha[l].size());
    adam_w[l].m.assign(static_cast<size_t>(n_l), 0.f);
    adam_w[l].v.assign(static_cast<size_t>(n_l), 0.f);
    reg_terms[l].assign(static_cast<size_t>(n_l), 0.f);
    for (int64_t i0 = 0; i0 < n_l; i0 += kAlphaPiece) {
      pieces.push_back({l, i0, std::min(n_l, i0 + kAlphaPiece)});
    }
  }
  for (int it = 1; it <= o.iters; ++it) {
    // A random subset of `batch` images (partial Fisher-Yates; torch.randperm(n)[:batch]).
    for (int i = 0; i < n; ++i) perm[static_cast<size_t>(i)] = i;
    for (int i = 0; i < o.batch; ++i) {
      std::uniform_int_distribution<int> pick(i, n - 1);
      std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(pick(rng))]);
      const int src = perm[static_cast<size_t>(i)];
      std::copy(inputs + src * row, inputs + (src + 1) * row, xb.begin() + i * row);
      std::copy(targets + src * row, targets + (src + 1) * row, yb.begin() + i * row);
    }
    if (o.drop_prob > 0.0) br.SetDrop(QDropMask(o.drop_prob, QDropMask::KeyFor(o.seed, it)));
    const double rec = br.Forward(p, xb.data(), o.batch, yb.data(), nullptr);
    br.Backward(p, &g);
    // The rounding regulariser and Adam on the alphas, element-wise on fixed pieces of every
    // Linear's alphas (one pool region; the same bytes as the sequential loops for any thread
    // count), the regulariser's terms then added up in index order.
    const bool reg_on = AdaRoundRegularizerOn(it, o.iters, o.warmup);
    const double bexp =
        reg_on ? AdaRoundExponent(it, o.iters, o.warmup, o.b_start, o.b_end) : 0.0;
    exec::PoolFor(static_cast<int64_t>(pieces.size()), o.threads, [&](int, int64_t k) {
      const AlphaPiece& pc = pieces[static_cast<size_t>(k)];
      float* a = p.alpha[pc.l].data();
      float* ga = g.alpha[pc.l].data();
      if (reg_on) {
        static const AdaRoundRegTermsF32Fn kReg = SelectAdaRoundRegTermsF32();
        kReg(a + pc.i0, pc.i1 - pc.i0, bexp, o.round_weight, ga + pc.i0,
             reg_terms[pc.l].data() + pc.i0);
      }
      AdamStepRange(a, ga, pc.i0, pc.i1, o.lr_alpha, it, &adam_w[pc.l]);
    });
    double round = 0.0;
    if (reg_on) {
      for (int l = 0; l < kNumReconLinears; ++l) {
        double sum = 0.0;
        for (const float t : reg_terms[l]) sum += static_cast<double>(t);
        round += o.round_weight * sum;
      }
    }
    if (stats != nullptr) {
      if (it == 1) stats->first_loss = rec;
      stats->last_loss = rec;
    }
    if (progress && report_every > 0 && (it == 1 || it % report_every == 0)) progress(it, rec, round);
    if (o.train_act) {
      // CosineAnnealingLR(T_max = iters, eta_min = 0), stepped after each optimiser step.
      const double lr = o.lr_act * 0.5 * (1.0 + std::cos(M_PI * (it - 1) / o.iters));
      for (int a = 0; a < kNumReconActs; ++a) {
        if (p.act_scale[a].empty()) continue;
        AdamStep(p.act_scale[a].data(), g.act_scale[a].data(),
                 static_cast<int64_t>(p.act_scale[a].size()), lr, it, &adam_a[a]);
        for (float& s : p.act_scale[a]) {
          ADALOG_CHECK(s > 0.f && std::isfinite(s), "block reconstruction: block ", b, " ",
                       ReconActName(a), " step size left the positive floats (", s, ")");
        }
      }
    }
  }
  return p;
}

void ApplyBlockReconstruction(const BlockTrainParams<float>& p, int b, QuantizedModel* qm) {
  const ActQuant fc2_in = qm->plan.blocks[static_cast<size_t>(b)].fc2.input;
  UnfoldShift(qm, b);
  BlockParams& mb = qm->model.blocks[static_cast<size_t>(b)];
  BlockQuant& bq = qm->plan.blocks[static_cast<size_t>(b)];
  LinearParams* lin[kNumReconLinears] = {&mb.qkv, &mb.proj, &mb.fc1, &mb.fc2};
  const UniformPerChannel* wq[kNumReconLinears] = {&bq.qkv.weight, &bq.proj.weight,
                                                  &bq.fc1.weight, &bq.fc2.weight};
  for (int l = 0; l < kNumReconLinears; ++l) {
    LinearParams& lp = *lin[l];
    for (int o = 0; o < lp.out; ++o) {
      const UniformParams up = wq[l]->channel(o);
      for (int i = 0; i < lp.in; ++i) {
        const size_t k = static_cast<size_t>(o) * lp.in + i;
        const int32_t c = AdaRoundHardCode(lp.weight[k], up, p.alpha[l][k]);
        lp.weight[k] = static_cast<float>(c - up.zero_point) * up.scale;
      }
    }
  }
  auto set_tensor = [&](ActQuant* a, int site) {
    if (a->kind == ActQuant::Kind::kUniform) a->uniform.params.scale = p.act_scale[site][0];
    if (a->kind == ActQuant::Kind::kLog) a->log.scale = p.act_scale[site][0];
  };
  set_tensor(&bq.qkv.input, kActQkvIn);
  set_tensor(&bq.attn.probs, kActProbs);
  set_tensor(&bq.proj.input, kActProjIn);
  set_tensor(&bq.fc1.input, kActFc1In);
  set_tensor(&bq.fc2.input, kActFc2In);
  if (!bq.attn.q.scales.empty()) bq.attn.q.scales = p.act_scale[kActQ];
  if (!bq.attn.k.scales.empty()) bq.attn.k.scales = p.act_scale[kActK];
  if (!bq.attn.v.scales.empty()) bq.attn.v.scales = p.act_scale[kActV];
  if (fc2_in.kind == ActQuant::Kind::kLog && fc2_in.shift_folded) {
    std::vector<float> w_hat = mb.fc2.weight;
    FakeQuantize(bq.fc2.weight, w_hat.data(), {mb.fc2.out, mb.fc2.in}, w_hat.data());
    mb.fc2.bias = FoldShiftIntoBias(w_hat.data(), mb.fc2.out, mb.fc2.in, mb.fc2.bias.data(),
                                    fc2_in.shift);
    bq.fc2.input.shift_folded = true;
  }
}

}  // namespace adalog::search
