// CPU feature detection: cpuid leaves 0, 1, 7 and 0x80000002-4, plus xgetbv for OS state.
#include "runtime/cpu_features.h"

#include <cpuid.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dnnl.hpp>
#include <sstream>
#include <utility>

namespace adalog {
namespace {

struct Regs {
  uint32_t a = 0, b = 0, c = 0, d = 0;
};

Regs Cpuid(uint32_t leaf, uint32_t subleaf) {
  Regs r;
  __cpuid_count(leaf, subleaf, r.a, r.b, r.c, r.d);
  return r;
}

uint64_t Xgetbv0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

bool Bit(uint32_t v, int bit) { return (v >> bit) & 1u; }

CpuFeatures Detect() {
  CpuFeatures f;
  const Regs r0 = Cpuid(0, 0);
  const uint32_t max_leaf = r0.a;
  char vendor[13] = {};
  std::memcpy(vendor + 0, &r0.b, 4);
  std::memcpy(vendor + 4, &r0.d, 4);
  std::memcpy(vendor + 8, &r0.c, 4);
  f.vendor = vendor;
  if (Cpuid(0x80000000u, 0).a >= 0x80000004u) {
    char brand[49] = {};
    for (uint32_t i = 0; i < 3; ++i) {
      const Regs r = Cpuid(0x80000002u + i, 0);
      std::memcpy(brand + 16 * i + 0, &r.a, 4);
      std::memcpy(brand + 16 * i + 4, &r.b, 4);
      std::memcpy(brand + 16 * i + 8, &r.c, 4);
      std::memcpy(brand + 16 * i + 12, &r.d, 4);
    }
    f.brand = brand;
    const size_t first = f.brand.find_first_not_of(' ');
    f.brand = first == std::string::npos ? std::string() : f.brand.substr(first);
  }
  if (max_leaf < 1) return f;
  const Regs r1 = Cpuid(1, 0);
  f.sse42 = Bit(r1.c, 20);
  const bool osxsave = Bit(r1.c, 27);
  const uint64_t xcr0 = osxsave ? Xgetbv0() : 0;
  f.os_ymm = (xcr0 & 0x6) == 0x6;                   // XMM + YMM
  f.os_zmm = f.os_ymm && (xcr0 & 0xE0) == 0xE0;     // opmask + ZMM_Hi256 + Hi16_ZMM
  f.os_amx = (xcr0 & 0x60000) == 0x60000;           // XTILECFG + XTILEDATA
  f.avx = Bit(r1.c, 28) && f.os_ymm;
  f.fma = Bit(r1.c, 12) && f.os_ymm;
  f.f16c = Bit(r1.c, 29) && f.os_ymm;
  if (max_leaf < 7) return f;
  const Regs r7 = Cpuid(7, 0);
  f.avx2 = Bit(r7.b, 5) && f.os_ymm;
  f.avx512f = Bit(r7.b, 16) && f.os_zmm;
  f.avx512dq = Bit(r7.b, 17) && f.os_zmm;
  f.avx512bw = Bit(r7.b, 30) && f.os_zmm;
  f.avx512vl = Bit(r7.b, 31) && f.os_zmm;
  f.avx512vnni = Bit(r7.c, 11) && f.os_zmm;
  f.amx_bf16 = Bit(r7.d, 22) && f.os_amx;
  f.amx_tile = Bit(r7.d, 24) && f.os_amx;
  f.amx_int8 = Bit(r7.d, 25) && f.os_amx;
  if (r7.a >= 1) {
    const Regs r71 = Cpuid(7, 1);
    f.avx_vnni = Bit(r71.a, 4) && f.os_ymm;
    f.avx512bf16 = Bit(r71.a, 5) && f.os_zmm;
  }
  return f;
}

IsaLevel ComputeDetected(const CpuFeatures& f) {
  const bool avx2 = f.avx && f.avx2 && f.fma && f.f16c;
  const bool avx512 = avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq;
  if (avx512 && f.avx512vnni) return IsaLevel::kAvx512Vnni;
  if (avx512) return IsaLevel::kAvx512;
  if (avx2) return IsaLevel::kAvx2;
  return IsaLevel::kRef;
}

// Applies the same cap to oneDNN's JIT kernels so that ADALOG_ISA exercises the GEMM fallbacks
// too. oneDNN accepts this only before its first primitive is created; later it keeps its setting
// (reported under ADALOG_VERBOSE).
void CapOnednnIsa(IsaLevel cap) {
  dnnl::cpu_isa isa = dnnl::cpu_isa::all;
  switch (cap) {
    case IsaLevel::kRef: isa = dnnl::cpu_isa::sse41; break;
    case IsaLevel::kAvx2: isa = dnnl::cpu_isa::avx2; break;
    case IsaLevel::kAvx512: isa = dnnl::cpu_isa::avx512_core; break;
    case IsaLevel::kAvx512Vnni: isa = dnnl::cpu_isa::avx512_core_vnni; break;
  }
  try {
    dnnl::set_max_cpu_isa(isa);
  } catch (const dnnl::error&) {
    if (DispatchVerbose()) {
      std::fprintf(stderr, "adalog: oneDNN ISA cap not applied (primitives already created)\n");
    }
  }
}

struct IsaState {
  IsaLevel detected;
  IsaLevel active;
  bool capped;
};

const IsaState& State() {
  static const IsaState state = [] {
    IsaState s;
    s.detected = ComputeDetected(GetCpuFeatures());
    s.active = s.detected;
    s.capped = false;
    if (const char* env = std::getenv("ADALOG_ISA"); env != nullptr && *env != '\0') {
      IsaLevel cap;
      if (!ParseIsaLevel(env, &cap)) {
        std::fprintf(stderr,
                     "adalog: ignoring ADALOG_ISA='%s' (expected ref|avx2|avx512|avx512vnni)\n",
                     env);
      } else if (static_cast<int>(cap) < static_cast<int>(s.detected)) {
        s.active = cap;
        s.capped = true;
        CapOnednnIsa(cap);
      }
    }
    return s;
  }();
  return state;
}

}  // namespace

const CpuFeatures& GetCpuFeatures() {
  static const CpuFeatures features = Detect();
  return features;
}

IsaLevel DetectedIsaLevel() { return State().detected; }
IsaLevel ActiveIsaLevel() { return State().active; }

bool IsaSupported(IsaLevel level) {
  return static_cast<int>(level) <= static_cast<int>(DetectedIsaLevel());
}

const char* IsaLevelName(IsaLevel level) {
  switch (level) {
    case IsaLevel::kRef: return "ref";
    case IsaLevel::kAvx2: return "avx2";
    case IsaLevel::kAvx512: return "avx512";
    case IsaLevel::kAvx512Vnni: return "avx512vnni";
  }
  return "?";
}

bool ParseIsaLevel(const std::string& text, IsaLevel* level) {
  for (IsaLevel l : {IsaLevel::kRef, IsaLevel::kAvx2, IsaLevel::kAvx512, IsaLevel::kAvx512Vnni}) {
    if (text == IsaLevelName(l)) {
      *level = l;
      return true;
    }
  }
  return false;
}

bool DispatchVerbose() {
  static const bool verbose = [] {
    const char* env = std::getenv("ADALOG_VERBOSE");
    return env != nullptr && *env != '\0' && std::strcmp(env, "0") != 0;
  }();
  return verbose;
}

std::string DescribeCpu() {
  const CpuFeatures& f = GetCpuFeatures();
  std::ostringstream os;
  os << "cpu: " << (f.brand.empty() ? f.vendor : f.brand) << "\n";
  os << "features:";
  const std::pair<bool, const char*> flags[] = {
      {f.avx2, "avx2"},         {f.fma, "fma"},
      {f.f16c, "f16c"},         {f.avx512f, "avx512f"},
      {f.avx512bw, "avx512bw"}, {f.avx512vl, "avx512vl"},
      {f.avx512dq, "avx512dq"}, {f.avx512vnni, "avx512vnni"},
      {f.avx512bf16, "avx512bf16"}, {f.avx_vnni, "avx_vnni"},
      {f.amx_tile, "amx_tile"}, {f.amx_int8, "amx_int8"},
      {f.amx_bf16, "amx_bf16"}};
  for (const auto& [on, name] : flags) {
    if (on) os << ' ' << name;
  }
  os << "\n";
  os << "isa: detected " << IsaLevelName(DetectedIsaLevel()) << ", active "
     << IsaLevelName(ActiveIsaLevel()) << (State().capped ? " (capped by ADALOG_ISA)" : "")
     << "\n";
  return os.str();
}

}  // namespace adalog
