// Swin row maps, mask, validation, counts and description (runtime/swin_model.h).
#include "runtime/swin_model.h"

#include <sstream>

#include "quant/error.h"

namespace adalog {

std::vector<int32_t> SwinWindowRows(int grid_h, int grid_w, int window, int shift) {
  const int hp = SwinPadded(grid_h, window), wp = SwinPadded(grid_w, window);
  const int nwh = hp / window, nww = wp / window;
  std::vector<int32_t> rows(static_cast<size_t>(hp) * wp);
  size_t r = 0;
  for (int wi = 0; wi < nwh; ++wi) {
    for (int wj = 0; wj < nww; ++wj) {
      for (int ti = 0; ti < window; ++ti) {
        for (int tj = 0; tj < window; ++tj, ++r) {
          // torch.roll(x, -shift): shifted[i] = x[(i + shift) % hp].
          const int h = (wi * window + ti + shift) % hp, w = (wj * window + tj + shift) % wp;
          rows[r] = h < grid_h && w < grid_w ? h * grid_w + w : -1;
        }
      }
    }
  }
  return rows;
}

std::vector<int32_t> SwinMergeRows(int grid_h, int grid_w) {
  const int ho = (grid_h + 1) / 2, wo = (grid_w + 1) / 2;
  static const int kDy[4] = {0, 1, 0, 1}, kDx[4] = {0, 0, 1, 1};
  std::vector<int32_t> rows(static_cast<size_t>(ho) * wo * 4);
  for (int i = 0; i < ho; ++i) {
    for (int j = 0; j < wo; ++j) {
      for (int k = 0; k < 4; ++k) {
        const int h = 2 * i + kDy[k], w = 2 * j + kDx[k];
        rows[(static_cast<size_t>(i) * wo + j) * 4 + k] = h < grid_h && w < grid_w ? h * grid_w + w : -1;
      }
    }
  }
  return rows;
}

std::vector<float> SwinShiftMask(int hp, int wp, int window, int shift) {
  auto region = [&](int v, int size) { return v < size - window ? 0 : v < size - shift ? 1 : 2; };
  const int nwh = hp / window, nww = wp / window, n = window * window;
  std::vector<float> mask(static_cast<size_t>(nwh) * nww * n * n);
  std::vector<int> id(static_cast<size_t>(n));
  for (int wi = 0; wi < nwh; ++wi) {
    for (int wj = 0; wj < nww; ++wj) {
      for (int t = 0; t < n; ++t) {
        id[t] = region(wi * window + t / window, hp) * 3 + region(wj * window + t % window, wp);
      }
      float* m = mask.data() + (static_cast<size_t>(wi) * nww + wj) * n * n;
      for (int a = 0; a < n; ++a) {
        for (int b = 0; b < n; ++b) m[a * n + b] = id[a] == id[b] ? 0.f : -100.f;
      }
    }
  }
  return mask;
}

std::vector<int> SwinBlockStages(const VitModel& m) {
  std::vector<int> st;
  for (size_t s = 0; s < m.swin.stages.size(); ++s) {
    for (int k = 0; k < m.swin.stages[s].depth; ++k) st.push_back(static_cast<int>(s));
  }
  return st;
}

namespace {

void CheckLen(size_t have, size_t want, const std::string& what) {
  ADALOG_CHECK(have == want, "model: ", what, " has ", have, " values, expected ", want);
}
void CheckLn(const LayerNormParams& n, int dim, const std::string& what) {
  ADALOG_CHECK(n.dim == dim, "model: ", what, " has width ", n.dim, ", expected ", dim);
  CheckLen(n.gamma.size(), static_cast<size_t>(dim), what + ".weight");
  CheckLen(n.beta.size(), static_cast<size_t>(dim), what + ".bias");
}
void CheckLin(const LinearParams& l, int in, int out, const std::string& what) {
  ADALOG_CHECK(l.in == in && l.out == out, "model: ", what, " is ", l.in, "->", l.out, ", expected ",
               in, "->", out);
  CheckLen(l.weight.size(), static_cast<size_t>(in) * out, what + ".weight");
  CheckLen(l.bias.size(), static_cast<size_t>(out), what + ".bias");
}

}  // namespace

void ValidateSwinModel(const VitModel& m) {
  const SwinLayout& sw = m.swin;
  ADALOG_CHECK(!m.has_cls_token && !m.has_dist_token && m.pos_embed.empty() &&
                   m.pooling == Pooling::kMeanPatches,
               "model: a Swin model has no prefix tokens, no position embedding and mean pooling");
  CheckLn(sw.embed_norm, m.dim, "patch_embed.norm");
  ADALOG_CHECK(sw.stages[0].dim == m.dim && sw.stages[0].grid_h == m.embed.grid_h() &&
                   sw.stages[0].grid_w == m.embed.grid_w(),
               "model: Swin stage 0 does not match the patch embedding");
  size_t bi = 0;
  for (size_t s = 0; s < sw.stages.size(); ++s) {
    const SwinStage& st = sw.stages[s];
    const std::string sp = "stages." + std::to_string(s);
    ADALOG_CHECK(st.depth >= 1 && st.dim >= 1 && st.grid_h >= 1 && st.grid_w >= 1 &&
                     st.grid_h <= 4096 && st.grid_w <= 4096,
                 "model: ", sp, " has depth ", st.depth, ", dim ", st.dim, ", grid ", st.grid_h, "x",
                 st.grid_w);
    for (int k = 0; k < st.depth; ++k, ++bi) {
      ADALOG_CHECK(bi < m.blocks.size(), "model: Swin stages hold more blocks than the model's ",
                   m.blocks.size());
      const BlockParams& b = m.blocks[bi];
      const std::string p = "blocks." + std::to_string(bi);
      const int d = st.dim;
      ADALOG_CHECK(b.heads >= 1 && d % b.heads == 0, "model: ", p, " has ", b.heads, " heads for width ", d);
      ADALOG_CHECK(b.attn_scale > 0.f, "model: ", p, " attention scale ", b.attn_scale);
      ADALOG_CHECK(b.window_size >= 1 && b.window_size <= 64 && b.shift_size >= 0 &&
                       b.shift_size < b.window_size,
                   "model: ", p, " window ", b.window_size, " shift ", b.shift_size);
      CheckLn(b.ln1, d, p + ".norm1");
      CheckLin(b.qkv, d, 3 * d, p + ".attn.qkv");
      CheckLin(b.proj, d, d, p + ".attn.proj");
      CheckLn(b.ln2, d, p + ".norm2");
      ADALOG_CHECK(b.fc1.out > 0, "model: ", p, ".mlp.fc1 has no outputs");
      CheckLin(b.fc1, d, b.fc1.out, p + ".mlp.fc1");
      CheckLin(b.fc2, b.fc1.out, d, p + ".mlp.fc2");
      const size_t n = static_cast<size_t>(b.window_size) * b.window_size;
      CheckLen(b.rel_bias.size(), static_cast<size_t>(b.heads) * n * n, p + ".attn.relative_position_bias");
      const size_t windows = static_cast<size_t>(SwinPadded(st.grid_h, b.window_size) / b.window_size) *
                             (SwinPadded(st.grid_w, b.window_size) / b.window_size);
      CheckLen(b.attn_mask.size(), b.shift_size > 0 ? windows * n * n : 0, p + ".attn_mask");
    }
    ADALOG_CHECK(st.has_merge == (s + 1 < sw.stages.size()), "model: ", sp,
                 st.has_merge ? " has a patch merge after the last stage" : " has no patch merge");
    if (st.has_merge) {
      const SwinStage& nx = sw.stages[s + 1];
      CheckLn(st.merge.norm, 4 * st.dim, sp + ".downsample.norm");
      CheckLin(st.merge.reduction, 4 * st.dim, nx.dim, sp + ".downsample.reduction");
      ADALOG_CHECK(nx.grid_h == (st.grid_h + 1) / 2 && nx.grid_w == (st.grid_w + 1) / 2, "model: ",
                   sp, " merges ", st.grid_h, "x", st.grid_w, " into ", nx.grid_h, "x", nx.grid_w);
    }
  }
  ADALOG_CHECK(bi == m.blocks.size(), "model: Swin stages hold ", bi, " blocks, the model ",
               m.blocks.size());
  const int last = sw.stages.back().dim;
  CheckLn(m.norm, last, "norm");
  ADALOG_CHECK(m.head.out > 0, "model: head has no outputs");
  CheckLin(m.head, last, m.head.out, "head");
}

int64_t CountSwinMacsPerImage(const VitModel& m) {
  int64_t macs = int64_t{m.embed.num_patches()} * m.dim * m.embed.in_channels * m.embed.patch *
                 m.embed.patch;
  size_t bi = 0;
  for (const SwinStage& st : m.swin.stages) {
    const int64_t t = int64_t{st.grid_h} * st.grid_w, d = st.dim;
    for (int k = 0; k < st.depth; ++k, ++bi) {
      const BlockParams& b = m.blocks[bi];
      const int w = b.window_size;
      const int64_t tp = int64_t{SwinPadded(st.grid_h, w)} * SwinPadded(st.grid_w, w);
      macs += tp * d * 3 * d + 2 * tp * w * w * d + tp * d * d + 2 * t * d * b.fc1.out;
    }
    if (st.has_merge) {
      macs += int64_t{(st.grid_h + 1) / 2} * ((st.grid_w + 1) / 2) * 4 * d * st.merge.reduction.out;
    }
  }
  macs += int64_t{m.swin.stages.back().dim} * m.head.out;
  return macs;
}

int64_t CountSwinExtraParameters(const VitModel& m) {
  int64_t n = static_cast<int64_t>(m.swin.embed_norm.gamma.size() + m.swin.embed_norm.beta.size());
  for (const SwinStage& st : m.swin.stages) {
    n += static_cast<int64_t>(st.merge.norm.gamma.size() + st.merge.norm.beta.size() +
                              st.merge.reduction.weight.size());
  }
  for (const BlockParams& b : m.blocks) n += static_cast<int64_t>(b.rel_bias.size());
  return n;
}

std::string DescribeSwinStages(const VitModel& m) {
  std::ostringstream o;
  size_t bi = 0;
  for (size_t s = 0; s < m.swin.stages.size(); ++s) {
    const SwinStage& st = m.swin.stages[s];
    const int w0 = m.blocks[bi].window_size;
    o << "stage " << s << ": depth " << st.depth << ", dim " << st.dim << ", grid " << st.grid_h
      << "x" << st.grid_w;
    if (SwinPadded(st.grid_h, w0) != st.grid_h || SwinPadded(st.grid_w, w0) != st.grid_w) {
      o << " (padded " << SwinPadded(st.grid_h, w0) << "x" << SwinPadded(st.grid_w, w0) << ")";
    }
    o << ", heads " << m.blocks[bi].heads << ", blocks (window/shift):";
    for (int k = 0; k < st.depth; ++k, ++bi) {
      o << " " << m.blocks[bi].window_size << "/" << m.blocks[bi].shift_size;
    }
    if (st.has_merge) {
      o << "; patch merge " << st.grid_h << "x" << st.grid_w << "x" << st.dim << " -> "
        << (st.grid_h + 1) / 2 << "x" << (st.grid_w + 1) / 2 << "x" << st.merge.reduction.out;
    }
    o << "\n";
  }
  return o.str();
}

}  // namespace adalog
