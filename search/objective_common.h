// What the objective files share beyond the chain machinery (code_chain.h): the float GEMM they
// call and the size below which a loop stays on the calling thread.
#pragma once

#include <cstdint>

namespace adalog::search {

// Below this much work (multiply-adds) a loop runs on the calling thread: OpenMP barriers cost
// more than tiny loops, and on a loaded machine spinning threads waste whole time slices. The
// split never changes results (each result is computed by one thread either way).
inline constexpr int64_t kMinParallelWork = int64_t{1} << 22;

// C [M][N] = A [M][K] * op(B) with op(B) = B [K][N] or B^T (B [N][K]) (oneDNN sgemm). Single-
// threaded when called inside a parallel region (oneDNN runs sequentially there); callers only
// call it there or with one OpenMP thread.
void Sgemm(int64_t M, int64_t N, int64_t K, const float* a, const float* b, bool b_transposed,
           float* c);

}  // namespace adalog::search
