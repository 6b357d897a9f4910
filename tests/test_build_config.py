"""The build configuration file: a valid file in each folding form, every kind of mistake in one line naming the key,
`bnn-hw rtl --config`, and a tiny `bnn-hw build` end to end (the full chain with synthesis, place and route and a
sweep is slow)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import textwrap

import pytest

from bnn_hw import save_model
from bnn_hw.cli import main
from bnn_hw.config import TRAIN_KEYS, load_config
from bnn_hw.errors import BnnError


@pytest.fixture
def tiny(tmp_path):
    """A digits-shaped random model with two small layers, saved beside the configuration files."""
    from bnn_hw.synthetic import random_model

    model = random_model((8, 8, 1), [16], num_classes=10, seed=3)
    model = model.replace(source={"dataset": "digits"})
    save_model(model, tmp_path / "tiny.bnn")
    return tmp_path / "tiny.bnn"


def _write(tmp_path, text, name="build.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_valid_yaml_every_section(tmp_path, tiny):
    cfg = load_config(
        _write(
            tmp_path,
            """
            version: 1
            out: runs/x
            seed: 4
            model: {path: tiny.bnn}
            folding:
              pe: 4
              simd: 16
              layers: {layer1: {PE: 2, SIMD: 8}}
            interface: {pixels_per_beat: 2, debug_taps: true}
            target: {device: ice40-hx8k, clock_mhz: 12, pnr: true, timeout: 600}
            sim: {images: 20, simulator: icarus, seed: 3}
            bench: {cpu: false}
            sweep: {pe: [4, 2, 4], simd: 8}
            report: false
            """,
        )
    )
    assert cfg.model.path == tiny and cfg.out == tmp_path / "runs/x" and cfg.seed == 4
    assert (cfg.folding.pe, cfg.folding.simd, cfg.folding.layers) == (4, 16, {1: {"pe": 2, "simd": 8}})
    assert cfg.interface.pixels_per_beat == 2 and cfg.interface.debug_taps
    assert cfg.target.family == "ice40" and cfg.target.clock_mhz == 12.0 and cfg.target.pnr
    assert cfg.target.part.luts == 7680
    assert (cfg.sim.images, cfg.sim.simulator, cfg.sim.seed) == (20, "icarus", 3)
    assert not cfg.bench.cpu and not cfg.report
    assert (cfg.sweep.pe, cfg.sweep.simd) == ([2, 4], [8])
    # per-layer entries on top of the one-for-all defaults, fitted per layer like `bnn-hw rtl --pe 4`
    assert cfg.folding.per_layer(2, lambda v, i, what: min(v, 10)) == ([4, 2], [10, 8])
    json.dumps(cfg.to_dict())  # JSON-ready, as build.json records it


def test_valid_json_finn_style_list_and_auto(tmp_path, tiny):
    path = _write(
        tmp_path,
        json.dumps(
            {"model": {"path": str(tiny)}, "folding": {"layers": [{"PE": 8, "SIMD": 16}, {"PE": 2, "SIMD": 4}]}}
        ),
        "fold.json",
    )
    cfg = load_config(path)
    assert cfg.folding.per_layer(2, None) == ([8, 2], [16, 4])
    assert cfg.out == tmp_path / "runs" / "fold"  # default: beside the file, named after it
    finn = load_config(
        {
            "model": {"path": str(tiny)},
            "folding": {
                "layers": {"Defaults": {}, "MatrixVectorActivation_0": {"PE": 4, "SIMD": 8}, "MVAU_1": {"PE": 2}}
            },
        }
    )
    assert finn.folding.layers == {0: {"pe": 4, "simd": 8}, 1: {"pe": 2}}
    auto = load_config({"model": {"path": str(tiny)}, "folding": {"auto": {"target_cycles": 100}}})
    assert auto.folding.auto and auto.folding.target_cycles == 100 and auto.folding.per_layer(2, None) is None
    train = load_config({"model": {"train": {"dataset": "digits", "hidden": [32], "epochs": 2}}, "seed": 5})
    assert train.model.train == {"dataset": "digits", "hidden": [32], "epochs": 2, "seed": 5}


def test_train_keys_are_train_config_fields():
    pytest.importorskip("torch")
    from bnn_hw.train import TrainConfig

    assert set(TRAIN_KEYS) <= {f.name for f in dataclasses.fields(TrainConfig)}


INVALID = [
    ("modle: {path: tiny.bnn}", "modle: unknown key; the keys here are: version, out"),
    ("model: {path: tiny.bnn, verfy: true}", "model.verfy: unknown key"),
    ("model: {}", "model: give exactly one of model.path, model.checkpoint or model.train (got none)"),
    ("model: {path: tiny.bnn, checkpoint: c.pt}", "(got path and checkpoint)"),
    ("model: {path: c.pt}", "model.path: must be an exported .bnn model"),
    ("model: {train: {epochs: 0}}", "model.train.epochs: must be a positive integer (got 0)"),
    ("model: {train: {hidden: 64}}", "model.train.hidden: must be a non-empty list of positive integers"),
    ("model: {train: {loss: l1}}", "model.train.loss: must be one of: squared-hinge, cross-entropy (got 'l1')"),
    ("model: {train: {lr: 1}}", "model.train.lr: unknown key"),
    ("model: {path: tiny.bnn}\nfolding: {pe: -1}", "folding.pe: must be a positive integer or a non-empty list"),
    ("model: {path: tiny.bnn}\nfolding: {simd: [8, x]}", "folding.simd: must be a positive integer or a non-empty"),
    ("model: {path: tiny.bnn}\nfolding: {layers: {conv: {pe: 2}}}", "folding.layers.conv: a layer is named by"),
    ("model: {path: tiny.bnn}\nfolding: {layers: [{pe: 2, lanes: 3}]}", "folding.layers.layer0.lanes: unknown key"),
    ("model: {path: tiny.bnn}\nfolding: {layers: [{pe: 0}]}", "folding.layers.layer0.pe: must be a positive integer"),
    ("model: {path: tiny.bnn}\nfolding: {layers: 3}", "folding.layers: must be a list"),
    ("model: {path: tiny.bnn}\nfolding: {auto: {}}", "folding.auto: give exactly one of target_cycles or lut_budget"),
    ("model: {path: tiny.bnn}\nfolding: {pe: 2, auto: {lut_budget: 9}}", "folding.auto: chooses PE and SIMD itself"),
    ("model: {path: tiny.bnn}\nfolding: {weights: lut}", "folding.weights: must be one of: auto, block, logic"),
    ("model: {path: tiny.bnn}\ninterface: {pixels_per_beat: 0}", "interface.pixels_per_beat: must be a positive"),
    ("model: {path: tiny.bnn}\ntarget: {device: zynq}", "target.device: must be one of: xc7a35t"),
    ("model: {path: tiny.bnn}\ntarget: {device: xc7a35t, family: ice40}", "target.family: device xc7a35t is xilinx"),
    ("model: {path: tiny.bnn}\ntarget: {clock_mhz: 0}", "target.clock_mhz: must be a positive number (got 0)"),
    ("model: {path: tiny.bnn}\ntarget: {pnr: true}", "target.pnr: open place and route exists for ecp5 and ice40"),
    ("model: {path: tiny.bnn}\ntarget: {pnr: yes please}", "target.pnr: must be true or false"),
    ("model: {path: tiny.bnn}\nsim: {simulator: questa}", "sim.simulator: must be one of: verilator, icarus"),
    ("model: {path: tiny.bnn}\nsim: {images: -1}", "sim.images: must be an integer >= 0 (got -1)"),
    ("model: {path: tiny.bnn}\nsim: {gap: 1.5}", "sim.gap: must be a number in [0, 1) (got 1.5)"),
    ("model: {path: tiny.bnn}\nbench: {images: 0}", "bench.images: must be a positive integer (got 0)"),
    ("model: {path: tiny.bnn}\nsweep: {pe: [2]}", "sweep.simd: is required"),
    ("model: {path: tiny.bnn}\nversion: 2", "version: this bnn-hw reads version 1 (got 2)"),
    ("model: [tiny.bnn]", "model: must be a mapping of keys to values"),
    ("- just a list", "the file: must be a mapping of keys to values"),
    ("model: {path: tiny.bnn\n", "not valid YAML at line"),
]


@pytest.mark.parametrize(("text", "message"), INVALID, ids=[m.split(":")[0] for _, m in INVALID])
def test_each_invalid_kind_is_one_line_naming_the_key(tmp_path, tiny, capsys, text, message):
    path = _write(tmp_path, text + "\n")
    assert main(["build", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"bnn-hw build: error: {path}: ") and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # refused before any work


def test_missing_file_and_suffix(tmp_path):
    with pytest.raises(BnnError, match="configuration file not found"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(BnnError, match=r"ends in \.yaml, \.yml or \.json"):
        load_config(_write(tmp_path, "{}", "build.toml"))
    with pytest.raises(BnnError, match=r"not valid JSON \(Expecting"):
        load_config(_write(tmp_path, "{model:", "build.json"))


def test_rtl_with_config_per_layer_folding(tmp_path, tiny, capsys):
    pytest.importorskip("amaranth")
    path = _write(
        tmp_path,
        """
        model: {path: tiny.bnn}
        folding: {pe: 4, simd: 16, layers: {layer1: {pe: 2}}, weights: logic}
        interface: {pixels_per_beat: 2}
        """,
    )
    assert main(["rtl", "--config", str(path), "-q"]) == 0
    manifest = json.loads((tmp_path / "runs/build/rtl/manifest.json").read_text())
    assert [(d["PE"], d["SIMD"]) for d in manifest["layers"]] == [(4, 16), (2, 16)]
    assert [d["weight_style"] for d in manifest["layers"]] == ["logic", "logic"]
    assert manifest["pixels_per_beat"] == 2
    assert main(["rtl", "--config", str(path), "--pe", "8", "-o", str(tmp_path / "o")]) == 1
    assert "--config sets the folding: drop --pe" in capsys.readouterr().err


def test_tiny_build_end_to_end(tmp_path, tiny):
    """model -> evaluate -> rtl -> sim (Icarus) -> bench cpu -> report, each artefact in the run folder and each
    stage recorded with its command."""
    pytest.importorskip("amaranth")
    pytest.importorskip("cocotb")
    if shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog is not installed (apt-get install iverilog)")
    path = _write(
        tmp_path,
        """
        model: {path: tiny.bnn}
        folding: {pe: 8, simd: 16}
        interface: {pixels_per_beat: 16}
        target: {synth: false, clock_mhz: 50}
        sim: {images: 6, simulator: icarus, seed: 2}
        bench: {images: 64, repeats: 1}
        """,
    )
    assert main(["build", str(path), "-q"]) == 0
    run = tmp_path / "runs/build"
    for name in (
        "build.json",
        "config.yaml",
        "model.bnn",
        "evaluation.json",
        "rtl/bnn_top.v",
        "rtl/manifest.json",
        "rtl/sim_report.json",
        "bench/cpu.json",
        "report/report.html",
        "report/report.md",
    ):
        assert (run / name).is_file(), name
    record = json.loads((run / "build.json").read_text())
    stages = {s["name"]: s for s in record["stages"]}
    assert [s["name"] for s in record["stages"]] == ["model", "evaluate", "rtl", "synth", "sim", "bench cpu", "report"]
    assert "=== sim: bnn-hw sim " in (run / "build.log").read_text()
    assert stages["synth"]["status"] == "skipped: target.synth is false"
    assert stages["rtl"]["command"].startswith("bnn-hw rtl ") and "--pe 8 --simd 16" in stages["rtl"]["command"]
    assert "--simulator icarus" in stages["sim"]["command"] and "--images 6" in stages["sim"]["command"]
    assert record["model_hash"] == json.loads((run / "rtl/sim_report.json").read_text())["model_hash"]
    assert json.loads((run / "rtl/sim_report.json").read_text())["passed"]
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["images"] == sum(map(sum, evaluation["confusion_matrix"])) == 359
