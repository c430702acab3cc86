"""Swin Transformer definitions used by adalog's model scripts (exported to ONNX, then imported by C++).

Two families:
  - TimmSwin: a timm-style Swin written by hand (the layout the official AdaLog code quantizes via
    timm): PatchEmbed (Conv k=s=patch, flatten to [B, L, C], LayerNorm), BasicLayer stages of
    SwinTransformerBlock (pre-norm; WindowAttention with a fused qkv Linear with bias, a relative
    position bias table [(2w-1)^2, heads] indexed by a constant relative_position_index buffer,
    cyclic shift by torch.roll, the shifted-window attention mask of -100 / 0 added before Softmax;
    Mlp with GELU), PatchMerging at the end of every stage but the last (x0..x3 = the four strided
    2x2 slices, cat on channels, LayerNorm(4C), bias-free Linear(4C, 2C)), final LayerNorm, average
    pooling over tokens (AdaptiveAvgPool1d as timm 0.4 writes it), Linear head.
    Window rule as timm: a stage whose grid's smaller side is <= window uses window = that side
    and no shift. Unlike timm 0.4 (which asserts divisibility), a grid that is not a multiple of
    the window is padded at the bottom/right with zeros after norm1 and cropped after the reverse
    shift, exactly as torchvision and the official detection code do; the mask is built for the
    padded grid. PatchMerging pads odd sides the same way.
  - make_torchvision_swin: torchvision 0.14's SwinTransformer (swin_t/s/b configs or custom ones),
    NHWC inside, pads inside every attention, mask built at run time (dynamic-shape chains in ONNX).
    make_torchvision_swin_v2 builds torchvision's Swin V2 (cosine attention, log-spaced CPB MLP);
    torch 1.13 cannot export it (aten::zero on the k bias), so the V2 rejection tests use
    TimmSwin(version=2), the same attention written exportably (WindowAttentionV2).
The two styles compute the same function up to module layout: copy_timm_to_torchvision moves the
weights of a TimmSwin into a torchvision SwinTransformer of the same config (used by
check_against_torchvision, an offline equality check).
LayerNorm eps is 1e-5 in both (timm's and torchvision's Swin default; the ViTs use 1e-6).

Run with /usr/bin/python3 (Debian torch 1.13). Set OPENBLAS_NUM_THREADS=1 before importing torch.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import vit_defs  # noqa: E402
from vit_defs import Mlp, make_gelu  # noqa: E402,F401  (the same MLP and GELU as the ViTs)

LN_EPS = 1e-5
MASK_VALUE = -100.0  # what timm and torchvision put on cross-region pairs of a shifted window


def relative_position_index(ws):
    """[ws*ws, ws*ws] int64: row-major index into the [(2ws-1)^2] bias table for each token pair.

    For tokens i=(hi, wi) and j=(hj, wj) of one window: (hi-hj+ws-1) * (2ws-1) + (wi-wj+ws-1).
    """
    hh, ww = torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")
    coords = torch.stack([hh.flatten(), ww.flatten()])  # 2, N
    rel = coords[:, :, None] - coords[:, None, :]  # 2, N, N
    rel = rel + (ws - 1)
    return rel[0] * (2 * ws - 1) + rel[1]


def window_partition(x, ws):
    """[B, H, W, C] -> [B * H/ws * W/ws, ws, ws, C], windows in raster order per image."""
    B, H, W, C = x.shape
    x = x.view(B, H // ws, ws, W // ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, ws, ws, C)


def window_reverse(windows, ws, H, W):
    """Inverse of window_partition: [B * nW, ws, ws, C] -> [B, H, W, C]."""
    C = windows.shape[-1]
    B = windows.shape[0] // ((H // ws) * (W // ws))
    x = windows.view(B, H // ws, W // ws, ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, C)


def shift_attention_mask(Hp, Wp, ws, shift):
    """[nW, N, N] float mask for a shifted window layer on a padded Hp x Wp grid: 0 where the two
    tokens came from the same region of the un-shifted image, MASK_VALUE otherwise."""
    img = torch.zeros(1, Hp, Wp, 1)
    cnt = 0
    for hs in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for wsl in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            img[:, hs, wsl, :] = cnt
            cnt += 1
    mw = window_partition(img, ws).view(-1, ws * ws)
    diff = mw[:, None, :] - mw[:, :, None]
    return diff.masked_fill(diff != 0, MASK_VALUE).masked_fill(diff == 0, 0.0)


def masked_softmax_av(attn, mask, v, heads, Bw, N, C):
    """softmax(attn + mask) @ v with the heads merged back: attn [Bw, heads, N, N], mask [nW, N, N]
    or None (the windows of one image are consecutive in Bw), v [Bw, heads, N, C / heads] ->
    [Bw, N, C]. Bw, N, C come from the caller's x.shape, so the export's shape nodes stay those of
    the input."""
    if mask is not None:
        nW = mask.shape[0]
        attn = attn.view(Bw // nW, nW, heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
        attn = attn.view(-1, heads, N, N)
    attn = attn.softmax(dim=-1)
    return (attn @ v).transpose(1, 2).reshape(Bw, N, C)


class WindowAttention(nn.Module):
    def __init__(self, dim, ws, heads):
        super().__init__()
        assert dim % heads == 0
        self.dim, self.ws, self.heads = dim, ws, heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_position_index(ws))
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, mask=None):
        Bw, N, C = x.shape
        qkv = self.qkv(x).reshape(Bw, N, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q = q * self.scale
        attn = q @ k.transpose(-2, -1)  # Bw, heads, N, N
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(N, N, self.heads).permute(2, 0, 1).contiguous()
        attn = attn + bias.unsqueeze(0)
        return self.proj(masked_softmax_av(attn, mask, v, self.heads, Bw, N, C))


class WindowAttentionV2(nn.Module):
    """Swin V2 attention (for rejection tests only): cosine similarity of L2-normalized q and k
    times a learned per-head logit scale (exp of a clamped log, max log(100)), plus the continuous
    position bias: a 2-layer MLP (Linear(2, 64), ReLU, bias-free Linear(64, heads)) on log-spaced
    relative coordinates, gathered by the same relative_position_index, 16 * sigmoid. The qkv
    Linear has q and v biases, no k bias (as timm's V2)."""

    def __init__(self, dim, ws, heads, cpb_hidden=64):
        super().__init__()
        self.dim, self.ws, self.heads = dim, ws, heads
        self.head_dim = dim // heads
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones(heads, 1, 1)))
        self.cpb_mlp = nn.Sequential(nn.Linear(2, cpb_hidden), nn.ReLU(), nn.Linear(cpb_hidden, heads, bias=False))
        r = torch.arange(-(ws - 1), ws, dtype=torch.float32)
        table = torch.stack(torch.meshgrid(r, r, indexing="ij"), -1) / (ws - 1) * 8  # (2ws-1, 2ws-1, 2)
        table = torch.sign(table) * torch.log2(table.abs() + 1.0) / 3.0  # log2(8) = 3
        self.register_buffer("relative_coords_table", table.reshape(-1, 2))
        self.register_buffer("relative_position_index", relative_position_index(ws))
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, mask=None):
        Bw, N, C = x.shape
        bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias)
        qkv = qkv.reshape(Bw, N, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
        scale = torch.clamp(self.logit_scale, max=4.605170185988091).exp()  # log(100)
        attn = attn * scale
        pb = self.cpb_mlp(self.relative_coords_table)[self.relative_position_index.view(-1)]
        pb = 16 * torch.sigmoid(pb.view(N, N, self.heads).permute(2, 0, 1).contiguous())
        attn = attn + pb.unsqueeze(0)
        return self.proj(masked_softmax_av(attn, mask, v, self.heads, Bw, N, C))


class SwinBlock(nn.Module):
    """One Swin block on a fixed H x W grid; input/output [B, H*W, C]."""

    def __init__(self, dim, resolution, heads, window, shift, mlp_ratio, gelu, version=1):
        super().__init__()
        H, W = resolution
        self.version = version
        self.H, self.W = H, W
        if min(H, W) <= window:  # timm's rule: one window covers the stage, no shift
            window, shift = min(H, W), 0
        self.ws, self.shift = window, shift
        self.Hp = -(-H // window) * window
        self.Wp = -(-W // window) * window
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = (WindowAttention if version == 1 else WindowAttentionV2)(dim, window, heads)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), gelu)
        mask = shift_attention_mask(self.Hp, self.Wp, window, shift) if shift > 0 else None
        self.register_buffer("attn_mask", mask)

    def forward(self, x):
        B, L, C = x.shape
        H, W, ws = self.H, self.W, self.ws
        shortcut = x
        # V1: pre-norm. V2: res-post-norm (norm1 / norm2 on the branch outputs).
        x = (self.norm1(x) if self.version == 1 else x).view(B, H, W, C)
        if self.Hp != H or self.Wp != W:
            x = F.pad(x, (0, 0, 0, self.Wp - W, 0, self.Hp - H))
        if self.shift > 0:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        win = window_partition(x, ws).view(-1, ws * ws, C)
        win = self.attn(win, self.attn_mask)
        x = window_reverse(win.view(-1, ws, ws, C), ws, self.Hp, self.Wp)
        if self.shift > 0:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        if self.Hp != H or self.Wp != W:
            x = x[:, :H, :W, :].contiguous()
        if self.version == 1:
            x = shortcut + x.view(B, H * W, C)
            return x + self.mlp(self.norm2(x))
        x = shortcut + self.norm1(x.view(B, H * W, C))
        return x + self.norm2(self.mlp(x))


class PatchMerging(nn.Module):
    """[B, H*W, C] -> [B, ceil(H/2)*ceil(W/2), 2C]; odd sides padded with zeros at the bottom/right."""

    def __init__(self, dim, resolution):
        super().__init__()
        self.H, self.W = resolution
        self.norm = nn.LayerNorm(4 * dim, eps=LN_EPS)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x):
        B, L, C = x.shape
        x = x.view(B, self.H, self.W, C)
        if self.H % 2 or self.W % 2:
            x = F.pad(x, (0, 0, 0, self.W % 2, 0, self.H % 2))
        x0 = x[:, 0::2, 0::2, :]
        x1 = x[:, 1::2, 0::2, :]
        x2 = x[:, 0::2, 1::2, :]
        x3 = x[:, 1::2, 1::2, :]
        x = torch.cat([x0, x1, x2, x3], -1).view(B, -1, 4 * C)
        return self.reduction(self.norm(x))


class BasicLayer(nn.Module):
    def __init__(self, dim, resolution, depth, heads, window, mlp_ratio, gelu, downsample, version=1):
        super().__init__()
        self.blocks = nn.ModuleList([
            SwinBlock(dim, resolution, heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio, gelu, version)
            for i in range(depth)])
        self.downsample = PatchMerging(dim, resolution) if downsample else None

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return self.downsample(x) if self.downsample is not None else x


class PatchEmbed(nn.Module):
    def __init__(self, img_size, patch, in_chans, dim):
        super().__init__()
        self.grid = (img_size // patch, img_size // patch)
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)

    def forward(self, x):
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class TimmSwin(nn.Module):
    """timm-style Swin V1 (no absolute position embedding, patch norm on). version=2 swaps in V2's
    attention (WindowAttentionV2) and res-post-norm blocks (V2's patch merging is not modelled: it
    exists only for the importer's rejection tests)."""

    def __init__(self, img_size=224, patch=4, in_chans=3, num_classes=1000, embed_dim=96, depths=(2, 2, 6, 2),
                 heads=(3, 6, 12, 24), window=7, mlp_ratio=4.0, gelu="erf", version=1):
        super().__init__()
        assert len(depths) == len(heads) and version in (1, 2)
        self.patch_embed = PatchEmbed(img_size, patch, in_chans, embed_dim)
        res = self.patch_embed.grid
        layers = []
        dim = embed_dim
        for i, (d, h) in enumerate(zip(depths, heads)):
            last = i == len(depths) - 1
            layers.append(BasicLayer(dim, res, d, h, window, mlp_ratio, gelu, downsample=not last,
                                     version=version))
            if not last:
                res = (-(-res[0] // 2), -(-res[1] // 2))
                dim *= 2
        self.layers = nn.Sequential(*layers)
        self.num_features = dim
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.avgpool = nn.AdaptiveAvgPool1d(1)
        self.head = nn.Linear(dim, num_classes)
        self._init_weights()

    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, WindowAttention):
                nn.init.trunc_normal_(m.relative_position_bias_table, std=0.02)

    def forward_features(self, x):
        x = self.layers(self.patch_embed(x))
        x = self.norm(x)  # B, L, C
        return torch.flatten(self.avgpool(x.transpose(1, 2)), 1)

    def forward(self, x):
        return self.head(self.forward_features(x))


TV_CONFIGS = {
    # name: (patch, embed_dim, depths, heads, window) as torchvision.models.swin_{t,s,b}
    "swin_t": (4, 96, (2, 2, 6, 2), (3, 6, 12, 24), 7),
    "swin_s": (4, 96, (2, 2, 18, 2), (3, 6, 12, 24), 7),
    "swin_b": (4, 128, (2, 2, 18, 2), (4, 8, 16, 32), 7),
}


def make_torchvision_swin(config=None, *, patch=4, embed_dim=96, depths=(2, 2, 6, 2), heads=(3, 6, 12, 24),
                          window=7, mlp_ratio=4.0, num_classes=1000):
    """torchvision.models.swin_transformer.SwinTransformer (V1). config in TV_CONFIGS overrides the
    architecture arguments. Input size is free (torchvision pads inside every block)."""
    from torchvision.models.swin_transformer import SwinTransformer
    if config is not None:
        patch, embed_dim, depths, heads, window = TV_CONFIGS[config]
    return SwinTransformer(patch_size=[patch, patch], embed_dim=embed_dim, depths=list(depths),
                           num_heads=list(heads), window_size=[window, window], mlp_ratio=mlp_ratio,
                           stochastic_depth_prob=0.0, num_classes=num_classes)


def make_torchvision_swin_v2(*, patch=4, embed_dim=96, depths=(2, 2, 6, 2), heads=(3, 6, 12, 24), window=8,
                             num_classes=1000):
    """torchvision's Swin V2 (cosine attention with a learned logit scale, log-spaced continuous
    position bias MLP, res-post-norm). adalog does not support it: used to test the rejection."""
    from torchvision.models.swin_transformer import PatchMergingV2, SwinTransformer, SwinTransformerBlockV2
    return SwinTransformer(patch_size=[patch, patch], embed_dim=embed_dim, depths=list(depths),
                           num_heads=list(heads), window_size=[window, window], stochastic_depth_prob=0.0,
                           num_classes=num_classes, block=SwinTransformerBlockV2,
                           downsample_layer=PatchMergingV2)


@torch.no_grad()
def copy_timm_to_torchvision(timm_model, tv_model):
    """Copies a TimmSwin's weights into a torchvision SwinTransformer of the same architecture.

    torchvision layout: features[0] = (Conv, Permute, LayerNorm); then for stage i, features[2i+1]
    = its blocks and features[2i+2] = its PatchMerging (absent after the last stage); norm, head.
    Raises if the architectures differ (a tensor shape mismatch or a leftover parameter).
    """
    pairs = []
    pe = timm_model.patch_embed
    pairs += [(pe.proj.weight, tv_model.features[0][0].weight), (pe.proj.bias, tv_model.features[0][0].bias),
              (pe.norm.weight, tv_model.features[0][2].weight), (pe.norm.bias, tv_model.features[0][2].bias)]
    for i, layer in enumerate(timm_model.layers):
        tv_blocks = tv_model.features[2 * i + 1]
        assert len(tv_blocks) == len(layer.blocks)
        for b, tb in zip(layer.blocks, tv_blocks):
            # timm's window shrink rule (grid <= window) has no torchvision counterpart: demand equality.
            assert b.ws == tb.attn.window_size[0], "stage grid smaller than the window: layouts differ"
            pairs += [(b.norm1.weight, tb.norm1.weight), (b.norm1.bias, tb.norm1.bias),
                      (b.attn.qkv.weight, tb.attn.qkv.weight), (b.attn.qkv.bias, tb.attn.qkv.bias),
                      (b.attn.proj.weight, tb.attn.proj.weight), (b.attn.proj.bias, tb.attn.proj.bias),
                      (b.attn.relative_position_bias_table, tb.attn.relative_position_bias_table),
                      (b.norm2.weight, tb.norm2.weight), (b.norm2.bias, tb.norm2.bias),
                      (b.mlp.fc1.weight, tb.mlp[0].weight), (b.mlp.fc1.bias, tb.mlp[0].bias),
                      (b.mlp.fc2.weight, tb.mlp[3].weight), (b.mlp.fc2.bias, tb.mlp[3].bias)]
        if layer.downsample is not None:
            tm = tv_model.features[2 * i + 2]
            pairs += [(layer.downsample.norm.weight, tm.norm.weight), (layer.downsample.norm.bias, tm.norm.bias),
                      (layer.downsample.reduction.weight, tm.reduction.weight)]
    pairs += [(timm_model.norm.weight, tv_model.norm.weight), (timm_model.norm.bias, tv_model.norm.bias),
              (timm_model.head.weight, tv_model.head.weight), (timm_model.head.bias, tv_model.head.bias)]
    n_tv = sum(1 for _ in tv_model.parameters())
    assert len(pairs) == n_tv, f"copied {len(pairs)} of {n_tv} torchvision parameters"
    for src, dst in pairs:
        assert src.shape == dst.shape, (src.shape, dst.shape)
        dst.copy_(src)
    return tv_model


def perturb_(model, seed, scale=0.5):
    """Seeded non-trivial weights for exactness tests (never for accuracy claims): vit_defs.perturb_
    (LayerNorm gamma 1 + N(0, 0.2*scale), beta and biases N(0, 0.1*scale), Linear/Conv weights
    N(0, 1/fan_in)), with the relative position bias tables N(0, 1*scale) (large enough that the
    bias visibly shapes attention)."""
    return vit_defs.perturb_(model, seed, scale, named_std={"relative_position_bias_table": 1.0})


@torch.no_grad()
def check_against_torchvision(img_size, seed=0, batch=2, **arch):
    """Builds a perturbed TimmSwin, copies it into torchvision's SwinTransformer, returns max |diff|
    of the logits on a seeded input and the logits' std (the check's scale)."""
    torch.manual_seed(seed)
    m = TimmSwin(img_size=img_size, **arch)
    perturb_(m, seed + 1)
    tv = make_torchvision_swin(patch=arch.get("patch", 4), embed_dim=arch.get("embed_dim", 96),
                               depths=arch.get("depths", (2, 2, 6, 2)), heads=arch.get("heads", (3, 6, 12, 24)),
                               window=arch.get("window", 7), mlp_ratio=arch.get("mlp_ratio", 4.0),
                               num_classes=arch.get("num_classes", 1000))
    copy_timm_to_torchvision(m, tv)
    m.eval()
    tv.eval()
    x = torch.randn(batch, arch.get("in_chans", 3), img_size, img_size, generator=torch.Generator().manual_seed(seed + 2))
    a, b = m(x), tv(x)
    return float((a - b).abs().max()), float(a.std())


if __name__ == "__main__":
    # Offline equality check of the timm-style math against torchvision's independent implementation.
    torch.set_num_threads(1)
    cases = [
        dict(img_size=32, patch=2, embed_dim=32, depths=(2, 2), heads=(2, 4), window=4, num_classes=10),
        dict(img_size=40, patch=2, embed_dim=32, depths=(2, 2), heads=(2, 4), window=4, num_classes=10),  # stage 2 is 10x10: padded to 12x12
        dict(img_size=36, patch=2, embed_dim=48, depths=(2, 2, 2), heads=(2, 4, 8), window=4, num_classes=12),  # 18x18, 9x9 (odd merge), 5x5: all padded
        dict(img_size=56, patch=4, embed_dim=32, depths=(2, 2), heads=(2, 4), window=7, num_classes=10),
        dict(img_size=224, patch=4, embed_dim=96, depths=(2, 2, 6, 2), heads=(3, 6, 12, 24), window=7,
             num_classes=1000, batch=1),  # swin_t
    ]
    worst = 0.0
    for c in cases:
        c = dict(c)
        batch = c.pop("batch", 2)
        img = c.pop("img_size")
        d, s = check_against_torchvision(img, batch=batch, **c)
        worst = max(worst, d / s)
        print(f"img {img} {c}: max|timm - torchvision| {d:.3e} (logit std {s:.3f})")
    print(f"worst relative {worst:.3e}")
    assert worst < 1e-5, "timm-style and torchvision Swin disagree"
