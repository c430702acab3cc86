# Shared fixtures of the Python binding tests: where the repository, the built CLI and the shipped
# digits model are, and small helpers (running the CLI, listing leftover files).
# ctest sets ADALOG_SOURCE_DIR, ADALOG_CLI and PYTHONPATH (python/CMakeLists.txt); by hand:
#   PYTHONPATH=build/python /usr/bin/python3 -m pytest -q python/tests
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

ROOT = pathlib.Path(os.environ.get("ADALOG_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
CLI = pathlib.Path(os.environ.get("ADALOG_CLI", ROOT / "build" / "cli" / "adalog"))
DIGITS = ROOT / "models" / "digits"
DIGITS_ONNX = DIGITS / "digits_vit.onnx"
DIGITS_W4A4 = ROOT / "models" / "int_test" / "digits_w4a4.adq"  # a shipped quantized file


def run_cli(*args, cwd=None):
    """Runs the adalog CLI; returns its stdout (fails the test on a non-zero exit)."""
    p = subprocess.run([str(CLI), *map(str, args)], cwd=cwd, capture_output=True, text=True)
    assert p.returncode == 0, f"adalog {' '.join(map(str, args))}: rc {p.returncode}\n{p.stderr}"
    return p.stdout


def cli_eval_json(model, data, labels, *extra):
    return json.loads(run_cli("eval", model, "--data", data, "--labels", labels, "--json", *extra))


@pytest.fixture(scope="session")
def test_x():
    x = np.load(DIGITS / "test_x.npy")
    assert x.dtype == np.float32 and x.shape == (500, 3, 16, 16)
    return x


@pytest.fixture(scope="session")
def test_y():
    return np.load(DIGITS / "test_y.npy")
