// The per-head and per-tensor matmul objectives; see matmul_out.h.
#include "search/matmul_out.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "quant/error.h"
#include "quant/uniform.h"
#include "runtime/parallel.h"
#include "search/axpy.h"
#include "search/gram.h"
#include "search/objective_common.h"
#include "search/scan_kernels.h"

namespace adalog::search {
namespace {

double SumSqDiff(const float* p, const float* q, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(p[i]) - static_cast<double>(q[i]);
    s += d * d;
  }
  return s;
}

}  // namespace

MatmulObjective::MatmulObjective(const float* a, const float* b, int heads, int images, int M,
                                 int K, int N, bool b_transposed)
    : a_(a), b_(b), heads_(heads), images_(images), M_(M), K_(K), N_(N), bt_(b_transposed) {
  ADALOG_CHECK(heads > 0 && images > 0 && M > 0 && K > 0 && N > 0, "matmul objective: empty");
  p_.resize(static_cast<size_t>(heads) * images * M * N);
  const int64_t pairs = static_cast<int64_t>(heads) * images;
  const int64_t am = static_cast<int64_t>(M) * K, bm = static_cast<int64_t>(K) * N,
                pm = static_cast<int64_t>(M) * N;
#pragma omp parallel for schedule(dynamic, 1) if (pairs * pm * K > kMinParallelWork)
  for (int64_t p = 0; p < pairs; ++p) Sgemm(M, N, K, a + p * am, b + p * bm, bt_, p_.data() + p * pm);
}

double MatmulObjective::HeadError(int h, const float* qa_h, const float* qb_h,
                                  float* scratch) const {
  const int64_t am = static_cast<int64_t>(M_) * K_, bm = static_cast<int64_t>(K_) * N_,
                pm = static_cast<int64_t>(M_) * N_;
  double e = 0;
  for (int img = 0; img < images_; ++img) {
    Sgemm(M_, N_, K_, qa_h + img * am, qb_h + img * bm, bt_, scratch);
    e += SumSqDiff(p_.data() + (static_cast<int64_t>(h) * images_ + img) * pm, scratch, pm);
  }
  return e;
}

void MatmulObjective::SetQuantizedA(std::vector<float> qa) {
  qa_ = std::move(qa);
  op_b_.res.ready = false;
  if (bt_ && K_ < M_) PrepareResidual(/*for_a=*/false, &op_b_.res);
  if (!bt_) PrepareResidualAvB(&op_b_.res);
  if (op_b_.res.ready) ResetChains(&op_b_);
}

void MatmulObjective::SetQuantizedB(std::vector<float> qb) {
  qb_ = std::move(qb);
  op_a_.res.ready = false;
  if (bt_ && K_ < N_) PrepareResidual(/*for_a=*/true, &op_a_.res);
  if (op_a_.res.ready) ResetChains(&op_a_);
}

void MatmulObjective::ResetChains(Operand* op) const {
  const int64_t per_img = static_cast<int64_t>(op->res.xi) * op->res.xj;
  op->chain.assign(static_cast<size_t>(heads_) * parts(), HeadChain{});
  for (int h = 0; h < heads_; ++h)
    for (int part = 0; part < parts(); ++part) {
      HeadChain& ch = op->chain[static_cast<size_t>(h) * parts() + part];
      ch.U.assign(static_cast<size_t>(per_img * part_images(part)), 0);
      ch.V.assign(ch.U.size(), 0.0);
    }
}

void MatmulObjective::PrepareResidual(bool for_a, Residual* res) const {
  // for_a: X = A (M x K), Y = Qb (N x K), target P (M x N).
  // else:  X = B (N x K), Y = Qa (M x K), target P^T (N x M).
  const int rows = for_a ? M_ : N_, cols = for_a ? N_ : M_, K = K_;
  const float* xs = for_a ? a_ : b_;
  const float* ys = for_a ? qb_.data() : qa_.data();
  const int64_t pairs = static_cast<int64_t>(heads_) * images_;
  res->rows = rows;
  res->R.resize(static_cast<size_t>(pairs) * rows * K);
  res->XH.resize(static_cast<size_t>(pairs) * rows * K);
  res->RR.assign(static_cast<size_t>(heads_) * parts(), 0.0);
  res->XR.assign(res->RR.size(), 0.0);
  res->XHX.assign(res->RR.size(), 0.0);
  res->H.resize(static_cast<size_t>(pairs) * K * K);
  res->rr.assign(static_cast<size_t>(pairs), 0.0);
  exec::ParallelForScratch(
      pairs, pairs * rows * cols * K > kMinParallelWork,
      [&] { return std::vector<float>(static_cast<size_t>(rows) * cols); },
      [&](std::vector<float>& r0, int64_t p) {
        const float* x = xs + p * rows * K;
        const float* y = ys + p * cols * K;
        const float* tgt = p_.data() + p * M_ * N_;
        Sgemm(rows, cols, K, x, y, /*b_transposed=*/true, r0.data());  // X Y^T
        double rr = 0;
        for (int i = 0; i < rows; ++i)
          for (int j = 0; j < cols; ++j) {
            const float t = for_a ? tgt[i * N_ + j] : tgt[j * N_ + i];
            const double d = static_cast<double>(t) - r0[static_cast<size_t>(i) * cols + j];
            r0[static_cast<size_t>(i) * cols + j] = static_cast<float>(d);
            rr += d * d;
          }
        res->rr[static_cast<size_t>(p)] = rr;
        Sgemm(rows, K, cols, r0.data(), y, /*b_transposed=*/false, res->R.data() + p * rows * K);
        float* H = res->H.data() + p * K * K;
        for (int a = 0; a < K; ++a)
          for (int b = 0; b < K; ++b) {
            double acc = 0;
            for (int j = 0; j < cols; ++j) acc += static_cast<double>(y[j * K + a]) * y[j * K + b];
            H[a * K + b] = static_cast<float>(acc);
          }
        Sgemm(rows, K, K, x, H, /*b_transposed=*/false, res->XH.data() + p * rows * K);
      });
  res->con_rows = false;
  res->xi = rows;
  res->xj = K;
  FinishResidual(xs, res);
}

void MatmulObjective::FinishResidual(const float* xs, Residual* res) const {
  // Per (head, part): RR = sum rr, XR = <X, R>, XHX = <X H, X> over the part's images (fixed
  // order).
  const int64_t per_img = static_cast<int64_t>(res->xi) * res->xj;
  for (int h = 0; h < heads_; ++h)
    for (int part = 0; part < parts(); ++part) {
      const int img0 = part * part_size(), n = part_images(part);
      const int64_t at = (static_cast<int64_t>(h) * images_ + img0) * per_img;
      double rrs = 0, xr = 0, xhx = 0;
      for (int img = img0; img < img0 + n; ++img) rrs += res->rr[static_cast<size_t>(h) * images_ + img];
      SelectScanKernels().dot2(xs + at, res->R.data() + at, res->XH.data() + at, per_img * n, &xr, &xhx);
      const size_t hp = static_cast<size_t>(h) * parts() + part;
      res->RR[hp] = rrs;
      res->XR[hp] = xr;
      res->XHX[hp] = xhx;
    }
  res->ready = true;
}

void MatmulObjective::PrepareResidualAvB(Residual* res) const {
  // X = v (K x N), Y = Qa (M x K), target P (M x N): E = Q(X) - X,
  //   err = ||r0 - Y E||^2 = ||r0||^2 - 2 <E, R> + <E, H E>,  r0 = P - Y X, R = Y^T r0,
  //   H = Y^T Y (K x K, over tokens), per (head, image).
  const int M = M_, K = K_, N = N_;
  const int64_t pairs = static_cast<int64_t>(heads_) * images_;
  res->rows = K;
  res->con_rows = true;
  res->xi = K;
  res->xj = N;
  res->R.resize(static_cast<size_t>(pairs) * K * N);
  res->XH.resize(res->R.size());
  res->H.resize(static_cast<size_t>(pairs) * K * K);
  res->rr.assign(static_cast<size_t>(pairs), 0.0);
  res->RR.assign(static_cast<size_t>(heads_) * parts(), 0.0);
  res->XR.assign(res->RR.size(), 0.0);
  res->XHX.assign(res->RR.size(), 0.0);
  exec::ParallelForScratch(
      pairs, pairs * M * K * (N + K) > kMinParallelWork,
      [&] { return std::vector<float>(static_cast<size_t>(M) * N); },
      [&](std::vector<float>& r0, int64_t p) {
        const float* x = b_ + p * K * N;
        const float* y = qa_.data() + p * M * K;
        const float* tgt = p_.data() + p * M * N;
        Sgemm(M, N, K, y, x, /*b_transposed=*/false, r0.data());  // Y X
        double rr = 0;
        for (int64_t i = 0; i < static_cast<int64_t>(M) * N; ++i) {
          const double d = static_cast<double>(tgt[i]) - r0[static_cast<size_t>(i)];
          r0[static_cast<size_t>(i)] = static_cast<float>(d);
          rr += d * d;
        }
        res->rr[static_cast<size_t>(p)] = rr;
        float* R = res->R.data() + p * K * N;
        float* H = res->H.data() + p * K * K;
        SgemmOneThread('T', 'N', K, N, M, y, K, r0.data(), N, R, N);  // Y^T r0
        SgemmOneThread('T', 'N', K, K, M, y, K, y, K, H, K);           // Y^T Y
        Sgemm(K, N, K, H, x, /*b_transposed=*/false, res->XH.data() + p * K * N);  // H X
      });
  FinishResidual(b_, res);
}

double MatmulObjective::ResidualHeadError(const Residual& res, int h, const float* x_h,
                                          const float* qx_h, float* e, float* eh) const {
  const int rows = res.rows, K = K_;
  const int64_t per = static_cast<int64_t>(rows) * K;
  double err = 0;
  for (int img = 0; img < images_; ++img) {
    const int64_t p = static_cast<int64_t>(h) * images_ + img;
    for (int64_t i = 0; i < per; ++i) e[i] = qx_h[img * per + i] - x_h[img * per + i];
    Sgemm(rows, K, K, e, res.H.data() + p * K * K, false, eh);
    const float* R = res.R.data() + p * per;
    double lin = 0, quad = 0;
    SelectScanKernels().dot2(e, R, eh, per, &lin, &quad);
    err += res.rr[static_cast<size_t>(p)] - 2.0 * lin + quad;
  }
  return err;
}

void MatmulObjective::SortHeads(const float* x, int64_t per_head, Operand* op) const {
  if (op->sorted_built) return;
  op->sorted_built = true;
  op->sorted_ok = per_head < (int64_t{1} << 32);
  for (int64_t i = 0; i < per_head * heads_ && op->sorted_ok; ++i) op->sorted_ok = !std::isnan(x[i]);
  if (!op->sorted_ok) return;
  op->sorted.assign(static_cast<size_t>(heads_) * parts(), {});
  const int64_t per_img = per_head / images_;
  for (int h = 0; h < heads_; ++h)
    for (int part = 0; part < parts(); ++part)
      SortWithIndex(x + h * per_head + static_cast<int64_t>(part) * part_size() * per_img,
                    per_img * part_images(part), &op->sorted[static_cast<size_t>(h) * parts() + part]);
}

void MatmulObjective::ChainHead(const Residual& res, const SortedValues& sorted, int h, int part,
                                const UniformCandidates& c, HeadChain* ch, double* err) const {
  const int M = c.count, xj = res.xj;
  const int D = res.con_rows ? res.xi : res.xj;  // H is D x D
  const int64_t per_img = static_cast<int64_t>(res.xi) * res.xj;
  const int nimg = part_images(part);
  const int64_t per = per_img * nimg;
  const int64_t first = static_cast<int64_t>(h) * images_ + static_cast<int64_t>(part) * part_size();
  std::vector<int16_t>& U = ch->U;
  std::vector<double>& V = ch->V;
  const size_t hp = static_cast<size_t>(h) * parts() + part;
  const double RR = res.RR[hp], XR = res.XR[hp], XHX = res.XHX[hp];
  const float* R = res.R.data() + first * per_img;
  const float* XH = res.XH.data() + first * per_img;
  const float* Hh = res.H.data() + first * D * D;
  const AxpyF32F64Fn axpy = SelectAxpyF32F64();
  const std::vector<int> order = ScaleOrder(c, h);
  // X of this head sorted (once per objective): u = code - z is monotone in x, so a candidate's
  // u is given by 2^b boundaries in the sorted order (bisection with the quantizer's Encode),
  // and the elements whose u changed are whole ranges of the sorted order.
  const std::vector<uint32_t>& sidx = sorted.idx;
  CodeSteps next;
  std::vector<float> uf;
  const int64_t limit = static_cast<int64_t>(chain_fraction_ * static_cast<double>(per));
  for (int j = 0; j < M; ++j) {
    const int i = order[static_cast<size_t>(j)];
    const UniformQuantizer q(UniformParams{c.bits, c.scale(h, i), c.zp(h, i)});
    UniformSteps(q, c.zp(h, i), sorted.val.data(), per, &next);
    if (CountChanged(ch->u, next, per) > limit) {
      // From scratch at this candidate: U from the steps, V = U H per image with exact
      // products (small integer times float) summed in double (search/gram.h), the three sums.
      ForEachRange(next, per, [&](int64_t a, int64_t b, int u) {
        for (int64_t p = a; p < b; ++p) U[sidx[static_cast<size_t>(p)]] = static_cast<int16_t>(u);
      });
      uf.resize(static_cast<size_t>(per_img));
      for (int img = 0; img < nimg; ++img) {
        const int16_t* ui = U.data() + img * per_img;
        const float* Hi = Hh + static_cast<int64_t>(img) * D * D;
        double* vi = V.data() + img * per_img;
        if (res.con_rows) {  // U [D][xj]: V [xj][D] = U^T H
          for (int64_t e = 0; e < per_img; ++e) uf[static_cast<size_t>(e)] = ui[e];
          GramAtB(uf.data(), xj, xj, Hi, D, D, D, vi, D, false);
        } else {  // U [xi][D]: V [xi][D] = U H = (U^T)^T H
          const int xi = res.xi;
          for (int r = 0; r < xi; ++r)
            for (int k = 0; k < D; ++k) uf[static_cast<size_t>(k) * xi + r] = ui[static_cast<int64_t>(r) * D + k];
          GramAtB(uf.data(), xi, xi, Hi, D, D, D, vi, D, false);
        }
      }
      double a1 = 0, a2 = 0, a3 = 0;
      for (int64_t e = 0; e < per; ++e) {
        const double u = U[static_cast<size_t>(e)];
        a1 += u * static_cast<double>(R[e]);
        a2 += u * static_cast<double>(XH[e]);
      }
      for (int img = 0; img < nimg; ++img) {
        const int16_t* ui = U.data() + img * per_img;
        const double* vi = V.data() + img * per_img;
        for (int ii = 0; ii < res.xi; ++ii)
          for (int jj = 0; jj < xj; ++jj) {
            const int64_t at = static_cast<int64_t>(ii) * xj + jj;
            const int64_t vat = res.con_rows ? static_cast<int64_t>(jj) * D + ii : at;
            a3 += static_cast<double>(ui[at]) * vi[vat];
          }
      }
      ch->ur = a1;
      ch->uxh = a2;
      ch->uhu = a3;
    } else {
      ForEachChange(ch->u, next, per, [&](int64_t a, int64_t b, int uo, int un) {
        const double d = static_cast<double>(un - uo);
        for (int64_t p = a; p < b; ++p) {
          // Element (image, i, j) with contracted index k and other index r (the V row):
          // u_r^T H u_r moves by d (2 v_k + d H_kk), then v_r += d H_k.
          const int64_t at = sidx[static_cast<size_t>(p)];
          const int64_t img = at / per_img, ij = at % per_img, ii = ij / xj, jj = ij % xj;
          const int64_t k = res.con_rows ? ii : jj, r = res.con_rows ? jj : ii;
          const float* Hk = Hh + (img * D + k) * D;
          double* v = V.data() + img * per_img + r * D;
          ch->uhu += d * (2.0 * v[k] + d * static_cast<double>(Hk[k]));
          ch->ur += d * static_cast<double>(R[at]);
          ch->uxh += d * static_cast<double>(XH[at]);
          axpy(v, d, Hk, D);
          U[static_cast<size_t>(at)] = static_cast<int16_t>(un);
        }
      });
    }
    std::swap(ch->u, next);
    const double s = c.scale(h, i);
    err[i] = RR - 2.0 * (s * ch->ur - XR) + s * s * ch->uhu - 2.0 * s * ch->uxh + XHX;
  }
}

namespace {

// Per-thread buffers of EvalPerHead: the fake-quantized operand, the product, and the residual
// form's two work rows.
struct HeadScratch {
  HeadScratch(int64_t x, int64_t out, int64_t res)
      : qx(static_cast<size_t>(x)), scratch(static_cast<size_t>(out)),
        e(static_cast<size_t>(res)), eh(static_cast<size_t>(res)) {}
  std::vector<float> qx, scratch, e, eh;
};

}  // namespace

void MatmulObjective::EvalPerHead(bool for_a, const UniformCandidates& c, std::vector<double>* err) {
  ADALOG_CHECK(c.groups == heads_, for_a ? "MM-A: " : "MM-B: ", c.groups, " groups for ", heads_, " heads");
  const int64_t fixed_per_head = for_a ? b_per_head() : a_per_head();
  ADALOG_CHECK(static_cast<int64_t>((for_a ? qb_ : qa_).size()) == heads_ * fixed_per_head,
               for_a ? "MM-A: B not set" : "MM-B: A not set");
  err->assign(static_cast<size_t>(heads_) * c.count, 0.0);
  Operand& op = for_a ? op_a_ : op_b_;
  const float* x = for_a ? a_ : b_;
  const int64_t per = for_a ? a_per_head() : b_per_head();
  if (op.res.ready) SortHeads(x, per, &op);
  if (op.res.ready && op.sorted_ok) {
    // Chain form: per (head, part), one thread each, fixed order within; a head's error is its
    // parts' errors added in part order (the same sums for any thread count).
    const int np = parts();
    std::vector<double> part_err(static_cast<size_t>(heads_) * np * c.count);
    const int items = heads_ * np;
#pragma omp parallel for schedule(dynamic, 1) if (items > 1)
    for (int it = 0; it < items; ++it)
      ChainHead(op.res, op.sorted[static_cast<size_t>(it)], it / np, it % np, c,
                &op.chain[static_cast<size_t>(it)], part_err.data() + static_cast<size_t>(it) * c.count);
    for (int h = 0; h < heads_; ++h)
      for (int i = 0; i < c.count; ++i) {
        double e = part_err[(static_cast<size_t>(h) * np) * c.count + i];
        for (int part = 1; part < np; ++part) e += part_err[(static_cast<size_t>(h) * np + part) * c.count + i];
        (*err)[static_cast<size_t>(h) * c.count + i] = e;
      }
    return;
  }
  const int64_t pairs = static_cast<int64_t>(heads_) * c.count;
  exec::ParallelForScratch(
      pairs, pairs * a_per_head() * N_ > kMinParallelWork,
      [&] {
        return HeadScratch(per, static_cast<int64_t>(M_) * N_,
                           static_cast<int64_t>(for_a ? M_ : N_) * K_);
      },
      [&](HeadScratch& scr, int64_t p) {
        auto& [qx, scratch, e, eh] = scr;
        const int h = static_cast<int>(p / c.count), i = static_cast<int>(p % c.count);
        UniformQuantizer(UniformParams{c.bits, c.scale(h, i), c.zp(h, i)}).FakeQuant(x + h * per, per, qx.data());
        double& out = (*err)[static_cast<size_t>(p)];
        if (op.res.ready) {
          out = ResidualHeadError(op.res, h, x + h * per, qx.data(), e.data(), eh.data());
        } else if (for_a) {
          out = HeadError(h, qx.data(), qb_.data() + h * b_per_head(), scratch.data());
        } else {
          out = HeadError(h, qa_.data() + h * a_per_head(), qx.data(), scratch.data());
        }
      });
}

void MatmulObjective::EvalATensor(int count, const std::function<FakeQuantFn(int)>& make_fq,
                                  std::vector<double>* err) const {
  ADALOG_CHECK(static_cast<int64_t>(qb_.size()) == heads_ * b_per_head(), "MM-A: B not set");
  std::vector<FakeQuantFn> fqs;
  for (int i = 0; i < count; ++i) fqs.push_back(make_fq(i));
  std::vector<double> per(static_cast<size_t>(count) * heads_);
  const int64_t pairs = static_cast<int64_t>(count) * heads_;
  exec::ParallelForScratch(
      pairs, pairs * a_per_head() * N_ > kMinParallelWork,
      [&] {
        return std::make_pair(std::vector<float>(static_cast<size_t>(a_per_head())),
                              std::vector<float>(static_cast<size_t>(M_) * N_));
      },
      [&](auto& scr, int64_t p) {
        auto& [qa, scratch] = scr;
        const int i = static_cast<int>(p / heads_), h = static_cast<int>(p % heads_);
        fqs[static_cast<size_t>(i)](a_ + h * a_per_head(), a_per_head(), qa.data());
        per[static_cast<size_t>(p)] =
            HeadError(h, qa.data(), qb_.data() + h * b_per_head(), scratch.data());
      });
  err->assign(static_cast<size_t>(count), 0.0);
  for (int i = 0; i < count; ++i)
    for (int h = 0; h < heads_; ++h)
      (*err)[static_cast<size_t>(i)] += per[static_cast<size_t>(i) * heads_ + h];
}

}  // namespace adalog::search
