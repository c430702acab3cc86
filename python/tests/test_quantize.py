# adalog.quantize: the same file bytes as `adalog quantize` for the same inputs, an array calibration
# set equivalent to its .npy, progress reports, the GIL released, errors before any long work, and
# Ctrl-C (KeyboardInterrupt) / a raising callback leaving no file behind.
# Small, fast calibration (8 of the 32 shipped digits images, no FPCS): about 15 s each on a loaded
# 2-core machine (5 CPU-s).
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import adalog
from conftest import DIGITS, DIGITS_ONNX, DIGITS_W4A4, cli_eval_json, run_cli

SMALL = dict(calib_size=8, fpcs=False, threads=1)
CLI_SMALL = ["--calib-size", 8, "--no-fpcs", "--threads", 1]


def leftovers(d, keep):
    return sorted(set(os.listdir(d)) - set(keep))


class Ticker:
    """A Python thread counting 1 ms sleeps: it advances only while no other thread holds the GIL."""

    def __init__(self):
        self.count, self._stop = 0, False
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self):
        while not self._stop:
            time.sleep(0.001)
            self.count += 1

    def stop(self):
        self._stop = True
        self._t.join()


def test_quantize_matches_cli_and_releases_gil(tmp_path, test_x, test_y):
    calib = DIGITS / "calib.npy"
    run_cli("quantize", DIGITS_ONNX, "--calib", calib, "--bits", "W4A4", "-o", tmp_path / "cli.adalog", *CLI_SMALL)
    steps = []
    ticker = Ticker()
    time.sleep(0.05)
    before = ticker.count
    summary = adalog.quantize(str(DIGITS_ONNX), str(calib), "W4A4", output=str(tmp_path / "py.adalog"),
                              progress=lambda done, total, label: steps.append((done, total, label)), **SMALL)
    during = ticker.count - before
    ticker.stop()
    # Byte for byte the CLI's file (the meta records the same source and calib strings).
    assert (tmp_path / "py.adalog").read_bytes() == (tmp_path / "cli.adalog").read_bytes()
    assert leftovers(tmp_path, ["cli.adalog", "py.adalog"]) == []
    assert summary["bytes"] == (tmp_path / "py.adalog").stat().st_size
    assert (summary["weight_bits"], summary["act_bits"], summary["fpcs_mode"], summary["calib_available"]) == (4, 4, None, 32)
    # Progress: every step once, in order, on the calling thread.
    total = steps[-1][1]
    assert total > 10 and [s[0] for s in steps] == list(range(1, total + 1)) and all(s[1] == total for s in steps)
    assert all(isinstance(s[2], str) and s[2] for s in steps)
    # The GIL was released during calibration: the ticker ran far more often than the progress
    # callbacks (the only moments calibration takes the GIL back) would allow.
    assert during > 10 * total, f"ticker advanced {during} times in {summary['calibration_seconds']:.1f} s"
    # Accuracy: what the CLI measures on the CLI's file, and a working W4A4 model (FP32: 98.0%).
    want = cli_eval_json(tmp_path / "cli.adalog", DIGITS / "test_x.npy", DIGITS / "test_y.npy", "--threads", 1)
    got = adalog.evaluate(str(tmp_path / "py.adalog"), test_x, test_y, threads=1)
    assert got["top1_correct"] == want["top1_correct"] and got["executor"] == want["executor"]
    assert 0.95 <= got["top1"] <= 0.99


def test_array_calibration_equals_its_npy(tmp_path, test_x):
    calib = np.load(DIGITS / "calib.npy")
    adalog.quantize(DIGITS_ONNX, DIGITS / "calib.npy", output=tmp_path / "path.adalog", seed=5, **SMALL)
    adalog.quantize(DIGITS_ONNX, calib, output=tmp_path / "array.adalog", seed=5, **SMALL)
    a, b = adalog.inspect(tmp_path / "path.adalog"), adalog.inspect(tmp_path / "array.adalog")
    assert b["plan"]["meta"]["calib"] == "<numpy array>" and a["plan"]["meta"]["calib"].endswith("calib.npy")
    drop = lambda t: [l for l in t.splitlines() if "calib=" not in l and not l.startswith("meta")]
    assert drop(a["plan"]["text"]) == drop(b["plan"]["text"]) and len(drop(a["plan"]["text"])) > 20
    x = test_x[:24]
    assert (adalog.Session(tmp_path / "path.adalog", threads=1).run(x).tobytes() ==
            adalog.Session(tmp_path / "array.adalog", threads=1).run(x).tobytes())


@pytest.mark.parametrize("kwargs,message", [
    (dict(bits="W9A4"), "unsupported weight bit width 9"),
    (dict(bits="4bit"), "not of the form WxAy"),
    (dict(softmax="cubic"), "cubic"),
    (dict(fpcs=False, fpcs_mode="best"), "fpcs=False turns FPCS off"),
    (dict(calib_size=40), "has 32 images"),
    (dict(calib=np.zeros((8, 3, 8, 8), np.float32)), "the model expects [N,3,16,16]"),
    (dict(calib=np.zeros((8, 3, 16, 16))), "dtype float64"),
    (dict(output="no/such/dir/out.adalog"), "does not exist"),
    (dict(output=None), "output= is required"),
    (dict(onnx_path=DIGITS_W4A4), "already an adalog quantized model"),
    (dict(progress=42), "progress must be callable"),
])
def test_quantize_errors_write_nothing(tmp_path, monkeypatch, kwargs, message):
    monkeypatch.chdir(tmp_path)
    args = dict(onnx_path=str(DIGITS_ONNX), calib=str(DIGITS / "calib.npy"), output="out.adalog", threads=1,
                calib_size=8)
    args.update(kwargs)
    t0 = time.monotonic()
    with pytest.raises(adalog.Error) as e:
        adalog.quantize(**args)
    assert message in str(e.value)
    assert os.listdir(tmp_path) == []
    assert time.monotonic() - t0 < 5  # refused before calibrating


def test_unknown_option_is_a_type_error(tmp_path):
    with pytest.raises(TypeError):
        adalog.quantize(str(DIGITS_ONNX), str(DIGITS / "calib.npy"), output=str(tmp_path / "o"), calib_szie=8)


def test_raising_progress_callback_aborts_without_output(tmp_path):
    def progress(done, total, label):
        if done == 2:
            raise ValueError("stop at step 2")

    with pytest.raises(ValueError, match="stop at step 2"):
        adalog.quantize(str(DIGITS_ONNX), str(DIGITS / "calib.npy"), output=str(tmp_path / "o.adalog"),
                        progress=progress, **SMALL)
    assert os.listdir(tmp_path) == []


CHILD = r"""
import queue, sys, threading, adalog
onnx, calib, out, kind = sys.argv[1:5]
def progress(done, total, label):
    print(f"step {done} {total}", flush=True)
steps = queue.SimpleQueue()
def report():  # a second thread: Python handles signals in the main thread only
    while True:
        done = steps.get()
        print(f"step {done} ?", flush=True)
threading.Thread(target=report, daemon=True).start()
print("start", flush=True)
try:
    # SimpleQueue.put is C code that ignores its 2nd and 3rd arguments: as the callback, no Python
    # bytecode runs in the main thread (and no signal handler with it) during calibration.
    adalog.quantize(onnx, calib, output=out, calib_size=8, fpcs=False, threads=1,
                    progress=progress if kind == "python" else steps.put)
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
    sys.exit(3)
print("finished", flush=True)
"""


@pytest.mark.parametrize("kind", ["python", "builtin"])
def test_ctrl_c_raises_keyboard_interrupt_and_writes_nothing(tmp_path, kind):
    # A separate python, so that its SIGINT handler is Python's default. SIGINT goes once step 1 has
    # been reported, i.e. while calibration runs in C++ without the GIL, and must stop it within a
    # step or two (of about 38). With a Python callback the interrupt may also surface from the
    # callback's own bytecode; with a C callback (SimpleQueue.put) only the binding's own signal
    # check at each step can stop the search (checked: without it, every step runs).
    out = tmp_path / "int.adalog"
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(DIGITS_ONNX), str(DIGITS / "calib.npy"), str(out), kind],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    assert p.stdout.readline() == "start\n"
    first = p.stdout.readline()
    assert first.startswith("step 1 "), first + p.stderr.read()
    p.send_signal(signal.SIGINT)
    rest, err = p.communicate(timeout=300)
    assert p.returncode == 3 and "KeyboardInterrupt" in rest, (p.returncode, rest, err)
    assert "finished" not in rest
    later = [l for l in rest.splitlines() if l.startswith("step ")]
    assert len(later) <= 3, f"{len(later)} more steps ran after the signal"
    assert os.listdir(tmp_path) == []  # no output, no temporary file
