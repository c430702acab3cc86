"""Writes the seed corpus of the importer fuzz target (tests/fuzz/corpus/).

Valid tiny exports (timm opset 17 dynamic, torchvision opset 13, DeiT distilled opset 14) plus
malformed variants: truncated files, random bytes, flipped bytes, an unsupported op, a missing
initializer, bad raw_data, external data, a cycle, an absurd shape. Deterministic (seeded).

Also two hand-written ViT variants that the importer must recognize although their graphs differ
from timm/torchvision (separate q/k/v Linears with the scale split over q and k, chunk -> Split,
hand-written GELUs, patch-only position embedding, mean pooling). Their reference input/output
pairs go to tests/fuzz/expected/ for tests/runtime/importer_models_test.cc.

    /usr/bin/python3 tests/fuzz/make_corpus.py [out_dir]
"""
import io
import math
import os
import random
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import onnx  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "models"))
import vit_defs  # noqa: E402


class SepAttention(nn.Module):
    """Separate q/k/v Linears; head_dim^-0.25 on q and on k; k transposed by permute."""

    def __init__(self, dim, heads):
        super().__init__()
        self.h, self.hd = heads, dim // heads
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        s = self.hd ** -0.25
        q = self.q(x).view(B, N, self.h, self.hd).transpose(1, 2) * s
        k = self.k(x).view(B, N, self.h, self.hd).permute(0, 2, 3, 1) * s
        v = self.v(x).reshape(B, N, self.h, self.hd).transpose(1, 2)
        a = (q @ k).softmax(-1)
        return self.proj((a @ v).transpose(1, 2).flatten(2))


class ChunkAttention(nn.Module):
    """Fused qkv split with chunk (ONNX Split); scores divided by sqrt(head_dim) after q @ k^T."""

    def __init__(self, dim, heads):
        super().__init__()
        self.h, self.hd = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = [t.view(B, N, self.h, self.hd).transpose(1, 2) for t in self.qkv(x).chunk(3, -1)]
        a = (q @ k.transpose(-2, -1) / math.sqrt(self.hd)).softmax(dim=-1)
        return self.proj((a @ v).transpose(1, 2).reshape(B, N, C))


class ErfGelu(nn.Module):
    def forward(self, x):
        return x * 0.5 * (1.0 + torch.erf(x * 0.7071067811865476))


class TanhGelu(nn.Module):
    def forward(self, x):
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * torch.pow(x, 3))))


class VariantBlock(nn.Module):
    def __init__(self, dim, heads, attn, gelu):
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(dim), nn.LayerNorm(dim)  # eps 1e-5
        self.attn = attn(dim, heads)
        self.fc1, self.act, self.fc2 = nn.Linear(dim, 2 * dim), gelu(), nn.Linear(2 * dim, dim)

    def forward(self, x):
        x = x + self.attn(self.n1(x))
        return x + self.fc2(self.act(self.fc1(self.n2(x))))


class VariantViT(nn.Module):
    """cls=True: patch-only pos embed, then cls concat, head on x[:, 0, :] (or, with
    avg_patches=True, on the mean of the patch tokens x[:, 1:]; with slice_token=True on
    x[:, :1].flatten(1)); cls=False: pos embed, mean pooling over tokens."""

    def __init__(self, attn, gelu, cls, img=8, patch=4, dim=8, heads=2, depth=2, classes=3,
                 avg_patches=False, slice_token=False):
        super().__init__()
        self.cls, self.avg_patches, self.slice_token = cls, avg_patches, slice_token
        self.conv = nn.Conv2d(3, dim, patch, patch)
        n = (img // patch) ** 2
        self.pos = nn.Parameter(torch.randn(1, n, dim) * 0.5)
        if cls:
            self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.5)
        self.blocks = nn.Sequential(*[VariantBlock(dim, heads, attn, gelu) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.conv(x)
        B, C = x.shape[0], x.shape[1]
        x = x.permute(0, 2, 3, 1).reshape(B, -1, C) + self.pos
        if self.cls:
            x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)
        x = self.norm(self.blocks(x))
        if self.cls and self.slice_token:
            return self.head(x[:, :1].flatten(1))  # Slice + Flatten instead of Gather
        if self.cls and self.avg_patches:
            return self.head(x[:, 1:].mean(dim=1))
        return self.head(x[:, 0, :] if self.cls else x.mean(dim=1))


def export(model, opset, dynamic, img=8):
    model.eval()
    x = torch.randn(2, 3, img, img, generator=torch.Generator().manual_seed(0))
    buf = io.BytesIO()
    dyn = {"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic else None
    # Grad mode on: under no_grad, nn.MultiheadAttention may take its fused fast path, which
    # has no ONNX export.
    torch.onnx.export(model, (x,), buf, input_names=["input"], output_names=["logits"],
                      dynamic_axes=dyn, opset_version=opset)
    return buf.getvalue()


def edited(data, fn):
    m = onnx.load_from_string(data)
    fn(m)
    return m.SerializeToString()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    files = {}
    timm = vit_defs.perturb_(vit_defs.TimmViT(8, 4, 3, 3, 8, 1, 2, 2.0, "erf", "cls"), 1)
    tv = vit_defs.perturb_(vit_defs.make_torchvision_vit(8, 4, 1, 2, 8, 16, 3), 2)
    deit = vit_defs.perturb_(vit_defs.TimmViT(8, 4, 3, 3, 8, 1, 2, 2.0, "tanh", "cls_dist"), 3)
    files["valid_timm_op17_dyn.onnx"] = base = export(timm, 17, True)
    files["valid_tv_op13.onnx"] = export(tv, 13, False)
    files["valid_deit_op14_dyn.onnx"] = export(deit, 14, True)

    expected = os.path.join(HERE, "expected")
    os.makedirs(expected, exist_ok=True)
    for name, model, opset, dyn in [
            ("variant_separate_qkv_op17", VariantViT(SepAttention, ErfGelu, True), 17, False),
            ("variant_chunk_qkv_op13_dyn", VariantViT(ChunkAttention, TanhGelu, False), 13, True),
            ("variant_cls_avgpool_op15_dyn",
             VariantViT(SepAttention, ErfGelu, True, avg_patches=True), 15, True),
            ("variant_slice_token_op17_dyn",
             VariantViT(ChunkAttention, ErfGelu, True, slice_token=True), 17, True)]:
        vit_defs.perturb_(model, 7)
        model.eval()
        files[name + ".onnx"] = export(model, opset, dyn)
        x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(11))
        with torch.no_grad():
            y = model(x)
        np.save(os.path.join(expected, name + ".input.npy"), x.numpy().astype(np.float32))
        np.save(os.path.join(expected, name + ".output.npy"), y.numpy().astype(np.float32))

    rng = random.Random(1234)
    files["truncated_half.onnx"] = base[: len(base) // 2]
    files["truncated_tail.onnx"] = base[:-9]
    files["random_64.bin"] = bytes(rng.getrandbits(8) for _ in range(64))
    files["random_2k.bin"] = bytes(rng.getrandbits(8) for _ in range(2048))
    for k in range(4):
        b = bytearray(base)
        pos = rng.randrange(len(b))
        b[pos] ^= 1 << rng.randrange(8)
        files[f"flipped_byte_{k}.onnx"] = bytes(b)

    def unsupported(m):
        for n in m.graph.node:
            if n.op_type == "Softmax":
                n.op_type, n.name = "NonMaxSuppression", "nms_3"

    def missing_init(m):
        keep = [t for t in m.graph.initializer if t.name != "pos_embed"]
        del m.graph.initializer[:]
        m.graph.initializer.extend(keep)

    def bad_raw(m):
        t = [t for t in m.graph.initializer if t.name == "head.bias"][0]
        t.raw_data = t.raw_data[:5]

    def external(m):
        t = [t for t in m.graph.initializer if t.name == "head.bias"][0]
        t.data_location = onnx.TensorProto.EXTERNAL

    def cycle(m):
        adds = [n for n in m.graph.node if n.op_type == "Add"]
        lns = [n for n in m.graph.node if n.op_type == "LayerNormalization"]
        lns[0].input[0] = adds[-1].output[0]

    def huge(m):
        t = [t for t in m.graph.initializer if t.name == "head.bias"][0]
        del t.dims[:]
        t.dims.extend([1 << 20, 1 << 20, 1 << 20])

    for name, fn in [("unsupported_op", unsupported), ("missing_initializer", missing_init),
                     ("bad_raw_data", bad_raw), ("external_data", external), ("cycle", cycle),
                     ("huge_shape", huge)]:
        files[name + ".onnx"] = edited(base, fn)
    for name, data in sorted(files.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
