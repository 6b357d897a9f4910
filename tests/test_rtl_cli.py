"""`bnn-hw rtl` end to end (Verilog + manifest) and its one-line errors."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("amaranth")

from bnn_hw.rtl.testing import random_dense_model  # noqa: E402

from bnn_hw import save_model  # noqa: E402
from bnn_hw.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "tiny.bnn"
    save_model(random_dense_model([24, 12, 10], (5, 5, 1), seed=1, name="tiny"), path)
    return path


def test_rtl_writes_verilog_and_manifest(model_file, tmp_path, capsys):
    out = tmp_path / "build"
    assert main(["rtl", str(model_file), "--pe", "8,4,5", "--simd", "9,12,4", "-o", str(out), "--debug-taps"]) == 0
    man = json.loads((out / "manifest.json").read_text())
    text = (out / "bnn_top.v").read_text()
    assert "module bnn_top(" in text
    assert man["model_hash"] in text
    for port, spec in man["ports"].items():
        assert port in text
        assert spec["width"] >= 1
    assert man["ports"]["pixels__payload"]["width"] == 8 * man["pixels_per_beat"] == 8 * 9
    assert man["beats_per_image"] == 3  # ceil(25 / 9)
    assert man["ports"]["result__payload"]["width"] == man["class_bits"] + 10 * man["score_bits"]
    assert [d["PE"] for d in man["layers"]] == [8, 4, 5]
    assert [d["NF"] * d["SF"] for d in man["layers"]] == [3 * 3, 3 * 2, 2 * 3]
    assert man["predicted"]["cycles_per_image"] == 9
    assert man["predicted"]["latency_cycles"] > 9
    assert [t["layer"] for t in man["debug_taps"]] == [0, 1]
    assert "tap1_payload" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--pe", "0"], "PE=0 must be between 1"),
        (["--pe", "25,4,5"], "PE=25 must be between 1 and the layer's 24"),
        (["--simd", "26,4,4"], "SIMD=26 must be between 1 and the layer's fan-in 25"),
        (["--pe", "4,4,11"], "PE=11 must be between 1 and the layer's 10"),
        (["--pe", "4,4"], "lists 2 values but the model has 3 layers"),
        (["--simd", "x"], "--simd must be an integer"),
        (["--auto"], "needs exactly one of --target-cycles"),
        (["--target-cycles", "10"], "only apply with --auto"),
        (["--pixels-per-beat", "0"], "argument --pixels-per-beat: must be an integer >= 1, got 0"),
        (["--weights", "lut"], "argument --weights: invalid choice: 'lut'"),
    ],
)
def test_bad_requests_are_one_line_errors(model_file, tmp_path, capsys, argv, message):
    # wrong options exit 2, like argparse
    usage = argv[0] in ("--auto", "--target-cycles", "--pixels-per-beat", "--weights")
    assert main(["rtl", str(model_file), "-o", str(tmp_path / "b"), *argv]) == (2 if usage else 1)
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_single_values_are_fitted_to_each_layer(model_file, tmp_path):
    from bnn_hw.rtl.commands.rtl import _single
    from bnn_hw.rtl.folding import fit_value

    from bnn_hw.model import load_model

    model = load_model(model_file)
    assert [fit_value(32, layer, "pe") for layer in model.layers] == [24, 12, 10]
    assert [fit_value(16, layer, "simd") for layer in model.layers] == [16, 16, 12]
    assert _single("32") and _single(None) and not _single("8,8,8")


def test_auto_folding_from_the_command_line(model_file, tmp_path):
    out = tmp_path / "auto"
    assert main(["rtl", str(model_file), "--auto", "--target-cycles", "12", "-o", str(out), "-q"]) == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["predicted"]["cycles_per_image"] <= 12
    assert man["generator"]["args"]["auto"] is True


def test_weight_style_per_layer_in_the_manifest(model_file, tmp_path):
    out = tmp_path / "logic"
    argv = ["rtl", str(model_file), "--pe", "8,4,5", "--simd", "9,12,4", "--weights", "logic", "-o", str(out), "-q"]
    assert main(argv) == 0
    man = json.loads((out / "manifest.json").read_text())
    assert [d["weight_style"] for d in man["layers"]] == ["logic"] * 3
    assert man["generator"]["args"]["weights"] == "logic"
    text = (out / "bnn_top.v").read_text()
    assert "(* keep *) always @(posedge clk)" in text and 'rom_style = "block"' not in text


def test_bad_model_file(tmp_path, capsys):
    bad = tmp_path / "bad.bnn"
    bad.write_bytes(b"not a model at all, definitely not" * 3)
    assert main(["rtl", str(bad), "-o", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert "not a valid bnn-hw model file" in err and len(err.strip().splitlines()) == 1
    assert main(["rtl", str(tmp_path / "missing.bnn"), "-o", str(tmp_path / "b")]) == 1
    assert "model file not found" in capsys.readouterr().err


@pytest.fixture(scope="module")
def wide_file(tmp_path_factory):
    # 100 pixels -> 300 -> 300 -> 10: layer 1 fully parallel would be a 90,000-bit weight word
    path = tmp_path_factory.mktemp("w") / "wide.bnn"
    save_model(random_dense_model([300, 300, 10], (10, 10, 1), seed=2, name="wide"), path)
    return path


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--pe", "300", "--simd", "300"],
            "layer 1 (dense 300 -> 300 [bits in, bits out]): PE x SIMD = 300 x 300 = 90,000 bits per weight word; "
            "Amaranth signals are limited to 65,535 bits: lower --pe or --simd",
        ),
        (["--pe", "4,256,10", "--simd", "100,256,300"], "PE x SIMD = 256 x 256 = 65,536 bits per weight word"),
        (
            ["--auto", "--target-cycles", "1"],
            "--target-cycles 1: layer 1 (dense 300 -> 300 [bits in, bits out]) cannot meet it with every signal within "
            "Amaranth's 65,535-bit limit",
        ),
    ],
)
def test_too_wide_signals_are_one_line_errors_before_elaboration(
    wide_file, tmp_path, capsys, monkeypatch, argv, message
):
    from bnn_hw.rtl import generate as rtl_generate

    def never(*args, **kwargs):
        raise AssertionError("the folding reached Amaranth elaboration")

    monkeypatch.setattr(rtl_generate, "generate", never)
    assert main(["rtl", str(wide_file), "-o", str(tmp_path / "b"), *argv]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert not (tmp_path / "b").exists()


def test_auto_with_an_unreachable_target_names_the_fastest_buildable_one(wide_file, tmp_path, capsys):
    assert main(["rtl", str(wide_file), "--auto", "--target-cycles", "1", "-o", str(tmp_path / "b")]) == 1
    assert "use --target-cycles 2 or more" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv, cycles, widest",
    [
        (["--auto", "--target-cycles", "2"], 2, None),
        (["--pe", "4,255,10", "--simd", "100,257,300"], 75, 65_535),  # the widest weight word Amaranth can build
    ],
)
def test_designs_at_the_width_limit_are_generated(wide_file, tmp_path, argv, cycles, widest):
    out = tmp_path / "build"
    assert main(["rtl", str(wide_file), *argv, "-o", str(out), "-q"]) == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["predicted"]["cycles_per_image"] == cycles
    word = max(d["PE"] * d["SIMD"] for d in man["layers"])
    assert word <= 65_535 and (widest is None or word == widest)
    assert "module bnn_top(" in (out / "bnn_top.v").read_text()
