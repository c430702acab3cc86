// Scores of model outputs: top-k accuracy against labels, and the fidelity of logits against
// reference logits (mean / min cosine, top-1 agreement), as `adalog eval` reports them.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/data/npy.h"

namespace adalog {

// Number of rows whose label is among the k largest logits. Ties rank the lower class index first.
// Labels outside [0, classes) throw adalog::Error.
int64_t CountTopKCorrect(const float* logits, int64_t rows, int classes, const int64_t* labels,
                         int k);
// Fractions in [0, 1]; 0 rows -> 0.
double Top1Accuracy(const float* logits, int64_t rows, int classes, const int64_t* labels);
double Top5Accuracy(const float* logits, int64_t rows, int classes, const int64_t* labels);

// Index of the largest value of row[0..classes); ties: the lowest index.
int ArgMax(const float* row, int classes);

// Fidelity of logits against reference logits (e.g. the FP32 model's on the same images).
struct LogitsFidelity {
  double mean_cosine = 0;     // mean over rows of the cosine of the two logits rows
  double min_cosine = 0;      // the smallest of those (1 when rows = 0)
  double top1_agreement = 0;  // fraction of rows whose ArgMax agrees; 0 when rows = 0
};

// Both arrays [rows][classes]. A row's cosine is ab / sqrt(aa bb) in double; when either row is
// all zeros it is 1 if both are, else 0. The mean is accumulated as sum of cos / rows in row
// order (so the printed digits are reproducible).
LogitsFidelity CompareLogits(const float* logits, const float* reference, int64_t rows, int classes);

// Reads reference logits for `rows` evaluated images: float32 [N, classes] with N >= rows, all
// finite. Throws adalog::Error naming `path` and the expected shape.
NpyFloatArray ReadReferenceLogits(const std::string& path, int64_t rows, int classes);

}  // namespace adalog
