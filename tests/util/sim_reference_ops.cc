// Teacher-forced per-op reference check (see sim_reference_ops.h).
#include "tests/util/sim_reference_ops.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "tests/util/reference_kernels.h"
#include "tests/util/sim_reference_forward.h"

namespace adalog::test {
namespace {

class Checker {
 public:
  explicit Checker(const TapRecording& rec) : rec_(rec) {}

  const std::vector<float>* Get(bool pre, TapPoint tap, int block, int image, int head,
                                size_t expect_size, const char* op) {
    const auto& m = pre ? rec_.pre : rec_.post;
    auto it = m.find({static_cast<int>(tap), block, image, head});
    if (it == m.end() || it->second.size() != expect_size) {
      OpCheck& c = Op(op);
      c.missing = true;
      c.max_err = std::numeric_limits<double>::infinity();
      std::ostringstream s;
      s << (pre ? "pre " : "post ") << TapName(tap) << " block " << block << " image " << image
        << " head " << head << (it == m.end() ? " not recorded" : " has the wrong size");
      c.worst = s.str();
      return nullptr;
    }
    return &it->second;
  }
  void Compare(const char* op, double got, double want, double magnitude,
               const std::string& where) {
    OpCheck& c = Op(op);
    ++c.values;
    const double err = magnitude > 0
                           ? std::fabs(got - want) / magnitude
                           : (got == want ? 0.0 : std::numeric_limits<double>::infinity());
    if (!(err <= c.max_err) && !c.missing) {  // also catches NaN
      c.max_err = std::isnan(err) ? std::numeric_limits<double>::infinity() : err;
      std::ostringstream s;
      s.precision(9);
      s << where << ": got " << got << " want " << want;
      c.worst = s.str();
    }
  }
  OpCheck& Op(const char* op) {
    for (OpCheck& c : ops) {
      if (c.op == op) return c;
    }
    OpCheck c;
    c.op = op;
    ops.push_back(c);
    return ops.back();
  }
  std::vector<OpCheck> ops;

 private:
  // Names by value (TapPointName lives in the runtime library, which not every test binary links).
  static int TapName(TapPoint t) { return static_cast<int>(t); }
  const TapRecording& rec_;
};

std::string At(const char* what, int block, int image, int row, int col) {
  return std::string(what) + " block " + std::to_string(block) + " image " + std::to_string(image) +
         " [" + std::to_string(row) + "][" + std::to_string(col) + "]";
}

// LayerNorm of rows [T][D] (double) -> compared with `got` [T][D] (float).
void CheckLn(Checker& ck, const char* op, const LayerNormParams& n, const std::vector<double>& x,
             int rows, const float* got, int block, int image) {
  const int D = n.dim;
  std::vector<double> want(x.size());
  ref::LayerNormRows(n, x.data(), rows, want.data());
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < D; ++c) {
      const double w = want[size_t(r) * D + c];
      ck.Compare(op, got[size_t(r) * D + c], w, 1.0 + std::fabs(w), At(op, block, image, r, c));
    }
  }
}

// The executor's n values of a tensor at input tap `tap`, quantized by the simulated reference's
// hook (its own scalar FakeQuant under the plan).
std::vector<double> Quantized(const ReferenceHooks& q, TapPoint tap, int block, int head,
                              const float* x, size_t n) {
  std::vector<double> r(x, x + n);
  q.input(tap, block, head, r.data(), n);
  return r;
}

// y = Q_in(x) W_hat^T + b over `rows` rows of x (the executor's pre-quantization input at input
// tap `in_tap`), compared with got.
void CheckLinear(Checker& ck, const char* op, const LinearParams& l_hat, const ReferenceHooks& q,
                 TapPoint in_tap, const float* x, int rows, const float* got, int block,
                 int image) {
  const std::vector<double> xq = Quantized(q, in_tap, block, -1, x, size_t(rows) * l_hat.in);
  for (int r = 0; r < rows; ++r) {
    for (int o = 0; o < l_hat.out; ++o) {
      double mag = 0;
      const double s = ref::LinearDot(l_hat, o, xq.data() + size_t(r) * l_hat.in, &mag);
      ck.Compare(op, got[size_t(r) * l_hat.out + o], s, mag, At(op, block, image, r, o));
    }
  }
}

}  // namespace

std::vector<OpCheck> CheckOpsTeacherForced(const QuantizedModel& qm,
                                           const std::vector<float>& images, int batch,
                                           const TapRecording& rec) {
  const VitModel m = SimReferenceWeights(qm);  // W_hat by scalar FakeQuant; biases etc. as given
  const ReferenceHooks quant = SimReferenceHooks(qm.plan);
  const auto& e = m.embed;
  const int D = m.dim, T = m.num_tokens(), P = e.num_patches(), pre = m.num_prefix_tokens();
  const size_t BT = size_t(batch) * T;
  Checker ck(rec);
  // Fix the report order.
  for (const char* op : {"patch_embed", "ln1", "qkv", "qkv_split", "softmax", "attn_v", "proj",
                         "ln2", "fc1", "gelu", "fc2", "pool", "head"}) {
    ck.Op(op);
  }
  if (m.pooling == Pooling::kClsDistAvg) ck.Op("head_dist");
  ck.Op("logits");

  const auto* pe_out =
      ck.Get(false, TapPoint::kPatchEmbedOut, -1, -1, -1, size_t(batch) * P * D, "patch_embed");
  std::vector<std::vector<double>> xs(
      static_cast<size_t>(batch));  // residual stream per image [T][D]
  for (int b = 0; b < batch; ++b) {
    std::vector<double>& x = xs[size_t(b)];
    x.assign(size_t(T) * D, 0.0);
    for (int gy = 0; gy < e.grid_h(); ++gy) {
      for (int gx = 0; gx < e.grid_w(); ++gx) {
        const int pi = gy * e.grid_w() + gx;
        for (int d = 0; d < D; ++d) {
          double mag = 0;
          const double s = ref::PatchEmbedDot(e, images.data(), b, gy, gx, d, &mag);
          if (pe_out) {
            const float got = (*pe_out)[(size_t(b) * P + pi) * D + d];
            ck.Compare("patch_embed", got, s, mag, At("patch_embed", -1, b, pi, d));
            x[size_t(pre + pi) * D + d] = got;  // teacher forcing: the executor's value goes on
          }
        }
      }
    }
    ref::AssembleTokens(m, x.data());
  }

  for (size_t bi = 0; bi < m.blocks.size(); ++bi) {
    const int blk_i = static_cast<int>(bi);
    const BlockParams& blk = m.blocks[bi];
    const int heads = blk.heads, hd = D / heads, hidden = blk.fc1.out;
    const auto* ln1 = ck.Get(true, TapPoint::kQkvIn, blk_i, -1, -1, BT * D, "ln1");
    const auto* qkv = ck.Get(false, TapPoint::kQkvOut, blk_i, -1, -1, BT * 3 * D, "qkv");
    const auto* proj_in = ck.Get(true, TapPoint::kProjIn, blk_i, -1, -1, BT * D, "attn_v");
    const auto* proj_out = ck.Get(false, TapPoint::kProjOut, blk_i, -1, -1, BT * D, "proj");
    const auto* ln2 = ck.Get(true, TapPoint::kFc1In, blk_i, -1, -1, BT * D, "ln2");
    const auto* fc1_out = ck.Get(false, TapPoint::kFc1Out, blk_i, -1, -1, BT * hidden, "fc1");
    const auto* gelu = ck.Get(true, TapPoint::kGeluOut, blk_i, -1, -1, BT * hidden, "gelu");
    const auto* fc2_out = ck.Get(false, TapPoint::kFc2Out, blk_i, -1, -1, BT * D, "fc2");
    if (!ln1 || !qkv || !proj_in || !proj_out || !ln2 || !fc1_out || !gelu || !fc2_out) break;
    for (int b = 0; b < batch; ++b) {
      std::vector<double>& x = xs[size_t(b)];
      const size_t r0 = size_t(b) * T;
      CheckLn(ck, "ln1", blk.ln1, x, T, ln1->data() + r0 * D, blk_i, b);
      CheckLinear(ck, "qkv", blk.qkv, quant, TapPoint::kQkvIn, ln1->data() + r0 * D, T,
                  qkv->data() + r0 * 3 * D, blk_i, b);
      for (int h = 0; h < heads; ++h) {
        const auto* q = ck.Get(true, TapPoint::kQ, blk_i, b, h, size_t(T) * hd, "qkv_split");
        const auto* k = ck.Get(true, TapPoint::kK, blk_i, b, h, size_t(T) * hd, "qkv_split");
        const auto* v = ck.Get(true, TapPoint::kV, blk_i, b, h, size_t(T) * hd, "qkv_split");
        const auto* probs =
            ck.Get(true, TapPoint::kAttnProbs, blk_i, b, h, size_t(T) * T, "softmax");
        if (!q || !k || !v || !probs) continue;
        // The per-head q, k, v the executor consumed are exact slices of its qkv output.
        for (int t = 0; t < T; ++t) {
          for (int d = 0; d < hd; ++d) {
            const size_t src = (r0 + t) * 3 * D + size_t(h) * hd + d, dst = size_t(t) * hd + d;
            ck.Compare("qkv_split", (*q)[dst], (*qkv)[src], 0, At("q", blk_i, b, t, h * hd + d));
            ck.Compare("qkv_split", (*k)[dst], (*qkv)[src + D], 0,
                       At("k", blk_i, b, t, h * hd + d));
            ck.Compare("qkv_split", (*v)[dst], (*qkv)[src + 2 * D], 0,
                       At("v", blk_i, b, t, h * hd + d));
          }
        }
        const std::vector<double> qq =
            Quantized(quant, TapPoint::kQ, blk_i, h, q->data(), q->size());
        const std::vector<double> kq =
            Quantized(quant, TapPoint::kK, blk_i, h, k->data(), k->size());
        const std::vector<double> vq =
            Quantized(quant, TapPoint::kV, blk_i, h, v->data(), v->size());
        std::vector<double> want(static_cast<size_t>(T));
        for (int i = 0; i < T; ++i) {
          ref::SoftmaxRow(qq.data() + size_t(i) * hd, kq.data(), T, hd, blk.attn_scale,
                          want.data());
          for (int j = 0; j < T; ++j) {
            ck.Compare("softmax", (*probs)[size_t(i) * T + j], want[size_t(j)], 1.0,
                       At("softmax", blk_i, b, i, j) + " head " + std::to_string(h));
          }
        }
        const std::vector<double> pq =
            Quantized(quant, TapPoint::kAttnProbs, blk_i, h, probs->data(), probs->size());
        for (int i = 0; i < T; ++i) {
          for (int d = 0; d < hd; ++d) {
            double mag = 0;
            const double o =
                ref::AttnValueDot(pq.data() + size_t(i) * T, vq.data(), T, hd, d, &mag);
            ck.Compare("attn_v", (*proj_in)[(r0 + i) * D + size_t(h) * hd + d], o, mag,
                       At("attn_v", blk_i, b, i, h * hd + d));
          }
        }
      }
      CheckLinear(ck, "proj", blk.proj, quant, TapPoint::kProjIn, proj_in->data() + r0 * D, T,
                  proj_out->data() + r0 * D, blk_i, b);
      for (size_t k = 0; k < size_t(T) * D; ++k) x[k] += (*proj_out)[r0 * D + k];
      CheckLn(ck, "ln2", blk.ln2, x, T, ln2->data() + r0 * D, blk_i, b);
      CheckLinear(ck, "fc1", blk.fc1, quant, TapPoint::kFc1In, ln2->data() + r0 * D, T,
                  fc1_out->data() + r0 * hidden, blk_i, b);
      for (int t = 0; t < T; ++t) {
        for (int c = 0; c < hidden; ++c) {
          const size_t i = (r0 + t) * hidden + c;
          const double want = ref::Gelu((*fc1_out)[i], blk.gelu);
          ck.Compare("gelu", (*gelu)[i], want, 1.0 + std::fabs(want), At("gelu", blk_i, b, t, c));
        }
      }
      CheckLinear(ck, "fc2", blk.fc2, quant, TapPoint::kGeluOut, gelu->data() + r0 * hidden, T,
                  fc2_out->data() + r0 * D, blk_i, b);
      for (size_t k = 0; k < size_t(T) * D; ++k) x[k] += (*fc2_out)[r0 * D + k];
    }
  }

  const int classes = m.num_classes();
  const bool dist = m.pooling == Pooling::kClsDistAvg;
  const auto* head_in = ck.Get(true, TapPoint::kHeadIn, -1, -1, -1, size_t(batch) * D, "pool");
  const auto* head_out =
      ck.Get(false, TapPoint::kHeadOut, -1, -1, -1, size_t(batch) * classes, "head");
  const auto* logits =
      ck.Get(false, TapPoint::kLogits, -1, -1, -1, size_t(batch) * classes, "logits");
  const std::vector<float>* dist_in = nullptr;
  const std::vector<float>* dist_out = nullptr;
  if (dist) {
    dist_in = ck.Get(true, TapPoint::kHeadDistIn, -1, -1, -1, size_t(batch) * D, "pool");
    dist_out =
        ck.Get(false, TapPoint::kHeadDistOut, -1, -1, -1, size_t(batch) * classes, "head_dist");
  }
  if (!head_in || !head_out || !logits || (dist && (!dist_in || !dist_out))) return ck.ops;
  for (int b = 0; b < batch; ++b) {
    // Final norm, then pooling.
    const std::vector<double>& x = xs[size_t(b)];
    std::vector<double> xn(x.size()), pooled(static_cast<size_t>(D)),
        pooled_dist(dist ? size_t(D) : 0);
    ref::LayerNormRows(m.norm, x.data(), T, xn.data());
    ref::Pool(m, xn.data(), pooled.data(), pooled_dist.data());
    for (int d = 0; d < D; ++d) {
      const double want = pooled[size_t(d)];
      ck.Compare("pool", (*head_in)[size_t(b) * D + d], want, 1.0 + std::fabs(want),
                 At("pool", -1, b, 0, d));
      if (dist) {
        const double w2 = pooled_dist[size_t(d)];
        ck.Compare("pool", (*dist_in)[size_t(b) * D + d], w2, 1.0 + std::fabs(w2),
                   At("pool dist", -1, b, 0, d));
      }
    }
    CheckLinear(ck, "head", m.head, quant, TapPoint::kHeadIn, head_in->data() + size_t(b) * D, 1,
                head_out->data() + size_t(b) * classes, -1, b);
    if (dist) {
      CheckLinear(ck, "head_dist", m.head_dist, quant, TapPoint::kHeadDistIn,
                  dist_in->data() + size_t(b) * D, 1, dist_out->data() + size_t(b) * classes, -1,
                  b);
    }
    for (int c = 0; c < classes; ++c) {
      const size_t i = size_t(b) * classes + c;
      const double want = dist ? (double((*head_out)[i]) + (*dist_out)[i]) / 2 : (*head_out)[i];
      ck.Compare("logits", (*logits)[i], want, 1.0 + std::fabs(want), At("logits", -1, b, 0, c));
    }
  }
  return ck.ops;
}

}  // namespace adalog::test
