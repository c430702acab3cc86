#!/usr/bin/env node
// ONNX Runtime (CPU, onnxruntime-node) peer for adalog's end-to-end benchmark.
//
// Latency mode (default): builds a seeded random float32 input [B,C,H,W] from the model's input
// metadata (a symbolic batch dimension takes --batch; a static one must equal it), runs --warmup
// untimed then --runs timed inferences, and prints one JSON line:
//   {"peer":"onnxruntime","version":...,"model":...,"batch":B,"threads":T,"median_ms":...,
//    "p90_ms":...,"min_ms":...,"mean_ms":...,"images_per_s":...,"runs":N}
// images_per_s = B * 1000 / median_ms.
//
// Cross-check mode: --input X.npy --output Y.npy runs once on X (float32 NCHW) and writes the
// first output (logits) as float32 .npy, to compare adalog's runtime against ORT.
// --all-outputs DIR (with --input, instead of --output) writes every graph output k as DIR/k.npy
// (float32) plus DIR/outputs.json (the names in order): ort_quantize.py's MinMax calibration reads
// the ReduceMin/ReduceMax outputs it added this way.
// --optimized-model PATH (any mode) makes ORT write the graph it runs after its optimizer
// (SessionOptions.optimizedModelFilePath): which fused kernels it picked.
//
// Session: intraOpNumThreads=T, interOpNumThreads=1, graph optimization 'all', sequential.
'use strict';
const path = require('path');
const {readNpy, writeNpy} = require('./npy.js');

const USAGE = `usage: node ort_bench.js MODEL.onnx [--batch B] [--threads T] [--warmup N] [--runs N]
                         [--seed S] [--shape C,H,W]
       node ort_bench.js MODEL.onnx --input X.npy (--output Y.npy | --all-outputs DIR) [--threads T]
       any mode: [--optimized-model PATH] (ORT writes its optimized graph there)
  --batch B     batch size (default 1; must match a static batch dimension)
  --threads T   intra-op threads (default 1)
  --warmup N    untimed runs first (default 3)
  --runs N      timed runs (default 10)
  --seed S      seed of the random input (default 0)
  --shape C,H,W per-image shape when the model's metadata leaves it symbolic`;

function parseArgs(argv) {
  const opt = {batch: 1, threads: 1, warmup: 3, runs: 10, seed: 0, shape: null, input: null, output: null,
    'all-outputs': null, 'optimized-model': null};
  const ints = {'--batch': [1, 65536], '--threads': [1, 1024], '--warmup': [0, 100000], '--runs': [1, 100000],
    '--seed': [0, 2 ** 31 - 1]};
  const pos = [];
  for (let i = 0; i < argv.length; ++i) {
    let a = argv[i]; let v = null;
    if (a === '-h' || a === '--help') { console.log(USAGE); process.exit(0); }
    if (a.startsWith('--') && a.includes('=')) { v = a.slice(a.indexOf('=') + 1); a = a.slice(0, a.indexOf('=')); }
    if (!a.startsWith('--')) { pos.push(a); continue; }
    if (v === null) {
      if (i + 1 >= argv.length) die(`option '${a}' needs a value`);
      v = argv[++i];
    }
    if (a in ints) {
      const n = Number(v);
      const [lo, hi] = ints[a];
      if (!/^-?\d+$/.test(v) || n < lo || n > hi) die(`option '${a}': '${v}' is not an integer in [${lo}, ${hi}]`);
      opt[a.slice(2)] = n;
    } else if (a === '--shape') {
      const s = v.split(',').map(Number);
      if (s.length !== 3 || s.some((d) => !Number.isInteger(d) || d <= 0)) die(`option '--shape': want C,H,W, got '${v}'`);
      opt.shape = s;
    } else if (a === '--input' || a === '--output' || a === '--all-outputs' || a === '--optimized-model') {
      opt[a.slice(2)] = v;
    } else {
      die(`unknown option '${a}'`);
    }
  }
  if (pos.length !== 1) die(pos.length ? `expected one model, got ${pos.length} positional arguments` : 'missing MODEL.onnx');
  if (opt.output !== null && opt['all-outputs'] !== null) die('--output and --all-outputs exclude each other');
  if ((opt.input === null) !== (opt.output === null && opt['all-outputs'] === null)) {
    die('--input goes with --output or --all-outputs');
  }
  opt.model = pos[0];
  return opt;
}

function die(msg) {
  process.stderr.write(`ort_bench: error: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

// Seeded PRNG (mulberry32) and Box-Muller: reproducible N(0,1) images.
function randomNormal(n, seed) {
  let s = (seed + 0x9e3779b9) >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = next() || 1e-12; const u2 = next();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

function inputShape(meta, opt) {
  const dims = meta && meta.isTensor ? meta.shape : [];
  if (dims.length !== 0 && dims.length !== 4) throw new Error(`input '${meta.name}' has rank ${dims.length}, want 4 (NCHW)`);
  const shape = [opt.batch];
  if (dims.length === 4 && typeof dims[0] === 'number' && dims[0] > 0 && dims[0] !== opt.batch) {
    throw new Error(`model has a static batch of ${dims[0]}; --batch ${opt.batch} does not match (export with a dynamic batch)`);
  }
  for (let d = 1; d < 4; ++d) {
    const m = dims.length === 4 && typeof dims[d] === 'number' && dims[d] > 0 ? dims[d] : null;
    const o = opt.shape ? opt.shape[d - 1] : null;
    if (m !== null && o !== null && m !== o) throw new Error(`--shape dimension ${d} is ${o} but the model says ${m}`);
    if (m === null && o === null) throw new Error(`input dimension ${d} is symbolic ('${dims[d]}'); pass --shape C,H,W`);
    shape.push(m !== null ? m : o);
  }
  return shape;
}

function percentile(sorted, p) {
  // Nearest-rank on the sorted sample; the median averages the middle pair for even counts.
  if (p === 50) {
    const n = sorted.length;
    return n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  }
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function main() {
  const opt = parseArgs(process.argv.slice(2));
  const ort = require('onnxruntime-node');
  const sessionOptions = {
    intraOpNumThreads: opt.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
    executionMode: 'sequential', logSeverityLevel: 3,
  };
  if (opt['optimized-model'] !== null) sessionOptions.optimizedModelFilePath = opt['optimized-model'];
  const session = await ort.InferenceSession.create(opt.model, sessionOptions);
  const inName = session.inputNames[0];
  const outName = session.outputNames[0];
  const meta = session.inputMetadata ? session.inputMetadata[0] : null;
  const version = require('onnxruntime-node/package.json').version;

  if (opt.input !== null) {
    const x = readNpy(opt.input);
    if (x.shape.length !== 4) throw new Error(`${opt.input}: shape [${x.shape}] is not NCHW`);
    const out = await session.run({[inName]: new ort.Tensor('float32', x.data, x.shape)});
    if (opt['all-outputs'] !== null) {
      const fs = require('fs');
      fs.mkdirSync(opt['all-outputs'], {recursive: true});
      session.outputNames.forEach((name, k) => {
        const t = out[name];
        if (t.type !== 'float32') throw new Error(`output '${name}' is ${t.type}; --all-outputs writes float32 only`);
        writeNpy(path.join(opt['all-outputs'], `${k}.npy`), t.dims.map(Number), t.data);
      });
      fs.writeFileSync(path.join(opt['all-outputs'], 'outputs.json'), JSON.stringify(session.outputNames));
      console.log(JSON.stringify({peer: 'onnxruntime', version, model: path.basename(opt.model), input: opt.input,
        all_outputs: opt['all-outputs'], count: session.outputNames.length}));
      return;
    }
    const y = out[outName];
    writeNpy(opt.output, y.dims.map(Number), y.data);
    console.log(JSON.stringify({peer: 'onnxruntime', version, model: path.basename(opt.model), input: opt.input,
      output: opt.output, shape: y.dims.map(Number)}));
    return;
  }

  const shape = inputShape(meta, opt);
  const x = new ort.Tensor('float32', randomNormal(shape.reduce((a, b) => a * b, 1), opt.seed), shape);
  const feeds = {[inName]: x};
  for (let i = 0; i < opt.warmup; ++i) await session.run(feeds);
  const ms = [];
  for (let i = 0; i < opt.runs; ++i) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const sorted = [...ms].sort((a, b) => a - b);
  const median = percentile(sorted, 50);
  const r3 = (v) => Math.round(v * 1000) / 1000;
  console.log(JSON.stringify({
    peer: 'onnxruntime', version, model: path.basename(opt.model), batch: opt.batch, threads: opt.threads,
    median_ms: r3(median), p90_ms: r3(percentile(sorted, 90)), min_ms: r3(sorted[0]),
    mean_ms: r3(ms.reduce((a, b) => a + b, 0) / ms.length), images_per_s: r3((opt.batch * 1000) / median),
    runs: opt.runs, warmup: opt.warmup, input_shape: shape,
  }));
}

main().catch((e) => {
  process.stderr.write(`ort_bench: error: ${e && e.message ? e.message : e}\n`);
  process.exit(1);
});
