"""`bnn-hw report`: every section present, numbers traceable to the JSON files they came from."""

from bnn_hw.cli import main


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
