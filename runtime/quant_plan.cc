// The name tables of the plan's post-Softmax / post-GELU quantizer choices (runtime/quant_plan.h).
#include "runtime/quant_plan.h"

#include "quant/error.h"

namespace adalog {
namespace {

struct SoftmaxEntry {
  SoftmaxQuantizer q;
  const char* name;
};
constexpr SoftmaxEntry kSoftmaxNames[] = {
    {SoftmaxQuantizer::kAdaLog, "adalog"},
    {SoftmaxQuantizer::kLog2, "log2"},
    {SoftmaxQuantizer::kLogSqrt2, "logsqrt2"},
    {SoftmaxQuantizer::kUniform, "uniform"},
};

struct GeluEntry {
  GeluQuantizer q;
  const char* name;
};
constexpr GeluEntry kGeluNames[] = {
    {GeluQuantizer::kAdaLog, "adalog"},
    {GeluQuantizer::kLog2, "log2"},
    {GeluQuantizer::kLogSqrt2, "logsqrt2"},
    {GeluQuantizer::kTwin, "twin"},
    {GeluQuantizer::kUniform, "uniform"},
};

template <typename Table>
std::string JoinNames(const Table& table) {
  std::string s;
  for (const auto& e : table) s += (s.empty() ? "" : " | ") + std::string(e.name);
  return s;
}

bool SetLogKind(LogKind k, LogKind* kind) {
  if (kind != nullptr) *kind = k;
  return true;
}

}  // namespace

const char* SoftmaxQuantizerName(SoftmaxQuantizer q) {
  for (const auto& e : kSoftmaxNames)
    if (e.q == q) return e.name;
  Fail("internal: softmax quantizer ", static_cast<int>(q), " has no name");
}

const char* GeluQuantizerName(GeluQuantizer q) {
  for (const auto& e : kGeluNames)
    if (e.q == q) return e.name;
  Fail("internal: GELU quantizer ", static_cast<int>(q), " has no name");
}

SoftmaxQuantizer ParseSoftmaxQuantizer(const std::string& name) {
  for (const auto& e : kSoftmaxNames)
    if (name == e.name) return e.q;
  Fail("unknown softmax quantizer '", name, "' (", JoinNames(kSoftmaxNames), ")");
}

GeluQuantizer ParseGeluQuantizer(const std::string& name) {
  for (const auto& e : kGeluNames)
    if (name == e.name) return e.q;
  Fail("unknown GELU quantizer '", name, "' (", JoinNames(kGeluNames), ")");
}

std::vector<std::string> SoftmaxQuantizerNames() {
  std::vector<std::string> v;
  for (const auto& e : kSoftmaxNames) v.push_back(e.name);
  return v;
}

std::vector<std::string> GeluQuantizerNames() {
  std::vector<std::string> v;
  for (const auto& e : kGeluNames) v.push_back(e.name);
  return v;
}

bool IsLogQuantizer(SoftmaxQuantizer q, LogKind* kind) {
  switch (q) {
    case SoftmaxQuantizer::kAdaLog: return SetLogKind(LogKind::kAdaLog, kind);
    case SoftmaxQuantizer::kLog2: return SetLogKind(LogKind::kLog2, kind);
    case SoftmaxQuantizer::kLogSqrt2: return SetLogKind(LogKind::kLogSqrt2, kind);
    case SoftmaxQuantizer::kUniform: return false;
  }
  return false;
}

bool IsLogQuantizer(GeluQuantizer q, LogKind* kind) {
  switch (q) {
    case GeluQuantizer::kAdaLog: return SetLogKind(LogKind::kAdaLog, kind);
    case GeluQuantizer::kLog2: return SetLogKind(LogKind::kLog2, kind);
    case GeluQuantizer::kLogSqrt2: return SetLogKind(LogKind::kLogSqrt2, kind);
    case GeluQuantizer::kTwin:
    case GeluQuantizer::kUniform: return false;
  }
  return false;
}

}  // namespace adalog
