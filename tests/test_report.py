"""`bnn-hw report`: every section present, numbers traceable to the JSON files they came from."""

from dataclasses import replace

from bnn_hw.artifacts import SimReport, SynthReport
from bnn_hw.cli import main


def test_report_has_every_section_and_traceable_numbers(run_dir):
    assert main(["report", str(run_dir)]) == 0
    page = (run_dir / "report/report.html").read_text()
    markdown = (run_dir / "report/report.md").read_text()
    for title in (
        "Model",
        "Training",
        "Export agreement",
        "Hardware folding",
        "Synthesis",
        "RTL simulation",
        "Throughput comparison",
    ):
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


def _table_row(markdown: str, section: str, first_cell: str) -> str:
    body = markdown.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return next(line for line in body.splitlines() if line.startswith(f"| {first_cell} |"))


def test_simulation_figures_are_read_from_the_metrics_block(run_dir):
    # `bnn-hw sim` writes its measured figures under "metrics" (as in runs/demo/rtl/sim_report.json)
    path = run_dir / "rtl/sim_report.json"
    metrics = {
        "cycles_per_image": 4321.0,
        "predicted_cycles_per_image": 4322,
        "latency_cycles": 8765,
        "utilization": {"bottleneck_layer": 1, "bottleneck_utilization": 0.98, "layers": []},
    }
    replace(SimReport.read(path), metrics=metrics).write(path)
    assert main(["report", str(run_dir)]) == 0
    markdown = (run_dir / "report/report.md").read_text()
    assert (
        _table_row(markdown, "RTL simulation", "cycles per image (predicted)")
        == "| cycles per image (predicted) | 4,322 |"
    )
    assert (
        _table_row(markdown, "RTL simulation", "PE-array utilization")
        == "| PE-array utilization | 98.0 % (bottleneck layer 1) |"
    )
    assert _table_row(markdown, "RTL simulation", "latency, cycles") == "| latency, cycles | 8,765 |"


def test_block_ram_column_has_the_target_unit(run_dir):
    ice40 = SynthReport.read(run_dir / "rtl/synth_ice40.json")
    replace(
        ice40,
        layers={"0": {"luts": 1111, "bram_cells": 20}},
        total={"luts": 2468, "ffs": 1357, "bram_cells": 26},
        pnr=None,
    ).write(run_dir / "rtl/synth_ice40.json")
    assert main(["report", str(run_dir)]) == 0
    markdown = (run_dir / "report/report.md").read_text()
    assert "| part | LUTs | flip-flops | block RAM (SB_RAM40_4K, 4 kbit) | carry cells |" in markdown
    assert _table_row(markdown, "Synthesis", "total").startswith("| total | 2,468 | 1,357 | 26 |")
    assert "36k" not in markdown and "36 kbit" not in markdown

    (run_dir / "rtl/synth_ice40.json").unlink()
    replace(
        ice40, target="xilinx", layers={}, total={"luts": 2468, "ffs": 1357, "bram36": 12.5, "bram_cells": 25}
    ).write(run_dir / "rtl/synth_xilinx.json")
    assert main(["report", str(run_dir)]) == 0
    markdown = (run_dir / "report/report.md").read_text()
    assert "block RAM (RAMB36 equivalents, 36 kbit)" in markdown
    assert _table_row(markdown, "Synthesis", "total").startswith("| total | 2,468 | 1,357 | 12.5 |")


def test_throughput_without_a_clock_says_how_to_get_one(run_dir):
    path = run_dir / "rtl/synth_ice40.json"
    replace(SynthReport.read(path), layers={}, total={"luts": 2468}, pnr=None).write(path)
    assert main(["report", str(run_dir)]) == 0
    row = _table_row((run_dir / "report/report.md").read_text(), "Throughput comparison", "this design (FPGA)")
    assert "not measured MHz" not in row
    assert "--clock-mhz" in row and "--pnr" in row and "4,321 cycles/image" in row
    assert main(["report", str(run_dir), "--clock-mhz", "100"]) == 0
    row = _table_row((run_dir / "report/report.md").read_text(), "Throughput comparison", "this design (FPGA)")
    assert row.startswith("| this design (FPGA) | 23,143 | 100.0 MHz: assumed, not measured; 4,321 cycles/image")


def test_a_folder_that_is_not_a_run_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "fake.bnn").write_bytes(b"not a model")  # an unrelated file must not be taken for the run's model
    assert main(["report", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "not a bnn-hw run folder" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "report").exists()


def test_every_number_on_the_page_traces_to_a_stage_file(run_dir):
    from report_trace import check_page

    assert main(["report", str(run_dir), "--clock-mhz", "100", "--device", "ice40-hx8k"]) == 0
    page = run_dir / "report/report.html"
    assert check_page(page, run_dir) >= 40
    # the checker can fail: a number changed on the page no longer matches its source
    text = page.read_text()
    broken = text.replace(">2,468<", ">2,469<", 1)
    assert broken != text
    page.write_text(broken)
    import pytest

    with pytest.raises(AssertionError, match="total.luts"):
        check_page(page, run_dir)
    page.write_text(text.replace("<p>", "<p>42 ", 1))
    with pytest.raises(AssertionError, match="without a source"):
        check_page(page, run_dir)
