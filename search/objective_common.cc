// The float GEMM of the objectives; see objective_common.h.
#include "search/objective_common.h"

#include <dnnl.h>

#include "quant/error.h"

namespace adalog::search {

void Sgemm(int64_t M, int64_t N, int64_t K, const float* a, const float* b, bool b_transposed,
           float* c) {
  const dnnl_status_t st = dnnl_sgemm('N', b_transposed ? 'T' : 'N', M, N, K, 1.0f, a, K, b,
                                      b_transposed ? K : N, 0.0f, c, N);
  ADALOG_CHECK(st == dnnl_success, "search: oneDNN sgemm failed (status ", static_cast<int>(st),
               ")");
}

}  // namespace adalog::search
