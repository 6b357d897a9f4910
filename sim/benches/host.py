"""cocotb test serving `sim.host.SimBackend`: requests arrive on a Unix socket (one JSON object per line) and are
executed with cocotbext-axi drivers; simulated time stands still while the test waits for the next request."""

from __future__ import annotations

import json
import os
import random
import socket

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource


def _pauses(rng: random.Random, p: float):
    while True:
        yield rng.random() < p


@cocotb.test()
async def serve_host(dut) -> None:
    cfg = json.loads(os.environ["BNN_HOST_CONFIG"])
    Clock(dut.aclk, int(cfg["clock_ns"]), unit="ns").start(start_high=False)
    src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.aclk, dut.aresetn, reset_active_level=False)
    snk = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.aclk, dut.aresetn, reset_active_level=False)
    lite = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi"), dut.aclk, dut.aresetn, reset_active_level=False)
    rng = random.Random(cfg["seed"])
    if cfg["in_pause"] > 0:
        src.set_pause_generator(_pauses(random.Random(rng.random()), cfg["in_pause"]))
    if cfg["out_pause"] > 0:
        snk.set_pause_generator(_pauses(random.Random(rng.random()), cfg["out_pause"]))
    dut.aresetn.value = 0
    await ClockCycles(dut.aclk, 4)
    dut.aresetn.value = 1
    await ClockCycles(dut.aclk, 2)

    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(os.environ["BNN_HOST_SOCKET"])
    f = conn.makefile("rw")
    while True:
        line = f.readline()  # blocks the simulator: no time passes between requests
        if not line:
            break
        req = json.loads(line)
        op = req.get("op")
        if op == "quit":
            f.write("{}\n")
            f.flush()
            break
        if op == "read":
            reply = {"value": await lite.read_dword(int(req["addr"]))}
        elif op == "write":
            await lite.write_dword(int(req["addr"]), int(req["value"]) & 0xFFFFFFFF)
            reply = {}
        elif op == "transfer":
            await src.send(AxiStreamFrame(bytes.fromhex(req["frame"])))
            want, data, idle = int(req["result_bytes"]), bytearray(), 0
            while len(data) < want and idle < cfg["timeout_cycles"]:
                if snk.empty():
                    await ClockCycles(dut.aclk, 8)
                    idle += 8
                    continue
                data += bytes(snk.recv_nowait().tdata)
                idle = 0
            reply = {"data": bytes(data[:want]).hex()}
            if len(data) < want:
                reply = {"error": f"{len(data)} of {want} result bytes after {idle} idle cycles"}
        else:
            reply = {"error": f"unknown request {op!r}"}
        f.write(json.dumps(reply) + "\n")
        f.flush()
    conn.close()
