#!/usr/bin/env bash
# The `adalog` command line contract: usage errors exit 2 with a clear message on stderr,
# --help/--version exit 0 on stdout, runtime errors exit 1. Needs no model and no runtime.
#   bash tests/cli/usage.sh <path-to-adalog> <repo-root>
# Fails (exit 1) on any mismatch, printing the command, what was expected and what came back.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cli_init usage.sh "$@"

# check WANT_RC STREAM WANT_TEXT -- ARGS...
#   STREAM is stdout or stderr: WANT_TEXT must appear in it (fixed string). The other stream must
#   be empty for usage errors (stderr only) and for help/version (stdout only).
check() {
  local want_rc=$1 stream=$2 want=$3
  shift 4
  if [[ $stream == stdout ]]; then
    expect_exit "$want_rc" "$want" --stdout -- "$@"
  else
    expect_exit "$want_rc" "$want" --quiet -- "$@"
  fi
}

M=$TMP/missing_model.onnx  # never created: anything that gets past parsing fails at run time

# --- top level
check 2 stderr "usage: adalog COMMAND" --
check 0 stdout "usage: adalog COMMAND" -- --help
check 0 stdout "usage: adalog COMMAND" -- -h
check 0 stdout "adalog " -- --version
check 2 stderr "adalog: error: unknown command 'frob' (commands: inspect, run, eval, bench, quantize" -- frob
check 2 stderr "adalog: error: unknown option '--frob' before the command" -- --frob
for c in inspect run eval bench quantize; do
  check 0 stdout "  $c " -- --help
  check 0 stdout "usage: adalog $c" -- "$c" --help
  check 0 stdout "usage: adalog $c" -- "$c" -h
  check 0 stdout "usage: adalog $c" -- help "$c"
  # --help wins over every other problem on the line
  check 0 stdout "usage: adalog $c" -- "$c" --no-such-flag --help
  check 2 stderr "adalog: error: unknown option '--foo' for 'adalog $c' (see adalog $c --help)" -- "$c" "$M" --foo 1
done
check 2 stderr "unknown command 'nope'" -- help nope

# --- help text names every option of its command
check 0 stdout "--input X.npy" -- run --help
check 0 stdout "--threads N" -- run --help
check 0 stdout "--labels Y.npy" -- eval --help
check 0 stdout "--image-size S" -- eval --help
check 0 stdout "--mean a,b,c" -- eval --help
check 0 stdout "--warmup N" -- bench --help
check 0 stdout "--runs N" -- bench --help
check 0 stdout "-o, --output OUT" -- quantize --help
check 0 stdout "--softmax adalog|log2|logsqrt2|uniform" -- quantize --help
check 0 stdout "--gelu adalog|log2|logsqrt2|twin|uniform" -- quantize --help
check 0 stdout "--no-fpcs" -- quantize --help
check 0 stdout "--no-reparam" -- quantize --help

# --- integers
check 2 stderr "option '--threads' of 'adalog bench': 'abc' is not an integer" -- bench "$M" --threads abc
check 2 stderr "option '--threads' of 'adalog bench': '2x' is not an integer" -- bench "$M" --threads 2x
check 2 stderr "option '--threads' of 'adalog run': '1.5' is not an integer" -- run "$M" --input a.npy --output b.npy --threads 1.5
check 2 stderr "option '--batch' of 'adalog bench': 0 is out of range [1, 1024]" -- bench "$M" --batch 0
check 2 stderr "option '--batch' of 'adalog bench': 100000 is out of range [1, 1024]" -- bench "$M" --batch 100000
check 2 stderr "option '--batch' of 'adalog run': -3 is out of range [1, 1024]" -- run "$M" --input a.npy --output b.npy --batch -3
check 2 stderr "option '--threads' of 'adalog eval': 99999999999999999999 is out of range" -- eval "$M" --data d --threads 99999999999999999999
check 2 stderr "option '--threads' of 'adalog bench': 0 is out of range [1, 256]" -- bench "$M" --threads=0
check 2 stderr "option '--runs' of 'adalog bench': 0 is out of range" -- bench "$M" --runs 0
check 2 stderr "option '--warmup' of 'adalog bench': empty value" -- bench "$M" --warmup=
check 2 stderr "option '--limit' of 'adalog eval': 0 is out of range" -- eval "$M" --data d --limit 0

# --- values, repeats, positionals, required options
check 2 stderr "option '--threads' of 'adalog bench' needs a value (--threads N)" -- bench "$M" --threads
check 2 stderr "option '--batch' of 'adalog bench' needs a value" -- bench "$M" --batch --json
check 2 stderr "option '--batch' given more than once for 'adalog bench'" -- bench "$M" --batch 1 --batch=2
check 2 stderr "option '--json' given more than once for 'adalog eval'" -- eval "$M" --data d --json --json
check 2 stderr "option '--json' of 'adalog bench' takes no value" -- bench "$M" --json=yes
check 2 stderr "missing MODEL for 'adalog bench'" -- bench
check 2 stderr "missing MODEL for 'adalog run'" -- run --input a.npy --output b.npy
check 2 stderr "unexpected argument 'extra' for 'adalog inspect'" -- inspect "$M" extra
check 2 stderr "missing required option '--input X.npy|DIR' for 'adalog run'" -- run "$M" --output b.npy
check 2 stderr "missing required option '--output Y.npy' for 'adalog run'" -- run "$M" --input a.npy
check 2 stderr "missing required option '--data X.npy|DIR' for 'adalog eval'" -- eval "$M"
check 2 stderr "missing required option '--calib X.npy|DIR' for 'adalog quantize'" -- quantize "$M" -o out.adalog
check 2 stderr "missing required option '--output OUT' for 'adalog quantize'" -- quantize "$M" --calib c.npy
check 2 stderr "did you mean '--threads'?" -- bench "$M" --thread 2
check 2 stderr "unknown option '-x' for 'adalog bench'" -- bench "$M" -x
check 2 stderr "--output a.npy is the same file as --input a.npy" -- run "$M" --input a.npy --output a.npy
check 2 stderr "--output ./a.npy is the same file as --input a.npy" -- run "$M" --input a.npy --output ./a.npy

# --- eval's data options
check 2 stderr "it needs --labels Y.npy" -- eval "$M" --data x.npy
check 2 stderr "--labels is for .npy data" -- eval "$M" --data imgdir --labels y.npy
check 2 stderr "--image-size applies to image folders" -- eval "$M" --data x.npy --labels y.npy --image-size 224
check 2 stderr "option '--mean' of 'adalog eval': '1,2' has 2 values, want 3" -- eval "$M" --data d --mean 1,2
check 2 stderr "option '--std' of 'adalog eval': 'a' is not a finite number" -- eval "$M" --data d --std 1,2,a
check 2 stderr "option '--std' of 'adalog eval': every value must be > 0" -- eval "$M" --data d --std 0.2,0,0.2
check 2 stderr "--resize 200 is smaller than --image-size 224" -- eval "$M" --data d --image-size 224 --resize 200

# --- the preprocessing options shared by quantize/eval/run/bench (cli/preprocess_options.h)
check 2 stderr "option '--preprocess' of 'adalog eval': 'pytorch' is not one of imagenet, torchvision, timm, none" -- eval "$M" --data d --preprocess pytorch
check 2 stderr "option '--interpolation' of 'adalog quantize': 'lanczos' is not one of bilinear, bicubic, nearest" -- quantize "$M" --calib d -o o --interpolation lanczos
check 2 stderr "option '--channel-order' of 'adalog run': 'grb' is not one of rgb, bgr" -- run "$M" --input d --output y.npy --channel-order grb
check 2 stderr "--force-preprocess needs a preprocessing option to force" -- eval "$M" --data d --force-preprocess
check 2 stderr "--mean applies to image folders; .npy data (x.npy) is used as already preprocessed" -- run "$M" --input x.npy --output y.npy --mean 0.5,0.5,0.5
check 2 stderr "--preprocess applies to image folders" -- eval "$M" --data x.npy --labels y.npy --preprocess timm
check 2 stderr "the preprocessing options and --strict apply to --data DIR" -- bench "$M" --preprocess timm
check 0 stdout "--preprocess imagenet|torchvision|timm|none" -- quantize --help
check 0 stdout "--interpolation bilinear|bicubic|nearest" -- bench --help

# --- quantize's options
check 2 stderr "option '--bits' of 'adalog quantize': 'W4' is not of the form WxAy" -- quantize "$M" --calib c.npy -o o --bits W4
check 2 stderr "option '--bits' of 'adalog quantize' activation bits: 9 is out of range [2, 8]" -- quantize "$M" --calib c.npy -o o --bits W4A9
check 2 stderr "option '--wbits' of 'adalog quantize': 1 is out of range [2, 8]" -- quantize "$M" --calib c.npy -o o --wbits 1
check 2 stderr "option '--softmax' of 'adalog quantize': 'log3' is not one of adalog, log2, logsqrt2, uniform" -- quantize "$M" --calib c.npy -o o --softmax log3
check 2 stderr "option '--gelu' of 'adalog quantize': 'relu' is not one of adalog, log2, logsqrt2, twin, uniform" -- quantize "$M" --calib c.npy -o o --gelu relu
check 2 stderr "-o $M is the same file as MODEL '$M'" -- quantize "$M" --calib c.npy -o "$M"
check 2 stderr "-o c.npy is the same file as --calib c.npy" -- quantize "$M" --calib c.npy -o c.npy

# --- past parsing: runtime failures exit 1 with the runtime's message (here: the model file that
# does not exist, the first thing every command opens; quantize checks its output folder first,
# which exists)
NOMODEL="adalog: error: $M: cannot open model file"
check 1 stderr "$NOMODEL" -- bench "$M" --batch 2 --threads 1 --json --warmup 0 --runs 1
check 1 stderr "$NOMODEL" -- inspect "$M"
check 1 stderr "$NOMODEL" -- run "$M" --input "$TMP/x.npy" --output "$TMP/y.npy" --threads 1 --batch 2
check 1 stderr "$NOMODEL" -- eval "$M" --data "$TMP/x.npy" --labels "$TMP/y.npy" --json --limit 5
check 1 stderr "$NOMODEL" -- eval "$M" --data "$TMP/imgs" --image-size 224 --resize 256 --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5
check 1 stderr "$NOMODEL" -- quantize "$M" --calib "$TMP/c.npy" --bits w8a8 -o "$TMP/q.adalog" --softmax log2 --gelu twin --calib-size 8 --seed 3 --no-fpcs --no-reparam
check 1 stderr "$NOMODEL" -- bench -- "$M"

# --- --simulate on an FP32 ONNX model (nothing to simulate): a usage error, not silently FP32.
# The one check here that reads a model (the tiny ONNX).
ONNX=$ROOT/models/tiny/tiny_timm_op17_dyn.onnx
# (refused right after the model loads, before the data is opened: the .npy files need not exist)
SIMERR="--simulate runs a quantized model's simulated (fake-quant) executor, but $ONNX is an FP32 ONNX model"
check 2 stderr "'adalog run': $SIMERR" -- run "$ONNX" --input "$TMP/x2.npy" --output "$TMP/y.npy" --simulate --threads 1
[[ -e $TMP/y.npy ]] && bad "run --simulate on ONNX wrote its output"
check 2 stderr "'adalog eval': $SIMERR" -- eval "$ONNX" --data "$TMP/x2.npy" --labels "$TMP/y2.npy" --simulate --threads 1
check 2 stderr "'adalog bench': $SIMERR" -- bench "$ONNX" --simulate --warmup 0 --runs 1

cli_finish "cli usage"
