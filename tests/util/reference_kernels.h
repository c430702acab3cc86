// The scalar op math of the test reference forward (LayerNorm, a Linear's dot product, the patch
// embedding's dot product, token assembly, one softmax row, the attention-value dot product, GELU,
// pooling), stated once for the one reference forward (vit_reference_forward.h) and the
// teacher-forced per-op checker (sim_reference_ops.h). Double accumulation, plain loops, written
// from the conventions in runtime/vit_model.h; shares no code with runtime/'s executors.
//
// Every function returns or fills exactly what the forward computes, in the forward's order of
// accumulation, so the forward and the checker agree bit for bit on the same inputs. The optional
// `mag` outputs give the op's magnitude (|bias| + sum |w x|, or sum |p v|), the checker's error
// denominator.
//
// Only header-inline parts of runtime/ are used: tests/util/*.cc is linked into every test binary,
// including adalog_quant_tests, which does not link the runtime library.
#pragma once

#include <cstddef>
#include <vector>

#include "runtime/vit_model.h"

namespace adalog::test::ref {

using Mat = std::vector<double>;  // [rows][cols], row-major

// y[r] = LN(x[r]) over `rows` rows of n.dim values (x and y may not alias).
void LayerNormRows(const LayerNormParams& n, const double* x, int rows, double* y);
Mat LayerNorm(const LayerNormParams& n, const Mat& x, int rows);

// l.bias[o] + sum_i l.weight[o][i] * x[i]; *mag = |bias| + sum_i |weight[o][i] * x[i]|.
double LinearDot(const LinearParams& l, int o, const double* x, double* mag = nullptr);
// y = x W^T + b over `rows` rows of x [rows][l.in].
Mat Linear(const LinearParams& l, const Mat& x, int rows);

// Output channel d of the patch embedding at grid cell (gy, gx) of image b of
// images [B][C][H][W] (e.weight as given: FP32 or W_hat); *mag as LinearDot.
double PatchEmbedDot(const PatchEmbedParams& e, const float* images, int b, int gy, int gx, int d,
                     double* mag = nullptr);

// x: one image's tokens [T][dim] with the patch rows at [prefix, T) already written. Adds the
// position embedding and writes the prefix (cls, dist) tokens, in VitModel's PosEmbedMode order.
void AssembleTokens(const VitModel& m, double* x);

// probs[j] = softmax_j(scale * q . k[j]) for one query row q [hd] over k [tokens][hd].
void SoftmaxRow(const double* q, const double* k, int tokens, int hd, double scale, double* probs);
// sum_j p[j] * v[j][d] over v [tokens][hd]; *mag = sum_j |p[j] * v[j][d]|.
double AttnValueDot(const double* p, const double* v, int tokens, int hd, int d,
                    double* mag = nullptr);

double Gelu(double x, GeluKind k);

// The pooled features of one image's final-normed tokens xn [T][dim]: pooled [dim] (the cls
// token, or the mean of the patch tokens) and, for kClsDistAvg, dist [dim] (the dist token;
// untouched otherwise, may be null then).
void Pool(const VitModel& m, const double* xn, double* pooled, double* dist);

}  // namespace adalog::test::ref
