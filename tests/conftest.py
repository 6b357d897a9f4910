"""Fixtures shared by several test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from bnn_hw.artifacts import SimReport
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
        report = SimReport.read_if(build / SimReport.FILE)  # strictly, as every reader does
        return rc, report.to_json() if report is not None else {}, out.out + out.err

    return run


@pytest.fixture
def run_dir(tmp_path):
    """A run folder as `make demo` leaves it (model, training, export check, RTL, synthesis, simulation, CPU bench),
    written through the stage files' own classes (bnn_hw.artifacts), the manifest by `bnn-hw rtl`'s producer on a
    tiny model; the measured figures are made up but recognisable: what `bnn-hw report` reads."""
    from bnn_hw.rtl.folding import make_plan
    from bnn_hw.rtl.generate import manifest_for

    from bnn_hw import artifacts as a

    run = tmp_path / "run"
    run.mkdir()
    model = random_model((4, 4, 1), [16], num_classes=3)
    save_model(model, run / "model.bnn")
    a.Metrics(
        model={"preset": "mlp"},
        dataset={"name": "digits"},
        train={"preset": "mlp", "dataset": "digits", "seed": 0, "epochs": 2},
        epochs=[
            a.Epoch(epoch=1, lr=0.01, loss=0.5, train_acc=0.6, test_acc=0.6123, seconds=7.0),
            a.Epoch(epoch=2, lr=0.01, loss=0.4, train_acc=0.7, test_acc=0.7345, seconds=8.0),
        ],
        test_acc=0.7345,
        best_test_acc=0.7345,
        train_seconds=15.0,
    ).write(run / "train/metrics.json")
    a.Verify(
        model=str(run / "model.bnn"),
        model_hash=model.hash,
        checkpoint_sha256="c" * 64,
        dataset="digits",
        split="test",
        images=359,
        layers=[
            a.LayerAgreement(layer=0, what="bits", agree=5744, total=5744),
            a.LayerAgreement(layer=1, what="scores", agree=1077, total=1077),
        ],
        classes_agree=359,
        golden_accuracy=0.7345,
        pytorch_accuracy=0.7345,
        classes=list(model.classes),
        confusion_matrix=[[100, 10, 10], [10, 100, 10], [10, 9, 100]],
    ).write(run / "verify.json")
    plan = make_plan(model, [4, 3], [8, 16])
    manifest_for(model, plan, {"model": str(run / "model.bnn")}, latency=8765).write(run / "rtl/manifest.json")
    a.SynthReport(
        target="ice40",
        top="bnn_top",
        model_hash=model.hash,
        generator_args={"model": str(run / "model.bnn")},
        flow="full",
        flow_note="synth_ice40 on the generated Verilog as it is",
        yosys="Yosys 0.23",
        check="check -assert passed",
        layers={"0": {"luts": 1111, "ffs": 222}},
        glue={"luts": 10},
        total={"luts": 2468, "ffs": 1357},
        log="yosys.log",
        pnr={"status": "routed", "fmax_mhz": 43.21},
    ).write(run / "rtl/synth_ice40.json")
    a.SimReport(
        passed=True,
        model_hash=model.hash,
        model=str(run / "model.bnn"),
        build_dir=str(run / "rtl"),
        manifest_model_hash=model.hash,
        simulator="verilator",
        simulator_version="Verilator 5.048",
        cocotb_version="2.1.0",
        driver="harness",
        seed=0,
        gap=0.0,
        stall=0.0,
        images=200,
        image_source={"source": "random"},
        reference="numpy-golden",
        reference_seconds=0.1,
        reference_accuracy=None,
        results_checked=200,
        results_matched=200,
        mismatch_count=0,
        timeouts=[],
        cycles_per_image=4321,
        latency_cycles=8765,
        mismatches=[],
        phases=[],
        metrics={"cycles_per_image": 4321, "latency_cycles": 8765},
        build_seconds=1.0,
        simulation_seconds=2.0,
        waves=None,
    ).write(run / "rtl/sim_report.json")
    a.BenchCpu(
        benchmark="bench cpu",
        date="2026-12-02 00:00 UTC",
        machine={},
        model={"name": model.name, "hash": model.hash},
        images={"count": 100, "note": "random"},
        params={},
        golden_numpy={"seconds": 0.0081, "images_per_s": 12345.0},
        torch_float32_cpu={"seconds": 0.0426, "images_per_s": 2345.0},
        golden_vs_torch_speed=1.23,
        bit_exact=True,
    ).write(run / "bench/cpu.json")
    return run
