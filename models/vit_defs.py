"""Vision Transformer definitions used by adalog's model scripts (exported to ONNX, then imported by C++).

Three families, all matching runtime/vit_model.h conventions:
  - TimmViT: timm-style ViT written by hand. Conv patch embed -> flatten(2).transpose(1,2); prefix
    tokens (cls, optional dist) concatenated first; pos_embed added over prefix + patches; pre-norm
    blocks with a fused qkv Linear and hand-written attention; final LayerNorm (eps 1e-6).
    pooling: "cls" (head on token 0), "cls_dist" (DeiT distilled: mean of head(x[:,0]) and
    head_dist(x[:,1]) in eval), "mean" (no prefix tokens; head on the mean of the normed tokens).
  - torchvision's VisionTransformer (nn.MultiheadAttention inside), built by make_torchvision_vit.
GELU: "erf" (nn.GELU()) or "tanh" (nn.GELU(approximate='tanh')).

Run with /usr/bin/python3 (Debian torch 1.13). Set OPENBLAS_NUM_THREADS=1 before importing torch.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

LN_EPS = 1e-6


def make_gelu(kind):
    if kind == "erf":
        return nn.GELU()
    if kind == "tanh":
        return nn.GELU(approximate="tanh")
    raise ValueError(f"unknown gelu kind {kind!r}")


class PatchEmbed(nn.Module):
    def __init__(self, img_size, patch, in_chans, dim):
        super().__init__()
        self.img_size = img_size
        self.patch = patch
        self.num_patches = (img_size // patch) ** 2
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        x = self.proj(x)  # B, C, H/p, W/p
        return x.flatten(2).transpose(1, 2)  # B, N, C (raster order)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        assert dim % heads == 0
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden, gelu):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = make_gelu(gelu)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, gelu):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), gelu)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return x


class TimmViT(nn.Module):
    """timm-style ViT. pooling in {"cls", "cls_dist", "mean"}."""

    def __init__(self, img_size=224, patch=16, in_chans=3, num_classes=1000, dim=768, depth=12,
                 heads=12, mlp_ratio=4.0, gelu="erf", pooling="cls"):
        super().__init__()
        assert pooling in ("cls", "cls_dist", "mean")
        self.pooling = pooling
        self.patch_embed = PatchEmbed(img_size, patch, in_chans, dim)
        self.num_prefix = {"cls": 1, "cls_dist": 2, "mean": 0}[pooling]
        if self.num_prefix >= 1:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        if self.num_prefix == 2:
            self.dist_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_prefix + self.patch_embed.num_patches, dim))
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp_ratio, gelu) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.head = nn.Linear(dim, num_classes)
        if pooling == "cls_dist":
            self.head_dist = nn.Linear(dim, num_classes)
        self._init_weights()

    def _init_weights(self):
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.num_prefix >= 1:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        if self.num_prefix == 2:
            nn.init.trunc_normal_(self.dist_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x):
        x = self.patch_embed(x)
        B = x.shape[0]
        if self.num_prefix == 1:
            x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1)
        elif self.num_prefix == 2:
            x = torch.cat((self.cls_token.expand(B, -1, -1), self.dist_token.expand(B, -1, -1), x), dim=1)
        x = x + self.pos_embed
        x = self.blocks(x)
        return self.norm(x)

    def forward(self, x):
        x = self.forward_features(x)
        if self.pooling == "cls":
            return self.head(x[:, 0])
        if self.pooling == "mean":
            return self.head(x.mean(dim=1))
        a, b = self.head(x[:, 0]), self.head_dist(x[:, 1])
        if self.training:
            return a, b
        return (a + b) / 2


def make_timm_vit(**kw):
    return TimmViT(**kw)


def make_torchvision_vit(img_size, patch, depth, heads, dim, mlp_dim, num_classes):
    """torchvision.models.vision_transformer.VisionTransformer (uses nn.MultiheadAttention, LN eps 1e-6,
    exact GELU, cls token, pos embedding over cls + patches)."""
    from torchvision.models.vision_transformer import VisionTransformer
    return VisionTransformer(image_size=img_size, patch_size=patch, num_layers=depth, num_heads=heads,
                             hidden_dim=dim, mlp_dim=mlp_dim, num_classes=num_classes)


# Parameters that perturb_ redraws by name after the modules (last name component -> std / scale).
VIT_NAMED_STD = {"cls_token": 0.5, "dist_token": 0.5, "class_token": 0.5, "pos_embed": 0.5,
                 "pos_embedding": 0.5}


@torch.no_grad()
def perturb_(model, seed, scale=0.5, named_std=None):
    """Make a random-weight model a non-vacuous test: seeded re-init so logits are non-trivial.

    Every LayerNorm gamma becomes 1 + N(0, 0.2*scale), every beta and every bias N(0, 0.1*scale),
    cls/dist tokens and pos_embed N(0, 0.5*scale) (`named_std`, default VIT_NAMED_STD: parameters
    by last name component, in parameter order, after the modules), and Linear weights get a fan-in
    scaled normal (std 1/sqrt(in)), so zero-initialised heads (torchvision) produce non-zero,
    well-spread logits. Only for exactness tests: never use such a model for accuracy claims.
    """
    named_std = VIT_NAMED_STD if named_std is None else named_std
    g = torch.Generator().manual_seed(seed)

    def rn(t, std):
        return torch.randn(t.shape, generator=g) * std

    for name, m in model.named_modules():
        if isinstance(m, nn.LayerNorm):
            m.weight.copy_(1.0 + rn(m.weight, 0.2 * scale))
            m.bias.copy_(rn(m.bias, 0.1 * scale))
        elif isinstance(m, nn.Linear):
            m.weight.copy_(rn(m.weight, 1.0 / m.in_features ** 0.5))
            if m.bias is not None:
                m.bias.copy_(rn(m.bias, 0.1 * scale))
        elif isinstance(m, nn.MultiheadAttention):
            m.in_proj_weight.copy_(rn(m.in_proj_weight, 1.0 / m.embed_dim ** 0.5))
            m.in_proj_bias.copy_(rn(m.in_proj_bias, 0.1 * scale))
            m.out_proj.weight.copy_(rn(m.out_proj.weight, 1.0 / m.embed_dim ** 0.5))
            m.out_proj.bias.copy_(rn(m.out_proj.bias, 0.1 * scale))
        elif isinstance(m, nn.Conv2d):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            m.weight.copy_(rn(m.weight, 1.0 / fan_in ** 0.5))
            if m.bias is not None:
                m.bias.copy_(rn(m.bias, 0.1 * scale))
    for pname, p in model.named_parameters():
        base = pname.split(".")[-1]
        if base in named_std:
            p.copy_(rn(p, named_std[base] * scale))
    return model
