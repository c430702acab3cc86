// Run-time kernel choice: one ordered list per op (fastest first, the portable implementation
// last), each implementation saying why it declines a configuration, and the log of every choice.
//
// Contract. An op keeps a `static const std::vector<KernelImpl<Fn, Config>>` in the order it
// prefers and calls SelectKernel(op, list, config, cap, describe). SelectKernel walks the list and
// returns the first implementation that
//   1. needs no more than `cap` (ADALOG_ISA / ExecutorOptions::isa_cap): else "ISA capped at <cap>",
//   2. the CPU and OS can run (runtime/cpu_features.h, detected once): else "CPU lacks <isa>",
//   3. accepts `config` (`supports` returns "" or is empty): else the reason it returned.
// The last entry of every list must accept everything at IsaLevel::kRef; a list that declines
// everything is an internal error (adalog::Error).
//
// With ADALOG_VERBOSE=1 each choice is printed to stderr once per (op, configuration, cap): one
// line per declined implementation with its reason, then the chosen one:
//   adalog: dispatch qgemm_u8s8_s32 [cap avx2]: qgemm_u8s8_s32__avx512vnni declined: ISA capped at avx2
//   adalog: dispatch qgemm_u8s8_s32 [cap avx2]: selected qgemm_u8s8_s32__scalar
// Selection has no side effect besides that log and allocates nothing unless verbose (reasons are
// static strings), so calling it per kernel call inside Run is allowed ("a run never allocates").
//
// Naming rule (docs/architecture.md, "Dispatch"): an implementation is named `<op>__<isa>`
// (XNNPACK style), isa in ref | scalar | avx2 | avx512 | avx512vnni | onednn; its ISA code lives
// in a translation unit named `<file>__<isa>.cc` next to the op's portable file, which gets the
// isa's -m flags from that suffix (cmake/AdalogFlags.cmake).
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/cpu_features.h"

namespace adalog {

// For ops whose implementations accept every configuration (only the ISA decides).
struct AnyConfig {};

template <class Fn, class Config = AnyConfig>
struct KernelImpl {
  const char* name;  // "<op>__<isa>", e.g. "qgemm_u8s8_s32__avx512vnni"
  IsaLevel isa;      // lowest level its code needs
  // nullptr or "" (or an empty function) = supports `config`; else the reason it declines, a
  // static string.
  std::function<const char*(const Config&)> supports;
  Fn fn;
};

// "" when code of level `need` may run under `cap` on this CPU, else the reason it may not.
std::string IsaDeclineReason(IsaLevel need, IsaLevel cap);

// Prints the declines and the choice (stderr) the first time this (op, config text, cap) is seen.
void LogKernelChoice(const char* op, const std::string& config, IsaLevel cap,
                     const std::vector<std::pair<const char*, std::string>>& declines,
                     const char* chosen);

[[noreturn]] void NoKernelAccepts(const char* op, const std::string& config);

// `describe()` gives the configuration's text for the log; it is called only when verbose.
template <class Fn, class Config, class Describe>
const KernelImpl<Fn, Config>& SelectKernel(const char* op,
                                           const std::vector<KernelImpl<Fn, Config>>& list,
                                           const Config& config, IsaLevel cap,
                                           const Describe& describe) {
  const bool verbose = DispatchVerbose();
  std::vector<std::pair<const char*, std::string>> declines;  // filled only when verbose
  for (const KernelImpl<Fn, Config>& impl : list) {
    if (static_cast<int>(impl.isa) > static_cast<int>(cap) || !IsaSupported(impl.isa)) {
      if (verbose) declines.emplace_back(impl.name, IsaDeclineReason(impl.isa, cap));
      continue;
    }
    const char* why = impl.supports ? impl.supports(config) : nullptr;
    if (why != nullptr && *why != '\0') {
      if (verbose) declines.emplace_back(impl.name, why);
      continue;
    }
    if (verbose) LogKernelChoice(op, describe(), cap, declines, impl.name);
    return impl;
  }
  NoKernelAccepts(op, verbose ? describe() : std::string());
}

template <class Fn>
const KernelImpl<Fn, AnyConfig>& SelectKernel(const char* op,
                                              const std::vector<KernelImpl<Fn, AnyConfig>>& list,
                                              IsaLevel cap) {
  return SelectKernel(op, list, AnyConfig{}, cap, [] { return std::string(); });
}

}  // namespace adalog
