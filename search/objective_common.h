// What the objective files share beyond the chain machinery (code_chain.h): the float GEMM they
// call and the size below which a loop stays on the calling thread.
#pragma once

#include <cstdint>

namespace adalog::search {

// Below this much work (multiply-adds) a loop runs on the calling thread: OpenMP barriers cost
// more than tiny loops, and on a loaded machine spinning threads waste whole time slices. The
// split never changes results (each result is computed by one thread either way).
inline constexpr int64_t kMinParallelWork = int64_t{1} << 22;

// C [M][N] = op(A) op(B) through oneDNN's sgemm with a one-thread plan, for every float GEMM of
// the search. Called outside an active parallel region (a region whose `if` clause is false, or a
// team of one), sgemm splits the work, K included, by omp_get_max_threads(), so its summation
// order and bits depended on the thread count (seen: a 1 x 256 x 256 GEMM, the W-out incumbent
// batch of one candidate, gave other bits with 2 threads than with 1 or 3, and so another fc2
// weight scale in a 2-thread calibration). Inside an active region it already ran on one thread;
// the search parallelizes over rows, candidates and heads around these calls.
void SgemmOneThread(char transa, char transb, int64_t M, int64_t N, int64_t K, const float* a,
                    int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc);

// C [M][N] = A [M][K] * op(B) with op(B) = B [K][N] or B^T (B [N][K]): SgemmOneThread.
void Sgemm(int64_t M, int64_t N, int64_t K, const float* a, const float* b, bool b_transposed,
           float* c);

}  // namespace adalog::search
