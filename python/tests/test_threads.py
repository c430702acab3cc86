# Python threads and adalog: Session.run releases the GIL; threads with their own Sessions and
# threads sharing one Session get exactly the single-threaded logits. Session::Run is thread-safe
# (adalog._session_run_serialized is False), so the scaling test runs threads on one Session; it
# needs a machine with 2 idle CPUs.
import os
import threading
import time

import numpy as np
import pytest

import adalog
from conftest import DIGITS_ONNX, DIGITS_W4A4

MODELS = [DIGITS_ONNX, DIGITS_W4A4]


def run_threads(n, target):
    errors = []

    def wrap(i):
        try:
            target(i)
        except BaseException as e:  # surfaced in the main thread below
            errors.append(e)

    ts = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]


def test_run_releases_the_gil(test_x):
    s = adalog.Session(DIGITS_ONNX, threads=1, max_batch=32)
    x = np.concatenate([test_x] * 2)  # 1000 images: about a second of engine time
    count, stop = [0], [False]

    def tick():
        while not stop[0]:
            time.sleep(0.001)
            count[0] += 1

    t = threading.Thread(target=tick)
    t.start()
    time.sleep(0.05)
    before, t0 = count[0], time.monotonic()
    s.run(x)
    during, seconds = count[0] - before, time.monotonic() - t0
    stop[0] = True
    t.join()
    # With the GIL held for the whole call, the ticker could only advance at its two edges.
    assert seconds > 0.1 and during >= 10, f"ticker advanced {during} times during a {seconds:.2f} s run"


@pytest.mark.parametrize("model", MODELS)
def test_one_session_per_thread(test_x, model):
    x = test_x[:64]
    want = adalog.Session(model, threads=1).run(x)
    got = [None] * 4

    def work(i):
        s = adalog.Session(model, threads=1)
        for _ in range(3):
            got[i] = s.run(x[i * 16:(i + 1) * 16])

    run_threads(4, work)
    assert np.concatenate(got).tobytes() == want.tobytes()


@pytest.mark.parametrize("model", MODELS)
def test_threads_sharing_one_session(test_x, model):
    # Concurrent run() calls on one Session (Session::Run is thread-safe): each thread runs its own
    # slice, several times, interleaved with the others, and gets the sequential bytes.
    s = adalog.Session(model, threads=1, max_batch=8)
    x = test_x[:96]
    want = [s.run(x[i * 24:(i + 1) * 24]) for i in range(4)]
    got = [[] for _ in range(4)]

    def work(i):
        for _ in range(4):
            got[i].append(s.run(x[i * 24:(i + 1) * 24]))

    run_threads(4, work)
    for i in range(4):
        assert len(got[i]) == 4 and all(g.tobytes() == want[i].tobytes() for g in got[i])


def idle_cpus():
    return len(os.sched_getaffinity(0)) - os.getloadavg()[0]


@pytest.mark.skipif(idle_cpus() < 2.5, reason="a scaling measurement needs 2 idle CPUs (on a loaded machine the "
                                              "second thread has no core to run on)")
def test_shared_session_scales_with_python_threads(test_x):
    s = adalog.Session(DIGITS_W4A4, threads=1, max_batch=8)
    x = test_x[:200]
    s.run(x)  # warm up

    def best_of(k, f):
        out = []
        for _ in range(k):
            t0 = time.perf_counter()
            f()
            out.append(time.perf_counter() - t0)
        return min(out)

    one = best_of(3, lambda: [s.run(x) for _ in range(2)])
    two = best_of(3, lambda: run_threads(2, lambda i: s.run(x)))
    assert one / two > 1.2, f"2 Python threads on one Session: {one / two:.2f}x the throughput of 1"
