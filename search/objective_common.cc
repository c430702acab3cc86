// The float GEMMs of the objectives; see objective_common.h.
#include "search/objective_common.h"

#include <dnnl.h>
#include <omp.h>

#include "quant/error.h"

namespace adalog::search {

void SgemmOneThread(char transa, char transb, int64_t M, int64_t N, int64_t K, const float* a,
                    int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc) {
  const int prev = omp_get_max_threads();
  omp_set_num_threads(1);
  const dnnl_status_t st = dnnl_sgemm(transa, transb, M, N, K, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
  omp_set_num_threads(prev);
  ADALOG_CHECK(st == dnnl_success, "search: oneDNN sgemm failed (status ", static_cast<int>(st),
               ")");
}

void Sgemm(int64_t M, int64_t N, int64_t K, const float* a, const float* b, bool b_transposed,
           float* c) {
  SgemmOneThread('N', b_transposed ? 'T' : 'N', M, N, K, a, K, b, b_transposed ? K : N, c, N);
}

}  // namespace adalog::search
