"""The AXI4-Stream top (`bnn-hw rtl --interface axis`): framing reference, packages, cocotbext-axi benches, and the
existing stream benches (fast harness, Python driver) on it, bit-exact with cycles as predicted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("amaranth")

from bnn_hw import save_model  # noqa: E402
from bnn_hw.cli import main  # noqa: E402
from bnn_hw.errors import BnnError  # noqa: E402
from bnn_hw.model import load_model  # noqa: E402
from bnn_hw.synthetic import ConvSpec, random_model  # noqa: E402


def _verilator():
    from bnn_hw.sim import tools

    ok, why = tools.available("verilator")
    if not ok:
        pytest.skip(why)
    pytest.importorskip("cocotbext.axi")


def _build(tmp, model, *args):
    path = tmp / "model.bnn"
    save_model(model, path)
    out = tmp / "build"
    assert main(["rtl", str(path), "-o", str(out), "-q", "--interface", "axis", *args]) == 0
    return out, path


@pytest.fixture(scope="module")
def mlp_build(tmp_path_factory):
    return _build(
        tmp_path_factory.mktemp("axi_mlp"),
        random_model((4, 4, 1), [16, 12], num_classes=5, seed=1),
        "--pe", "4", "--simd", "8", "--axi-lite",
    )  # fmt: skip


@pytest.fixture(scope="module")
def cnn_build(tmp_path_factory):
    return _build(
        tmp_path_factory.mktemp("axi_cnn"),
        random_model((6, 6, 2), [ConvSpec(4, pool=2, padding=1), 8], num_classes=4, seed=3),
        "--pe", "4", "--simd", "2", "--axi-lite",
    )  # fmt: skip


# ------------------------------------------------------------------------------------------- framing reference


def test_framing_reference_rules():
    from bnn_hw.sim.axis import frame_images_of

    p, bpi = 2, 3
    img = [bytes([i]) * (p * bpi) for i in range(6)]
    # one batch frame: three whole images, nothing flagged, only the last closes the frame
    got = frame_images_of([img[0] + img[1] + img[2]], p, bpi, 0)
    assert [(x.data, x.error, x.end) for x in got] == [(img[0], False, False), (img[1], False, False), (img[2], 0, 1)]
    # TLAST after one beat: that image is completed with zero pixels and flagged; the next frame starts fresh
    got = frame_images_of([img[0][:p], img[1]], p, bpi, 0)
    assert [(x.data, x.error, x.end) for x in got] == [(img[0][:p] + bytes(2 * p), True, True), (img[1], False, True)]
    # frames of exactly 2 images: a missing TLAST (image 1) and TLASTs one image early (images 2, 3) are flagged
    got = frame_images_of([img[0] + img[1] + img[2], img[3], img[4] + img[5]], p, bpi, 2)
    assert [(x.error, x.end) for x in got] == [(0, 0), (1, 1), (1, 1), (1, 1), (0, 0), (0, 1)]
    # with frames of one image, an image followed by one more beat: the image is flagged (no TLAST), and so is the
    # one-beat image that the TLAST then ends early
    got = frame_images_of([img[4] + img[5][:p]], p, bpi, 1)
    assert [(x.error, x.end) for x in got] == [(True, True), (True, True)]


# ------------------------------------------------------------------------------------------------- generation


def test_axis_build_ports_manifest_and_packages(mlp_build):
    out, _ = mlp_build
    man = json.loads((out / "manifest.json").read_text())
    text = (out / "bnn_top.v").read_text()
    assert man["interface"] == "axis" and man["reset"] == {"port": "aresetn", "sync": True, "active": "low"}
    header = text[text.index("module bnn_top(") : text.index(");", text.index("module bnn_top("))]
    for port in ("aclk", "aresetn", "s_axis_tdata", "s_axis_tlast", "m_axis_tdata", "m_axis_tuser", "s_axi_rdata"):
        assert port in header and port in man["ports"]
    assert "clk," not in header and " rst" not in header
    assert man["ports"]["m_axis_tdata"]["width"] % 8 == 0 >= man["result_bits"] - man["ports"]["m_axis_tdata"]["width"]
    assert man["ports"]["s_axis_tdata"]["width"] == 8 * man["pixels_per_beat"]
    regs = {r["name"]: r for r in man["axi_lite"]["registers"]}
    assert regs["ID"]["value"] == 0x424E4E31
    assert regs["MODEL_HASH0"]["value"] == int(man["model_hash"][:8], 16)
    assert man["packages"]["fusesoc"] == "bnn_top.core" and (out / "bnn_top.core").is_file()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--interface", "axis", "--debug-taps"], "--debug-taps needs --interface bare"),
        (["--axi-lite"], "need --interface axis"),
        (["--interface", "axis", "--frame-images", "-1"], "argument --frame-images: must be an integer in 0..65535"),
    ],
)
def test_axis_option_errors(tmp_path, capsys, argv, message):
    path = tmp_path / "m.bnn"
    save_model(random_model((4, 4, 1), [8], num_classes=3), path)
    usage = "--frame-images" in argv  # refused by argparse: exit 2 (docs/cli.md)
    assert main(["rtl", str(path), "-o", str(tmp_path / "b"), *argv]) == (2 if usage else 1)
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_ipxact_validates_against_the_schema(mlp_build, tmp_path):
    pytest.importorskip("lxml")
    from bnn_hw.rtl.packaging import validate_ipxact

    out, _ = mlp_build
    text = (out / "component.xml").read_text()
    validate_ipxact(out / "component.xml")
    for name in ("s_axis", "m_axis", "s_axi", "aclk", "aresetn"):
        assert f"<ipxact:name>{name}</ipxact:name>" in text
    assert 'name="axis"' in text and 'name="aximm"' in text and "ACTIVE_LOW" in text and "AXI4LITE" in text
    broken = tmp_path / "broken.xml"
    broken.write_text(
        text.replace("<ipxact:direction>in</ipxact:direction>", "<ipxact:direction>inn</ipxact:direction>")
    )
    with pytest.raises(BnnError, match="not valid IEEE 1685-2014"):
        validate_ipxact(broken)


def _fusesoc() -> list[str]:
    pytest.importorskip("fusesoc")
    exe = shutil.which("fusesoc") or os.path.join(os.path.dirname(sys.executable), "fusesoc")
    return [exe] if os.path.exists(exe) else [sys.executable, "-c", "from fusesoc.main import main; main()"]


def test_fusesoc_lint_and_sim_targets(mlp_build, tmp_path):
    from bnn_hw.sim import tools

    fs = _fusesoc()
    for tool in ("verilator", "icarus"):
        ok, why = tools.available(tool)
        if not ok:
            pytest.skip(why)
    tools.find_simulator("verilator").apply_env()
    out, _ = mlp_build
    name = json.loads((out / "manifest.json").read_text())["packages"]["core_name"]
    for target in ("lint", "sim"):
        res = subprocess.run(
            [*fs, "--cores-root", str(out), "run", "--build-root", str(tmp_path / "fs"), "--target", target, name],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert res.returncode == 0, f"fusesoc {target} failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
        if target == "sim":
            assert "BNN_TB PASS 4 results" in res.stdout + res.stderr


# ----------------------------------------------------------------------------------------------- cocotbext-axi


@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_cocotbext_axi_scenarios_bit_exact(which, mlp_build, cnn_build):
    _verilator()
    from bnn_hw.sim.axis import run_axis, standard_scenarios
    from bnn_hw.sim.manifest import read_manifest

    out, path = mlp_build if which == "mlp" else cnn_build
    model = load_model(path)
    man = read_manifest(out)[0].to_json()  # the plain form the scenario helpers take
    scenarios = standard_scenarios(model, man, axi_lite=True)
    assert {s.name for s in scenarios} >= {"batch", "per_image", "early_tlast", "frame_of_2", "soft_reset"}
    flagged = sum(e[1] for s in scenarios for e in s.expected(model, man, s.frames))
    assert flagged >= 6  # the error scenarios really inject errors
    summary = run_axis(out, model, scenarios, out / "sim", build_subdir="build_py_verilator")
    assert summary["failures"] == []
    by = {s["name"]: s for s in summary["scenarios"]}
    assert by["batch"]["received"] == 12 and by["soft_reset"]["after_reset"] == 6
    assert by["early_tlast"]["registers"]["0x018"] == 2  # FRAMING_ERRORS


# ---------------------------------------------------------------------------------- existing benches on AXI top


def test_harness_and_python_driver_on_axi_top(mlp_build, sim_cli):
    _verilator()
    out, path = mlp_build
    rc, rep, text = sim_cli(out, path, "verilator", 40, "--random-images", seed=2)
    assert rc == 0, text
    assert rep["passed"] and rep["results_matched"] == 40
    assert rep["cycles_per_image"] == rep["metrics"]["predicted_cycles_per_image"]
    assert rep["latency_cycles"] == rep["metrics"]["predicted_latency_cycles"]  # the wrapper adds no cycle
    rc, rep, text = sim_cli(out, path, "verilator", 12, "--random-images", "--driver", "python", seed=3)
    assert rc == 0, text
    assert rep["passed"] and rep["results_matched"] == 12


# ------------------------------------------------------------------------------------------------ host driver


@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_accelerator_sim_backend_classifies_bit_exact(which, mlp_build, cnn_build):
    _verilator()
    import numpy as np

    import bnn_hw
    from bnn_hw import golden

    out, path = mlp_build if which == "mlp" else cnn_build
    model = load_model(path)
    x = np.random.default_rng(5).integers(0, 256, (30, *model.input_shape), dtype=np.uint8)
    ref = golden.run(model, x)
    with bnn_hw.Accelerator(out, backend="sim", max_batch=8, in_pause=0.2, out_pause=0.2) as acc:
        res = acc.classify(x)
        np.testing.assert_array_equal(res.classes, ref.classes)
        np.testing.assert_array_equal(res.scores, ref.scores)
        st = acc.status()
        assert (st["images_in"], st["images_out"], st["framing_errors"], st["busy"]) == (30, 30, 0, False)
        assert st["busy_cycles"] > 0
        acc.reset()
        assert acc.status()["images_in"] == 0
        assert acc.classify(x[3]).classes.tolist() == [ref.classes[3]]
        with pytest.raises(BnnError, match=r"images must be uint8 of shape \(N, " + ", ".join(map(str, x.shape[1:]))):
            acc.classify(x.astype(np.float32))


class _FakeBoard:
    """A board backend that answers the ID register with `ident` and the hash with zeros."""

    def __init__(self, ident):
        self.ident, self.writes = ident, []

    def transfer(self, frame, result_bytes):
        return bytes(result_bytes)

    def read_register(self, offset):
        return self.ident if offset == 0 else 0

    def write_register(self, offset, value):
        self.writes.append((offset, value))

    def close(self):
        pass


def test_accelerator_refuses_a_foreign_device_in_one_line(mlp_build):
    import bnn_hw

    out, _ = mlp_build
    with pytest.raises(BnnError, match="not a bnn-hw accelerator"):
        bnn_hw.Accelerator(out, backend=_FakeBoard(0x12345678))
    with pytest.raises(BnnError, match="runs model 000000000000... but"):
        bnn_hw.Accelerator(out, backend=_FakeBoard(0x424E4E31))
    with pytest.raises(BnnError, match="unknown backend 'pynq'"):
        bnn_hw.Accelerator(out, backend="pynq")
    with pytest.raises(BnnError, match="has no manifest.json"):
        bnn_hw.Accelerator(out / "nowhere")


def test_register_map_documented():
    from pathlib import Path

    from bnn_hw.rtl.axis_top import REGISTERS

    doc = (Path(__file__).parents[1] / "docs" / "rtl.md").read_text()
    for offset, (name, access, _) in REGISTERS.items():
        if name.startswith("MODEL_HASH"):
            continue
        assert f"| 0x{offset:03X} | {name} | {access} |".replace("0X", "0x") in doc, name
    assert "| 0x040-0x05C | MODEL_HASH0-7 | RO |" in doc


@pytest.mark.slow
@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_cocotbext_axi_scenarios_bigger_models(which, tmp_path, sim_cli):
    """28x28 inputs: a 784-64-64-10 MLP and a two-convolution ConvNet, the cocotbext-axi scenarios and the harness."""
    _verilator()
    from bnn_hw.sim.axis import run_axis, standard_scenarios
    from bnn_hw.sim.manifest import read_manifest

    if which == "mlp":
        model = random_model((28, 28, 1), [64, 64], num_classes=10, seed=4)
        args = ["--pe", "16", "--simd", "28", "--axi-lite"]
    else:
        model = random_model((12, 12, 1), [ConvSpec(8, pool=2), ConvSpec(16, pool=2), 32], num_classes=10, seed=5)
        args = ["--pe", "8", "--simd", "1,8,16,32", "--axi-lite"]
    out, path = _build(tmp_path, model, *args)
    man, _ = read_manifest(out)
    summary = run_axis(
        out,
        model,
        standard_scenarios(model, man, n_images=24, axi_lite=True),
        out / "sim",
        build_subdir="build_py_verilator",
    )
    assert summary["failures"] == []
    rc, rep, text = sim_cli(out, path, "verilator", 100, "--random-images", seed=4)
    assert rc == 0 and rep["passed"], text
    assert rep["cycles_per_image"] == rep["metrics"]["predicted_cycles_per_image"]
    assert rep["latency_cycles"] == rep["metrics"]["predicted_latency_cycles"]


@pytest.mark.slow
def test_synth_reports_layers_of_the_axi_top_and_fusesoc_synth_target(mlp_build, tmp_path):
    """`bnn-hw synth` finds the layer engines inside the AXI top (bnn_top.core.layerN), and FuseSoC's synth target
    (edalize's Yosys, synth_ecp5) runs."""
    if shutil.which("yosys") is None:
        pytest.skip("Debian yosys not installed (make system)")
    out, _ = mlp_build
    assert main(["synth", str(out), "--target", "ecp5", "-q"]) == 0
    rep = json.loads((out / "synth_ecp5.json").read_text())
    assert rep["layers"] and all(v["luts"] > 0 for v in rep["layers"].values())
    fs = _fusesoc()
    name = json.loads((out / "manifest.json").read_text())["packages"]["core_name"]
    res = subprocess.run(
        [*fs, "--cores-root", str(out), "run", "--build-root", str(tmp_path / "fs"), "--target", "synth", name],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    logs = list((tmp_path / "fs").rglob("yosys.log"))
    assert logs and "TRELLIS_FF" in logs[0].read_text()


def test_rtl_config_sets_the_axi_interface(tmp_path, capsys):
    path = tmp_path / "tiny.bnn"
    save_model(random_model((4, 4, 1), [8], num_classes=3), path)
    cfg = tmp_path / "build.json"
    cfg.write_text(
        json.dumps(
            {
                "model": {"path": str(path)},
                "out": str(tmp_path / "run"),
                "folding": {"pe": 4, "simd": 8},
                "interface": {"kind": "axis", "axi_lite": True, "frame_images": 1, "result_framing": "frame"},
            }
        )
    )
    assert main(["rtl", "--config", str(cfg), "-q"]) == 0
    man = json.loads(next((tmp_path / "run").rglob("manifest.json")).read_text())
    assert man["interface"] == "axis" and man["axi_lite"] is not None
    assert (man["axis"]["frame_images"], man["axis"]["result_framing"]) == (1, "frame")
    assert main(["rtl", "--config", str(cfg), "--interface", "axis", "-o", str(tmp_path / "o")]) == 1
    assert "--config sets the interface" in capsys.readouterr().err
    cfg.write_text(json.dumps({"model": {"path": str(path)}, "interface": {"kind": "axi"}}))
    assert main(["rtl", "--config", str(cfg), "-q"]) == 1
    assert "interface.kind: must be one of: bare, axis" in capsys.readouterr().err
