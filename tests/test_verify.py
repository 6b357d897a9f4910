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
    assert "MISMATCH" in capsys.readouterr().out
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["layers"][0]["agree"] < report["layers"][0]["total"]
