// The integer executor tests' per-op glue references (executor_int_test.cc for ViT,
// swin_int_test.cc for Swin): plain scalar versions of each integer op computed from the op's
// observed float input and the plan (scalar UniformQuantizer::Encode, int64 dot products, the
// kernels' documented epilogue fmaf(float(acc), sa * sw[n], bias[n]), the log writers' scalar
// references and the plain log GEMM reference with the design's documented headroom), a tap
// capture and a bit-difference counter. Float islands are not re-derived: a reference starts from
// the executor's own observed float inputs. Header-only, runtime/ test binaries only.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "quant/log_quantizers.h"
#include "quant/uniform.h"
#include "runtime/executor_fp32.h"
#include "runtime/kernels/float_kernels.h"
#include "runtime/kernels/int/int_kernels.h"
#include "runtime/kernels/reference/logcode_ref.h"
#include "runtime/kernels/reference/logcode_writers_ref.h"
#include "runtime/quant_plan.h"
#include "tests/util/log_design_headroom.h"

namespace adalog::int_test {

// Every tap's tensor by (tap, block), the last report kept.
class Capture : public Fp32Observer {
 public:
  void OnTensor(const TapInfo& t, const float* d, int rows, int cols) override {
    tensors[{static_cast<int>(t.tap), t.block}] = std::vector<float>(d, d + int64_t(rows) * cols);
  }
  const std::vector<float>& Get(TapPoint tap, int block) const {
    return tensors.at({static_cast<int>(tap), block});
  }
  std::map<std::pair<int, int>, std::vector<float>> tensors;
};

// Weight codes as the plan defines them (scalar encode), row-major [out][in].
inline std::vector<int32_t> WeightCodesRef(const UniformPerChannel& q, const std::vector<float>& w,
                                           int out, int in) {
  std::vector<int32_t> c(w.size());
  for (int o = 0; o < out; ++o) {
    const UniformQuantizer uq(q.channel(o));
    for (int i = 0; i < in; ++i) c[size_t(o) * in + i] = uq.Encode(w[size_t(o) * in + i]);
  }
  return c;
}

// y = fmaf(float(sum_k (a - za)(w - zw)), sa * sw[n], bias[n]) for every row of x.
inline std::vector<float> LinearRef(const LinearQuant& lq, const LinearParams& l,
                                    const std::vector<float>& x, int rows) {
  const UniformQuantizer aq(lq.input.uniform.params);
  const std::vector<int32_t> wc = WeightCodesRef(lq.weight, l.weight, l.out, l.in);
  std::vector<float> y(size_t(rows) * l.out);
  std::vector<int32_t> a(l.in);
  for (int r = 0; r < rows; ++r) {
    for (int k = 0; k < l.in; ++k) a[k] = aq.Encode(x[size_t(r) * l.in + k]);
    for (int n = 0; n < l.out; ++n) {
      int64_t acc = 0;
      for (int k = 0; k < l.in; ++k) {
        acc += int64_t(a[k] - aq.params().zero_point) *
               (wc[size_t(n) * l.in + k] - lq.weight.zero_points[n]);
      }
      const float scale = aq.params().scale * lq.weight.scales[n];
      y[size_t(r) * l.out + n] = std::fmaf(static_cast<float>(acc), scale, l.bias[n]);
    }
  }
  return y;
}

inline int CountBitDiffs(const std::vector<float>& got, const std::vector<float>& want,
                         const char* what) {
  EXPECT_EQ(got.size(), want.size()) << what;
  int diffs = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    if (std::memcmp(&got[i], &want[i], 4) != 0 && ++diffs <= 3) {
      ADD_FAILURE() << what << " element " << i << ": got " << got[i] << " want " << want[i];
    }
  }
  return diffs;
}

// One head's probabilities and attn@V from its scores s [n][n] (overwritten): probs codes by the
// writer's scalar reference (log, fused) or FP32 softmax + quant's encoder, attn@V by the plain
// log GEMM reference (headroom of `design`) or an int64 dot (uniform probs). vt: the head's v
// codes transposed [hd][n]; out: n rows of hd floats, ldo apart.
inline void ProbsAvRef(const BlockQuant& bq, int h, std::vector<float>& s, int n, int hd,
                       const std::vector<uint8_t>& vt, intk::LogDesign design,
                       const FloatKernels& fk, bool fused, float* out, int64_t ldo) {
  std::vector<uint8_t> pc(size_t(n) * n);
  const int32_t zv = bq.attn.v.zero_points[h];
  const ActQuant& pq = bq.attn.probs;
  if (pq.kind == ActQuant::Kind::kLog) {
    const FastLogEncoder enc(pq.log);
    if (fused) {
      intk::ref::SoftmaxToLogCodesRef(enc, s.data(), n, n, pc.data());
    } else {
      fk.softmax(s.data(), s.data(), n, n);
      const LogQuantizer lq(pq.log);
      for (size_t i = 0; i < pc.size(); ++i) pc[i] = lq.Encode(s[i]);
    }
    const AdaLogTables tab = pq.log.kind == LogKind::kLog2
                                 ? MakeLog2Tables(pq.log.bits)
                                 : MakeAdaLogTables(pq.log.bits, pq.log.q);
    const float a = static_cast<float>(double(pq.log.scale) * bq.attn.v.scales[h] / tab.D);
    const std::vector<int32_t> zu(hd, zv);
    const std::vector<float> alphas(hd, a);
    intk::ref::LogMatmulRef(tab, test::DocHeadroom(design, tab.bits), pc.data(), n, n, vt.data(), n,
                            hd, n, zu.data(), alphas.data(), nullptr, out, ldo);
  } else {
    fk.softmax(s.data(), s.data(), n, n);
    const UniformQuantizer pq_u(pq.uniform.params);
    for (size_t i = 0; i < pc.size(); ++i) pc[i] = uint8_t(pq_u.Encode(s[i]));
    const float a = pq.uniform.params.scale * bq.attn.v.scales[h];
    for (int i = 0; i < n; ++i) {
      for (int c = 0; c < hd; ++c) {
        int64_t acc = 0;
        for (int j = 0; j < n; ++j) {
          acc += int64_t(pc[size_t(i) * n + j] - pq.uniform.params.zero_point) *
                 (vt[size_t(c) * n + j] - zv);
        }
        out[size_t(i) * ldo + c] = std::fmaf(static_cast<float>(acc), a, 0.f);
      }
    }
  }
}

// q@k^T of one head from its q / k codes [n][hd]: s = fmaf(int64 dot, sq*sk*attn_scale, 0).
inline std::vector<float> ScoresRef(const BlockQuant& bq, const BlockParams& mb, int h,
                                    const std::vector<uint8_t>& qc, const std::vector<uint8_t>& kc,
                                    int n, int hd) {
  std::vector<float> s(size_t(n) * n);
  const float alpha = bq.attn.q.scales[h] * bq.attn.k.scales[h] * mb.attn_scale;
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      int64_t acc = 0;
      for (int c = 0; c < hd; ++c) {
        acc += int64_t(qc[size_t(i) * hd + c] - bq.attn.q.zero_points[h]) *
               (kc[size_t(j) * hd + c] - bq.attn.k.zero_points[h]);
      }
      s[size_t(i) * n + j] = std::fmaf(static_cast<float>(acc), alpha, 0.f);
    }
  }
  return s;
}

// Attention of one (ViT) block from the observed qkv output: q/k/v codes per head by the scalar
// encoder, then ScoresRef and ProbsAvRef over all T tokens.
inline std::vector<float> AttentionRef(const BlockQuant& bq, const BlockParams& mb,
                                       const std::vector<float>& qkv, int batch, int T,
                                       intk::LogDesign design, const FloatKernels& fk, bool fused) {
  const int D = mb.qkv.in, heads = mb.heads, hd = D / heads;
  std::vector<float> merged(size_t(batch) * T * D);
  std::vector<uint8_t> qc(size_t(T) * hd), kc(qc.size()), vt(qc.size());
  for (int img = 0; img < batch; ++img) {
    for (int h = 0; h < heads; ++h) {
      const UniformQuantizer qq(bq.attn.q.head(h)), kq(bq.attn.k.head(h)), vq(bq.attn.v.head(h));
      for (int t = 0; t < T; ++t) {
        const float* row = qkv.data() + (size_t(img) * T + t) * 3 * D;
        for (int c = 0; c < hd; ++c) {
          qc[size_t(t) * hd + c] = uint8_t(qq.Encode(row[h * hd + c]));
          kc[size_t(t) * hd + c] = uint8_t(kq.Encode(row[D + h * hd + c]));
          vt[size_t(c) * T + t] = uint8_t(vq.Encode(row[2 * D + h * hd + c]));  // u[n][k] = v[k][n]
        }
      }
      std::vector<float> s = ScoresRef(bq, mb, h, qc, kc, T, hd);
      ProbsAvRef(bq, h, s, T, hd, vt, design, fk, fused,
                 merged.data() + size_t(img) * T * D + h * hd, D);
    }
  }
  return merged;
}

// fc2 from the observed fc1 output (GELU input).
inline std::vector<float> Fc2Ref(const BlockQuant& bq, const BlockParams& mb,
                                 const std::vector<float>& h, int rows, intk::LogDesign design,
                                 const FloatKernels& fk, bool fused) {
  const ActQuant& gq = bq.fc2.input;
  const LinearParams& l = mb.fc2;
  if (gq.kind != ActQuant::Kind::kLog) {
    std::vector<float> g(h.size());
    (mb.gelu == GeluKind::kErf ? fk.gelu_erf : fk.gelu_tanh)(h.data(), g.data(), int64_t(g.size()));
    return LinearRef(bq.fc2, l, g, rows);
  }
  std::vector<uint8_t> codes(h.size());
  const FastLogEncoder enc(gq.log);
  if (mb.gelu == GeluKind::kErf && fused) {
    intk::ref::GeluToLogCodesRef(enc, gq.shift, h.data(), int64_t(h.size()), codes.data());
  } else {
    std::vector<float> g(h.size());
    (mb.gelu == GeluKind::kErf ? fk.gelu_erf : fk.gelu_tanh)(h.data(), g.data(), int64_t(g.size()));
    for (size_t i = 0; i < g.size(); ++i) codes[i] = enc.Encode(g[i] + gq.shift);
  }
  const AdaLogTables tab = gq.log.kind == LogKind::kLog2 ? MakeLog2Tables(gq.log.bits)
                                                         : MakeAdaLogTables(gq.log.bits, gq.log.q);
  const std::vector<int32_t> wc = WeightCodesRef(bq.fc2.weight, l.weight, l.out, l.in);
  std::vector<uint8_t> u(wc.begin(), wc.end());
  std::vector<float> alpha(l.out), w_hat(l.weight.size());
  for (int o = 0; o < l.out; ++o) {
    alpha[o] = static_cast<float>(double(gq.log.scale) * bq.fc2.weight.scales[o] / tab.D);
    for (int i = 0; i < l.in; ++i) {
      w_hat[size_t(o) * l.in + i] =
          static_cast<float>(wc[size_t(o) * l.in + i] - bq.fc2.weight.zero_points[o]) *
          bq.fc2.weight.scales[o];
    }
  }
  const std::vector<float> bias =
      gq.shift_folded || gq.shift == 0.f
          ? l.bias
          : FoldShiftIntoBias(w_hat.data(), l.out, l.in, l.bias.data(), gq.shift);
  std::vector<float> y(size_t(rows) * l.out);
  intk::ref::LogMatmulRef(tab, test::DocHeadroom(design, tab.bits), codes.data(), l.in, rows,
                          u.data(), l.in, l.out, l.in, bq.fc2.weight.zero_points.data(),
                          alpha.data(), bias.data(), y.data(), l.out);
  return y;
}

}  // namespace adalog::int_test
