# adalog.Session: logits byte-identical to `adalog run`, zero-copy input, the dtype / layout /
# shape contract, errors as adalog.Error, thread-count determinism.
import numpy as np
import pytest

import adalog
from conftest import CLI, DIGITS, DIGITS_ONNX, DIGITS_W4A4, run_cli


def top1(logits, labels):
    return float(np.mean(np.argmax(logits, axis=1) == labels))


@pytest.mark.parametrize("model,simulate", [(DIGITS_ONNX, False), (DIGITS_W4A4, False), (DIGITS_W4A4, True)])
def test_run_matches_cli_bytes(tmp_path, test_x, test_y, model, simulate):
    x = test_x[:45]  # 45 = 5 full batches of 8 + a batch of 5
    np.save(tmp_path / "x.npy", x)
    extra = ["--simulate"] if simulate else []
    run_cli("run", model, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy", "--threads", 1,
            "--batch", 8, *extra)
    want = np.load(tmp_path / "y.npy")
    s = adalog.Session(str(model), threads=1, max_batch=8, simulate=simulate)
    if model == DIGITS_ONNX:
        assert s.executor == "fp32"
    else:  # the integer executor needs AVX-512 VNNI; elsewhere the Session runs the simulated one
        assert s.executor == "sim" if simulate else s.executor in ("int", "sim")
    got = s.run(x)
    assert got.dtype == np.float32 and got.shape == (45, 10) and got.flags.c_contiguous
    assert got.tobytes() == want.tobytes()
    # Not vacuous: real logits of a trained model (distinct rows, mostly right answers).
    assert len({r.tobytes() for r in got}) == 45
    assert top1(got, test_y[:45]) >= 0.9


def test_fp32_matches_pytorch():
    x = np.load(DIGITS / "digits_vit.input.npy")
    ref = np.load(DIGITS / "digits_vit.output.npy")
    got = adalog.Session(DIGITS_ONNX, threads=1).run(x)  # os.PathLike accepted
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    assert (np.argmax(got, 1) == np.argmax(ref, 1)).all()


def test_properties():
    s = adalog.Session(str(DIGITS_W4A4), threads=1, max_batch=4, simulate=True)
    assert (s.num_classes, s.input_shape, s.max_batch, s.format, s.executor) == (10, (3, 16, 16), 4, "quantized", "sim")
    assert "digits_w4a4.adq" in repr(s)


def test_contiguous_input_is_not_copied(test_x):
    x = test_x[:8]
    addr, copied = adalog._input_address(x)
    assert addr == x.ctypes.data and not copied
    ro = x.copy()
    ro.setflags(write=False)  # read-only arrays are read in place too
    assert adalog._input_address(ro) == (ro.ctypes.data, False)


@pytest.mark.parametrize("make", [
    lambda x: np.asfortranarray(x),                 # Fortran order
    lambda x: np.repeat(x, 2, axis=3)[..., ::2],    # strided view
    lambda x: x.astype(">f4"),                      # byte-swapped float32
])
def test_other_float32_layouts_are_copied_losslessly(test_x, make):
    x = test_x[:8]
    y = make(x)
    assert not (y.flags.c_contiguous and y.dtype == np.dtype("=f4"))
    np.testing.assert_array_equal(y, x)
    addr, copied = adalog._input_address(y)
    assert copied and addr != y.ctypes.data
    s = adalog.Session(DIGITS_ONNX, threads=1)
    assert s.run(y).tobytes() == s.run(x).tobytes()


@pytest.mark.parametrize("bad,message", [
    (lambda x: x.astype(np.float64), "dtype float64, expected float32"),
    (lambda x: x.astype(np.float16), "dtype float16, expected float32"),
    (lambda x: (x * 10).astype(np.int32), "dtype int32, expected float32"),
    (lambda x: x[0], "got rank 3 [3,16,16] (one image: add the batch axis"),
    (lambda x: x[None], "got rank 5"),
    (lambda x: x[:, :1], "shape [4,1,16,16] does not match the model's [B,3,16,16]"),
    (lambda x: x[:, :, :8], "does not match the model's [B,3,16,16]"),
    (lambda x: x[:0], "no images (shape [0,3,16,16])"),
    (lambda x: x.tolist(), "expected a numpy array"),
])
def test_bad_input_raises_adalog_error(test_x, bad, message):
    s = adalog.Session(DIGITS_ONNX, threads=1)
    with pytest.raises(adalog.Error) as e:
        s.run(bad(test_x[:4]))
    assert message in str(e.value)
    assert isinstance(e.value, RuntimeError)


def test_nan_input_is_refused(test_x):
    x = test_x[:4].copy()
    x[2, 1, 3, 4] = np.nan
    with pytest.raises(adalog.Error, match=r"input: element \[2,1,3,4\] is NaN"):
        adalog.Session(DIGITS_ONNX, threads=1).run(x)


def test_missing_and_corrupt_models(tmp_path):
    with pytest.raises(adalog.Error, match="cannot open model file"):
        adalog.Session(str(tmp_path / "missing.onnx"))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf" * 7)
    with pytest.raises(adalog.Error):
        adalog.Session(str(junk))
    # A quantized file with one byte changed in its payload: the checksum refuses it.
    data = bytearray(DIGITS_W4A4.read_bytes())
    data[len(data) // 2] ^= 0x40
    bad = tmp_path / "flipped.adq"
    bad.write_bytes(bytes(data))
    with pytest.raises(adalog.Error):
        adalog.Session(str(bad))
    cut = tmp_path / "truncated.adq"
    cut.write_bytes(DIGITS_W4A4.read_bytes()[: len(data) // 3])
    with pytest.raises(adalog.Error):
        adalog.inspect(str(cut))
    with pytest.raises(adalog.Error, match="threads"):
        adalog.Session(DIGITS_ONNX, threads=-1)
    with pytest.raises(adalog.Error, match="max batch"):
        adalog.Session(DIGITS_ONNX, max_batch=0)


def test_same_bytes_for_any_thread_count(test_x):
    x = test_x[:16]
    one = adalog.Session(DIGITS_W4A4, threads=1).run(x)
    two = adalog.Session(DIGITS_W4A4, threads=2).run(x)
    assert one.tobytes() == two.tobytes()


def test_inspect_matches_cli():
    d = adalog.inspect(str(DIGITS_ONNX))
    text = run_cli("inspect", DIGITS_ONNX)
    assert d["format"] == "onnx" and d["input_shape"] == (3, 16, 16) and d["num_classes"] == 10
    assert (d["dim"], d["blocks"], d["heads"], d["mlp_dim"], d["tokens"]) == (96, 6, 3, 384, 65)
    assert f"dim {d['dim']}, {d['blocks']} blocks, {d['heads']} heads x {d['head_dim']}" in text
    assert f"{d['parameters'] / 1e6:.3f} M parameters" in text
    assert f"opset {d['opset']}" in text
    q = adalog.inspect(str(DIGITS_W4A4))
    assert q["format"] == "quantized" and q["plan"]["weight_bits"] == 4 and q["plan"]["act_bits"] == 4
    assert q["plan"]["text"] in run_cli("inspect", DIGITS_W4A4)  # the plan lines, as the CLI prints them


@pytest.mark.parametrize("model,extra", [(DIGITS_ONNX, []), (DIGITS_W4A4, []), (DIGITS_W4A4, ["--simulate"])])
def test_evaluate_matches_cli_json(test_x, test_y, model, extra):
    from conftest import cli_eval_json
    want = cli_eval_json(model, DIGITS / "test_x.npy", DIGITS / "test_y.npy", "--threads", 1, *extra)
    got = adalog.evaluate(str(model), str(DIGITS / "test_x.npy"), str(DIGITS / "test_y.npy"), threads=1,
                          simulate=bool(extra))
    assert set(got) == set(want)
    for k in want:
        if k not in ("seconds", "model", "data"):
            assert got[k] == pytest.approx(want[k], abs=1e-6), k
    assert got["images"] == 500 and got["top1"] >= 0.95  # the trained model, not chance (0.1)
    # The same data as arrays gives the same counts.
    arr = adalog.evaluate(str(model), test_x, test_y, threads=1, simulate=bool(extra))
    assert (arr["top1_correct"], arr["top5_correct"], arr["executor"]) == (got["top1_correct"], got["top5_correct"],
                                                                          got["executor"])


def test_evaluate_reference_logits_and_errors(tmp_path, test_x, test_y):
    ref = adalog.Session(DIGITS_ONNX, threads=1).run(test_x[:40])
    np.save(tmp_path / "ref.npy", ref)
    from conftest import cli_eval_json
    cli_json = cli_eval_json(DIGITS_W4A4, DIGITS / "test_x.npy", DIGITS / "test_y.npy", "--threads", 1, "--limit", 40,
                             "--reference-logits", tmp_path / "ref.npy")
    got = adalog.evaluate(str(DIGITS_W4A4), str(DIGITS / "test_x.npy"), str(DIGITS / "test_y.npy"), threads=1, limit=40,
                          reference_logits=str(tmp_path / "ref.npy"))
    for k in ("ref_cosine", "ref_cosine_min", "ref_top1_agreement", "top1_correct"):
        assert got[k] == pytest.approx(cli_json[k], abs=1e-6), k
    assert 0.9 < got["ref_cosine"] < 1.0
    with pytest.raises(adalog.Error, match="needs labels"):
        adalog.evaluate(str(DIGITS_ONNX), str(DIGITS / "test_x.npy"))
    with pytest.raises(adalog.Error, match="labels: shape"):
        adalog.evaluate(str(DIGITS_ONNX), test_x[:10], test_y[:9])
    with pytest.raises(adalog.Error, match="outside"):
        adalog.evaluate(str(DIGITS_ONNX), test_x[:10], test_y[:10] + 10)
    with pytest.raises(adalog.Error, match="apply to image folders"):
        adalog.evaluate(str(DIGITS_ONNX), test_x[:10], test_y[:10], resize=20)


def test_evaluate_image_folder_matches_cli(tmp_path, test_x, test_y):
    # The first 40 digits test images written back as 16x16 PNGs in class folders 0..9 (undoing the
    # model's normalization), evaluated from the folder with and without the preprocessing options,
    # compared with `adalog eval --json` on the same folder.
    import json
    from PIL import Image
    for c in range(10):
        (tmp_path / "imgs" / str(c)).mkdir(parents=True)
    for i in range(40):
        rgb = np.clip((test_x[i].transpose(1, 2, 0) * 0.4 + 0.3) * 255 + 0.5, 0, 255).astype(np.uint8)
        Image.fromarray(rgb).save(tmp_path / "imgs" / str(test_y[i]) / f"{i:03d}.png")
    folder = str(tmp_path / "imgs")
    for opts, flags in [({}, []),
                        (dict(resize=16, mean=[0.3, 0.3, 0.3], std=[0.4, 0.4, 0.4]),
                         ["--resize", 16, "--mean", "0.3,0.3,0.3", "--std", "0.4,0.4,0.4"])]:
        want = json.loads(run_cli("eval", DIGITS_ONNX, "--data", folder, "--json", "--threads", 1, "--batch", 4, *flags))
        got = adalog.evaluate(str(DIGITS_ONNX), folder, threads=1, batch=4, **opts)
        assert got["images"] == want["images"] == 40
        for k in ("top1_correct", "top5_correct", "executor"):
            assert got[k] == want[k], (k, opts)
    assert got["top1"] >= 0.9  # with the model's own normalization the digits are recognized
    with pytest.raises(adalog.Error, match="subfolders"):
        adalog.evaluate(str(DIGITS_ONNX), folder, str(DIGITS / "test_y.npy"))
