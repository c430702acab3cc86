// Prepare and ordered dispatch (avx512, avx2, scalar reference) of the log-code writers.
#include "runtime/kernels/int/logcode_writers.h"

#include "quant/error.h"
#include "runtime/kernels/reference/logcode_writers_ref.h"

namespace adalog::intk {

LogCodeWriter MakeLogCodeWriter(const LogParams& p, float shift) {
  ADALOG_CHECK(p.kind == LogKind::kAdaLog || p.kind == LogKind::kLog2,
               "MakeLogCodeWriter: kind ", LogKindName(p.kind), " has no integer kernel");
  LogCodeWriter w(p);  // validates p
  w.shift = shift;
  const LogCodeTable& t = GetLogCodeTable(p.RatioNum(), p.RatioDen());
  w.c0.assign(t.c0.begin(), t.c0.end());
  w.thr = t.thr.data();
  w.zero_code = LogZeroCode(p.bits);
  w.unit_scale = p.scale == 1.0f;
  return w;
}

void SoftmaxToLogCodes(const LogCodeWriter& w, const float* x, int64_t rows, int n,
                       uint8_t* codes, IsaLevel cap) {
  if (cap >= IsaLevel::kAvx512 && IsaSupported(IsaLevel::kAvx512)) {
    SoftmaxToLogCodesAvx512(w, x, rows, n, codes);
  } else if (cap >= IsaLevel::kAvx2 && IsaSupported(IsaLevel::kAvx2)) {
    SoftmaxToLogCodesAvx2(w, x, rows, n, codes);
  } else {
    ref::SoftmaxToLogCodesRef(w.encoder, x, rows, n, codes);
  }
}

void GeluToLogCodes(const LogCodeWriter& w, const float* x, int64_t n, uint8_t* codes,
                    IsaLevel cap) {
  if (cap >= IsaLevel::kAvx512 && IsaSupported(IsaLevel::kAvx512)) {
    GeluToLogCodesAvx512(w, x, n, codes);
  } else if (cap >= IsaLevel::kAvx2 && IsaSupported(IsaLevel::kAvx2)) {
    GeluToLogCodesAvx2(w, x, n, codes);
  } else {
    ref::GeluToLogCodesRef(w.encoder, w.shift, x, n, codes);
  }
}

}  // namespace adalog::intk
