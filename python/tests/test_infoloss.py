"""The Python front against independent references: the `infoloss` CLI (forward, hooks --json,
analyze), NumPy arithmetic, and hand-built expectations. Run with `pytest python/tests` after
`pip install ./python`; INFOLOSS_BIN names the CLI (default: the release build)."""

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import infoloss as il

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "tv_mobilenet_v2_w025.safetensors"


def cli() -> str:
    b = os.environ.get("INFOLOSS_BIN")
    if b:
        return b
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    return str(Path(target) / "release" / "infoloss")


def run_cli(*args) -> str:
    return subprocess.run([cli(), *map(str, args)], check=True, capture_output=True, text=True).stdout


def batch(n=3, res=64, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3, res, res), dtype=np.float32)


@pytest.fixture(scope="module")
def tv():
    return il.MobileNetV2.load(str(FIXTURE), width=0.25, classes=10, resolution=64)


def test_logits_equal_the_cli_forward(tv, tmp_path):
    x = batch()
    np.save(tmp_path / "x.npy", x)
    run_cli("forward", "--weights", FIXTURE, "--width", "0.25", "--classes", "10", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    want = np.load(tmp_path / "y.npy")
    got = tv(x)
    assert got.shape == (3, 10) and got.dtype == np.float32
    assert np.max(np.abs(got - want)) <= 1e-6


def test_cache_keys_and_shapes_equal_hooks_json(tv):
    x = batch(2)
    sites = json.loads(run_cli("hooks", "--width", "0.25", "--classes", "10", "--resolution", "64", "--json"))
    assert [s["name"] for s in tv.hooks()] == [s["name"] for s in sites]
    logits, cache = tv.run_with_cache(x)
    assert set(cache) == {s["name"] for s in sites}
    for s in sites:
        assert cache[s["name"]].shape == (2, *s["shape"]), s["name"]
    np.testing.assert_array_equal(logits, tv(x))
    # The last site is the logits themselves.
    np.testing.assert_array_equal(cache["logits"][:, :, 0, 0], logits)
    # Globs, lists and predicates select the same names as the catalogue.
    glob = tv.run_with_cache(x, names="blocks.*.expand.post")[1]
    assert sorted(glob) == sorted(s["name"] for s in sites if s["name"].startswith("blocks.") and s["name"].endswith(".expand.post"))
    pred = tv.run_with_cache(x, names=lambda n: n.endswith(".expand.post"))[1]
    assert sorted(pred) == sorted(glob)
    assert sorted(tv.run_with_cache(x, names=["pool", "logits"])[1]) == ["logits", "pool"]


def test_a_python_hook_changes_the_logits_as_the_rust_intervention_does(tv):
    x = batch(3, seed=1)
    zero = tv.run(x, interventions=[il.ZeroChannels("blocks.3.expand.post", [0, 1])])
    order = []

    def zero_hook(a, name):
        order.append((name, a.shape))
        b = a.copy()
        b[:2] = 0.0
        return b

    by_hook = tv.run(x, hooks=[("blocks.3.expand.post", zero_hook)])
    np.testing.assert_array_equal(by_hook, zero)
    assert not np.array_equal(zero, tv(x)), "the intervention must matter for this test to mean anything"
    # Called once per image, in image order, with C×H×W arrays.
    c = tv.hooks()[[s["name"] for s in tv.hooks()].index("blocks.3.expand.post")]["shape"]
    assert order == [("blocks.3.expand.post", tuple(c))] * 3
    # A hook returning None changes nothing; one at the logits is plain NumPy arithmetic.
    np.testing.assert_array_equal(tv.run(x, hooks=[("blocks.3.expand.post", lambda a, n: None)]), tv(x))
    plus = tv.run(x, hooks=[("logits", lambda a, n: a + 1.0)])
    np.testing.assert_allclose(plus, tv(x) + 1.0, rtol=0, atol=1e-6)


def test_linearize_and_keep_channels_follow_their_definitions(tv):
    x = batch(2, seed=2)
    keep = tv.run(x, interventions=[il.KeepChannels("blocks.4.depthwise.post", [3])])

    def keep_hook(a, n):
        b = np.zeros_like(a)
        b[3] = a[3]
        return b

    np.testing.assert_array_equal(keep, tv.run(x, hooks=[("blocks.4.depthwise.post", keep_hook)]))
    # Linearize replaces a .post site by its .pre (a Python hook can do the same with a cache).
    _, cache = tv.run_with_cache(x, names="blocks.5.depthwise.pre")
    pre = cache["blocks.5.depthwise.pre"]
    images = iter(range(len(x)))
    linear_by_hook = tv.run(x, hooks=[("blocks.5.depthwise.post", lambda a, n: pre[next(images)])])
    np.testing.assert_array_equal(tv.run(x, interventions=[il.Linearize("blocks.5.depthwise.post")]), linear_by_hook)


def test_analyze_tables_equal_the_cli(tv, tmp_path):
    x = batch(2, seed=3)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "an"
    run_cli("analyze", "--weights", FIXTURE, "--width", "0.25", "--classes", "10", "--resolution", "64", "--input", tmp_path / "x.npy", "--lemma2", "--out", out)
    import pandas as pd

    tables = il.analyze(tv, x, lemma2=True)
    for name, file in [("patterns", "activation_patterns.csv"), ("channels", "channels.csv"), ("histograms", "histograms.csv"), ("lemma2", "lemma2.csv")]:
        pd.testing.assert_frame_equal(tables[name], pd.read_csv(out / file), check_exact=True)


def test_weights_round_trip_through_files_and_state_dicts(tv, tmp_path):
    x = batch(1, seed=4)
    tv.save(str(tmp_path / "w.safetensors"))
    again = il.MobileNetV2.load(str(tmp_path / "w.safetensors"))
    np.testing.assert_array_equal(again(x), tv(x))
    sd = tv.state_dict()
    assert "features.0.0.weight" in sd and sd["classifier.1.weight"].shape == (10, 1280)
    sd["features.0.1.num_batches_tracked"] = np.array(0)
    from_sd = il.MobileNetV2.from_state_dict(sd, width=0.25, classes=10)
    np.testing.assert_array_equal(from_sd(x), tv(x))
    with pytest.raises(ValueError, match="missing tensor"):
        il.MobileNetV2.from_state_dict({k: v for k, v in sd.items() if k != "features.0.0.weight"}, width=0.25, classes=10)
    with pytest.raises(ValueError, match="config mismatch for width"):
        il.MobileNetV2.load(str(tmp_path / "w.safetensors"), width=0.5)


def test_bad_inputs_are_converted_or_refused_never_a_crash(tv):
    x = batch(2, seed=5)
    want = tv(x)
    np.testing.assert_array_equal(tv(np.asfortranarray(x)), want)
    np.testing.assert_array_equal(tv(x.astype(np.float64)), want)
    np.testing.assert_array_equal(tv(x[:, :, ::1, ::1]), want)
    for bad, err in [(x[0], ValueError), (x[:, :1], ValueError), (np.zeros((2, 3, 0, 0), np.float32), ValueError), (np.array(["a"]), TypeError)]:
        with pytest.raises(err):
            tv(bad)
    nan = x.copy()
    nan[0, 1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        tv(nan)
    with pytest.raises(ValueError, match="unknown hook"):
        tv.run_with_cache(x, names="blocks.3.expnd.post")
    with pytest.raises(ValueError, match="invalid keyword"):
        il.MobileNetV2(widht=1.0)
    with pytest.raises(OSError):
        il.MobileNetV2.load("/nonexistent/w.safetensors")
    with pytest.raises(ValueError, match="returned shape"):
        tv.run(x, hooks=[("pool", lambda a, n: np.zeros(3, np.float32))])
    with pytest.raises(ZeroDivisionError):
        tv.run(x, hooks=[("pool", lambda a, n: 1 / 0)])


def test_the_gil_is_released_while_rust_computes():
    m = il.MobileNetV2(width=1.0, resolution=224, classes=1000, seed=0)
    # 16 images: the forward must outlast the 20 ms the check needs (4 images took 18 ms on a Zen 5 host).
    x = batch(16, res=224)
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    time.sleep(0.02)
    start = time.perf_counter()
    m(x)
    end = time.perf_counter()
    stop.set()
    t.join()
    during = [s for s in ticks if start < s < end]
    # The forward takes tens of milliseconds; a thread blocked on the GIL would not tick at all.
    assert end - start > 0.02 and len(during) >= 3, (end - start, len(during))


def test_spiral_theory_and_experiments_as_dataframes(tmp_path):
    s = il.spiral(dims=[2, 30], seeds=range(3), points=100)
    assert list(s["n"].unique()) == [2, 30] and len(s) == 6
    assert (s[s["n"] == 30]["invertible_fraction"] == 1.0).all()
    t = il.theory(n=[16], t=[1, 6], seeds=range(2), samples=50)
    from math import comb

    # Theorem 1: P(Binomial(m, ½) ≥ n), by exact integer arithmetic.
    want = [sum(comb(m, k) for k in range(16, m + 1)) / 2**m for m in (16, 96)]
    assert t["theory_noncollapsed"].tolist() == pytest.approx(want, rel=1e-12)
    spec = tmp_path / "sp.toml"
    spec.write_text('name = "sp"\nkind = "spiral"\nseeds = "0..5"\n[spiral]\npoints = 60\n[grid]\n"spiral.n" = [2, 15]\n'
                    '[[claims]]\nid = "c"\nstatement = "s"\nmetric = "pinv_shape_error"\na = "n=2"\nb = "n=15"\n')
    r = il.run(str(spec), out=str(tmp_path / "out"))
    assert r.claims["verdict"].tolist() == ["reproduced"]
    assert set(r.summary["variant"]) == {"n=2", "n=15"} and len(r.runs) == 10
    # The same tables as the CLI writes.
    import pandas as pd

    pd.testing.assert_frame_equal(r.claims, pd.read_csv(tmp_path / "out" / "claims.csv"))


def test_hostile_inputs_are_refused_with_the_right_exception_not_a_crash(tmp_path):
    """Regressions from probing the front with hostile inputs: each was an abort, a PanicException,
    a silent wrong answer or the wrong exception class."""
    m = il.MobileNetV2(width=0.35, resolution=32, classes=10, seed=0)
    x = batch(2, res=32)
    # A tiny .npy declaring a huge array is refused, not allocated.
    f = tmp_path / "huge.npy"
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 3, 100000, 100000), }"
    header += b" " * (127 - 10 - len(header)) + b"\n"
    f.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)
    with pytest.raises(ValueError, match="truncated"):
        il.read_npy(str(f))
    # Networks and sweeps beyond memory are refused up front.
    with pytest.raises(ValueError, match="weights"):
        il.MobileNetV2(width=10, resolution=2048, classes=100000)
    with pytest.raises(ValueError, match="theory"):
        il.theory(n=[4096], t=[64], seeds=[0], samples=1)
    with pytest.raises(ValueError, match="points"):
        il.spiral(dims=[2], seeds=[0], points=10**9)
    # Interventions with bad numbers: ValueError, never a PanicException.
    for bad in [il.Clamp("stem.post", 1, 0), il.Clamp("stem.post", float("nan"), 1), il.ZeroChannels("stem.post", [10**9]),
                il.KeepChannels("stem.post", [10**9]), il.GaussianNoise("stem.post", -1.0), il.Linearize("pool"), il.ZeroChannels([], [0])]:
        with pytest.raises(ValueError):
            m.run(x, interventions=[bad])
    with pytest.raises(ValueError):
        m.run(x, interventions=[il.ZeroChannels("stem.post", [-1])])
    with pytest.raises(ValueError, match="expected 2 finite numbers"):
        m._m.run(x, [("clamp", ["pool"], [])], [])
    # A hook returning a Fortran-order array or NaN is refused (it used to be read transposed / accepted).
    with pytest.raises(ValueError, match="C-contiguous"):
        m.run(x, hooks=[("blocks.3.expand.post", lambda a, n: np.asfortranarray(a))])
    with pytest.raises(ValueError, match="non-finite"):
        m.run(x, hooks=[("pool", lambda a, n: a * np.nan)])
    # Files: a missing spec is an OSError; a device is not a weights file; negative counts are ValueErrors.
    with pytest.raises(FileNotFoundError):
        il.run(str(tmp_path / "missing.toml"), out=str(tmp_path / "o"))
    with pytest.raises(ValueError, match="regular file"):
        il.MobileNetV2.load("/dev/zero")
    with pytest.raises(TypeError):
        il.MobileNetV2.load(None)
    for call in [lambda: il.spiral(seeds=[-1]), lambda: il.MobileNetV2(seed=-1), lambda: il.MobileNetV2(width=float("nan"))]:
        with pytest.raises(ValueError):
            call()
    # An empty batch keeps the classes axis.
    assert m.run(np.zeros((0, 3, 32, 32), np.float32)).shape == (0, 10)
