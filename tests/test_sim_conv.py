"""The network bench on a trained ConvNet's generated RTL (issue 9): real Fashion-MNIST test images, bit for bit.

Default run (Verilator; Icarus is far too slow for thousands of cycles per image on a pixel-input layer): a ConvNet of
the `cnn` preset's convolution stack (32C3-MP2-64C3-MP2-128C3-MP2, raw 8-bit pixels in, the hidden dense layer
narrowed to 16 so that the test stays small) is **trained here** with `train.loop.train` for one epoch on the first
1,000 Fashion-MNIST training images (seed 0, ~20 s; barely trained, ~30 % accurate, but its weights and thresholds
come from the real training and export path), exported with `bnn-hw export`, turned into Verilog with `bnn-hw rtl
--auto --target-cycles 7056`, and 24 real test images go through `bnn-hw sim` on Verilator with random input gaps,
output backpressure and the reset-mid-stream check; every (class, scores) bit is compared with the golden model, and
the measured cycles per image and latency must equal the manifest's prediction. The same simulation, checked against
a reference with one convolution weight bit flipped, must flag exactly the images that flip changes.

Slow (-m slow): the trained default ConvNet (runs/gpu-cnn-gpu/model.bnn, git-ignored: skipped when absent), 1,000
test images on Verilator (benchmarks/sim_conv.py does the same with timings for RESULTS.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bnn_hw.sim import tools

from bnn_hw import golden
from bnn_hw.cli import main as cli
from bnn_hw.model import load_model
from bnn_hw.packing import pack_bits, unpack_bits

pytest.importorskip("amaranth")
pytest.importorskip("cocotb")

from bnn_hw.sim.manifest import load_design  # noqa: E402
from bnn_hw.sim.network import Phase, run_network  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CNN = ROOT / "runs" / "gpu-cnn-gpu" / "model.bnn"
N_IMAGES = 24
# Folding of the test ConvNet: the first layer's floor of 9 * 28 * 28 cycles per image (SIMD <= its 1 input channel),
# the same automatic folding as the default ConvNet's benchmark; larger targets build a little faster on Verilator
# but simulate proportionally more cycles.
TEST_TARGET_CYCLES = 9 * 28 * 28


def need_verilator() -> None:
    ok, why = tools.available("verilator")
    if not ok:
        pytest.skip(why)


@pytest.fixture(scope="module")
def trained_cnn(fashion, tmp_path_factory) -> Path:
    """Train the small `cnn`-preset ConvNet (one epoch, 1,000 images, seed 0) and export it."""
    pytest.importorskip("torch")
    from bnn_hw.train.loop import TrainConfig, train

    d = tmp_path_factory.mktemp("cnn")
    cfg = TrainConfig(
        out=d / "run",
        preset="cnn",
        dataset="fashion-mnist",
        hidden=[16],
        epochs=1,
        batch_size=50,
        train_limit=1000,
        test_limit=500,
        seed=0,
        threads=1,
        progress=False,
    )
    train(cfg, *fashion)
    model = d / "model.bnn"
    assert cli(["export", str(d / "run" / "checkpoint.pt"), "-o", str(model)]) == 0
    m = load_model(model)
    assert [ly.kind for ly in m.layers] == ["conv", "conv", "conv", "dense", "dense"]
    assert m.layers[0].input == "pixels" and [ly.pool for ly in m.layers[:3]] == [2, 2, 2]
    return model


@pytest.fixture(scope="module")
def cnn_build(trained_cnn, tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("cnn_build") / "build"
    assert (
        cli(["rtl", str(trained_cnn), "--auto", "--target-cycles", str(TEST_TARGET_CYCLES), "-o", str(build), "-q"])
        == 0
    )
    return build


def check_report(report: dict, n: int, model: Path) -> None:
    m = load_model(model)
    assert report["passed"] is True
    assert report["model_hash"] == report["manifest_model_hash"] == m.hash
    assert report["simulator"] == "verilator" and report["image_source"]["source"] == "fashion-mnist"
    assert report["images"] == n and report["results_checked"] == report["results_matched"] == n
    assert report["mismatch_count"] == 0 and report["mismatches"] == [] and report["timeouts"] == []
    names = [p["name"] for p in report["phases"]]
    assert names == ["latency", "throughput", "stream", "abort", "restart"]
    by = {p["name"]: p for p in report["phases"]}
    assert by["abort"]["aborted"] and 1 <= by["abort"]["results"] < by["abort"]["n_images"]
    assert by["restart"]["results"] == by["restart"]["matched"] == by["restart"]["n_images"]
    met = report["metrics"]
    assert met["cycles_per_image"] == met["predicted_cycles_per_image"]  # steady state equals the manifest
    assert met["latency_cycles"] == met["predicted_latency_cycles"]
    util = met["utilization"]
    assert util["layers"][util["bottleneck_layer"]]["busy_fraction"] == 1.0


def diverse(model: Path, images: np.ndarray) -> None:
    """Precondition of an honest scoreboard: results differ between images (else reordering would go unseen)."""
    ref = golden.run(load_model(model), images)
    keys = {(int(c), tuple(s)) for c, s in zip(ref.classes, ref.scores.tolist(), strict=True)}
    assert len(keys) >= 0.5 * len(images) and len(set(ref.classes.tolist())) >= 3


def test_trained_convnet_real_images_bit_exact(cnn_build, trained_cnn, fashion, sim_cli) -> None:
    need_verilator()
    test = fashion[1]
    diverse(trained_cnn, test.images[:N_IMAGES])
    design = load_design(cnn_build)
    kinds = [ly["kind"] for ly in design.manifest.layers]
    assert kinds[:3] == ["conv"] * 3, kinds
    rc, report, text = sim_cli(cnn_build, trained_cnn, "verilator", N_IMAGES, seed=5)
    assert rc == 0, text
    check_report(report, N_IMAGES, trained_cnn)
    assert f"bit-exact         {N_IMAGES}/{N_IMAGES}" in text
    # The hardware's classes are the golden model's, so its accuracy on these labels is the reference's.
    ref = golden.run(load_model(trained_cnn), test.images[:N_IMAGES])
    assert report["reference_accuracy"] == pytest.approx(float(np.mean(ref.classes == test.labels[:N_IMAGES])))


def test_flipped_conv_weight_is_caught(cnn_build, trained_cnn, fashion) -> None:
    """The same generated ConvNet checked against a reference whose second convolution has one weight bit flipped:
    the bench must report exactly the images whose result that flip changes (and only as wrong results)."""
    need_verilator()
    images = fashion[1].images[:N_IMAGES]
    good = load_model(trained_cnn)
    want = golden.run(good, images)
    bad = load_model(trained_cnn)
    layer = bad.layers[1]
    bits = unpack_bits(layer.weights, layer.fan_in)
    changed = None
    for neuron in range(layer.out_features):
        for j in range(0, layer.fan_in, 37):
            trial = bits.copy()
            trial[neuron, j] = not trial[neuron, j]
            bad = good.replace(layers=(good.layers[0], layer.replace(weights=pack_bits(trial)), *good.layers[2:]))
            got = golden.run(bad, images)
            changed = np.flatnonzero((got.scores != want.scores).any(axis=1) | (got.classes != want.classes))
            if 0 < len(changed) < len(images):
                break
        if changed is not None and 0 < len(changed) < len(images):
            break
    assert changed is not None and 0 < len(changed) < len(images), "no single conv weight flip changes some images"
    design = load_design(cnn_build)
    # Same work folder and image count as the CLI run: the Verilator model is reused, not rebuilt.
    out = run_network(
        design,
        images,
        got.classes,
        got.scores,
        "verilator",
        cnn_build / "sim",
        [Phase("stream", 0, len(images), 0.2, 0.2, seed=9)],
    )
    stream = out["phases"][0]
    assert stream["results"] == len(images)
    assert stream["mismatch_count"] == len(changed)
    assert sorted(m["position"] for m in stream["mismatches"]) == changed.tolist()[:20]
    assert all(m["kind"] == "wrong" for m in stream["mismatches"])


# ------------------------------------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_default_convnet_1000_images_verilator(tmp_path: Path, sim_cli) -> None:
    """The trained default ConvNet (`cnn` preset, runs/gpu-cnn-gpu/model.bnn), folded for 7,056 cycles/image (the
    first layer's floor), 1,000 real test images bit-exact; cycles per image equal to the manifest's prediction."""
    need_verilator()
    if not DEFAULT_CNN.is_file():
        pytest.skip(f"{DEFAULT_CNN} not found (train and export the cnn preset there)")
    build = tmp_path / "build"
    assert (
        cli(["rtl", str(DEFAULT_CNN), "--auto", "--target-cycles", str(TEST_TARGET_CYCLES), "-o", str(build), "-q"])
        == 0
    )
    rc, report, text = sim_cli(build, DEFAULT_CNN, "verilator", 1000, seed=5)
    assert rc == 0, text
    check_report(report, 1000, DEFAULT_CNN)
