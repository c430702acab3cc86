// Exact-product double Grams; see gram.h.
#include "search/gram.h"

#include <algorithm>
#include <vector>

#include "runtime/cpu_features.h"
#include "runtime/kernel_registry.h"

namespace adalog::search {

void GramTileRef(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t T, int i0,
                 int mi, int j0, int nj, double* out, int64_t ldo, bool accumulate) {
  double acc[kGramTileM][kGramTileN] = {};
  if (accumulate)
    for (int i = 0; i < mi; ++i)
      for (int j = 0; j < nj; ++j) acc[i][j] = out[(i0 + i) * ldo + j0 + j];
  for (int64_t t = 0; t < T; ++t) {
    const float* ar = a + t * lda + i0;
    const float* br = b + t * ldb + j0;
    for (int i = 0; i < mi; ++i) {
      const double av = ar[i];
      for (int j = 0; j < nj; ++j) acc[i][j] += av * static_cast<double>(br[j]);
    }
  }
  for (int i = 0; i < mi; ++i)
    for (int j = 0; j < nj; ++j) out[(i0 + i) * ldo + j0 + j] = acc[i][j];
}

void CodeRowAxpyRef(int32_t* v, int32_t e, const uint8_t* c, int32_t z, int n) {
  for (int j = 0; j < n; ++j) v[j] += e * (static_cast<int32_t>(c[j]) - z);
}

// Ordered lists (runtime/kernel_registry.h), chosen once per process at ActiveIsaLevel().
CodeRowAxpyFn SelectCodeRowAxpy() {
  static const std::vector<KernelImpl<CodeRowAxpyFn>> list = {
      {"code_row_axpy_s32__avx512", IsaLevel::kAvx512, {}, CodeRowAxpyAvx512},
      {"code_row_axpy_s32__ref", IsaLevel::kRef, {}, CodeRowAxpyRef},
  };
  static const CodeRowAxpyFn f = SelectKernel("code_row_axpy_s32", list, ActiveIsaLevel()).fn;
  return f;
}

GramTileFn SelectGramTile() {
  static const std::vector<KernelImpl<GramTileFn>> list = {
      {"gram_tile_f64__avx512", IsaLevel::kAvx512, {}, GramTileAvx512},
      {"gram_tile_f64__ref", IsaLevel::kRef, {}, GramTileRef},
  };
  static const GramTileFn f = SelectKernel("gram_tile_f64", list, ActiveIsaLevel()).fn;
  return f;
}

void GramAtB(const float* a, int64_t lda, int M, const float* b, int64_t ldb, int N, int64_t T,
             double* out, int64_t ldo, bool symmetric) {
  const GramTileFn tile = SelectGramTile();
  const int mb = (M + kGramTileM - 1) / kGramTileM, nb = (N + kGramTileN - 1) / kGramTileN;
  // Work items: a column block of tiles times a group of kGroup row blocks, each item walking
  // every row block of T in ascending order and, per row block, its tiles (sums carried in out:
  // the same bits as one pass). Items never share an output element, so the parallel loop needs
  // no barrier inside (a per-row-block barrier stalled on a loaded machine); an item reads a row
  // block's A and B columns once for all its tiles.
  constexpr int kGroup = 8;
  const int ng = (mb + kGroup - 1) / kGroup;
  const int64_t items = static_cast<int64_t>(ng) * nb;
  const int64_t tiles = static_cast<int64_t>(mb) * nb;
#pragma omp parallel for schedule(dynamic, 1) if (tiles * T * kGramTileM * kGramTileN > (int64_t{1} << 22))
  for (int64_t it = 0; it < items; ++it) {
    const int jb = static_cast<int>(it % nb), g = static_cast<int>(it / nb);
    const int j0 = jb * kGramTileN, nj = std::min(kGramTileN, N - j0);
    const int ib1 = std::min(mb, (g + 1) * kGroup);
    for (int64_t t0 = 0; t0 < std::max<int64_t>(T, 1); t0 += kGramBlockT) {
      const int64_t bt = std::max<int64_t>(0, std::min(kGramBlockT, T - t0));
      for (int ib = g * kGroup; ib < ib1; ++ib) {
        const int i0 = ib * kGramTileM, mi = std::min(kGramTileM, M - i0);
        if (symmetric && j0 + nj <= i0) continue;  // strictly below the diagonal: mirrored below
        tile(a + t0 * lda, lda, b + t0 * ldb, ldb, bt, i0, mi, j0, nj, out, ldo, t0 > 0);
      }
    }
  }
  if (symmetric) {
    // Mirror: element (i, j) with j < i takes (j, i), which its tile computed (j's tile row
    // starts at or before j, and its column range reaches i's or beyond).
    for (int i = 0; i < M; ++i) {
      const int tile_i0 = (i / kGramTileM) * kGramTileM;
      // Columns j < i whose tile (row block of i, column block of j) was skipped: the whole
      // tile lies strictly below the diagonal, i.e. j0 + nj <= tile_i0.
      for (int j = 0; j < i; ++j) {
        const int j0 = (j / kGramTileN) * kGramTileN;
        const int nj = std::min(kGramTileN, N - j0);
        if (j0 + nj <= tile_i0) out[i * ldo + j] = out[j * ldo + i];
      }
    }
  }
}

}  // namespace adalog::search
