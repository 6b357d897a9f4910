"""`bnn-hw synth`: Yosys synthesis of a generated top (slow) and the command's one-line errors (fast)."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("amaranth")

from bnn_hw import save_model  # noqa: E402
from bnn_hw.cli import main  # noqa: E402
from rtl.testing import random_dense_model  # noqa: E402


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    model = root / "m.bnn"
    save_model(random_dense_model([12, 8, 4], (3, 3, 1), seed=2, binarize_at=100), model)
    out = root / "build"
    assert main(["rtl", str(model), "--pe", "4,4,2", "--simd", "3,6,8", "-o", str(out), "-q"]) == 0
    return out


def _one_line_error(capsys, message):
    err = capsys.readouterr().err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_synth_errors(build, tmp_path, capsys, monkeypatch):
    assert main(["synth", str(tmp_path)]) == 1
    _one_line_error(capsys, "no manifest.json here")
    assert main(["synth", str(build), "--target", "vivado"]) == 1
    _one_line_error(capsys, "unknown --target 'vivado'")
    assert main(["synth", str(build), "--pnr"]) == 1
    _one_line_error(capsys, "--pnr is only available for --target ice40")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["synth", str(build), "--target", "ice40"]) == 1
    _one_line_error(capsys, "yosys not found on PATH")


@pytest.mark.slow
@pytest.mark.parametrize("target", ["xilinx", "ice40"])
def test_synth_is_check_clean_with_per_layer_numbers(build, target, capsys):
    if shutil.which("yosys") is None:
        pytest.skip("yosys is not installed (apt-get install yosys)")
    extra = ["--pnr"] if target == "ice40" and shutil.which("nextpnr-ice40") else []
    assert main(["synth", str(build), "--target", target, "-q", *extra]) == 0
    rep = json.loads((build / f"synth_{target}.json").read_text())
    assert set(rep["layers"]) == {"0", "1", "2"}
    for layer in rep["layers"].values():
        assert layer["luts"] > 0 and layer["ffs"] > 0
    assert rep["total"]["latches"] == 0
    assert rep["total"]["luts"] >= sum(v["luts"] for v in rep["layers"].values())
    if extra:
        assert rep["pnr"]["status"] == "routed" and rep["pnr"]["fmax_mhz"] > 0
