// Top-k accuracy and logits fidelity (runtime/metrics.h).
#include "runtime/metrics.h"

#include <algorithm>
#include <cmath>

#include "quant/error.h"
#include "runtime/data/image_source.h"

namespace adalog {

int64_t CountTopKCorrect(const float* logits, int64_t rows, int classes, const int64_t* labels,
                         int k) {
  ADALOG_CHECK(classes >= 1 && k >= 1, "top-k: classes ", classes, ", k ", k);
  int64_t correct = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t label = labels[r];
    ADALOG_CHECK(label >= 0 && label < classes, "labels: row ", r, " has label ", label,
                 ", outside 0..", classes - 1);
    const float* row = logits + r * classes;
    const float v = row[label];
    int rank = 0;
    for (int c = 0; c < classes; ++c) {
      if (row[c] > v || (row[c] == v && c < label)) ++rank;
    }
    if (rank < k) ++correct;
  }
  return correct;
}

double Top1Accuracy(const float* logits, int64_t rows, int classes, const int64_t* labels) {
  return rows == 0 ? 0.0 : static_cast<double>(CountTopKCorrect(logits, rows, classes, labels, 1)) / rows;
}

double Top5Accuracy(const float* logits, int64_t rows, int classes, const int64_t* labels) {
  return rows == 0 ? 0.0 : static_cast<double>(CountTopKCorrect(logits, rows, classes, labels, 5)) / rows;
}

int ArgMax(const float* row, int classes) {
  int best = 0;
  for (int c = 1; c < classes; ++c) {
    if (row[c] > row[best]) best = c;
  }
  return best;
}

LogitsFidelity CompareLogits(const float* logits, const float* reference, int64_t rows, int classes) {
  LogitsFidelity f;
  f.min_cosine = 1.0;
  int64_t agree = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* a = logits + r * classes;
    const float* b = reference + r * classes;
    double ab = 0, aa = 0, bb = 0;
    for (int c = 0; c < classes; ++c) {
      ab += static_cast<double>(a[c]) * b[c];
      aa += static_cast<double>(a[c]) * a[c];
      bb += static_cast<double>(b[c]) * b[c];
    }
    const double cos = (aa > 0 && bb > 0) ? ab / std::sqrt(aa * bb) : (aa == bb ? 1.0 : 0.0);
    f.mean_cosine += cos / static_cast<double>(rows);
    f.min_cosine = std::min(f.min_cosine, cos);
    if (ArgMax(a, classes) == ArgMax(b, classes)) ++agree;
  }
  f.top1_agreement = rows > 0 ? static_cast<double>(agree) / static_cast<double>(rows) : 0.0;
  return f;
}

NpyFloatArray ReadReferenceLogits(const std::string& path, int64_t rows, int classes) {
  NpyFloatArray ref = ReadNpyFloat32(path);
  ADALOG_CHECK(ref.shape.size() == 2 && ref.shape[1] == classes && ref.shape[0] >= rows, path,
               ": reference logits must be float32 [N,", classes, "] with N >= ", rows,
               " (the images evaluated), got shape ", ShapeString(ref.shape));
  CheckFinite(ref.data.data(), static_cast<int64_t>(ref.data.size()), path, ref.shape);
  return ref;
}

}  // namespace adalog
