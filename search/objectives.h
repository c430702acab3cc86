// The search objectives of method §4.3, evaluated exactly (up to floating-point rounding,
// all reductions in double) through cheaper equivalent forms. This header is the index: each
// equation lives in its own file, and the incremental forms share one chain machinery
// (code_chain.h: codes as ranges of data sorted once, changed ranges, chain orders).
//   W-self  per row:        sum_i (W[o,i] - Q(W)[o,i])^2                     self_errors.h
//   A-self  per tensor or per channel: sum (x - Q(x))^2                       self_errors.h
//   W-out   per row:        ||y_o - b_o - Xq Q(w_o)||^2 (Gram form, chain)    weight_out.h
//   A-out   per tensor:     ||Y - b - Q(X) Wq^T||^2, uniform input (code Gram form, chain) or
//                           any quantizer directly                            act_out.h
//           shifted log input of fc2 (sweep and sparse updates)              log_act_out.h
//   MM-A / MM-B per head:   sum_images ||A B - Q_A(A) Q_B(B)||^2 (residual form, chain);
//   MM per tensor (softmax side), directly                                    matmul_out.h
//   FakeQuantFn callbacks and uniform code thresholds                         fake_quant_fns.h
// Errors are SUMS of squares: the official code's means differ by constant factors only, which
// never change a ranking. Every candidate's error is computed by one thread in a fixed order, so
// results do not depend on the thread count.
#pragma once

#include "search/act_out.h"
#include "search/fake_quant_fns.h"
#include "search/log_act_out.h"
#include "search/matmul_out.h"
#include "search/self_errors.h"
#include "search/weight_out.h"
