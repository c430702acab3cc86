// The whole-model reconstruction pipeline of `--optimize` (see optimize.h).
#include "search/recon/optimize.h"

#include <algorithm>
#include <memory>
#include <cmath>
#include <random>
#include <utility>

#include "quant/adaround.h"
#include "quant/error.h"
#include "runtime/executor_fp32.h"
#include "runtime/executor_sim.h"

namespace adalog::search {

namespace {

size_t Sz(int64_t n) { return static_cast<size_t>(n); }

// The seed of unit u's batch sampling: one word of seed_seq{seed, u} (specified by the standard,
// so the same on every platform).
uint32_t UnitSeed(uint32_t seed, int u) {
  std::seed_seq ss{seed, static_cast<uint32_t>(u)};
  uint32_t out = 0;
  ss.generate(&out, &out + 1);
  return out;
}

// Copies the FP32 tensors of two taps, image-chunk by image-chunk, into [n * rows][cols] arrays.
class TapPairCapture : public Fp32Observer {
 public:
  TapPairCapture(TapPoint in_tap, TapPoint out_tap, std::vector<float>* in,
                 std::vector<float>* out)
      : in_tap_(in_tap), out_tap_(out_tap), in_(in), out_(out) {}
  void set_offset_rows(int64_t rows) { offset_rows_ = rows; }
  void OnTensor(const TapInfo& info, const float* data, int rows, int cols) override {
    std::vector<float>* dst = info.tap == in_tap_ ? in_ : (info.tap == out_tap_ ? out_ : nullptr);
    if (dst == nullptr) return;
    const size_t need = Sz((offset_rows_ + rows) * cols);
    ADALOG_CHECK(dst->size() >= need, "optimize: capture of ", TapPointName(info.tap),
                 " overflows its buffer");
    std::copy(data, data + int64_t{rows} * cols, dst->begin() + offset_rows_ * cols);
  }

 private:
  TapPoint in_tap_, out_tap_;
  std::vector<float>*in_, *out_;
  int64_t offset_rows_ = 0;
};

// The simulated executor of `qm` as it is now, stepped block by block (ExecutorFp32 over the
// simulated model with the fake-quantizing rewriter; without it when `quantize_inputs` is false,
// for capturing a unit's unquantized input).
struct SimulatedStream {
  SimulatedStream(const QuantizedModel& qm, const ExecutorOptions& eo, bool quantize_inputs)
      : model(MakeSimulatedModel(qm)),
        rewriter(MakeFakeQuantRewriter(qm.plan, model)),
        ex(std::make_unique<ExecutorFp32>(model, eo)) {
    if (quantize_inputs) ex->SetRewriter(rewriter.get());
  }
  const VitModel model;  // outlives ex (declared first)
  std::unique_ptr<Fp32Rewriter> rewriter;
  std::unique_ptr<ExecutorFp32> ex;
};

void CheckSameShapes(const VitModel& fp, const VitModel& q) {
  ADALOG_CHECK(fp.dim == q.dim && fp.blocks.size() == q.blocks.size() &&
                   fp.num_tokens() == q.num_tokens() && fp.embed.dim == q.embed.dim &&
                   fp.embed.in_channels == q.embed.in_channels && fp.embed.patch == q.embed.patch &&
                   fp.head.in == q.head.in && fp.head.out == q.head.out,
               "optimize: the FP32 model and the quantized model have different shapes");
}

void CheckScale(float s, const std::string& unit, const char* what) {
  ADALOG_CHECK(s > 0.f && std::isfinite(s), "block reconstruction: ", unit, " ", what,
               " step size left the positive floats (", s, ")");
}

}  // namespace

std::vector<std::string> OptimizeUnitNames(const VitModel& m) {
  std::vector<std::string> names{"patch_embed"};
  for (size_t b = 0; b < m.blocks.size(); ++b) names.push_back("block" + std::to_string(b));
  names.push_back("head");
  return names;
}

std::vector<double> OptimizeUnitMacs(const VitModel& m) {
  const double P = m.embed.num_patches(), T = m.num_tokens(), D = m.dim;
  const double K = static_cast<double>(m.embed.in_channels) * m.embed.patch * m.embed.patch;
  std::vector<double> macs{P * K * D};
  for (const BlockParams& b : m.blocks) {
    const double H = b.fc1.out;
    macs.push_back(T * D * (3 * D + D + 2 * H) + 2 * T * T * D);  // Linears, q k^T and probs v
  }
  macs.push_back(static_cast<double>(m.head.in) * m.head.out);
  return macs;
}

LinearTrainParams<float> ReconstructLinear(LinearRecon<float>* unit, const float* inputs,
                                           const float* targets, int n, const ReconOptions& o,
                                           ReconStats* stats,
                                           const std::function<void(int, double)>& progress) {
  ADALOG_CHECK(n >= o.batch && o.batch > 0, "reconstruction of a single Linear: ", n,
               " images for batch ", o.batch);
  LinearTrainParams<float> p = unit->InitialParams(), g;
  g.SetZeroLike(p);
  const int64_t in_row = int64_t{unit->rows_per_image()} * unit->in();    // floats per image
  const int64_t out_row = int64_t{unit->rows_per_image()} * unit->out();
  std::vector<float> xb(Sz(o.batch * in_row)), yb(Sz(o.batch * out_row));
  std::vector<int> perm(Sz(n));
  std::mt19937 rng(o.seed);
  AdamState adam_w, adam_a;
  for (int it = 1; it <= o.iters; ++it) {
    // The same draw as ReconstructBlock: a partial Fisher-Yates over a fresh identity.
    for (int i = 0; i < n; ++i) perm[Sz(i)] = i;
    for (int i = 0; i < o.batch; ++i) {
      std::uniform_int_distribution<int> pick(i, n - 1);
      std::swap(perm[Sz(i)], perm[Sz(pick(rng))]);
      const int64_t src = perm[Sz(i)];
      std::copy(inputs + src * in_row, inputs + (src + 1) * in_row, xb.begin() + i * in_row);
      std::copy(targets + src * out_row, targets + (src + 1) * out_row, yb.begin() + i * out_row);
    }
    if (o.drop_prob > 0.0) unit->SetDrop(QDropMask(o.drop_prob, QDropMask::KeyFor(o.seed, it)));
    const double rec = unit->Forward(p, xb.data(), o.batch, yb.data(), nullptr);
    unit->Backward(p, &g);
    if (AdaRoundRegularizerOn(it, o.iters, o.warmup)) {
      const double bexp = AdaRoundExponent(it, o.iters, o.warmup, o.b_start, o.b_end);
      AdaRoundRegularizer(p.alpha.data(), static_cast<int64_t>(p.alpha.size()), bexp,
                          o.round_weight, g.alpha.data());
    }
    if (stats != nullptr) {
      if (it == 1) stats->first_loss = rec;
      stats->last_loss = rec;
    }
    AdamStep(p.alpha.data(), g.alpha.data(), static_cast<int64_t>(p.alpha.size()), o.lr_alpha, it,
             &adam_w);
    if (o.train_act && !p.act_scale.empty()) {
      const double lr = o.lr_act * 0.5 * (1.0 + std::cos(M_PI * (it - 1) / o.iters));
      AdamStep(p.act_scale.data(), g.act_scale.data(), static_cast<int64_t>(p.act_scale.size()),
               lr, it, &adam_a);
      CheckScale(p.act_scale[0], "a Linear unit's", "input");
    }
    if (progress) progress(it, rec);
  }
  return p;
}

void ApplyLinearReconstruction(const LinearTrainParams<float>& p, const UniformPerChannel& wq,
                               int out, int in, float* weight, ActQuant* in_q) {
  ADALOG_CHECK(p.alpha.size() == Sz(int64_t{out} * in) && wq.num_channels() == out,
               "reconstruction of a single Linear: state of the wrong size");
  for (int o = 0; o < out; ++o) {
    const UniformParams up = wq.channel(o);
    for (int i = 0; i < in; ++i) {
      const size_t k = Sz(int64_t{o} * in + i);
      const int32_t c = AdaRoundHardCode(weight[k], up, p.alpha[k]);
      weight[k] = static_cast<float>(c - up.zero_point) * up.scale;
    }
  }
  if (in_q != nullptr && in_q->kind == ActQuant::Kind::kUniform && !p.act_scale.empty()) {
    in_q->uniform.params.scale = p.act_scale[0];
  }
}

std::vector<OptimizeUnitStats> OptimizeModel(const VitModel& fp, const float* images, int n,
                                             const OptimizeOptions& o, QuantizedModel* qm,
                                             const OptimizeProgressFn& progress) {
  ADALOG_CHECK(!fp.is_swin(), "optimize: block reconstruction does not support Swin models yet");
  CheckSameShapes(fp, qm->model);
  ADALOG_CHECK(o.recon.batch > 0 && n >= o.recon.batch, "optimize: ", n,
               " optimisation images for batch ", o.recon.batch);
  ADALOG_CHECK(o.recon.iters > 0, "optimize: iterations must be positive");
  ADALOG_CHECK(o.capture_batch > 0, "optimize: capture batch must be positive");
  const std::vector<std::string> names = OptimizeUnitNames(fp);
  const int units = static_cast<int>(names.size());
  std::vector<OptimizeUnitStats> stats;
  const int chunk = std::min(o.capture_batch, n);
  ExecutorOptions eo;
  eo.max_batch = chunk;
  eo.num_threads = std::max(1, o.recon.threads);
  ExecutorFp32 ex(fp, eo);
  const int64_t img = int64_t{fp.embed.in_channels} * fp.embed.image_h * fp.embed.image_w;
  const int64_t P = fp.embed.num_patches(), K = int64_t{fp.embed.in_channels} * fp.embed.patch *
                                                     fp.embed.patch;
  const int64_t row = int64_t{fp.num_tokens()} * fp.dim;  // residual stream floats per image
  const int max_batch = o.recon.batch;

  auto run_unit = [&](int u, auto&& train) {
    ReconOptions ro = o.recon;
    ro.seed = UnitSeed(o.recon.seed, u);
    ReconStats st;
    train(ro, &st, [&](int it, double rec) {
      if (progress) progress(u, units, names[Sz(u)], it, ro.iters, rec);
    });
    stats.push_back({names[Sz(u)], st.first_loss, st.last_loss});
  };

  // Unit 0, the patch embedding: the conv as a Linear over im2col patch rows, FP32 input (the
  // plan leaves the image unquantized), MSE on the conv output. The same pass gives block 0's
  // input.
  std::vector<float> x_in(Sz(n * row)), x_out;
  {
    std::vector<float> patches(Sz(n * P * K)), embed_out(Sz(n * P * fp.embed.dim));
    TapPairCapture cap(TapPoint::kPatchEmbedIn, TapPoint::kPatchEmbedOut, &patches, &embed_out);
    ex.SetObserver(&cap);
    for (int i0 = 0; i0 < n; i0 += chunk) {
      const int nb = std::min(chunk, n - i0);
      cap.set_offset_rows(int64_t{i0} * P);
      ex.RunEmbed(images + i0 * img, nb, x_in.data() + i0 * row);
    }
    ex.SetObserver(nullptr);
    PatchEmbedParams& pe = qm->model.embed;
    LinearParams lin;
    lin.in = static_cast<int>(K);
    lin.out = pe.dim;
    lin.weight = pe.weight;  // [dim][C][p][p] = [out][in] over (c, ky, kx) patch columns
    lin.bias = pe.bias.empty() ? std::vector<float>(Sz(pe.dim), 0.f) : pe.bias;
    ActQuant none;  // the image input is FP32 in every plan (runtime/quant_plan.h)
    LinearRecon<float> unit(lin, qm->plan.patch_embed_weight, none, static_cast<int>(P),
                            LinearLoss::kMse, max_batch, o.recon.threads);
    run_unit(0, [&](const ReconOptions& ro, ReconStats* st, const auto& cb) {
      const LinearTrainParams<float> p =
          ReconstructLinear(&unit, patches.data(), embed_out.data(), n, ro, st, cb);
      ApplyLinearReconstruction(p, qm->plan.patch_embed_weight, lin.out, lin.in, pe.weight.data(),
                                nullptr);
    });
  }

  // With quantized_inputs, the quantized model's residual stream x_q, advanced by the simulated
  // executor of the model as optimised so far (rebuilt after each unit: its weights changed).
  std::vector<float> x_q;
  if (o.quantized_inputs) {
    x_q.resize(x_in.size());
    SimulatedStream exq(*qm, eo, true);
    for (int i0 = 0; i0 < n; i0 += chunk) {
      exq.ex->RunEmbed(images + i0 * img, std::min(chunk, n - i0), x_q.data() + i0 * row);
    }
  }

  // The transformer blocks, each on the FP32 model's input (or x_q) and output of that block: the
  // FP32 residual stream is advanced one block at a time (one FP32 pass over all blocks in total).
  x_out.resize(x_in.size());
  for (size_t b = 0; b < fp.blocks.size(); ++b) {
    std::copy(x_in.begin(), x_in.end(), x_out.begin());
    for (int i0 = 0; i0 < n; i0 += chunk) {
      ex.RunBlock(static_cast<int>(b), x_out.data() + i0 * row, std::min(chunk, n - i0));
    }
    const int u = 1 + static_cast<int>(b);
    const float* unit_in = o.quantized_inputs ? x_q.data() : x_in.data();
    run_unit(u, [&](const ReconOptions& ro, ReconStats* st, const auto& cb) {
      const BlockTrainParams<float> p = ReconstructBlock(
          *qm, static_cast<int>(b), unit_in, x_out.data(), n, ro, st,
          [&](int it, double rec, double) { cb(it, rec); }, 1);
      ApplyBlockReconstruction(p, static_cast<int>(b), qm);
    });
    if (o.quantized_inputs) {
      SimulatedStream exq(*qm, eo, true);
      for (int i0 = 0; i0 < n; i0 += chunk) {
        exq.ex->RunBlock(static_cast<int>(b), x_q.data() + i0 * row, std::min(chunk, n - i0));
      }
    }
    std::swap(x_in, x_out);
  }
  x_out.clear();
  x_out.shrink_to_fit();

  // The head: the head Linear on the FP32 head input (pooled, normed features), KL on the logits.
  {
    std::vector<float> head_in(Sz(int64_t{n} * fp.head.in)), head_out(Sz(int64_t{n} * fp.head.out));
    std::vector<float> logits(Sz(int64_t{chunk} * fp.num_classes()));
    TapPairCapture cap(TapPoint::kHeadIn, TapPoint::kHeadOut, &head_in, &head_out);
    ex.SetObserver(&cap);
    for (int i0 = 0; i0 < n; i0 += chunk) {
      cap.set_offset_rows(i0);
      ex.RunHead(x_in.data() + i0 * row, std::min(chunk, n - i0), logits.data());
    }
    ex.SetObserver(nullptr);
    if (o.quantized_inputs) {
      // The head's input from x_q: the simulated model's final norm and pooling, without the
      // head input's quantizer (the unit applies it itself); its logits are not used.
      std::vector<float> unused(head_out.size());
      TapPairCapture qcap(TapPoint::kHeadIn, TapPoint::kHeadOut, &head_in, &unused);
      SimulatedStream exq(*qm, eo, false);
      exq.ex->SetObserver(&qcap);
      for (int i0 = 0; i0 < n; i0 += chunk) {
        qcap.set_offset_rows(i0);
        exq.ex->RunHead(x_q.data() + i0 * row, std::min(chunk, n - i0), logits.data());
      }
    }
    x_in.clear();
    x_in.shrink_to_fit();
    x_q.clear();
    x_q.shrink_to_fit();
    LinearParams& head = qm->model.head;
    if (head.bias.empty()) head.bias.assign(Sz(head.out), 0.f);
    LinearRecon<float> unit(head, qm->plan.head.weight, qm->plan.head.input, 1, LinearLoss::kKl,
                            max_batch, o.recon.threads);
    run_unit(units - 1, [&](const ReconOptions& ro, ReconStats* st, const auto& cb) {
      const LinearTrainParams<float> p =
          ReconstructLinear(&unit, head_in.data(), head_out.data(), n, ro, st, cb);
      ApplyLinearReconstruction(p, qm->plan.head.weight, head.out, head.in, head.weight.data(),
                                ro.train_act ? &qm->plan.head.input : nullptr);
    });
  }
  return stats;
}

}  // namespace adalog::search
