// BuildLayerReport: an FP32 run and two simulated-executor runs (accumulated, local) per batch,
// compared tap by tap.
#include "runtime/layer_report.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>

#include "quant/codes.h"
#include "quant/error.h"
#include "quant/log_quantizers.h"
#include "quant/twin_uniform.h"
#include "quant/uniform.h"
#include "runtime/executor_fp32.h"
#include "runtime/executor_sim.h"
#include "runtime/kernels/float_kernels.h"
#include "runtime/metrics.h"

namespace adalog {
namespace {

using TapKey = std::tuple<int, int, int, int>;  // tap, block, image, head
TapKey KeyOf(const TapInfo& t) { return {static_cast<int>(t.tap), t.block, t.image, t.head}; }

double SqnrDb(double signal, double noise) {
  if (noise <= 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal / noise);
}

// Error sums of one op output (one mode) over all images; per-image dot products for the
// current batch.
class ErrorAccum {
 public:
  void StartBatch(int batch) { img_.assign(static_cast<size_t>(batch), {0, 0, 0}); }
  // q, f: rows x cols; rows belong to `image` when >= 0, else rows / batch rows per image.
  void Add(const float* q, const float* f, int rows, int cols, int image, int batch) {
    const int per_image = image >= 0 ? rows : std::max(1, rows / batch);
    for (int r = 0; r < rows; ++r) {
      auto& s = img_[static_cast<size_t>(image >= 0 ? image : r / per_image)];
      const float* a = q + static_cast<int64_t>(r) * cols;
      const float* b = f + static_cast<int64_t>(r) * cols;
      for (int c = 0; c < cols; ++c) {
        const double d = static_cast<double>(a[c]) - b[c];
        noise_ += d * d;
        signal_ += static_cast<double>(b[c]) * b[c];
        s[0] += static_cast<double>(a[c]) * b[c];
        s[1] += static_cast<double>(a[c]) * a[c];
        s[2] += static_cast<double>(b[c]) * b[c];
      }
    }
  }
  void EndBatch() {
    for (const auto& s : img_) cos_.push_back(Cosine(s[0], s[1], s[2]));
  }
  // The cosine formula of CompareLogits (runtime/metrics.cc).
  static double Cosine(double ab, double aa, double bb) {
    return (aa > 0 && bb > 0) ? ab / std::sqrt(aa * bb) : (aa == bb ? 1.0 : 0.0);
  }
  OutputError Result() const {
    OutputError e;
    e.sqnr_db = SqnrDb(signal_, noise_);
    e.rel_error = signal_ > 0 ? std::sqrt(noise_ / signal_) : (noise_ > 0 ? 1.0 : 0.0);
    double sum = 0;
    for (double c : cos_) sum += c / static_cast<double>(cos_.size());  // as CompareLogits
    e.cosine = cos_.empty() ? 0.0 : sum;
    return e;
  }

 private:
  std::vector<std::array<double, 3>> img_;
  std::vector<double> cos_;
  double signal_ = 0, noise_ = 0;
};

// The statistics of one activation quantizer (per tensor, or per head).
class QuantProbe {
 public:
  QuantProbe(std::string name, const ActQuant& q, bool domain) : q_(q) {
    s_.name = std::move(name);
    switch (q.kind) {
      case ActQuant::Kind::kNone:
        s_.kind = "none";
        break;
      case ActQuant::Kind::kUniform:
        s_.kind = "uniform";
        s_.bits = q.uniform.params.bits;
        uniform_.emplace_back(q.uniform.params);
        s_.code_histogram.assign(size_t{1} << s_.bits, 0);
        break;
      case ActQuant::Kind::kLog:
        s_.kind = LogKindName(q.log.kind);
        s_.bits = q.log.bits;
        log_.emplace(q.log);
        shift_ = q.shift;
        s_.code_histogram.assign(static_cast<size_t>(LogTableSize(s_.bits)), 0);
        break;
      case ActQuant::Kind::kTwin:
        s_.kind = "twin";
        s_.bits = q.twin.bits;
        twin_.emplace(q.twin);
        s_.code_histogram.assign(size_t{1} << s_.bits, 0);  // index = code + 2^(b-1)
        break;
    }
    if (domain && (log_ || !uniform_.empty())) SetUpDomain();
  }
  QuantProbe(std::string name, const UniformPerHead& q) {
    s_.name = std::move(name);
    s_.kind = q.scales.empty() ? "none" : "uniform_per_head";
    s_.bits = q.scales.empty() ? 0 : q.bits;
    for (int64_t h = 0; h < q.num_heads(); ++h) uniform_.emplace_back(q.head(h));
    if (!uniform_.empty()) s_.code_histogram.assign(size_t{1} << s_.bits, 0);
  }

  void Add(const float* x, int64_t n, int head) {
    if (s_.kind == "none") return;
    s_.values += n;
    for (int64_t i = 0; i < n; ++i) {
      const float xi = x[i];
      signal_ += static_cast<double>(xi) * xi;
      double err = 0;
      if (log_) {
        const float v = xi + shift_;
        const int32_t c = log_->Encode(v);
        ++s_.code_histogram[static_cast<size_t>(c)];
        if (c == log_->zero_code()) ++s_.zero_coded;
        if (v > log_->Decode(0)) ++s_.clipped;
        err = static_cast<double>(log_->Decode(c)) - v;
      } else if (!uniform_.empty()) {
        const UniformQuantizer& u = uniform_[uniform_.size() == 1 ? 0 : static_cast<size_t>(head)];
        const int32_t c = u.Encode(xi);
        ++s_.code_histogram[static_cast<size_t>(c)];
        if (c == u.params().zero_point) ++s_.zero_coded;
        const float half = 0.5f * u.params().scale;
        if (xi > u.Decode(u.params().CodeMax()) + half ||
            xi < u.Decode(u.params().CodeMin()) - half) {
          ++s_.clipped;
        }
        err = static_cast<double>(u.Decode(c)) - xi;
      } else if (twin_) {
        const int32_t n_half = 1 << (s_.bits - 1);
        const int32_t c = twin_->Encode(xi);
        ++s_.code_histogram[static_cast<size_t>(c + n_half)];
        if (c == 0) ++s_.zero_coded;
        const TwinUniformParams& tp = twin_->params();
        if (xi > (n_half - 0.5f) * tp.scale_pos || xi < -(n_half + 0.5f) * tp.scale_neg)
          ++s_.clipped;
        err = static_cast<double>(twin_->Decode(c)) - xi;
      }
      noise_ += err * err;
      if (s_.has_domain) AddDomain(xi);
    }
  }

  QuantizerStats Result() const {
    QuantizerStats s = s_;
    s.sqnr_db = SqnrDb(signal_, noise_);
    for (size_t i = 0; i < s.levels.size(); ++i)
      s.levels[i].sqnr_db = SqnrDb(signal_, alt_noise_[i]);
    return s;
  }

 private:
  // Histogram of x + shift and the levels of the plan's quantizer, log2 and uniform with the same
  // bits and the same top level (uniform from 0): the comparison isolates the level placement.
  void SetUpDomain() {
    s_.has_domain = true;
    // A uniform post-GELU plan has no shift; show it on the log2 axis with the GELU minimum.
    if (!log_ && s_.name == "input") shift_ = kGeluShift;
    s_.shift = shift_;
    s_.histogram.counts.assign(
        (ValueHistogram::kLog2Hi - ValueHistogram::kLog2Lo) * ValueHistogram::kBinsPerOctave, 0);
    QuantizerLevels plan;
    plan.name = "plan";
    plan.kind = s_.kind;
    double top = 0;
    if (log_) {
      for (int32_t c = 0; c < LogTableSize(s_.bits); ++c) plan.levels.push_back(log_->Decode(c));
      top = log_->Decode(0);
    } else {
      const UniformQuantizer& u = uniform_[0];
      for (int32_t c = u.params().CodeMin(); c <= u.params().CodeMax(); ++c) {
        plan.levels.push_back(static_cast<double>(u.Decode(c)) + shift_);
      }
      top = static_cast<double>(u.Decode(u.params().CodeMax())) + shift_;
    }
    std::sort(plan.levels.begin(), plan.levels.end());
    s_.levels.push_back(plan);
    LogParams lp;
    lp.kind = LogKind::kLog2;
    lp.bits = s_.bits;
    lp.scale = static_cast<float>(top);
    alt_log2_.emplace(lp);
    QuantizerLevels l2;
    l2.name = "log2";
    l2.kind = "log2";
    for (int32_t c = 0; c < LogTableSize(s_.bits); ++c) l2.levels.push_back(alt_log2_->Decode(c));
    std::sort(l2.levels.begin(), l2.levels.end());
    s_.levels.push_back(l2);
    alt_uniform_.emplace(UniformParams{s_.bits, static_cast<float>(top / ((1 << s_.bits) - 1)), 0});
    QuantizerLevels un;
    un.name = "uniform";
    un.kind = "uniform";
    for (int32_t c = 0; c < (1 << s_.bits); ++c) un.levels.push_back(alt_uniform_->Decode(c));
    s_.levels.push_back(un);
    alt_noise_.assign(s_.levels.size(), 0.0);
  }

  void AddDomain(float x) {
    const float v = x + shift_;
    ValueHistogram& h = s_.histogram;
    if (!(v >= std::ldexp(1.0f, ValueHistogram::kLog2Lo))) {
      ++h.below;
    } else if (v >= std::ldexp(1.0f, ValueHistogram::kLog2Hi)) {
      ++h.above;
    } else {
      const int bin = static_cast<int>(
          std::floor((std::log2(static_cast<double>(v)) - ValueHistogram::kLog2Lo) *
                     ValueHistogram::kBinsPerOctave));
      ++h.counts[static_cast<size_t>(
          std::clamp<int>(bin, 0, static_cast<int>(h.counts.size()) - 1))];
    }
    const double e0 = noise_last(x);
    alt_noise_[0] += e0;
    const double e1 = static_cast<double>(alt_log2_->FakeQuant(v)) - v;
    alt_noise_[1] += e1 * e1;
    const double e2 = static_cast<double>(alt_uniform_->FakeQuant(v)) - v;
    alt_noise_[2] += e2 * e2;
  }
  // The plan quantizer's squared error at x (as Add computes it).
  double noise_last(float x) const {
    double err;
    if (log_) {
      const float v = x + shift_;
      err = static_cast<double>(log_->FakeQuant(v)) - v;
    } else {
      err = static_cast<double>(uniform_[0].FakeQuant(x)) - x;
    }
    return err * err;
  }

  ActQuant q_;
  QuantizerStats s_;
  std::vector<UniformQuantizer> uniform_;
  std::optional<LogQuantizer> log_;
  std::optional<TwinUniformQuantizer> twin_;
  float shift_ = 0;
  double signal_ = 0, noise_ = 0;
  std::optional<LogQuantizer> alt_log2_;
  std::optional<UniformQuantizer> alt_uniform_;
  std::vector<double> alt_noise_;
};

struct OpState {
  OpReport info;
  ErrorAccum local, accumulated;
  std::vector<QuantProbe> probes;
};

enum class Mode { kFp32, kAccumulated, kLocal };

// Records the FP32 run's taps; in the simulated runs compares each op output with them, collects
// quantizer statistics (accumulated) or resets quantized ops' inputs to FP32 (local), then
// applies the simulated executor's own rewriter.
class Recorder : public Fp32Rewriter, public Fp32Observer {
 public:
  Recorder(const VitModel& sim_model, const QuantPlan& plan, Fp32Rewriter* sim_rewriter)
      : model_(sim_model), sim_(sim_rewriter), kernels_(SelectFloatKernels()) {
    auto add = [&](std::string name, std::string op, int block, TapPoint out) {
      OpState s;
      s.info.name = std::move(name);
      s.info.op = std::move(op);
      s.info.block = block;
      s.info.output = TapPointName(out);
      op_of_[{static_cast<int>(out), block}] = ops_.size();
      ops_.push_back(std::move(s));
      return ops_.size() - 1;
    };
    add("patch_embed", "patch_embed", -1, TapPoint::kPatchEmbedOut);
    for (int b = 0; b < static_cast<int>(plan.blocks.size()); ++b) {
      const BlockQuant& bq = plan.blocks[static_cast<size_t>(b)];
      const std::string p = "block" + std::to_string(b) + ".";
      size_t i = add(p + "qkv", "qkv", b, TapPoint::kQkvOut);
      Probe(TapPoint::kQkvIn, b, i, QuantProbe("input", bq.qkv.input, false));
      i = add(p + "qk_softmax", "qk_softmax", b, TapPoint::kAttnProbs);
      Probe(TapPoint::kQ, b, i, QuantProbe("q", bq.attn.q));
      Probe(TapPoint::kK, b, i, QuantProbe("k", bq.attn.k));
      i = add(p + "attn_v", "attn_v", b, TapPoint::kProjIn);
      Probe(TapPoint::kAttnProbs, b, i, QuantProbe("probs", bq.attn.probs, true));
      Probe(TapPoint::kV, b, i, QuantProbe("v", bq.attn.v));
      i = add(p + "proj", "proj", b, TapPoint::kProjOut);
      Probe(TapPoint::kProjIn, b, i, QuantProbe("input", bq.proj.input, false));
      i = add(p + "fc1", "fc1", b, TapPoint::kFc1Out);
      Probe(TapPoint::kFc1In, b, i, QuantProbe("input", bq.fc1.input, false));
      i = add(p + "fc2", "fc2", b, TapPoint::kFc2Out);
      Probe(TapPoint::kGeluOut, b, i, QuantProbe("input", bq.fc2.input, true));
    }
    size_t i = add("head", "head", -1, TapPoint::kHeadOut);
    Probe(TapPoint::kHeadIn, -1, i, QuantProbe("input", plan.head.input, false));
    if (sim_model.pooling == Pooling::kClsDistAvg) {
      i = add("head_dist", "head_dist", -1, TapPoint::kHeadDistOut);
      Probe(TapPoint::kHeadDistIn, -1, i, QuantProbe("input", plan.head_dist.input, false));
    }
    add("logits", "logits", -1, TapPoint::kLogits);
  }

  void StartBatch(int batch) {
    batch_ = batch;
    fp32_.clear();
    x_in_.clear();
    for (OpState& s : ops_) {
      s.local.StartBatch(batch);
      s.accumulated.StartBatch(batch);
    }
  }
  void EndBatch() {
    for (OpState& s : ops_) {
      s.local.EndBatch();
      s.accumulated.EndBatch();
    }
  }
  void set_mode(Mode m) { mode_ = m; }
  // FP32 residual stream at block b's input (local run), recorded by the caller.
  std::vector<std::vector<float>>& x_in() { return x_in_; }

  void Rewrite(const TapInfo& t, float* d, int rows, int cols) override {
    // kFp32: the FP32 executor has no rewriter.
    if (t.tap == TapPoint::kAttnProbs || t.tap == TapPoint::kProjIn) Compare(t, d, rows, cols);
    if (mode_ == Mode::kAccumulated) {
      auto it = probe_of_.find({static_cast<int>(t.tap), t.block});
      if (it != probe_of_.end()) {
        ops_[it->second.first].probes[it->second.second].Add(d, static_cast<int64_t>(rows) * cols,
                                                             t.head);
      }
    } else if (mode_ == Mode::kLocal) {
      Substitute(t, d, rows, cols);
    }
    sim_->Rewrite(t, d, rows, cols);
  }

  void OnTensor(const TapInfo& t, const float* d, int rows, int cols) override {
    if (mode_ == Mode::kFp32) {
      fp32_[KeyOf(t)].assign(d, d + static_cast<int64_t>(rows) * cols);
      return;
    }
    if (IsInputTap(t.tap)) return;  // seen (before quantization) by Rewrite
    Compare(t, d, rows, cols);
  }

  std::vector<OpReport> Results() const {
    std::vector<OpReport> out;
    for (const OpState& s : ops_) {
      OpReport r = s.info;
      r.local = s.local.Result();
      r.accumulated = s.accumulated.Result();
      for (const QuantProbe& p : s.probes) r.quantizers.push_back(p.Result());
      out.push_back(std::move(r));
    }
    return out;
  }

 private:
  void Probe(TapPoint tap, int block, size_t op, QuantProbe p) {
    probe_of_[{static_cast<int>(tap), block}] = {op, ops_[op].probes.size()};
    ops_[op].probes.push_back(std::move(p));
  }

  const std::vector<float>& Fp32(const TapInfo& t, int64_t n) const {
    auto it = fp32_.find(KeyOf(t));
    ADALOG_CHECK(it != fp32_.end() && static_cast<int64_t>(it->second.size()) == n,
                 "layer report: the FP32 model has no matching tensor at ", TapPointName(t.tap),
                 " block ", t.block,
                 " (do the FP32 and the quantized model have the same structure?)");
    return it->second;
  }

  void Compare(const TapInfo& t, const float* d, int rows, int cols) {
    auto it = op_of_.find({static_cast<int>(t.tap), t.block});
    if (it == op_of_.end()) return;
    const std::vector<float>& f = Fp32(t, static_cast<int64_t>(rows) * cols);
    OpState& s = ops_[it->second];
    (mode_ == Mode::kLocal ? s.local : s.accumulated).Add(d, f.data(), rows, cols, t.image, batch_);
  }

  // Local run: the input of each quantized op becomes its FP32 value.
  void Substitute(const TapInfo& t, float* d, int rows, int cols) {
    const int64_t n = static_cast<int64_t>(rows) * cols;
    switch (t.tap) {
      case TapPoint::kQ:
      case TapPoint::kK:
      case TapPoint::kV:
      case TapPoint::kAttnProbs:
      case TapPoint::kProjIn:
      case TapPoint::kGeluOut: {
        const std::vector<float>& f = Fp32(t, n);
        std::copy(f.begin(), f.end(), d);
        break;
      }
      case TapPoint::kFc1In: {
        // LN2 of the FP32 stream after attention: x_in + proj_out (FP32), with the quantized
        // model's (reparameterized) LN2, through the executor's own float kernels.
        TapInfo po = t;
        po.tap = TapPoint::kProjOut;
        const std::vector<float>& proj = Fp32(po, n);
        const std::vector<float>& x = x_in_.at(static_cast<size_t>(t.block));
        ADALOG_CHECK(static_cast<int64_t>(x.size()) == n,
                     "layer report: residual stream size mismatch");
        std::vector<float> mid(static_cast<size_t>(n));
        kernels_.add(x.data(), proj.data(), mid.data(), n);
        const LayerNormParams& ln = model_.blocks[static_cast<size_t>(t.block)].ln2;
        kernels_.layer_norm(mid.data(), d, rows, cols, ln.gamma.data(), ln.beta.data(), ln.eps);
        break;
      }
      default:
        break;  // qkv.in and head.in come from the FP32 stream through the model's norms
    }
  }

  const VitModel& model_;
  Fp32Rewriter* sim_;
  const FloatKernels& kernels_;
  Mode mode_ = Mode::kFp32;
  int batch_ = 1;
  std::vector<OpState> ops_;
  std::map<std::pair<int, int>, size_t> op_of_;  // (output tap, block) -> op
  std::map<std::pair<int, int>, std::pair<size_t, size_t>>
      probe_of_;  // (input tap, block) -> probe
  std::map<TapKey, std::vector<float>> fp32_;
  std::vector<std::vector<float>> x_in_;
};

void CheckSameShape(const VitModel& a, const VitModel& b) {
  ADALOG_CHECK(a.dim == b.dim && a.blocks.size() == b.blocks.size() &&
                   a.num_classes() == b.num_classes() && a.num_tokens() == b.num_tokens() &&
                   a.pooling == b.pooling && a.embed.in_channels == b.embed.in_channels &&
                   a.embed.image_h == b.embed.image_h && a.embed.image_w == b.embed.image_w &&
                   a.embed.patch == b.embed.patch,
               "layer report: the FP32 model (dim ", a.dim, ", ", a.blocks.size(), " blocks, ",
               a.num_classes(), " classes) does not match the quantized model (dim ", b.dim, ", ",
               b.blocks.size(), " blocks, ", b.num_classes(), " classes)");
  for (size_t i = 0; i < a.blocks.size(); ++i) {
    ADALOG_CHECK(
        a.blocks[i].heads == b.blocks[i].heads && a.blocks[i].fc1.out == b.blocks[i].fc1.out,
        "layer report: block ", i, " differs between the FP32 and the quantized model");
  }
}

}  // namespace

LayerReport BuildLayerReport(const VitModel& fp32, const QuantizedModel& qm,
                             const ImageSource& source, int64_t n,
                             const LayerReportOptions& options) {
  CheckSameShape(fp32, qm.model);
  ADALOG_CHECK(n >= 1 && n <= source.size(), "layer report: ", n, " images requested, ",
               source.path(), " has ", source.size());
  ADALOG_CHECK(options.batch >= 1 && options.batch <= 1024, "layer report: batch ", options.batch,
               " outside 1..1024");
  const int max_batch = static_cast<int>(std::min<int64_t>(options.batch, n));
  ExecutorOptions eo;
  eo.max_batch = max_batch;
  eo.num_threads = options.num_threads;
  ExecutorFp32 ref(fp32, eo);
  const VitModel sim_model = MakeSimulatedModel(qm);
  std::unique_ptr<Fp32Rewriter> sim_rewriter = MakeFakeQuantRewriter(qm.plan, sim_model);
  ExecutorFp32 sim(sim_model, eo);
  Recorder rec(sim_model, qm.plan, sim_rewriter.get());
  ref.SetObserver(&rec);
  sim.SetObserver(&rec);
  sim.SetRewriter(&rec);

  const int classes = fp32.num_classes();
  const int64_t x_floats = static_cast<int64_t>(max_batch) * fp32.num_tokens() * fp32.dim;
  LayerReport out;
  out.images = n;
  out.fp32_logits.resize(static_cast<size_t>(n * classes));
  out.quant_logits.resize(static_cast<size_t>(n * classes));
  std::vector<float> images(static_cast<size_t>(max_batch * source.image_floats()));
  std::vector<float> x(static_cast<size_t>(x_floats)),
      local_logits(static_cast<size_t>(max_batch) * classes);
  for (int64_t begin = 0; begin < n; begin += max_batch) {
    const int b = static_cast<int>(std::min<int64_t>(max_batch, n - begin));
    source.Load(begin, b, images.data());
    rec.StartBatch(b);
    // 1. FP32, stepped so that each block's input stream is kept for the local run.
    rec.set_mode(Mode::kFp32);
    const size_t xb = static_cast<size_t>(b) * fp32.num_tokens() * fp32.dim;
    ref.RunEmbed(images.data(), b, x.data());
    rec.x_in().clear();
    for (size_t i = 0; i < fp32.blocks.size(); ++i) {
      rec.x_in().emplace_back(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(xb));
      ref.RunBlock(static_cast<int>(i), x.data(), b);
    }
    const std::vector<float> x_final(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(xb));
    ref.RunHead(x.data(), b, out.fp32_logits.data() + begin * classes);
    // 2. Accumulated: the simulated executor end to end.
    rec.set_mode(Mode::kAccumulated);
    sim.Run(images.data(), b, out.quant_logits.data() + begin * classes);
    // 3. Local: each block (and the head) from the FP32 stream.
    rec.set_mode(Mode::kLocal);
    sim.RunEmbed(images.data(), b, x.data());
    for (size_t i = 0; i < fp32.blocks.size(); ++i) {
      std::copy(rec.x_in()[i].begin(), rec.x_in()[i].end(), x.begin());
      sim.RunBlock(static_cast<int>(i), x.data(), b);
    }
    std::copy(x_final.begin(), x_final.end(), x.begin());
    sim.RunHead(x.data(), b, local_logits.data());
    rec.EndBatch();
  }
  out.ops = rec.Results();
  out.top1_agreement =
      CompareLogits(out.quant_logits.data(), out.fp32_logits.data(), n, classes).top1_agreement;
  return out;
}

}  // namespace adalog
