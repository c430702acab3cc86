"""Op-type survey of ONNX exports: how many nodes of each type, split by what they compute.

    /usr/bin/python3 models/onnx_survey.py MODEL.onnx [...] [--json]

Every node is put in one class by its inputs (initializers and Constant outputs are "const"):
  const  every input is const (foldable whatever the input);
  shape  no input carries activation values, but some depend on the image input's shape (the
         Shape -> Gather/Concat/Range/... chains of dynamic exports: foldable once the batch is fixed);
  data   some input carries activation values (what an executor has to compute or an importer
         has to recognize: compute ops and the layout ops that move activations).
Shape, Size and anything reading only a data tensor's shape count as "shape".
"""
import collections
import json
import sys

import onnx


def survey(path):
    m = onnx.load(path)
    g = m.graph
    klass = {}  # tensor name -> "const" | "shape" | "data"
    for init in g.initializer:
        klass[init.name] = "const"
    for inp in g.input:
        if inp.name not in klass:
            klass[inp.name] = "data"
    counts = {"const": collections.Counter(), "shape": collections.Counter(), "data": collections.Counter()}
    for n in g.node:
        ins = [klass.get(i, "const") for i in n.input if i]
        if n.op_type in ("Shape", "Size"):
            c = "const" if all(k == "const" for k in ins) else "shape"
        elif "data" in ins:
            c = "data"
        elif "shape" in ins:
            c = "shape"
        else:
            c = "const"
        counts[c][n.op_type] += 1
        for o in n.output:
            klass[o] = c
    opset = [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")]
    return {
        "file": path, "opset": opset[0] if opset else None, "nodes": len(g.node),
        "by_class": {k: sum(v.values()) for k, v in counts.items()},
        "ops": dict(sorted(collections.Counter(n.op_type for n in g.node).items())),
        "data_ops": dict(sorted(counts["data"].items())),
        "shape_ops": dict(sorted(counts["shape"].items())),
        "const_ops": dict(sorted(counts["const"].items())),
    }


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    as_json = "--json" in sys.argv
    out = [survey(p) for p in args]
    if as_json:
        print(json.dumps(out, indent=1))
        return
    for r in out:
        print(f"{r['file']}: opset {r['opset']}, {r['nodes']} nodes {r['by_class']}")
        for k in ("data_ops", "shape_ops", "const_ops"):
            if r[k]:
                print(f"  {k}: " + ", ".join(f"{op} {c}" for op, c in r[k].items()))


if __name__ == "__main__":
    main()
