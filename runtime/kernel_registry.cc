// The ISA part of every kernel decline and the once-per-choice ADALOG_VERBOSE log.
#include "runtime/kernel_registry.h"

#include <cstdio>
#include <mutex>
#include <set>

#include "quant/error.h"

namespace adalog {

std::string IsaDeclineReason(IsaLevel need, IsaLevel cap) {
  if (static_cast<int>(need) > static_cast<int>(cap)) {
    return std::string("ISA capped at ") + IsaLevelName(cap);
  }
  if (!IsaSupported(need)) return std::string("CPU lacks ") + IsaLevelName(need);
  return std::string();
}

void LogKernelChoice(const char* op, const std::string& config, IsaLevel cap,
                     const std::vector<std::pair<const char*, std::string>>& declines,
                     const char* chosen) {
  static std::mutex mu;
  static std::set<std::string> seen;
  const std::string where = std::string(op) + " [" + (config.empty() ? "" : config + ", ") +
                            "cap " + IsaLevelName(cap) + "]";
  std::lock_guard<std::mutex> lock(mu);
  if (!seen.insert(where).second) return;
  for (const auto& d : declines) {
    std::fprintf(stderr, "adalog: dispatch %s: %s declined: %s\n", where.c_str(), d.first,
                 d.second.c_str());
  }
  std::fprintf(stderr, "adalog: dispatch %s: selected %s\n", where.c_str(), chosen);
}

void NoKernelAccepts(const char* op, const std::string& config) {
  Fail("internal error: no implementation of ", op, " accepts ", config.empty() ? "this call" : config,
       " (the list must end with one that accepts everything)");
}

}  // namespace adalog
