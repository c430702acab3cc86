// Exact-product double Grams of float matrices: out[i][j] = sum_t a[t][i] * b[t][j], each
// product exact in double (float x float), each element summed over t in ascending order with
// one accumulator. The result therefore does not depend on the implementation (reference or
// AVX-512, with or without fused multiply-add: the products are exact) nor on the thread count
// (each element is computed by one thread). Used for the W-out Gram G = Xq^T Xq, c = Xq^T Y and
// the A-out H = Wq^T Wq.
#pragma once

#include <cstdint>

namespace adalog::search {

// out [M][N] (row stride ldo) = A^T B with A [T][M] (row stride lda), B [T][N] (stride ldb).
// symmetric: A == B, M == N; only the upper triangle is computed, then mirrored.
void GramAtB(const float* a, int64_t lda, int M, const float* b, int64_t ldb, int N, int64_t T,
             double* out, int64_t ldo, bool symmetric);

// One output tile [i0, i0 + mi) x [j0, j0 + nj) over rows t in [0, T) (reference / AVX-512;
// tests compare them). accumulate: each element's sum continues from the value in out (a previous
// block of rows), so blocks of rows in ascending order give the one-pass sums bit for bit.
using GramTileFn = void (*)(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t T,
                            int i0, int mi, int j0, int nj, double* out, int64_t ldo, bool accumulate);
void GramTileRef(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t T, int i0,
                 int mi, int j0, int nj, double* out, int64_t ldo, bool accumulate);
void GramTileAvx512(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t T, int i0,
                    int mi, int j0, int nj, double* out, int64_t ldo, bool accumulate);
GramTileFn SelectGramTile();
// Tile shape of GramAtB (mi <= kGramTileM, nj <= kGramTileN).
constexpr int kGramTileM = 6;
constexpr int kGramTileN = 32;
// GramAtB walks the rows in blocks of this many (per work item: a column block of tiles times a
// group of row blocks, every tile of the item per row block), so a row block's A and B columns are
// read from memory once per item, not once per tile (T is 100,000 rows for Swin's stage 1: the
// one-pass tiles were memory bound).
constexpr int64_t kGramBlockT = 256;

// v[0..n) += e * (int32(c[0..n)) - z): one row of an integer code-Gram update (exact, so every
// implementation gives the same values). Used by the chain form of the uniform A-out.
using CodeRowAxpyFn = void (*)(int32_t* v, int32_t e, const uint8_t* c, int32_t z, int n);
void CodeRowAxpyRef(int32_t* v, int32_t e, const uint8_t* c, int32_t z, int n);
void CodeRowAxpyAvx512(int32_t* v, int32_t e, const uint8_t* c, int32_t z, int n);
CodeRowAxpyFn SelectCodeRowAxpy();

}  // namespace adalog::search
