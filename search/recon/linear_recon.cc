// The patch-embedding and head reconstruction units: one Linear each (see linear_recon.h).
#include "search/recon/linear_recon.h"

#include <algorithm>
#include <cmath>

#include "quant/adaround.h"
#include "quant/error.h"
#include "runtime/parallel.h"

namespace adalog::search {

namespace {

size_t Sz(int64_t n) { return static_cast<size_t>(n); }

}  // namespace

namespace {

// f(begin, end) on fixed pieces of [0, n) (kPoolPiece rows or channels each, whatever the thread
// count) on the runtime's pool (runtime/thread_pool.h): the callers' work is per row / per output
// channel, so the bytes do not depend on the split; and the pool does not wait for a worker that
// has not started, which keeps a busy machine's descheduled second thread from stalling every
// region as an OpenMP barrier does.
constexpr int64_t kPoolPiece = 32;
template <typename F>
void PoolRanges(int64_t n, int threads, const F& f) {
  const int64_t pieces = (n + kPoolPiece - 1) / kPoolPiece;
  exec::PoolFor(pieces, threads, [&](int, int64_t c) {
    f(c * kPoolPiece, std::min(n, (c + 1) * kPoolPiece));
  });
}

}  // namespace

template <typename T>
LinearRecon<T>::LinearRecon(const LinearParams& lin, const UniformPerChannel& wq,
                            const ActQuant& in_q, int rows_per_image, LinearLoss loss,
                            int max_batch, int threads)
    : lin_(lin),
      wq_(wq),
      quant_in_(in_q.kind == ActQuant::Kind::kUniform),
      rows_per_image_(rows_per_image),
      loss_(loss),
      max_batch_(max_batch),
      threads_(std::max(1, threads)) {
  ADALOG_CHECK(in_q.kind == ActQuant::Kind::kNone || in_q.kind == ActQuant::Kind::kUniform,
               "reconstruction of a single Linear: only a uniform or no input quantizer is supported");
  ADALOG_CHECK(lin.in > 0 && lin.out > 0 && lin.weight.size() == Sz(int64_t{lin.in} * lin.out) &&
                   lin.bias.size() == Sz(lin.out),
               "reconstruction of a single Linear: inconsistent weight / bias sizes");
  ADALOG_CHECK(wq.num_channels() == lin.out, "reconstruction of a single Linear: ",
               wq.num_channels(), " weight quantizer channels for ", lin.out, " outputs");
  ADALOG_CHECK(rows_per_image > 0 && max_batch > 0, "reconstruction of a single Linear: bad sizes");
  wq.Validate();
  if (quant_in_) {
    in_q.uniform.Validate();
    zp_ = in_q.uniform.params.zero_point;
    cmin_ = in_q.uniform.params.CodeMin();
    cmax_ = in_q.uniform.params.CodeMax();
    init_scale_ = in_q.uniform.params.scale;
  }
  const int64_t rows = int64_t{max_batch} * rows_per_image;
  xq_.resize(Sz(rows * lin.in));
  if (quant_in_) {
    dxdx_.resize(xq_.size());
    dxds_.resize(xq_.size());
    rec_.resize(xq_.size());
  }
  w_soft_.resize(lin.weight.size());
  w_soft_t_.resize(lin.weight.size());
  dw_dalpha_.resize(lin.weight.size());
  y_.resize(Sz(rows * lin.out));
  gy_.resize(y_.size());
  gx_.resize(xq_.size());
  partial_.resize(Sz(rows));
}

template <typename T>
LinearTrainParams<T> LinearRecon<T>::InitialParams() const {
  LinearTrainParams<T> p;
  p.alpha.resize(lin_.weight.size());
  for (int o = 0; o < lin_.out; ++o) {
    const float s = wq_.scales[Sz(o)];
    for (int i = 0; i < lin_.in; ++i) {
      const size_t k = Sz(int64_t{o} * lin_.in + i);
      p.alpha[k] = static_cast<T>(AdaRoundInitAlpha(lin_.weight[k], s));
    }
  }
  if (quant_in_) p.act_scale.assign(1, static_cast<T>(init_scale_));
  return p;
}

template <typename T>
double LinearRecon<T>::Forward(const LinearTrainParams<T>& p, const T* x, int batch,
                               const T* target, T* out, SteMode mode) {
  ADALOG_CHECK(batch >= 1 && batch <= max_batch_, "reconstruction of a single Linear: batch ",
               batch, " outside 1..", max_batch_);
  ADALOG_CHECK(p.alpha.size() == lin_.weight.size() && p.act_scale.size() == (quant_in_ ? 1u : 0u),
               "reconstruction of a single Linear: parameters of the wrong size");
  batch_ = batch;
  const int in = lin_.in, nout = lin_.out;
  const int64_t rows = int64_t{batch} * rows_per_image_;
  // Soft weights W~ [out][in], their transpose [in][out] and dW~/dalpha.
  PoolRanges(nout, threads_, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      const UniformParams up = wq_.channel(o);
      for (int i = 0; i < in; ++i) {
        const size_t k = Sz(o * in + i);
        const T w = AdaRoundSoftWeight<T>(lin_.weight[k], up, p.alpha[k], &dw_dalpha_[k]);
        w_soft_[k] = w;
        w_soft_t_[Sz(int64_t{i} * nout + o)] = w;
      }
    }
  });
  // Input quantizer (straight-through), then y = xq W~^T + b, row by row.
  const T s = quant_in_ ? p.act_scale[0] : T(1);
  const bool replay = mode == SteMode::kReplay;
  const T* wt = w_soft_t_.data();
  PoolRanges(rows, threads_, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      T* xr = xq_.data() + r * in;
      const T* src = x + r * in;
      if (quant_in_) {
        for (int i = 0; i < in; ++i) {
          const size_t k = Sz(r * in + i);
          xr[i] = UniformSte(src[i], s, zp_, cmin_, cmax_, &dxdx_[k], &dxds_[k],
                             mode == SteMode::kNormal ? nullptr : &rec_[k], replay);
          if (drop_.active() && drop_.Dropped(0, static_cast<int64_t>(k))) {
            xr[i] = src[i];
            dxdx_[k] = T(1);
            dxds_[k] = T(0);
          }
        }
      } else {
        std::copy(src, src + in, xr);
      }
      T* yr = y_.data() + r * nout;
      std::fill(yr, yr + nout, T(0));
      for (int i = 0; i < in; ++i) {
        const T xi = xr[i];
        const T* wi = wt + int64_t{i} * nout;
        for (int o = 0; o < nout; ++o) yr[o] += xi * wi[o];
      }
      for (int o = 0; o < nout; ++o) yr[o] += static_cast<T>(lin_.bias[Sz(o)]);
    }
  });
  if (out != nullptr) std::copy(y_.begin(), y_.begin() + rows * nout, out);
  if (target == nullptr) {
    std::fill(gy_.begin(), gy_.begin() + rows * nout, T(0));
    return 0.0;
  }
  // Loss per row (partial sums in row order) and dL/dy.
  if (loss_ == LinearLoss::kMse) {
    const T g = T(2) / (static_cast<T>(batch) * static_cast<T>(nout) * T(10));
    PoolRanges(rows, threads_, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        double acc = 0.0;
        for (int o = 0; o < nout; ++o) {
          const size_t k = Sz(r * nout + o);
          const T d = y_[k] - target[k];
          acc += static_cast<double>(d * d);
          gy_[k] = g * d;
        }
        partial_[Sz(r)] = acc;
      }
    });
  } else {
    const T inv_b = T(1) / static_cast<T>(batch);
    PoolRanges(rows, threads_, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* yr = y_.data() + r * nout;
        const T* tr = target + r * nout;
        T* gr = gy_.data() + r * nout;
        const T ym = *std::max_element(yr, yr + nout);
        const T tm = *std::max_element(tr, tr + nout);
        T zy = T(0), zt = T(0);
        for (int o = 0; o < nout; ++o) {
          zy += std::exp(yr[o] - ym);
          zt += std::exp(tr[o] - tm);
        }
        const T log_zy = std::log(zy), log_zt = std::log(zt);
        double acc = 0.0;
        for (int o = 0; o < nout; ++o) {
          const T log_q = yr[o] - ym - log_zy;  // log_softmax(y)
          const T log_p = tr[o] - tm - log_zt;  // log softmax(t)
          const T pt = std::exp(log_p);
          if (pt > T(0)) acc += static_cast<double>(pt * (log_p - log_q));
          gr[o] = (std::exp(log_q) - pt) * inv_b;
        }
        partial_[Sz(r)] = acc;
      }
    });
  }
  double sum = 0.0;
  for (int64_t r = 0; r < rows; ++r) sum += partial_[Sz(r)];
  return loss_ == LinearLoss::kMse ? sum / (static_cast<double>(batch) * nout) / 10.0
                                   : sum / static_cast<double>(batch);
}

template <typename T>
void LinearRecon<T>::Backward(const LinearTrainParams<T>& p, LinearTrainParams<T>* grad, T* dx) {
  const int in = lin_.in, nout = lin_.out;
  const int64_t rows = int64_t{batch_} * rows_per_image_;
  grad->alpha.resize(lin_.weight.size());
  grad->act_scale.assign(p.act_scale.size(), T(0));
  // dalpha[o][i] = (sum over rows of gy[r][o] xq[r][i]) * dW~/dalpha, rows in order.
  T* ga = grad->alpha.data();
  PoolRanges(nout, threads_, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      T* acc = ga + o * in;
      std::fill(acc, acc + in, T(0));
      for (int64_t r = 0; r < rows; ++r) {
        const T g = gy_[Sz(r * nout + o)];
        const T* xr = xq_.data() + r * in;
        for (int i = 0; i < in; ++i) acc[i] += g * xr[i];
      }
      const T* dwa = dw_dalpha_.data() + o * in;
      for (int i = 0; i < in; ++i) acc[i] *= dwa[i];
    }
  });
  if (!quant_in_ && dx == nullptr) return;
  // gxq = gy W~, then the input quantizer's derivatives.
  const T* w = w_soft_.data();
  PoolRanges(rows, threads_, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      T* gx = gx_.data() + r * in;
      std::fill(gx, gx + in, T(0));
      const T* gy = gy_.data() + r * nout;
      for (int o = 0; o < nout; ++o) {
        const T g = gy[o];
        const T* wo = w + int64_t{o} * in;
        for (int i = 0; i < in; ++i) gx[i] += g * wo[i];
      }
      double acc = 0.0;
      if (quant_in_) {
        const T* ds = dxds_.data() + r * in;
        for (int i = 0; i < in; ++i) acc += static_cast<double>(gx[i] * ds[i]);
      }
      partial_[Sz(r)] = acc;
      if (dx != nullptr) {
        T* d = dx + r * in;
        if (quant_in_) {
          const T* dd = dxdx_.data() + r * in;
          for (int i = 0; i < in; ++i) d[i] = gx[i] * dd[i];
        } else {
          std::copy(gx, gx + in, d);
        }
      }
    }
  });
  if (quant_in_) {
    double sum = 0.0;
    for (int64_t r = 0; r < rows; ++r) sum += partial_[Sz(r)];
    grad->act_scale[0] = static_cast<T>(sum);
  }
}

template class LinearRecon<float>;
template class LinearRecon<double>;

}  // namespace adalog::search
