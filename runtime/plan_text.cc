// The text of a QuantPlan as `adalog inspect` prints it: one line per quantizer (bits, scales,
// zero points, log bases, per-head / per-channel ranges), at its method §3.2 placement.
#include "runtime/plan_text.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

namespace adalog {
namespace {

// Appends printf-formatted text of any length.
[[gnu::format(printf, 2, 3)]] void Appendf(std::string* out, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  va_list copy;
  va_copy(copy, args);
  const int n = std::vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (n > 0) {
    const size_t at = out->size();
    out->resize(at + static_cast<size_t>(n) + 1);
    std::vsnprintf(&(*out)[at], static_cast<size_t>(n) + 1, fmt, args);
    out->resize(at + static_cast<size_t>(n));
  }
  va_end(args);
}

template <typename T>
std::string Range(const std::vector<T>& v, const char* fmt) {
  if (v.empty()) return "-";
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  char a[64], b[64];
  std::snprintf(a, sizeof(a), fmt, static_cast<double>(*lo));
  std::snprintf(b, sizeof(b), fmt, static_cast<double>(*hi));
  return *lo == *hi ? std::string(a) : "[" + std::string(a) + ", " + b + "]";
}

std::string DescribePerChannel(const UniformPerChannel& q) {
  if (q.scales.empty()) return "FP32";
  std::ostringstream os;
  os << "uniform " << q.bits << "-bit per-channel x" << q.num_channels() << ", scale "
     << Range(q.scales, "%.4g") << ", zp " << Range(q.zero_points, "%.0f");
  return os.str();
}

std::string DescribePerHead(const UniformPerHead& q) {
  if (q.scales.empty()) return "FP32";
  std::ostringstream os;
  os << "uniform " << q.bits << "-bit per-head x" << q.num_heads() << ", scale "
     << Range(q.scales, "%.4g") << ", zp " << Range(q.zero_points, "%.0f");
  return os.str();
}

std::string DescribeAct(const ActQuant& a) {
  char buf[256];
  switch (a.kind) {
    case ActQuant::Kind::kNone: return "FP32";
    case ActQuant::Kind::kUniform:
      std::snprintf(buf, sizeof(buf), "uniform %d-bit per-tensor, scale %.4g, zp %d", a.uniform.params.bits,
                    static_cast<double>(a.uniform.params.scale), a.uniform.params.zero_point);
      return buf;
    case ActQuant::Kind::kTwin:
      std::snprintf(buf, sizeof(buf), "twin-uniform %d-bit per-tensor, scale+ %.4g, scale- %.4g", a.twin.bits,
                    static_cast<double>(a.twin.scale_pos), static_cast<double>(a.twin.scale_neg));
      return buf;
    case ActQuant::Kind::kLog: {
      std::string s = a.shift != 0.f || a.shift_folded ? "shift-" : "";
      s += LogKindName(a.log.kind);
      if (a.log.kind == LogKind::kAdaLog) {
        std::snprintf(buf, sizeof(buf), " %d-bit per-tensor, scale %.4g, q %d (base 2^(%d/37) = %.4f)", a.log.bits,
                      static_cast<double>(a.log.scale), a.log.q, a.log.q, std::pow(2.0, a.log.q / 37.0));
      } else {
        std::snprintf(buf, sizeof(buf), " %d-bit per-tensor, scale %.4g", a.log.bits,
                      static_cast<double>(a.log.scale));
      }
      s += buf;
      if (a.shift != 0.f || a.shift_folded) {
        std::snprintf(buf, sizeof(buf), ", shift %.5f%s", static_cast<double>(a.shift),
                      a.shift_folded ? " (folded into fc2's bias)" : "");
        s += buf;
      }
      return s;
    }
  }
  return "?";
}

void AppendLinearQuant(std::string* out, const std::string& name, const LinearQuant& l) {
  Appendf(out, "  %-10s weight %s\n  %-10s input  %s\n", name.c_str(), DescribePerChannel(l.weight).c_str(), "",
              DescribeAct(l.input).c_str());
}

}  // namespace

std::string DescribePlan(const QuantPlan& p, const VitModel& m) {
  std::string out;
  Appendf(&out, "quant      W%dA%d, softmax %s, gelu %s, LN reparam %s, FPCS %s\n", p.weight_bits, p.act_bits,
              SoftmaxQuantizerName(p.softmax_quantizer), GeluQuantizerName(p.gelu_quantizer), p.ln_reparam ? "yes" : "no",
              p.fpcs ? "yes" : "no");
  if (!p.meta.empty()) {
    Appendf(&out, "meta      ");
    for (const auto& [k, v] : p.meta) Appendf(&out, " %s=%s", k.c_str(), v.c_str());
    Appendf(&out, "\n");
  }
  Appendf(&out, "quantizers (method §3.2 placement; LayerNorm, softmax, GELU, residuals, biases stay FP32)\n");
  Appendf(&out, "patch_embed\n  %-10s weight %s\n  %-10s input  FP32 (the image)\n", "conv",
              DescribePerChannel(p.patch_embed_weight).c_str(), "");
  for (size_t b = 0; b < p.blocks.size(); ++b) {
    const BlockQuant& q = p.blocks[b];
    Appendf(&out, "block %zu\n", b);
    AppendLinearQuant(&out, "qkv", q.qkv);
    Appendf(&out, "  %-10s q      %s\n", "q@k^T", DescribePerHead(q.attn.q).c_str());
    Appendf(&out, "  %-10s k      %s\n", "", DescribePerHead(q.attn.k).c_str());
    Appendf(&out, "  %-10s probs  %s\n", "probs@v", DescribeAct(q.attn.probs).c_str());
    Appendf(&out, "  %-10s v      %s\n", "", DescribePerHead(q.attn.v).c_str());
    AppendLinearQuant(&out, "proj", q.proj);
    AppendLinearQuant(&out, "fc1", q.fc1);
    AppendLinearQuant(&out, "fc2", q.fc2);
  }
  Appendf(&out, "head\n");
  AppendLinearQuant(&out, "head", p.head);
  if (m.pooling == Pooling::kClsDistAvg) AppendLinearQuant(&out, "head_dist", p.head_dist);
  return out;
}

}  // namespace adalog
