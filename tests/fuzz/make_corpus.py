"""Writes the seed corpus of the importer fuzz target (tests/fuzz/corpus/).

Valid tiny exports (timm opset 17 dynamic, torchvision opset 13, DeiT distilled opset 14) plus
malformed variants: truncated files, random bytes, flipped bytes, an unsupported op, a missing
initializer, bad raw_data, external data, a cycle, an absurd shape. Deterministic (seeded).

    /usr/bin/python3 tests/fuzz/make_corpus.py [out_dir]
"""
import io
import os
import random
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import onnx  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "models"))
import vit_defs  # noqa: E402


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
