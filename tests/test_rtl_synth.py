"""`bnn-hw synth`: Yosys synthesis of a generated top (slow) and the command's one-line errors (fast)."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("amaranth")

from bnn_hw.rtl.testing import random_dense_model  # noqa: E402

from bnn_hw import save_model  # noqa: E402
from bnn_hw.cli import main  # noqa: E402


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
    _one_line_error(capsys, "--pnr needs --target ecp5 (nextpnr-ecp5) or --target ice40")
    assert main(["synth", str(build), "--target", "ecp5", "--speed", "8"]) == 1
    _one_line_error(capsys, "--speed only applies with --pnr")
    assert main(["synth", str(build), "--target", "ecp5", "--pnr", "--speed", "5"]) == 1
    _one_line_error(capsys, "--speed must be one of 6, 7, 8")
    assert main(["synth", str(build), "--target", "ecp5", "--pnr", "--device", "12k"]) == 1
    _one_line_error(capsys, "unknown --device '12k' for ecp5: choose one of 25k, 45k, 85k")
    assert main(["synth", str(build), "--target", "ecp5", "--pnr", "--package", "QFN32"]) == 1
    _one_line_error(capsys, "unknown --package 'QFN32' for LFE5U-85F")
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


def _yosys_or_skip():
    if shutil.which("yosys") is None:
        pytest.skip("yosys is not installed (apt-get install yosys)")


@pytest.mark.slow
def test_pe_array_within_lut_per_lane_target(tmp_path):
    """Issue 5's area target on a small array: XOR + bit heap + accumulator + sign for 8 PEs x 32 lanes (the per-PE
    structure of 32 x 32), accumulator as for a 512-input layer: <= 1.5 LUTs per lane in synth_xilinx."""
    _yosys_or_skip()
    from amaranth.back import verilog
    from bnn_hw.rtl.pe_array import StandaloneArray
    from bnn_hw.rtl.synthesis import run_yosys

    pe, simd = 8, 32
    src = tmp_path / "array.v"
    src.write_text(verilog.convert(StandaloneArray(pe, simd, 11), name="pe_array", emit_src=False))
    tot = run_yosys([src], "pe_array", "xilinx", tmp_path, keep=[])["total"]
    assert tot["luts"] / (pe * simd) <= 1.5, tot
    assert tot["carry"] > 0 and tot["latches"] == 0


@pytest.mark.slow
def test_pixel_mlp_weights_map_to_block_ram(tmp_path):
    """Weight memories of a pixel-input MLP go to block RAM (RAMB18/36), not to LUTs, in the complete flow."""
    _yosys_or_skip()
    model = tmp_path / "m.bnn"
    save_model(random_dense_model([64, 64, 10], (28, 28, 1), seed=3, name="mlp"), model)
    out = tmp_path / "build"
    assert main(["rtl", str(model), "--pe", "8", "--simd", "8", "-o", str(out), "-q"]) == 0
    assert main(["synth", str(out), "--target", "xilinx", "-q"]) == 0
    rep = json.loads((out / "synth_xilinx.json").read_text())
    man = json.loads((out / "manifest.json").read_text())
    for layer in man["layers"]:
        got = rep["layers"][str(layer["index"])]
        if layer["weight_memory_bits"] >= 4096:
            assert got["bram_cells"] > 0, (layer["index"], got)
            assert got["luts"] < layer["weight_memory_bits"] / 8, (layer["index"], got)  # not a LUT ROM


def test_failed_place_and_route_exits_non_zero_with_one_line(build, capsys, monkeypatch):
    """--pnr that yields no Fmax is an error (exit 1, one line), though the synthesis report is still written."""
    from bnn_hw.rtl import pnr, synthesis

    def fake_synthesize(build_dir, target, **kw):
        (build_dir / "netlist_ice40.json").write_text("{}")
        return {
            "layers": {},
            "glue": {},
            "total": {"luts": 1, "latches": 0},
            "log": "fake.log",
            "netlist": str(build_dir / "netlist_ice40.json"),
            "intact": {"ok": True},
        }

    monkeypatch.setattr(synthesis, "find_yosys", lambda: "yosys")
    monkeypatch.setattr(synthesis, "synthesize", fake_synthesize)
    monkeypatch.setattr(pnr, "tool", lambda family: ["nextpnr-ice40"])
    monkeypatch.setattr(
        pnr,
        "run_nextpnr",
        lambda *a, **kw: {"status": "failed: ERROR: Unable to find a placement location for sb_io", "fmax_mhz": None},
    )
    assert main(["synth", str(build), "--target", "ice40", "--pnr", "--io", "direct", "-q"]) == 1
    _one_line_error(capsys, "place and route gave no Fmax (failed: ERROR: Unable to find a placement location")
    rep = json.loads((build / "synth_ice40.json").read_text())
    assert rep["pnr"]["fmax_mhz"] is None and "use --io wrapper" in rep["pnr"]["status"]


# A top with two instances of a kept module, named as `bnn-hw rtl` names them (escaped identifiers).
_KEPT_VERILOG = r"""
module \bnn_top.layer0.array (input clk, input [5:0] a, output reg q);
  always @(posedge clk) q <= ^a;
endmodule
module \bnn_top.layer0 (input clk, input [11:0] a, output q);
  wire x, y;
  \bnn_top.layer0.array u0 (.clk(clk), .a(a[5:0]), .q(x));
  \bnn_top.layer0.array u1 (.clk(clk), .a(a[11:6]), .q(y));
  assign q = x ^ y;
endmodule
module bnn_top (input clk, input [11:0] a, output q);
  reg r;
  wire x;
  \bnn_top.layer0 layer0 (.clk(clk), .a(a), .q(x));
  always @(posedge clk) r <= x & a[0];
  assign q = r;
endmodule
"""


@pytest.mark.parametrize("target", ["xilinx", "ice40"])
def test_kept_module_instances_are_not_counted_as_cells(tmp_path, target):
    """A kept submodule's instance in its parent's cell table is hierarchy: its cells are counted in its own module
    (and once per instance in the total), so it is no "other" cell of the parent (it used to be one)."""
    _yosys_or_skip()
    from bnn_hw.rtl.synthesis import run_yosys

    src = tmp_path / "top.v"
    src.write_text(_KEPT_VERILOG)
    rep = run_yosys([src], "bnn_top", target, tmp_path, keep=["bnn_top.layer0", "bnn_top.layer0.array"])
    mods = rep["modules"]
    assert set(mods) == {"bnn_top", "bnn_top.layer0", "bnn_top.layer0.array"}
    for name, counts in mods.items():
        assert counts["other"] == 0, (name, counts)
    assert mods["bnn_top.layer0.array"]["ffs"] == 1 and mods["bnn_top"]["ffs"] == 1
    assert rep["total"]["ffs"] == 3 and rep["total"]["other"] == 0  # two array instances, one top register
    assert rep["total"]["luts"] == (
        mods["bnn_top"]["luts"] + mods["bnn_top.layer0"]["luts"] + 2 * mods["bnn_top.layer0.array"]["luts"]
    )
