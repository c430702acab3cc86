// Prepare and ordered dispatch (avx512, avx2, scalar reference; runtime/kernel_registry.h) of the
// log-code writers.
#include "runtime/kernels/int/logcode_writers.h"

#include <string>
#include <vector>

#include "quant/error.h"
#include "runtime/kernel_registry.h"
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

namespace {

using SoftmaxWriterFn = void (*)(const LogCodeWriter&, const float*, int64_t, int, uint8_t*);
using GeluWriterFn = void (*)(const LogCodeWriter&, const float*, int64_t, uint8_t*);

void SoftmaxToLogCodesScalar(const LogCodeWriter& w, const float* x, int64_t rows, int n,
                             uint8_t* codes) {
  ref::SoftmaxToLogCodesRef(w.encoder, x, rows, n, codes);
}

void GeluToLogCodesScalar(const LogCodeWriter& w, const float* x, int64_t n, uint8_t* codes) {
  ref::GeluToLogCodesRef(w.encoder, w.shift, x, n, codes);
}

const std::vector<KernelImpl<SoftmaxWriterFn>>& SoftmaxWriters() {
  static const std::vector<KernelImpl<SoftmaxWriterFn>> list = {
      {"softmax_logcodes__avx512", IsaLevel::kAvx512, {}, SoftmaxToLogCodesAvx512},
      {"softmax_logcodes__avx2", IsaLevel::kAvx2, {}, SoftmaxToLogCodesAvx2},
      {"softmax_logcodes__ref", IsaLevel::kRef, {}, SoftmaxToLogCodesScalar},
  };
  return list;
}

const std::vector<KernelImpl<GeluWriterFn>>& GeluWriters() {
  static const std::vector<KernelImpl<GeluWriterFn>> list = {
      {"gelu_logcodes__avx512", IsaLevel::kAvx512, {}, GeluToLogCodesAvx512},
      {"gelu_logcodes__avx2", IsaLevel::kAvx2, {}, GeluToLogCodesAvx2},
      {"gelu_logcodes__ref", IsaLevel::kRef, {}, GeluToLogCodesScalar},
  };
  return list;
}

}  // namespace

void SoftmaxToLogCodes(const LogCodeWriter& w, const float* x, int64_t rows, int n,
                       uint8_t* codes, IsaLevel cap) {
  SelectKernel("softmax_logcodes", SoftmaxWriters(), cap).fn(w, x, rows, n, codes);
}

void GeluToLogCodes(const LogCodeWriter& w, const float* x, int64_t n, uint8_t* codes,
                    IsaLevel cap) {
  SelectKernel("gelu_logcodes", GeluWriters(), cap).fn(w, x, n, codes);
}

const char* SoftmaxToLogCodesImplName(IsaLevel cap) {
  return SelectKernel("softmax_logcodes", SoftmaxWriters(), cap).name;
}

const char* GeluToLogCodesImplName(IsaLevel cap) {
  return SelectKernel("gelu_logcodes", GeluWriters(), cap).name;
}

}  // namespace adalog::intk
