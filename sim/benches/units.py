"""cocotb tests for standalone components (popcount, adder tree, layer engine, arg-max): generic drivers.

Two shapes of component, both driven from preloaded word lists (job JSON in BNN_SIM_JOB, from `bnn_hw.sim.units`):
- `pipeline`: a free-running pipeline with no handshake (e.g. the popcount): one input word per cycle on `in_port`,
  the `out_port` value recorded every cycle; the host lines them up using the component's declared latency.
- `stream`: valid/ready streams `<in>__{valid,ready,payload}` -> `<out>__...` with seeded random input gaps and
  output backpressure; every accepted output word is recorded in order.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from bnn_hw.sim.streams import StreamSink, StreamSource, reset, run_streams, word
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly


@cocotb.test()
async def unit(dut) -> None:
    job = json.loads(Path(os.environ["BNN_SIM_JOB"]).read_text())
    Clock(dut.clk, int(job["clock_ns"]), unit="ns").start(start_high=False)
    out: dict = {}
    if job["kind"] == "pipeline":
        port_in, port_out = getattr(dut, job["in_port"]), getattr(dut, job["out_port"])
        await reset(dut.clk, dut.rst)
        seen = []
        words = job["words"] + [0] * int(job["flush"])
        for w in words:
            await FallingEdge(dut.clk)
            port_in.value = w
            await ReadOnly()
            seen.append(word(port_out))  # the output for inputs driven `latency` cycles ago
        await FallingEdge(dut.clk)
        out["seen"] = seen
    else:
        rng = random.Random(job["seed"])
        src = StreamSource(
            getattr(dut, f"{job['in_port']}__valid"),
            getattr(dut, f"{job['in_port']}__ready"),
            getattr(dut, f"{job['in_port']}__payload"),
            gap=job["gap"],
            rng=random.Random(rng.random()),
        )
        snk = StreamSink(
            getattr(dut, f"{job['out_port']}__valid"),
            getattr(dut, f"{job['out_port']}__ready"),
            getattr(dut, f"{job['out_port']}__payload"),
            stall=job["stall"],
            rng=random.Random(rng.random()),
        )
        await reset(dut.clk, dut.rst, idle=[src, snk])
        src.load(job["words"])
        n = int(job["expect"])
        cycles = await run_streams(dut.clk, [src], [snk], lambda: len(snk.received) >= n, int(job["max_cycles"]))
        cycles = await run_streams(dut.clk, [src], [snk], lambda: False, int(job["drain"]), cycles)
        out["received"] = snk.received
        out["cycles"] = snk.cycles
        out["accepted"] = src.index
    Path(job["out"]).write_text(json.dumps(out))
