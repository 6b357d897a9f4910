"""cocotb test that drives the generated `bnn_top` directly from Python, beat by beat (no HDL harness).

Slower than the harness (two simulator callbacks per cycle) but independent of it: the same images, the same
scoreboard, driven by `bnn_hw.sim.streams` with seeded random gaps and backpressure, and a reset in the middle of the
stream followed by a clean restart. The job (JSON, path in BNN_SIM_JOB) is written by `sim.network.run_python`.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
import numpy as np
from bnn_hw.sim.payload import ResultFormat
from bnn_hw.sim.scoreboard import Scoreboard
from bnn_hw.sim.streams import StreamSink, StreamSource, TapMonitor, reset, run_streams
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge


@cocotb.test()
async def network_python_driven(dut) -> None:
    job = json.loads(Path(os.environ["BNN_SIM_JOB"]).read_text())
    fmt = ResultFormat(**job["result_format"])
    data = np.load(job["data"])
    beats, per_image = data["beats"], int(job["beats_per_image"])
    rng = random.Random(job["seed"])
    axis = job.get("interface") == "axis"  # the AXI4-Stream top: Xilinx names, active-low reset, TLAST per image
    clk = dut.aclk if axis else dut.clk
    Clock(clk, int(job["clock_ns"]), unit="ns").start(start_high=False)
    if axis:
        src = StreamSource(
            dut.s_axis_tvalid,
            dut.s_axis_tready,
            dut.s_axis_tdata,
            gap=job["gap"],
            rng=random.Random(rng.random()),
            last=dut.s_axis_tlast,
            last_every=per_image,
        )
        snk = StreamSink(
            dut.m_axis_tvalid,
            dut.m_axis_tready,
            dut.m_axis_tdata,
            stall=job["stall"],
            rng=random.Random(rng.random()),
            flags=(dut.m_axis_tuser, dut.m_axis_tlast),
        )
        if job.get("axi_lite"):
            for name in ("awvalid", "wvalid", "arvalid"):
                getattr(dut, f"s_axi_{name}").value = 0
            dut.s_axi_bready.value = 1
            dut.s_axi_rready.value = 1
        rst, active = dut.aresetn, 0
    else:
        src = StreamSource(
            dut.pixels__valid, dut.pixels__ready, dut.pixels__payload, gap=job["gap"], rng=random.Random(rng.random())
        )
        snk = StreamSink(
            dut.result__valid,
            dut.result__ready,
            dut.result__payload,
            stall=job["stall"],
            rng=random.Random(rng.random()),
        )
        rst, active = dut.rst, 1
    taps = {t["layer"]: TapMonitor(getattr(dut, t["valid"]), getattr(dut, t["payload"])) for t in job["taps"]}
    summaries, failures = [], []
    cycle = 0
    for phase in job["phases"]:
        first, n = phase["first_image"], phase["n_images"]
        await reset(clk, rst, idle=[src, snk], active=active)
        for t in taps.values():
            t.words = []
        sinks = [snk, *taps.values()]
        words = [int.from_bytes(row.tobytes(), "little") for row in beats[first * per_image : (first + n) * per_image]]
        src.load(words)
        snk.received, snk.cycles = [], []
        start = cycle
        if phase.get("abort_after_beats") is not None:
            cycle = await run_streams(
                clk,
                [src],
                sinks,
                lambda k=phase["abort_after_beats"]: len(src.accepted_cycles) >= k,
                phase["max_cycles"],
                cycle,
            )
        else:
            cycle = await run_streams(clk, [src], sinks, lambda n=n: len(snk.received) >= n, phase["max_cycles"], cycle)
            cycle = await run_streams(clk, [src], sinks, lambda: False, phase["drain_cycles"], cycle)
        ok = [w is not None for w in snk.received]
        classes, scores = fmt.decode([w or 0 for w in snk.received])
        sb = Scoreboard(data["classes"][first : first + n], data["scores"][first : first + n], first_index=first)
        sb.push_many(classes, scores, ok)
        mismatches = sb.finish()
        if phase.get("abort_after_beats") is not None:
            mismatches = [m for m in mismatches if m.kind != "lost"]
        summaries.append(
            {
                "name": phase["name"],
                "first_image": first,
                "n_images": n,
                "results": len(snk.received),
                "cycles": cycle - start,
                "matched": sb.matched,
                "mismatch_count": len(mismatches),
                "mismatches": [m.as_dict() for m in mismatches[:20]],
                "result_cycles": [c - start for c in snk.cycles],
                "first_beat_cycles": [c - start for c in src.accepted_cycles[::per_image]],
                "taps": {str(k): [None if w is None else format(w, "x") for w in t.words] for k, t in taps.items()},
            }
        )
        if mismatches:
            failures.append(f"{phase['name']}: {len(mismatches)} mismatches, first: {mismatches[0].detail}")
    await FallingEdge(clk)
    Path(job["out"]).write_text(json.dumps(summaries))
    assert not failures, "; ".join(failures)
