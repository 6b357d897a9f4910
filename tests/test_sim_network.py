"""The network bench on generated RTL: real Fashion-MNIST test images, bit-exact against the golden model.

Default run: 200 real images on Icarus (a binarized-input model, small enough for Icarus' gate-level speed) and 200 on
Verilator (a raw-pixel model), each through `bnn-hw sim` with random input gaps, output backpressure, the
reset-mid-stream check and the cycle measurements; a corrupted weight bit that the bench must catch; the
Python-driven bench with debug taps (hidden-layer bits compared too); and the command's clear errors. The trained
model (runs/quick-mlp) and the pixel path on Icarus run with -m slow.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from bnn_hw.sim import tools

from bnn_hw import golden
from bnn_hw.cli import main as cli
from bnn_hw.model import BnnModel, Layer, load_model, save_model
from bnn_hw.packing import pack_bits, unpack_bits

pytest.importorskip("amaranth")
pytest.importorskip("cocotb")

from bnn_hw.sim.manifest import load_design  # noqa: E402
from bnn_hw.sim.network import Phase, run_network, run_python  # noqa: E402

TRAINED = Path(__file__).resolve().parents[1] / "runs" / "quick-mlp" / "model.bnn"


def need(sim: str) -> None:
    ok, why = tools.available(sim)
    if not ok:
        pytest.skip(why)


def calibrated_model(sizes: list[int], calib: np.ndarray, *, seed: int, binarize_at: int | None, name: str) -> BnnModel:
    """A random dense model whose thresholds sit at per-neuron quantiles of its accumulators on real images, so
    hidden bits are mixed on real data (a random model with arbitrary thresholds saturates); small biases make tied
    scores, which exercise the first-index rule of the class choice."""
    rng = np.random.default_rng(seed)
    x = calib.reshape(len(calib), -1)
    if binarize_at is not None:
        x = x >= binarize_at
    k = x.shape[1]
    layers = []
    for i, n in enumerate(sizes):
        last = i == len(sizes) - 1
        layer = Layer(
            kind="dense",
            input="pixels" if i == 0 and binarize_at is None else "bits",
            output="scores" if last else "bits",
            in_shape=(k,),
            out_features=n,
            weights=pack_bits(rng.random((n, k)) < 0.5),
        )
        acc = golden.layer_accumulators(layer, x)
        if last:
            layer = layer.replace(bias=rng.integers(-3, 4, size=n).astype(np.int64))
        else:
            q = rng.uniform(0.25, 0.75, size=n)
            layer = layer.replace(
                thresholds=np.array([np.quantile(acc[:, j], q[j], method="nearest") for j in range(n)], dtype=np.int64)
            )
            x = acc >= layer.thresholds
        layers.append(layer)
        k = n
    model = BnnModel(
        layers=layers,
        input_shape=(28, 28, 1),
        classes=[f"c{j}" for j in range(sizes[-1])],
        binarize_at=binarize_at,
        name=name,
        source={"dataset": "fashion-mnist", "synthetic_seed": seed},
    )
    model.validate()
    return model


def generate(model: BnnModel, path: Path, out: Path, pe: int, simd: int, *extra: str) -> Path:
    save_model(model, path)
    assert cli(["rtl", str(path), "--pe", str(pe), "--simd", str(simd), "-o", str(out), "-q", *extra]) == 0
    return out


@pytest.fixture(scope="module")
def bits_build(fashion, tmp_path_factory):
    """784 -> 32 -> 16 -> 10, binarized input (threshold 128): quick on Icarus."""
    train, _ = fashion
    d = tmp_path_factory.mktemp("bits")
    model = calibrated_model([32, 16, 10], train.images[:512], seed=11, binarize_at=128, name="bits-small")
    return generate(model, d / "model.bnn", d / "build", 8, 32), d / "model.bnn"


@pytest.fixture(scope="module")
def pixel_build(fashion, tmp_path_factory):
    """784 -> 16 -> 16 -> 10 on raw pixels (the 8-bit first-layer path)."""
    train, _ = fashion
    d = tmp_path_factory.mktemp("pixels")
    model = calibrated_model([16, 16, 10], train.images[:512], seed=12, binarize_at=None, name="pixels-small")
    return generate(model, d / "model.bnn", d / "build", 4, 16), d / "model.bnn"


def check_report(report: dict, n: int, model: Path) -> None:
    m = load_model(model)
    assert report["passed"] is True
    assert report["model_hash"] == report["manifest_model_hash"] == m.hash
    assert report["results_checked"] == report["results_matched"] == n
    assert report["mismatch_count"] == 0 and report["mismatches"] == [] and report["timeouts"] == []
    assert report["reference"] in ("numpy-golden", "cupy-gpu")
    assert report["images"] == n and report["image_source"]["source"] == "fashion-mnist"
    assert report["mismatch_count"] == 0 and report["cycles_per_image"] == report["metrics"]["cycles_per_image"]
    names = [p["name"] for p in report["phases"]]
    assert names == ["latency", "throughput", "stream", "abort", "restart"]
    by = {p["name"]: p for p in report["phases"]}
    assert by["abort"]["aborted"] and by["abort"]["results"] >= 1  # reset hit with results out and more in flight
    assert by["abort"]["results"] < by["abort"]["n_images"]
    assert by["restart"]["results"] == by["restart"]["matched"] == by["restart"]["n_images"]
    met = report["metrics"]
    assert met["cycles_per_image"] == met["predicted_cycles_per_image"]  # steady state equals the manifest
    assert met["latency_cycles"] == met["predicted_latency_cycles"]
    util = met["utilization"]
    assert util["layers"][util["bottleneck_layer"]]["busy_fraction"] == 1.0  # no idle cycle in the bottleneck


def diverse(model: Path, images: np.ndarray) -> None:
    """Precondition of an honest scoreboard: results differ between images (else reordering would go unseen)."""
    ref = golden.run(load_model(model), images)
    keys = {(int(c), tuple(s)) for c, s in zip(ref.classes, ref.scores.tolist(), strict=True)}
    assert len(keys) >= 0.5 * len(images) and len(set(ref.classes.tolist())) >= 3


def test_icarus_200_real_images_bit_exact(bits_build, fashion, sim_cli) -> None:
    need("icarus")
    build, model = bits_build
    diverse(model, fashion[1].images[:200])
    rc, report, text = sim_cli(build, model, "icarus", 200, seed=7)
    assert rc == 0, text
    check_report(report, 200, model)
    assert report["simulator"] == "icarus" and "Icarus" in report["simulator_version"]
    assert "bit-exact         200/200" in text


def test_verilator_200_real_images_bit_exact(pixel_build, fashion, sim_cli) -> None:
    need("verilator")
    build, model = pixel_build
    diverse(model, fashion[1].images[:200])
    rc, report, text = sim_cli(build, model, "verilator", 200, seed=7)
    assert rc == 0, text
    check_report(report, 200, model)
    assert report["simulator"] == "verilator" and "Verilator" in report["simulator_version"]


def test_corrupted_weight_bit_is_caught(bits_build, fashion, tmp_path: Path, capsys) -> None:
    """Generate RTL from a copy of the model with one weight bit flipped, check it against the original model: the
    bench must flag exactly the images whose result the flip changes, and `bnn-hw sim` must refuse the pairing."""
    need("icarus")
    _, model_path = bits_build
    good = load_model(model_path)
    images = fashion[1].images[:60]
    want = golden.run(good, images)
    bad = load_model(model_path)
    layer = bad.layers[0]
    bits = unpack_bits(layer.weights, layer.fan_in)
    changed = None
    for neuron, j in [(n, j) for n in range(layer.out_features) for j in (300, 400, 500, 420)]:
        trial = bits.copy()
        trial[neuron, j] = not trial[neuron, j]
        bad = good.replace(layers=(layer.replace(weights=pack_bits(trial)), *good.layers[1:]))
        got = golden.run(bad, images)
        changed = np.flatnonzero((got.scores != want.scores).any(axis=1) | (got.classes != want.classes))
        if len(changed):
            break
    assert changed is not None and len(changed), "no single weight flip changes these images"
    build = generate(bad, tmp_path / "bad.bnn", tmp_path / "bad_build", 8, 32)
    design = load_design(build)
    out = run_network(
        design,
        images,
        want.classes,
        want.scores,
        "icarus",
        tmp_path / "work",
        [Phase("stream", 0, len(images), 0.2, 0.2, seed=9)],
    )
    stream = out["phases"][0]
    assert stream["results"] == len(images)
    assert stream["mismatch_count"] == len(changed)
    flagged = sorted(m["position"] for m in stream["mismatches"])
    assert flagged == changed.tolist()[:20]
    assert all(m["kind"] == "wrong" for m in stream["mismatches"])
    # The command itself refuses a build whose model hash differs from the model given.
    rc = cli(["sim", str(build), "--model", str(model_path), "--images", "5", "--simulator", "icarus"])
    err = capsys.readouterr().err
    assert rc == 1 and "was generated from model" in err and err.count("\n") == 1


def test_python_driven_bench_with_debug_taps(fashion, tmp_path: Path) -> None:
    """Independent of the HDL harness: cocotb drives every beat, and the hidden layers' output bits (debug taps) are
    compared with the golden model's too."""
    need("icarus")
    train, test = fashion
    model = calibrated_model([24, 12, 10], train.images[:512], seed=13, binarize_at=100, name="taps")
    build = generate(model, tmp_path / "m.bnn", tmp_path / "build", 8, 64, "--debug-taps")
    design = load_design(build)
    taps = design.manifest.debug_taps
    assert len(taps) == 2
    images = test.images[:12]
    ref = golden.run(model, images)
    phases = [Phase("stream", 0, 12), Phase("abort", 0, 5, abort_after_beats=30), Phase("restart", 6, 6)]
    out = run_python(
        design,
        images,
        ref.classes,
        ref.scores,
        "icarus",
        tmp_path / "work",
        phases,
        seed=3,
        gap=0.3,
        stall=0.3,
        taps=taps,
    )
    by = {p["name"]: p for p in out}
    assert all(p["mismatch_count"] == 0 for p in out), out
    assert by["stream"]["results"] == 12 and by["restart"]["results"] == 6
    for tap in taps:
        layer = tap["layer"]
        words = [int(w, 16) for w in by["stream"]["taps"][str(layer)]]
        per_image, pe = tap["beats_per_image"], tap["bits_per_beat"]
        assert len(words) == 12 * per_image
        bits = np.array([[(w >> p) & 1 for p in range(pe)] for w in words], dtype=bool)
        n = model.layers[layer].out_features
        hw = bits.reshape(12, per_image * pe)[:, :n]
        assert np.array_equal(hw, ref.layers[layer].out), f"hidden layer {layer} bits differ"


def test_cli_errors(bits_build, tmp_path: Path, capsys, monkeypatch) -> None:
    build, model = bits_build

    def err(*args: str) -> str:
        rc = cli(["sim", *args])
        text = capsys.readouterr().err
        assert rc != 0 and text.strip(), text
        assert "Traceback" not in text and text.count("\n") == 1, text
        return text

    assert "does not exist" in err(str(tmp_path / "nope"))
    assert "no manifest.json" in err(str(tmp_path))
    copy = tmp_path / "copy"
    shutil.copytree(build, copy, ignore=shutil.ignore_patterns("sim"))
    (copy / "bnn_top.v").unlink()
    assert "missing from the build" in err(str(copy), "--model", str(model))
    assert "must be in [0, 1)" in err(str(build), "--gap", "1.5")
    other = tmp_path / "other.bnn"
    m = load_model(model)
    m = m.replace(layers=(*m.layers[:-1], m.layers[-1].replace(bias=m.layers[-1].bias + 1)))
    save_model(m, other)
    assert "was generated from model" in err(str(build), "--model", str(other))
    monkeypatch.setenv("PATH", "/nonexistent")
    tools._icarus.cache_clear()
    try:
        assert "Icarus Verilog not found" in err(str(build), "--model", str(model), "--simulator", "icarus")
    finally:
        tools._icarus.cache_clear()


# ------------------------------------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_icarus_pixel_path(pixel_build, fashion, sim_cli) -> None:
    need("icarus")
    build, model = pixel_build
    rc, report, text = sim_cli(build, model, "icarus", 20, seed=7)
    assert rc == 0, text
    check_report(report, 20, model)


@pytest.mark.slow
def test_trained_model_1000_images_verilator(tmp_path: Path, sim_cli) -> None:
    need("verilator")
    if not TRAINED.is_file():
        pytest.skip(f"{TRAINED} not found (train and export it: make demo)")
    build = tmp_path / "build"
    assert cli(["rtl", str(TRAINED), "--pe", "16", "--simd", "32", "-o", str(build), "-q"]) == 0
    rc, report, text = sim_cli(build, TRAINED, "verilator", 1000, seed=7)
    assert rc == 0, text
    check_report(report, 1000, TRAINED)
