"""The flow layer: orchestration above the spokes (build, demo, sweep, report), calling their Python APIs.

- `run_build(config)` -- `bnn-hw build CONFIG`: the whole chain from one configuration file into one run folder.
- `run_sweep(model, out, pe=[...], simd=[...])` -- `bnn-hw sweep`: many foldings synthesized; returns sweep.json.
- `write_report(run_dir)` -- `bnn-hw report`: the HTML and Markdown pages of a run; returns the HTML path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bnn_hw.artifacts import Sweep

__all__ = ["run_build", "run_sweep", "write_report"]


def run_build(config: str | Path | dict[str, Any], out: str | Path | None = None) -> Path:
    """Run the chain a build configuration describes (`bnn-hw build`); returns the run folder.

    `config` is a YAML/JSON file or the same content as a dict (see docs/build.md); `out` overrides its `out`."""
    from bnn_hw.flow.build import build

    return build(config, out=out)


def run_sweep(model: str | Path, out: str | Path, **options: Any) -> Sweep:
    """Generate and synthesize every PE x SIMD pair (`bnn-hw sweep`); returns the sweep.json it writes in `out`.

    `options` are `bnn-hw sweep`'s: pe and simd (lists), target, flow, jobs, timeout, simulate, random_images,
    clock_mhz, redo."""
    from bnn_hw.options import run_command

    for key in ("pe", "simd"):
        if isinstance(options.get(key), int):
            options[key] = [options[key]]
        if options.get(key) is not None:
            options[key] = sorted(set(options[key]))
    run_command("bnn_hw.flow.sweep", "sweep", model=model, out=out, **options)
    return Sweep.read(Path(out) / Sweep.FILE)


def write_report(run_dir: str | Path, out: str | Path | None = None, *, clock_mhz: float | None = None) -> Path:
    """Write report.html and report.md of a run folder (`bnn-hw report`); returns the HTML page's path."""
    from bnn_hw.options import run_command

    run_command("bnn_hw.flow.report", "report", run_dir=run_dir, out=out, clock_mhz=clock_mhz)
    return Path(out or Path(run_dir) / "report") / "report.html"
