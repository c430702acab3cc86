// CPU feature detection (cpuid + xgetbv, once per process) and the ISA level that run-time
// dispatch may use. The only file in adalog that executes cpuid.
//
// Environment:
//   ADALOG_ISA=ref|avx2|avx512|avx512vnni  caps the level (to exercise fallbacks), for adalog kernels
//                                          and oneDNN (set_max_cpu_isa) alike; a cap above
//                                          what the CPU/OS supports is clamped to the detected one.
//   ADALOG_VERBOSE=1                       dispatchers print the implementation chosen per op and
//                                          why each faster one declined (to stderr).
#pragma once

#include <string>

namespace adalog {

// Ordered: every level implies the ones below it.
enum class IsaLevel : int {
  kRef = 0,         // plain C++, any x86-64
  kAvx2 = 1,        // AVX2 + FMA + F16C
  kAvx512 = 2,      // AVX-512 F/BW/VL/DQ
  kAvx512Vnni = 3,  // kAvx512 + AVX512_VNNI
};

struct CpuFeatures {
  std::string vendor;  // "AuthenticInt", "AuthenticAMD", ...
  std::string brand;   // processor brand string
  // Instruction-set bits from cpuid, already masked by OS state support (xgetbv): a feature is
  // reported only if the OS saves the registers it needs.
  bool sse42 = false;
  bool avx = false;
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512vnni = false;
  bool avx512bf16 = false;
  bool avx_vnni = false;
  bool amx_tile = false;
  bool amx_int8 = false;
  bool amx_bf16 = false;
  // OS support of register state (XCR0): YMM, ZMM/opmask, AMX tiles.
  bool os_ymm = false;
  bool os_zmm = false;
  bool os_amx = false;
};

// Detected once (thread-safe static initialisation).
const CpuFeatures& GetCpuFeatures();

// Highest level the CPU and OS support.
IsaLevel DetectedIsaLevel();

// min(DetectedIsaLevel(), ADALOG_ISA cap). An unknown ADALOG_ISA value is reported once on
// stderr and ignored.
IsaLevel ActiveIsaLevel();

// True when the CPU/OS can execute code of this level.
bool IsaSupported(IsaLevel level);

const char* IsaLevelName(IsaLevel level);  // "ref", "avx2", "avx512", "avx512vnni"
bool ParseIsaLevel(const std::string& text, IsaLevel* level);

// ADALOG_VERBOSE is set to a non-empty value other than "0".
bool DispatchVerbose();

// Multi-line description for `adalog --version` / `inspect`: CPU, feature bits, detected and
// active level, the cap if any.
std::string DescribeCpu();

}  // namespace adalog
