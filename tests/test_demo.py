"""`bnn-hw demo`: options checked before any work; a stage is redone when an option that shapes its output changed.

The stages themselves are replaced by a recorder, so these tests take well under a second."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from bnn_hw.rtl.folding import make_plan
from bnn_hw.rtl.generate import manifest_for

from bnn_hw.artifacts import Epoch, Manifest, Metrics
from bnn_hw.cli import main
from bnn_hw.flow import demo
from bnn_hw.model import save_model
from bnn_hw.synthetic import random_model


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--images", "-1"], "argument --images: must be an integer >= 0, got -1"),
        (["--epochs", "0"], "argument --epochs: must be an integer >= 1, got 0"),
        (["--pe", "0"], "--pe must be a positive integer"),
        (["--simd", "16,x"], "--simd must be a positive integer"),
        (["--preset", "bogus"], "unknown --preset 'bogus'"),
        (["--dataset", "bogus"], "unknown --dataset 'bogus'"),
        (["--seed", "-3"], "argument --seed: must be an integer >= 0, got -3"),
        (["--images", "10001"], "--images 10001 but the fashion-mnist test split has only 10,000 images"),
    ],
)
def test_bad_options_fail_in_one_line_before_any_work(tmp_path, capsys, monkeypatch, argv, needle):
    stages = []
    monkeypatch.setattr(demo, "_stage", lambda title, command, log, call, *a, **kw: stages.append(title) or 0.0)
    monkeypatch.setattr(demo, "count_test_images", lambda dataset: 10_000)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *argv]) == 2  # usage errors exit 2 (docs/cli.md)
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
    assert stages == [] and not out.exists()


@pytest.fixture
def finished(tmp_path):
    """A demo folder as `bnn-hw demo --epochs 3 --pe 32 --simd 32` leaves it (only what the caching reads)."""
    run = tmp_path / "demo"
    (run / "train").mkdir(parents=True)
    (run / "rtl").mkdir()
    Metrics(
        model={"preset": "mlp"},
        dataset={"name": "fashion-mnist"},
        train={"preset": "mlp", "dataset": "fashion-mnist", "seed": 0, "epochs": 3},
        epochs=[Epoch(epoch=e, lr=0.01, loss=0.5, train_acc=0.8, test_acc=0.8, seconds=1.0) for e in (1, 2, 3)],
    ).write(run / "train/metrics.json")
    (run / "train/checkpoint.pt").write_bytes(b"checkpoint")
    model = random_model((4, 4, 1), [16], num_classes=3)
    save_model(model, run / "model.bnn")
    os.utime(run / "train/checkpoint.pt", (1_000_000, 1_000_000))  # the model is newer than its checkpoint
    args = {
        "pe": "16,3",
        "simd": "16,16",
        "pixels_per_beat": 16,
        "debug_taps": False,
        "auto": False,
        "requested_pe": "32",
        "requested_simd": "32",
    }
    manifest_for(model, make_plan(model, [16, 3], [16, 16], 16), args).write(run / "rtl/manifest.json")
    return run


def _stages(monkeypatch, run, *argv):
    calls = []
    monkeypatch.setattr(demo, "_stage", lambda title, command, log, call, *a, **kw: calls.append((title, kw)) or 0.0)
    monkeypatch.setattr(demo, "count_test_images", lambda dataset: 10_000)
    monkeypatch.setattr(demo, "_summary", lambda out, timings: None)
    assert main(["demo", "--out", str(run), *argv]) == 0
    return {title: args for title, args in calls}


def test_same_options_reuse_training_export_and_rtl(finished, monkeypatch):
    stages = _stages(monkeypatch, finished)
    assert list(stages) == ["verify", "sim", "bench cpu", "report"]
    assert stages["sim"]["images"] == 1000


@pytest.mark.parametrize("argv", [["--simd", "16"], ["--pe", "16"], ["--pe", "32,3"]])
def test_changed_folding_regenerates_the_rtl_and_simulates_it(finished, monkeypatch, argv):
    stages = _stages(monkeypatch, finished, *argv, "--images", "20")
    assert "train" not in stages and "export" not in stages
    assert stages["rtl"][argv[0].removeprefix("--")] == argv[1]
    assert list(stages).index("rtl") < list(stages).index("sim")
    assert stages["sim"]["images"] == 20


def test_rtl_of_another_model_or_with_other_rtl_options_is_regenerated(finished, monkeypatch):
    path = finished / "rtl/manifest.json"
    manifest = Manifest.read(path)
    replace(manifest, model_hash="0" * 64).write(path)
    assert "rtl" in _stages(monkeypatch, finished)
    manifest.generator.args["pixels_per_beat"] = 4  # made with --pixels-per-beat 4
    manifest.write(path)
    assert "rtl" in _stages(monkeypatch, finished)


@pytest.mark.parametrize(
    "argv,resume",
    [
        (["--epochs", "5"], True),  # more epochs of the same run: continue it
        (["--epochs", "2"], False),  # fewer: train again
        (["--seed", "1"], False),
        (["--preset", "cnn"], False),
        (["--dataset", "mnist"], False),
        (["--force"], False),
    ],
)
def test_changed_training_options_retrain_and_redo_everything_after(finished, monkeypatch, argv, resume):
    stages = _stages(monkeypatch, finished, *argv)
    assert list(stages)[:3] == ["train", "export", "verify"]
    assert stages["train"].get("resume", False) == resume
    # `bnn-hw train` refuses to overwrite a checkpoint: a fresh start must remove the old one, a resume keep it
    assert (finished / "train/checkpoint.pt").exists() == resume
    if len(argv) == 2:
        assert str(stages["train"][argv[0].removeprefix("--")]) == argv[1]


def test_test_split_size_is_read_from_the_data_set(fashion) -> None:
    """The real check behind --images: the Fashion-MNIST test split (skipped without the data set)."""
    assert demo.count_test_images("fashion-mnist") == 10_000
