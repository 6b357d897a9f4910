"""Amaranth HDL generators of the XNOR-popcount PE-array accelerator; reads the bnn_hw model form.

The public API, each function the same call its `bnn-hw` subcommand makes (amaranth is imported on first use):

- `generate_rtl(model, out, pe=..., simd=...)` -- `bnn-hw rtl`: bnn_top.v and manifest.json; returns the manifest.
- `synthesize(build, target="xilinx")` -- `bnn-hw synth`: Yosys resources per layer (+ nextpnr Fmax with
  `pnr=True`); returns the synthesis report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bnn_hw.artifacts import Manifest, SynthReport

__all__ = ["generate_rtl", "synthesize"]


def generate_rtl(model: str | Path, out: str | Path, **options: Any) -> Manifest:
    """Generate the Verilog top for `model` into `out` (`bnn-hw rtl`) and return its manifest.

    `options` are `bnn-hw rtl`'s: pe and simd (one value fitted to every layer, or a list with one exact value per
    layer), auto with target_cycles or lut_budget, pixels_per_beat, weights ("auto", "block" or "logic"),
    debug_taps, interface ("bare" or "axis"), axi_lite, frame_images, result_framing, quiet."""
    from bnn_hw.options import run_command

    run_command("bnn_hw.rtl.commands.rtl", "rtl", model=model, out=out, **options)
    return Manifest.read(Path(out) / Manifest.FILE)


def synthesize(build: str | Path, target: str = "xilinx", **options: Any) -> SynthReport:
    """Synthesize a folder written by `generate_rtl` with Yosys (`bnn-hw synth`) and return the report it writes.

    `options` are `bnn-hw synth`'s: flow, pnr (ecp5/ice40: place and route with nextpnr, Fmax), device, package,
    speed, freq, io, seed, router, pnr_timeout, timeout, out (default BUILD/synth_TARGET.json), quiet."""
    from bnn_hw.options import run_command

    out = options.get("out", options.get("output")) or Path(build) / f"synth_{target}.json"
    options.pop("output", None)
    options["out"] = out
    run_command("bnn_hw.rtl.commands.synth", "synth", build=build, target=target, **options)
    return SynthReport.read(out)
