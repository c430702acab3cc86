#!/usr/bin/python3
"""End-to-end latency harness: adalog against ONNX Runtime and PyTorch on one ViT, same run.

For every configuration (batch x threads) and every repetition it runs each engine once, in a
rotated order so no engine always goes first, takes each engine's median over the repetitions and
prints one Markdown table. Every raw JSON line (plus the command, config and repetition) is saved.

  /usr/bin/python3 bench/e2e.py MODEL.onnx [--batch 1 8] [--threads 1 2] [--repeats 3]
      [--warmup 3] [--runs 10] [--arch deit_s | --dims IMG,PATCH,DIM,DEPTH,HEADS,CLASSES]
      [--adalog build/cli/adalog] [--quantized NAME=MODEL_FILE ...] [--engine NAME=CMD ...]
      [--no-ort] [--no-ort-int8] [--ort-calib X.npy] [--qdq MODEL_FILE] [--no-torch] [--dynint8] [--only NAME ...]
      [--out FILE.jsonl] [--layout wide|long]

Engines (each prints one JSON line with at least median_ms, p90_ms, images_per_s):
  adalog-fp32     {adalog} bench {model} --batch {batch} --threads {threads} --json --warmup {warmup} --runs {runs}
  adalog-NAME     the same command on MODEL_FILE, one per --quantized NAME=MODEL_FILE (e.g. w4a4=out/s.adalog)
  ort             node bench/peers/ort_bench.js {model} ... (install with bench/peers/setup.sh)
  ort-int8dyn     the same on the graph ORT's quantize_dynamic makes with its defaults
  ort-int8qdq     the same on quantize_static's QDQ graph (per-channel int8 weights, uint8
                  activations, MinMax on --ort-calib, else 8 seeded N(0,1) images: speed only)
                  Both are written by bench/peers/ort_quantize.py into out/peers/ (rebuilt when
                  older than the model or the script); column ort-int8 = the faster of the two.
  ort-adalog-qdq  the same on `adalog export --format qdq` of --qdq MODEL_FILE (a uniform W8A8 plan:
                  adalog's own calibration run by ORT), written to out/peers/ (rebuilt when older
                  than MODEL_FILE or the adalog binary)
  torch           /usr/bin/python3 bench/peers/torch_bench.py --arch/--dims ... (FP32 eager)
  torch-dynint8   the same with --dynint8 (only with --dynint8)
  NAME            --engine NAME=CMD: any command template; placeholders {model} {batch} {threads}
                  {warmup} {runs} {adalog} {repo}; it must print a JSON line with median_ms.
Ratios in the table are adalog-X ms / peer ms: below 1 means adalog is faster; ort-int8X/ort is the
int8 graph's ms / ORT FP32 ms.

PyTorch cannot read ONNX: it rebuilds the architecture from models/vit_defs.py. The shape comes from
--arch/--dims, else it is inferred from the ONNX initializers (patch conv, fc1/fc2, head_dim 64).
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="the FP32 ONNX model (input of ORT, adalog-fp32 and the torch shape)")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3, help="runs of each engine per config (median taken)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed inferences inside each engine run")
    ap.add_argument("--runs", type=int, default=10, help="timed inferences inside each engine run")
    ap.add_argument("--arch", default=None, help="torch_bench --arch (deit_t, deit_s, vit_b, ...)")
    ap.add_argument("--dims", default=None, help="torch_bench --dims IMG,PATCH,DIM,DEPTH,HEADS,CLASSES")
    ap.add_argument("--adalog", default=os.path.join(REPO, "build", "cli", "adalog"), help="the adalog binary")
    ap.add_argument("--quantized", action="append", default=[], metavar="NAME=MODEL_FILE",
                    help="an adalog quantized model file to bench as engine adalog-NAME (repeatable)")
    ap.add_argument("--engine", action="append", default=[], metavar="NAME=CMD",
                    help="an extra engine command template (repeatable)")
    ap.add_argument("--no-ort", action="store_true")
    ap.add_argument("--no-ort-int8", action="store_true", help="skip the ORT int8 peers (ort-int8dyn, ort-int8qdq)")
    ap.add_argument("--ort-calib", default=None, metavar="X.npy",
                    help="calibration images (float32 NCHW) of the ORT QDQ graph (default: 8 seeded N(0,1) images)")
    ap.add_argument("--qdq", default=None, metavar="MODEL_FILE",
                    help="an adalog quantized file (uniform W8A8) to export as QDQ and run in ORT (engine ort-adalog-qdq)")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-adalog", action="store_true")
    ap.add_argument("--dynint8", action="store_true", help="add the torch dynamic-int8 peer")
    ap.add_argument("--torch-blas-threads", choices=["1", "match"], default="1",
                    help="OPENBLAS_NUM_THREADS for torch: 1 (default) or equal to --threads")
    ap.add_argument("--only", nargs="+", default=None, help="run only these engine names")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per engine run")
    ap.add_argument("--out", default=None, help="raw JSON lines (default out/e2e/<model>-<time>.jsonl)")
    ap.add_argument("--layout", choices=["wide", "long"], default="wide")
    ap.add_argument("--stat", choices=["median_ms", "min_ms", "p90_ms"], default="median_ms",
                    help="which per-run statistic the table shows (median over rounds of it); min_ms is "
                         "the least disturbed figure on a busy machine")
    ap.add_argument("--dry-run", action="store_true", help="print the commands and stop")
    a = ap.parse_args(argv)
    for name in ("repeats", "runs"):
        if getattr(a, name) < 1:
            ap.error(f"--{name} must be >= 1")
    if a.warmup < 0:
        ap.error("--warmup must be >= 0")
    if any(b < 1 for b in a.batch) or any(t < 1 for t in a.threads):
        ap.error("--batch and --threads values must be >= 1")
    if not os.path.isfile(a.model):
        ap.error(f"model '{a.model}' not found")
    if a.ort_calib and not os.path.isfile(a.ort_calib):
        ap.error(f"--ort-calib '{a.ort_calib}' not found")
    return a


def split_named(spec, flag):
    if "=" not in spec or not spec.split("=", 1)[0]:
        raise SystemExit(f"e2e: error: {flag} wants NAME=VALUE, got '{spec}'")
    return spec.split("=", 1)


def infer_dims(onnx_path):
    """Timm-style shape of an ONNX ViT from its initializers (head_dim assumed 64). None if unsure."""
    try:
        import onnx
        from onnx import numpy_helper  # noqa: F401
    except ImportError:
        return None
    m = onnx.load(onnx_path, load_external_data=False)
    inits = {t.name: list(t.dims) for t in m.graph.initializer}
    conv = next((n for n in m.graph.node if n.op_type == "Conv"), None)
    if conv is None or len(conv.input) < 2 or conv.input[1] not in inits:
        return None
    dim, _, patch, _ = inits[conv.input[1]]
    shape = m.graph.input[0].type.tensor_type.shape.dim
    img = shape[2].dim_value if len(shape) == 4 and shape[2].dim_value > 0 else None
    out = m.graph.output[0].type.tensor_type.shape.dim
    classes = out[-1].dim_value if out and out[-1].dim_value > 0 else None
    mlp = sum(1 for d in inits.values() if len(d) == 2 and sorted(d) == sorted([dim, 4 * dim]))
    depth = mlp // 2
    if not img or not classes or depth == 0 or dim % 64:
        return None
    return f"{img},{patch},{dim},{depth},{dim // 64},{classes}"


def guess_arch(path):
    base = os.path.basename(path).lower().replace("-", "_")
    for k in ("deit_t", "deit_s", "vit_b", "deit_b"):
        if k in base:
            return k
    return None


def build_engines(a):
    """Ordered list of (name, kind, template, model). kind: 'adalog' | 'peer' | 'custom'."""
    engines = []
    fmt_common = "--batch {batch} --threads {threads} --warmup {warmup} --runs {runs}"
    adalog_cmd = "{adalog} bench {model} --batch {batch} --threads {threads} --json --warmup {warmup} --runs {runs}"
    if not a.no_adalog:
        engines.append(("adalog-fp32", "adalog", adalog_cmd, a.model))
        for spec in a.quantized:
            name, path = split_named(spec, "--quantized")
            engines.append((f"adalog-{name}", "adalog", adalog_cmd, path))
    if not a.no_ort:
        engines.append(("ort", "peer", f"node {{repo}}/bench/peers/ort_bench.js {{model}} {fmt_common}", a.model))
        if not a.no_ort_int8:
            for name, mode in (("ort-int8dyn", "dynamic"), ("ort-int8qdq", "qdq")):
                engines.append((name, "peer", f"node {{repo}}/bench/peers/ort_bench.js {{model}} {fmt_common}",
                                ort_int8_path(a, mode)))
        if a.qdq:
            engines.append(("ort-adalog-qdq", "peer", f"node {{repo}}/bench/peers/ort_bench.js {{model}} {fmt_common}",
                            adalog_qdq_path(a)))
    if not a.no_torch:
        if a.dims:
            shape = f"--dims {shlex.quote(a.dims)}"
        elif a.arch or guess_arch(a.model):
            shape = f"--arch {a.arch or guess_arch(a.model)}"
        else:
            dims = infer_dims(a.model)
            shape = f"--dims {dims}" if dims else None
            if not dims:
                print(f"e2e: note: cannot infer the torch architecture of {a.model}; pass --arch or --dims. "
                      "torch skipped.", file=sys.stderr)
        if shape:
            blas = "{threads}" if a.torch_blas_threads == "match" else "1"
            tb = f"{PY} {{repo}}/bench/peers/torch_bench.py {shape} {fmt_common} --blas-threads {blas}"
            engines.append(("torch", "peer", tb, a.model))
            if a.dynint8:
                engines.append(("torch-dynint8", "peer", tb + " --dynint8", a.model))
    for spec in a.engine:
        name, cmd = split_named(spec, "--engine")
        engines.append((name, "custom", cmd, a.model))
    if a.only:
        known = {e[0] for e in engines}
        unknown = [n for n in a.only if n not in known]
        if unknown:
            raise SystemExit(f"e2e: error: --only {' '.join(unknown)}: no such engine (have {', '.join(sorted(known))})")
        engines = [e for e in engines if e[0] in a.only]
    return engines


ORT_INT8_MODES = {"ort-int8dyn": "dynamic", "ort-int8qdq": "qdq"}


def ort_int8_path(a, mode):
    """Where the ORT int8 graph of a.model goes: out/peers/<model>-ort-<mode>[-<calib>].onnx."""
    stem = os.path.splitext(os.path.basename(a.model))[0]
    tag = "dyn" if mode == "dynamic" else "qdq-" + (
        os.path.splitext(os.path.basename(a.ort_calib))[0] if a.ort_calib else "rand8")
    return os.path.join(REPO, "out", "peers", f"{stem}-ort-{tag}.onnx")


def ort_int8_command(a, mode, path):
    calib = "" if mode == "dynamic" else (
        f" --calib {shlex.quote(a.ort_calib)}" if a.ort_calib else " --calib-random 8 --calib-seed 0")
    return (f"{PY} {shlex.quote(os.path.join(REPO, 'bench', 'peers', 'ort_quantize.py'))} {shlex.quote(a.model)} "
            f"--mode {mode}{calib} -o {shlex.quote(path)}")


def ort_int8_fresh(a, mode, path):
    """Whether the graph at path is newer than everything it is made from."""
    script = os.path.join(REPO, "bench", "peers", "ort_quantize.py")
    sources = [a.model, script] + ([a.ort_calib] if mode == "qdq" and a.ort_calib else [])
    return os.path.isfile(path) and all(os.path.getmtime(path) >= os.path.getmtime(s) for s in sources)


def adalog_qdq_path(a):
    """Where `adalog export --format qdq` of --qdq goes: out/peers/<file>-adalog-qdq.onnx."""
    stem = os.path.splitext(os.path.basename(a.qdq))[0]
    return os.path.join(REPO, "out", "peers", f"{stem}-adalog-qdq.onnx")


def adalog_qdq_command(a, path):
    return f"{shlex.quote(a.adalog)} export {shlex.quote(a.qdq)} --format qdq -o {shlex.quote(path)}"


def adalog_qdq_fresh(a, path):
    return os.path.isfile(path) and all(os.path.getmtime(path) >= os.path.getmtime(s) for s in (a.qdq, a.adalog))


def prepare_ort_int8(a, engines):
    """Writes the ORT int8 graphs the engines need (when missing or older than the FP32 model, the
    calibration file or ort_quantize.py; the adalog QDQ export when older than its model file or the
    adalog binary); an engine whose graph cannot be made is dropped."""
    keep = []
    for e in engines:
        mode = ORT_INT8_MODES.get(e[0])
        if mode is None and e[0] != "ort-adalog-qdq":
            keep.append(e)
            continue
        path = e[3]
        if (adalog_qdq_fresh(a, path) if mode is None else ort_int8_fresh(a, mode, path)):
            keep.append(e)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        cmd = adalog_qdq_command(a, path) if mode is None else ort_int8_command(a, mode, path)
        print(f"e2e: writing the {e[0]} graph: {cmd}", file=sys.stderr)
        p = subprocess.run(cmd, shell=True, capture_output=True, text=True)
        if p.returncode != 0 or not os.path.isfile(path):
            tail = " | ".join((p.stderr.strip() or p.stdout.strip()).splitlines()[-2:])
            print(f"e2e: note: cannot make the {e[0]} graph ({tail}); engine {e[0]} skipped.", file=sys.stderr)
            continue
        keep.append(e)
    return keep


def check_prerequisites(a, engines):
    """Drops engines that cannot run, each with a clear message."""
    keep = []
    for e in engines:
        name, kind = e[0], e[1]
        if kind == "adalog" and not (os.path.isfile(a.adalog) and os.access(a.adalog, os.X_OK)):
            print(f"e2e: note: adalog binary not found at {a.adalog} (build it: cmake --build build --target adalog, "
                  f"or pass --adalog PATH); engine {name} skipped.", file=sys.stderr)
            continue
        if kind == "adalog" and not os.path.isfile(e[3]):
            print(f"e2e: note: model file {e[3]} not found; engine {name} skipped.", file=sys.stderr)
            continue
        if name in ("ort", "ort-adalog-qdq", *ORT_INT8_MODES) and not os.path.isdir(os.path.join(REPO, "bench", "peers", "node_modules", "onnxruntime-node")):
            print(f"e2e: note: onnxruntime-node is not installed (run bench/peers/setup.sh); engine {name} skipped.",
                  file=sys.stderr)
            continue
        keep.append(e)
    return keep


TIME_BIN = "/usr/bin/time"
RSS_MARK = "E2E_PEAK_RSS_KB="


def run_one(template, model, cfg, a):
    cmd = template.format(model=shlex.quote(model), batch=cfg[0], threads=cfg[1], warmup=a.warmup, runs=a.runs,
                          adalog=shlex.quote(a.adalog), repo=shlex.quote(REPO))
    run_cmd = cmd
    if os.path.exists(TIME_BIN):  # GNU time: the engine process's peak RSS (KiB) on stderr
        run_cmd = f"{TIME_BIN} -f '{RSS_MARK}%M' sh -c {shlex.quote(cmd)}"
    try:
        p = subprocess.run(run_cmd, shell=True, capture_output=True, text=True, timeout=a.timeout)
    except subprocess.TimeoutExpired:
        return cmd, None, f"timed out after {a.timeout:.0f} s"
    peak_kb = None
    for line in p.stderr.splitlines():
        if line.startswith(RSS_MARK):
            try:
                peak_kb = int(line[len(RSS_MARK):].strip())
            except ValueError:
                pass
    record = None
    for line in reversed(p.stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                record = json.loads(line)
                break
            except json.JSONDecodeError:
                pass
    if p.returncode != 0 or record is None or "median_ms" not in record:
        lines = (p.stderr.strip() or p.stdout.strip()).splitlines()
        tail = [l for l in lines if "error" in l.lower()][:2] or lines[-3:]
        why = f"exit {p.returncode}" if p.returncode else "no JSON line with median_ms"
        return cmd, None, f"{why}: {' | '.join(tail)}"
    if peak_kb is not None:
        record["process_peak_rss_mb"] = round(peak_kb / 1024.0, 1)
    return cmd, record, None


def machine_line():
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.2f} at start"


def fmt_ms(v):
    return "—" if v is None else (f"{v:.1f}" if v >= 10 else f"{v:.2f}")


def fmt_ratio(x, y):
    return "—" if x is None or y is None or y == 0 else f"{x / y:.2f}"


def main(argv):
    a = parse_args(argv)
    engines = check_prerequisites(a, build_engines(a))
    configs = [(b, t) for b in a.batch for t in a.threads]
    if a.dry_run:
        for name, _, _, model in engines:
            if name in ORT_INT8_MODES:
                fresh = " (up to date, not rerun)" if ort_int8_fresh(a, ORT_INT8_MODES[name], model) else ""
                print(f"[graph] {name}{fresh}: {ort_int8_command(a, ORT_INT8_MODES[name], model)}")
            if name == "ort-adalog-qdq":
                fresh = " (up to date, not rerun)" if adalog_qdq_fresh(a, model) else ""
                print(f"[graph] {name}{fresh}: {adalog_qdq_command(a, model)}")
        for cfg in configs:
            for name, _, tmpl, model in engines:
                print(f"[b{cfg[0]} t{cfg[1]}] {name}: " + tmpl.format(
                    model=shlex.quote(model), batch=cfg[0], threads=cfg[1], warmup=a.warmup, runs=a.runs,
                    adalog=shlex.quote(a.adalog), repo=shlex.quote(REPO)))
        return 0
    engines = prepare_ort_int8(a, engines)
    if not engines:
        print("e2e: error: no engine can run (see the notes above)", file=sys.stderr)
        return 1
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = a.out or os.path.join(REPO, "out", "e2e",
                                f"{os.path.splitext(os.path.basename(a.model))[0]}-{stamp}.jsonl")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    machine = machine_line()
    medians = {}  # (cfg, engine) -> list of median_ms
    rss = {}  # (cfg, engine) -> list of process peak RSS (MB)
    errors = {}
    with open(out, "a") as f:
        for cfg in configs:
            for rep in range(a.repeats):
                k = rep % len(engines)
                for name, _, tmpl, model in engines[k:] + engines[:k]:
                    if errors.get((cfg, name)):
                        continue  # an engine that failed once in this config is not retried
                    cmd, rec, err = run_one(tmpl, model, cfg, a)
                    row = {"engine": name, "batch": cfg[0], "threads": cfg[1], "repeat": rep, "cmd": cmd,
                           "time": datetime.datetime.now().isoformat(timespec="seconds"),
                           "loadavg": [round(v, 2) for v in os.getloadavg()]}
                    if err:
                        errors[(cfg, name)] = err
                        row["error"] = err
                        print(f"e2e: {name} b{cfg[0]} t{cfg[1]}: FAILED: {err}", file=sys.stderr)
                    else:
                        row["result"] = rec
                        if a.stat in rec:
                            medians.setdefault((cfg, name), []).append(rec[a.stat])
                        if "process_peak_rss_mb" in rec:
                            rss.setdefault((cfg, name), []).append(rec["process_peak_rss_mb"])
                        print(f"e2e: b{cfg[0]} t{cfg[1]} rep {rep}: {name} {rec['median_ms']:.2f} ms",
                              file=sys.stderr)
                    f.write(json.dumps(row) + "\n")
                    f.flush()

    def med(cfg, name):
        if name == "ort-int8":  # the faster ORT int8 graph of this config
            got = [m for m in (med(cfg, n) for n in ORT_INT8_MODES) if m is not None]
            return min(got) if got else None
        v = medians.get((cfg, name))
        return statistics.median(v) if v else None

    names = [e[0] for e in engines]
    ours = [n for n, kind, _, _ in engines if kind == "adalog"]
    int8 = [n for n in ORT_INT8_MODES if n in names]
    peers = [n for n in ("ort", "ort-int8", "torch") if n in names or (n == "ort-int8" and int8)]
    print(f"\nModel `{os.path.basename(a.model)}`; {machine}; each cell is the median over {a.repeats} engine runs "
          f"of that engine's {a.stat[:-3]} over {a.runs} timed inferences ({a.warmup} warmup). "
          "Ratios: adalog ms / peer ms (below 1: adalog faster).\n")
    if a.layout == "wide":
        vs_ort = [n for n in int8 + ["ort-adalog-qdq"] if n in names and "ort" in names]
        cols = ["config"] + [f"{n} ms" for n in names] + [f"{n}/ort" for n in vs_ort] + \
            [f"{o}/{p}" for o in ours for p in peers]
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for cfg in configs:
            cells = [f"b{cfg[0]} t{cfg[1]}"] + [fmt_ms(med(cfg, n)) for n in names]
            cells += [fmt_ratio(med(cfg, n), med(cfg, "ort")) for n in vs_ort]
            cells += [fmt_ratio(med(cfg, o), med(cfg, p)) for o in ours for p in peers]
            print("| " + " | ".join(cells) + " |")
    else:
        cols = ["config", "engine", "ms", "images/s"] + [f"vs {p}" for p in peers]
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for cfg in configs:
            for n in names:
                m = med(cfg, n)
                ips = "—" if m is None else f"{cfg[0] * 1000.0 / m:.1f}"
                print("| " + " | ".join([f"b{cfg[0]} t{cfg[1]}", n, fmt_ms(m), ips] +
                                        [fmt_ratio(m, med(cfg, p)) for p in peers]) + " |")
    if int8:
        faster = []
        for cfg in configs:
            got = {n: med(cfg, n) for n in int8 if med(cfg, n) is not None}
            if got:
                faster.append(f"b{cfg[0]} t{cfg[1]} {min(got, key=got.get)}")
        print("\nort-int8 = the faster ORT int8 graph of each config: " + (", ".join(faster) or "none ran") +
              f". Graphs: {', '.join(os.path.relpath(e[3], os.getcwd()) for e in engines if e[0] in int8)}" +
              ("" if a.ort_calib else "; the QDQ graph is calibrated on 8 random N(0,1) images (a speed peer, "
               "not an accuracy one)") + ".")
    if rss:
        print("\nPeak RSS of each engine process (MB, median over its runs; GNU time %M):\n")
        print("| config | " + " | ".join(names) + " |")
        print("|" + "---|" * (len(names) + 1))
        for cfg in configs:
            cells = [f"{statistics.median(rss[(cfg, n)]):.0f}" if rss.get((cfg, n)) else "—" for n in names]
            print(f"| b{cfg[0]} t{cfg[1]} | " + " | ".join(cells) + " |")
    if errors:
        print("\nFailures:")
        for (cfg, name), err in errors.items():
            print(f"- {name} b{cfg[0]} t{cfg[1]}: {err}")
    print(f"\nLoad average (1 min) at the end: {os.getloadavg()[0]:.2f}; each raw line records it after its run.")
    print(f"\nRaw JSON lines: {os.path.relpath(out, os.getcwd())}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
