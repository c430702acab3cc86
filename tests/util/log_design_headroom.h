// The headroom H of each log-code GEMM design as documented, for the tests' references: written
// from the definition, independent of the kernels' LogDesignHeadroom, so that a wrong headroom in
// the kernels cannot move the reference with it (the kernels must match these numbers).
#pragma once

#include <gtest/gtest.h>

#include "runtime/kernels/int/int_kernels.h"

namespace adalog::test {

// int_kernels.h "Designs", with D = 2^(b+1) - 2 (quant/log_quantizers.h AdaLogTables):
// kBuckets H = 32; kS16 the largest h with D 2^h <= 32767 (levels in int16); kU8 the largest h
// with D 2^h <= 255 (levels in u8). Worked out by hand per bit width:
//   bits                 2      3      4      5      6      7      8
//   D                    6     14     30     62    126    254    510
//   kS16 H              12     11     10      9      8      7      6   (D 2^H: 24576 .. 32640)
//   kU8  H               5      4      3      2      1      0     -1   (D 2^H: 192 .. 255)
inline constexpr int kDocHeadroomS16[] = {12, 11, 10, 9, 8, 7, 6};
inline constexpr int kDocHeadroomU8[] = {5, 4, 3, 2, 1, 0, -1};

inline int DocHeadroom(intk::LogDesign design, int bits) {
  EXPECT_TRUE(bits >= 2 && bits <= 8) << bits;
  if (bits < 2 || bits > 8) return 0;
  switch (design) {
    case intk::LogDesign::kBuckets: return 32;
    case intk::LogDesign::kS16: return kDocHeadroomS16[bits - 2];
    case intk::LogDesign::kU8: return kDocHeadroomU8[bits - 2];
  }
  return 0;
}

}  // namespace adalog::test
