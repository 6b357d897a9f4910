"""`bnn-hw verify`: the golden model against the PyTorch checkpoint on a real data set, in chunks, and the exit code
and report when they disagree."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bnn_hw.cli import main
from bnn_hw.model import load_model, save_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small MLP trained for a few seconds on the 8x8 digits, exported: (run dir, model path)."""
    run = tmp_path_factory.mktemp("verify")
    assert (
        main(
            [
                "train",
                "--dataset",
                "digits",
                "--hidden",
                "64,64",
                "--epochs",
                "8",
                "--batch-size",
                "32",
                "--seed",
                "3",
                "--threads",
                "1",
                "--quiet",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    assert main(["export", str(run), "-o", str(run / "model.bnn")]) == 0
    return run, run / "model.bnn"


def test_verify_is_bit_exact_in_chunks(trained, tmp_path, monkeypatch, capsys) -> None:
    from bnn_hw.train.commands import verify

    run, model = trained
    monkeypatch.setattr(verify, "VERIFY_CHUNK", 47)  # several chunks and a ragged last one
    assert main(["verify", str(model), "--against", str(run), "--json", str(tmp_path / "v.json")]) == 0
    assert "BIT-EXACT" in capsys.readouterr().out
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["images"] == 359 and report["classes_agree"] == 359
    assert report["golden_accuracy"] == report["pytorch_accuracy"] > 0.5
    assert all(row["agree"] == row["total"] > 0 for row in report["layers"])


def test_verify_reports_a_changed_threshold(trained, tmp_path, capsys) -> None:
    run, path = trained
    model = load_model(path)
    layer = model.layers[0]
    thresholds = layer.thresholds + np.where(np.arange(layer.thresholds.size) == 0, 3, 0)
    model = model.replace(layers=(layer.replace(thresholds=thresholds), *model.layers[1:]))
    save_model(model, tmp_path / "bad.bnn")
    assert main(["verify", str(tmp_path / "bad.bnn"), "--against", str(run), "--json", str(tmp_path / "v.json")]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH: the golden model and PyTorch disagree, first at layer 0 (bits): " in out
    assert "is not what this checkpoint exports: re-export it" in out
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["layers"][0]["agree"] < report["layers"][0]["total"]


def _damaged_checkpoint(run, tmp_path, value: float):
    """The trained checkpoint with the score bias of class 1 set to `value`, and a model file that claims it."""
    import torch
    from bnn_hw.train.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(run / "checkpoint.pt")
    with torch.no_grad():
        ckpt.model.blocks[-1].norm.bias[1] = value
    path = tmp_path / "damaged.pt"
    digest = save_checkpoint(path, ckpt.model, ckpt.config, ckpt.dataset, epoch=ckpt.epoch)
    return path, digest


def test_verify_names_an_inexact_score_bias(trained, tmp_path, capsys) -> None:
    """A bias of 2**26 (written by a model file, since the exporter refuses it): PyTorch's float32 scores are no
    longer exact, and verify says so instead of blaming the model file."""
    run, path = trained
    ckpt_path, digest = _damaged_checkpoint(run, tmp_path, 2.0**26)
    assert main(["export", str(ckpt_path), "-o", str(tmp_path / "refused.bnn")]) == 1
    assert "the score bias of class 1 is 67,108,864" in capsys.readouterr().err
    model = load_model(path)
    last = model.layers[-1]
    bias = last.bias.copy()
    bias[1] = 2**26
    source = {**model.source, "checkpoint_sha256": digest}
    model = model.replace(layers=(*model.layers[:-1], last.replace(bias=bias)), source=source)
    save_model(model, tmp_path / "big.bnn")
    assert main(["verify", str(tmp_path / "big.bnn"), "--against", str(ckpt_path)]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH: the golden model and PyTorch disagree, first at layer 2 (scores): layer 2 (BinaryDense): " in out
    assert "|dot + bias| can reach 67,108,928 > 2**24, where PyTorch's float32 scores stop being exact" in out


def test_verify_names_a_nan_parameter(trained, tmp_path, capsys) -> None:
    run, path = trained
    ckpt_path, digest = _damaged_checkpoint(run, tmp_path, float("nan"))
    model = load_model(path)
    model = model.replace(source={**model.source, "checkpoint_sha256": digest})
    save_model(model, tmp_path / "m.bnn")
    assert main(["verify", str(tmp_path / "m.bnn"), "--against", str(ckpt_path)]) == 1
    err = capsys.readouterr().err
    assert "PyTorch scores of layer 2 hold NaN or infinity: layer 2 (BinaryDense): blocks.2.norm.bias holds nan" in err
    assert "eval mode" not in err and err.count("\n") == 1
