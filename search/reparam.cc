// LayerNorm reparameterization (method §2.8) and the GELU-shift bias fold (method §2.6).
#include "search/reparam.h"

#include "quant/error.h"
#include "quant/log_quantizers.h"
#include "quant/rounding.h"
#include "quant/uniform.h"

namespace adalog::search {

LnReparam ComputeLnReparam(const UniformChoice& pc) {
  const size_t C = pc.scales.size();
  ADALOG_CHECK(C > 0 && pc.zero_points.size() == C, "LN reparam: empty per-channel parameters");
  double ss = 0, zs = 0;
  for (size_t c = 0; c < C; ++c) {
    ss += pc.scales[c];
    zs += pc.zero_points[c];
  }
  LnReparam t;
  t.s_star = static_cast<float>(ss / static_cast<double>(C));
  t.z_star = static_cast<int32_t>(RoundHalfEven(static_cast<float>(zs / static_cast<double>(C))));
  const float min_star = -static_cast<float>(t.z_star) * t.s_star;
  t.r.resize(C);
  t.beta.resize(C);
  for (size_t c = 0; c < C; ++c) {
    const float min_c = -static_cast<float>(pc.zero_points[c]) * pc.scales[c];
    t.r[c] = pc.scales[c] / t.s_star;
    t.beta[c] = min_c / t.r[c] - min_star;
  }
  return t;
}

void ApplyLnReparam(const LnReparam& t, LayerNormParams* ln, LinearParams* next, float* x,
                    int64_t rows) {
  const int C = static_cast<int>(t.r.size());
  ADALOG_CHECK(ln->dim == C && next->in == C, "LN reparam: transform has ", C,
               " channels, LayerNorm ", ln->dim, ", Linear input ", next->in);
  for (int c = 0; c < C; ++c) {
    ln->gamma[static_cast<size_t>(c)] /= t.r[static_cast<size_t>(c)];
    ln->beta[static_cast<size_t>(c)] =
        ln->beta[static_cast<size_t>(c)] / t.r[static_cast<size_t>(c)] - t.beta[static_cast<size_t>(c)];
  }
  if (next->bias.empty()) next->bias.assign(static_cast<size_t>(next->out), 0.0f);
  for (int o = 0; o < next->out; ++o) {
    float* row = next->weight.data() + static_cast<size_t>(o) * C;
    double acc = 0;
    for (int c = 0; c < C; ++c) {
      row[c] *= t.r[static_cast<size_t>(c)];
      acc += static_cast<double>(row[c]) * t.beta[static_cast<size_t>(c)];
    }
    next->bias[static_cast<size_t>(o)] = static_cast<float>(next->bias[static_cast<size_t>(o)] + acc);
  }
  if (x != nullptr) {
#pragma omp parallel for schedule(static) if (rows * C > (int64_t{1} << 17))
    for (int64_t i = 0; i < rows; ++i)
      for (int c = 0; c < C; ++c)
        x[i * C + c] = x[i * C + c] / t.r[static_cast<size_t>(c)] - t.beta[static_cast<size_t>(c)];
  }
}

std::vector<float> QuantizeWeight(const LinearParams& lin, const UniformPerChannel& q) {
  std::vector<float> out(lin.weight.size());
  FakeQuantize(q, lin.weight.data(), {lin.out, lin.in}, out.data());
  return out;
}

void FoldGeluShiftIntoBias(LinearParams* fc2, const UniformPerChannel& weight_quant, float delta) {
  const std::vector<float> w_hat = QuantizeWeight(*fc2, weight_quant);
  fc2->bias = FoldShiftIntoBias(w_hat.data(), fc2->out, fc2->in,
                                fc2->bias.empty() ? nullptr : fc2->bias.data(), delta);
}

}  // namespace adalog::search
