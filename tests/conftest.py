"""Fixtures shared by several test modules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bnn_hw.errors import BnnError
from bnn_hw.model import save_model
from bnn_hw.synthetic import random_model


@pytest.fixture(scope="module")
def fashion():
    """Fashion-MNIST (train, test) from the Debian package; the test skips with the reason when it is missing."""
    from bnn_hw.datasets import load_dataset

    try:
        return load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    except BnnError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def sim_cli(capsys):
    """Run `bnn-hw sim BUILD --model M --images N --simulator S --seed SEED [extra]` in this process:
    (exit code, BUILD/sim_report.json or {} when none was written, everything printed)."""
    from bnn_hw.cli import main

    def run(build: Path, model: Path, simulator: str, images: int, *extra: str, seed: int) -> tuple[int, dict, str]:
        rc = main(
            [
                "sim",
                str(build),
                "--model",
                str(model),
                "--images",
                str(images),
                "--simulator",
                simulator,
                "--seed",
                str(seed),
                *extra,
            ]
        )
        out = capsys.readouterr()
        path = build / "sim_report.json"
        return rc, json.loads(path.read_text()) if path.is_file() else {}, out.out + out.err

    return run


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.fixture
def run_dir(tmp_path):
    """A run folder as `make demo` leaves it (model, training, export check, RTL, synthesis, simulation, CPU bench),
    with made-up but recognisable numbers: what `bnn-hw report` reads."""
    run = tmp_path / "run"
    run.mkdir()
    save_model(random_model((4, 4, 1), [16], num_classes=3), run / "model.bnn")
    _write_json(
        run / "train/metrics.json",
        {
            "epochs": [
                {"epoch": 1, "loss": 0.5, "train_acc": 0.6, "test_acc": 0.6123, "seconds": 7.0},
                {"epoch": 2, "loss": 0.4, "train_acc": 0.7, "test_acc": 0.7345, "seconds": 8.0},
            ],
            "model": {"preset": "mlp"},
            "dataset": {"name": "digits"},
        },
    )
    _write_json(
        run / "verify.json",
        {
            "images": 359,
            "dataset": "digits",
            "split": "test",
            "classes_agree": 359,
            "golden_accuracy": 0.7345,
            "pytorch_accuracy": 0.7345,
            "layers": [
                {"layer": 0, "what": "bits", "agree": 5744, "total": 5744},
                {"layer": 1, "what": "scores", "agree": 1077, "total": 1077},
            ],
        },
    )
    _write_json(
        run / "rtl/manifest.json",
        {
            "predicted": {"cycles_per_image": 4321, "latency_cycles": 8765, "limited_by": "layer 0"},
            "layers": [{"kind": "dense", "MW": 16, "MH": 16, "PE": 4, "SIMD": 8}],
        },
    )
    _write_json(
        run / "rtl/synth_ice40.json",
        {
            "target": "ice40",
            "layers": {"0": {"luts": 1111, "ffs": 222}},
            "total": {"luts": 2468, "ffs": 1357},
            "pnr": {"fmax_mhz": 43.21},
        },
    )
    _write_json(
        run / "rtl/sim_report.json",
        {
            "simulator": "verilator",
            "images": 200,
            "reference": "numpy-golden",
            "mismatches_total": 0,
            "cycles_per_image": 4321,
            "latency_cycles": 8765,
        },
    )
    _write_json(run / "bench/cpu.json", {"golden_numpy": {"images_per_s": 12345.0}})
    return run
