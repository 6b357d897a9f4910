"""`bnn-hw report`: every section present, numbers traceable to the JSON files they came from."""

import json

import pytest

from bnn_hw.cli import main
from bnn_hw.model import save_model
from bnn_hw.synthetic import random_model


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    save_model(random_model((4, 4, 1), [16], num_classes=3), run / "model.bnn")
    write(run / "train/metrics.json", {"epochs": [
        {"epoch": 1, "loss": 0.5, "train_acc": 0.6, "test_acc": 0.6123, "seconds": 7.0},
        {"epoch": 2, "loss": 0.4, "train_acc": 0.7, "test_acc": 0.7345, "seconds": 8.0}],
        "model": {"preset": "mlp"}, "dataset": {"name": "digits"}})
    write(run / "verify.json", {"images": 359, "dataset": "digits", "split": "test", "classes_agree": 359,
                                "golden_accuracy": 0.7345, "pytorch_accuracy": 0.7345,
                                "layers": [{"layer": 0, "what": "bits", "agree": 5744, "total": 5744},
                                           {"layer": 1, "what": "scores", "agree": 1077, "total": 1077}]})
    write(run / "rtl/manifest.json", {"predicted": {"cycles_per_image": 4321, "latency_cycles": 8765,
                                                    "limited_by": "layer 0"},
                                      "layers": [{"kind": "dense", "MW": 16, "MH": 16, "PE": 4, "SIMD": 8}]})
    write(run / "rtl/synth_ice40.json", {"target": "ice40", "layers": {"0": {"luts": 1111, "ffs": 222}},
                                         "total": {"luts": 2468, "ffs": 1357}, "pnr": {"fmax_mhz": 43.21}})
    write(run / "rtl/sim_report.json", {"simulator": "verilator", "images": 200, "reference": "numpy-golden",
                                        "mismatches_total": 0, "cycles_per_image": 4321, "latency_cycles": 8765})
    write(run / "bench/cpu.json", {"golden_numpy": {"images_per_s": 12345.0}})
    return run


def test_report_has_every_section_and_traceable_numbers(run_dir):
    assert main(["report", str(run_dir)]) == 0
    page = (run_dir / "report/report.html").read_text()
    markdown = (run_dir / "report/report.md").read_text()
    for title in ("Model", "Training", "Export agreement", "Hardware folding", "Synthesis", "RTL simulation",
                  "Throughput comparison"):
        assert f"<h2>{title}" in page and f"## {title}" in markdown
    for number in ("73.45", "4,321", "8,765", "2,468", "43.2", "12,345"):
        assert number in page, number
    # FPGA images/s from the measured Fmax: 43.21 MHz / 4321 cycles = 10,000 images/s
    assert "10,000" in page and "measured" in page
    assert "data:image/png;base64," in page and (run_dir / "report/training_curve.png").is_file()
    assert "bench gpu" in page and "not measured" in page


def test_report_of_a_missing_folder_is_one_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "absent")]) == 1
    assert "run folder not found" in capsys.readouterr().err
