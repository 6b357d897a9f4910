"""cocotb testbenches that run generated Verilog and check it bit for bit against the reference.

The public API, the same call `bnn-hw sim` makes (cocotb is imported on first use):

- `simulate(build, images=200, simulator="verilator")` -- stream test images through the Verilog, compare every
  result with the reference model, measure cycles per image and latency; returns the SimReport (sim_report.json).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bnn_hw.artifacts import SimReport

__all__ = ["simulate"]


def simulate(build: str | Path, **options: Any) -> SimReport:
    """Simulate a folder written by `bnn_hw.rtl.generate_rtl` (`bnn-hw sim`); returns the report it writes there.

    `options` are `bnn-hw sim`'s: images (0 = the whole test split), simulator, model, dataset, data_dir,
    random_images, reference, seed, gap, stall, driver, no_reset_check, waves, work_dir. A mismatch does not raise:
    `report.passed` is False and `report.mismatches` shows the first ones."""
    from bnn_hw.options import run_command

    run_command("bnn_hw.sim.commands.sim", "sim", build_dir=build, **options)
    return SimReport.read(Path(build) / SimReport.FILE)
