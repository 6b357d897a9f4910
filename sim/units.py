"""Host side of the component benches (sim.benches.units): convert an Amaranth component, simulate, return words.

Components are converted with Amaranth's own Verilog back end here (rtl/ stays untouched), so every component rtl/
builds the network from can be checked standalone on both simulators against the golden model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bnn_hw.sim.runner import CLOCK_NS, Bench
from bnn_hw.sim.tools import Simulator, find_simulator


def to_verilog(component: Any, name: str, out_dir: Path) -> Path:
    """Write `component` as Verilog module `name` (ports clk, rst and its signature)."""
    from amaranth.back import verilog

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.v"
    text = verilog.convert(component, name=name, emit_src=False)
    if not path.is_file() or path.read_text() != text:  # keep the mtime (and the simulator build) when unchanged
        path.write_text(text)
    return path


def _run(source: Path, top: str, job: dict[str, Any], simulator: str | Simulator, work: Path) -> dict[str, Any]:
    sim = simulator if isinstance(simulator, Simulator) else find_simulator(simulator)
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    out = work / f"{top}.{job['kind']}.json"
    out.unlink(missing_ok=True)
    job = {**job, "clock_ns": CLOCK_NS, "out": str(out)}
    job_file = work / f"{top}.job.json"
    job_file.write_text(json.dumps(job))
    bench = Bench(sim, [source], top, work / f"build_{top}_{sim.name}")
    bench.build(log_file=work / f"build_{top}_{sim.name}.log")
    bench.run(
        "bnn_hw.sim.benches.units",
        env={"BNN_SIM_JOB": str(job_file)},
        log_file=work / f"sim_{top}_{sim.name}.log",
        test_dir=work / f"run_{top}_{sim.name}",
    )
    return json.loads(out.read_text())


def run_pipeline(
    source: Path,
    top: str,
    in_port: str,
    out_port: str,
    words: list[int],
    latency: int,
    simulator: str | Simulator,
    work: Path,
) -> list[int | None]:
    """Drive one word per cycle into a free-running pipeline; returns the output for each input word (None for x)."""
    res = _run(
        source,
        top,
        {"kind": "pipeline", "in_port": in_port, "out_port": out_port, "words": words, "flush": latency + 1},
        simulator,
        work,
    )
    seen = res["seen"]
    return [seen[i + latency] for i in range(len(words))]


def run_stream(
    source: Path,
    top: str,
    words: list[int],
    expect: int,
    simulator: str | Simulator,
    work: Path,
    *,
    in_port: str = "i",
    out_port: str = "o",
    gap: float = 0.3,
    stall: float = 0.3,
    seed: int = 1,
    max_cycles: int = 200_000,
    drain: int = 200,
) -> dict[str, Any]:
    """Stream `words` in with random gaps and take `expect` words out under random backpressure (then `drain`
    more cycles, so extra words show up). Returns {"received": [...], "cycles": [...], "accepted": n}."""
    return _run(
        source,
        top,
        {
            "kind": "stream",
            "in_port": in_port,
            "out_port": out_port,
            "words": words,
            "expect": expect,
            "gap": gap,
            "stall": stall,
            "seed": seed,
            "max_cycles": max_cycles,
            "drain": drain,
        },
        simulator,
        work,
    )
