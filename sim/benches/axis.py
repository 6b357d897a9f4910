"""cocotb test of the AXI4-Stream top with cocotbext-axi's drivers (job from `sim.axis.run_axis`, path in BNN_SIM_JOB).

Per scenario: (AXI4-Lite: clear the counters, set FRAME_IMAGES and RESULT_FRAMING), send the frames through an
AxiStreamSource with a seeded random pause generator, receive through an AxiStreamSink with another, and compare
every result beat (TDATA, TUSER, TLAST) with the host's expectation; then read the counters back. The soft-reset
scenario stops the source in the middle of the stream (as a host would stop its DMA), writes CONTROL.soft_reset,
checks that what arrived before is a correct prefix and that a fresh batch afterwards comes back exactly.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

CONTROL, FRAME_IMAGES, RESULT_FRAMING = 0x008, 0x020, 0x024
STATUS, IMAGES_IN, IMAGES_OUT, FRAMING_ERRORS, BUSY_CYCLES = 0x00C, 0x010, 0x014, 0x018, 0x01C


def _pauses(rng: random.Random, p: float):
    while True:
        yield rng.random() < p


async def _collect(sink, rb: int, want: int, clk, timeout: int, beats: list):
    """Receive result beats until `want` of them have arrived (or `timeout` cycles pass)."""
    waited = 0
    while len(beats) < want:
        if sink.empty():
            if waited >= timeout:
                break
            await ClockCycles(clk, 16)
            waited += 16
            continue
        frame = sink.recv_nowait(compact=False)
        data = bytes(frame.tdata)
        n = len(data) // rb
        users = frame.tuser or [0] * len(data)
        for i in range(n):
            word = int.from_bytes(data[i * rb : (i + 1) * rb], "little")
            beats.append([word, int(users[i * rb]), int(i == n - 1)])
        waited = 0
    return beats


@cocotb.test()
async def axis_scenarios(dut) -> None:
    job = json.loads(Path(os.environ["BNN_SIM_JOB"]).read_text())
    rb = job["result_bytes"]
    Clock(dut.aclk, int(job["clock_ns"]), unit="ns").start(start_high=False)
    src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.aclk, dut.aresetn, reset_active_level=False)
    snk = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.aclk, dut.aresetn, reset_active_level=False)
    lite = None
    if job["axi_lite"]:
        lite = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi"), dut.aclk, dut.aresetn, reset_active_level=False)
    dut.aresetn.value = 0
    await ClockCycles(dut.aclk, 4)
    dut.aresetn.value = 1
    await ClockCycles(dut.aclk, 2)

    summary: dict = {"scenarios": [], "registers": {}}
    failures: list[str] = []
    if lite is not None:
        for off, want in job["constants"].items():
            got = await lite.read_dword(int(off))
            summary["registers"][off] = got
            if got != want:
                failures.append(f"register 0x{int(off):03x}: read 0x{got:08x}, expected 0x{want:08x}")
        if await lite.read_dword(0xFFC) != 0:
            failures.append("an unmapped register did not read 0")

    timeout = job["timeout_cycles"]
    for sc in job["scenarios"]:
        rng = random.Random(sc["seed"])
        src.set_pause_generator(_pauses(random.Random(rng.random()), sc["in_pause"]))
        snk.set_pause_generator(_pauses(random.Random(rng.random()), sc["out_pause"]))
        if lite is not None:
            await lite.write_dword(FRAME_IMAGES, sc["frame_images"])
            await lite.write_dword(RESULT_FRAMING, sc["result_framing"])
            await lite.write_dword(CONTROL, 2)  # clear counters
        frames = [bytes.fromhex(f) for f in sc["frames"]]
        expect = sc["expect"]
        got: list = []
        record = {"name": sc["name"], "expected": len(expect)}
        if sc["soft_reset_after"] is None:
            for f in frames:
                await src.send(AxiStreamFrame(f))
            await _collect(snk, rb, len(expect), dut.aclk, timeout, got)
            await ClockCycles(dut.aclk, 200)  # anything extra would show up now
            await _collect(snk, rb, len(expect) + 1, dut.aclk, 0, got)
            if got != expect:
                bad = [i for i, (g, e) in enumerate(zip(got, expect, strict=False)) if g != e]
                failures.append(
                    f"{sc['name']}: {len(got)} results for {len(expect)} expected; first differences at "
                    f"{bad[:5]}: got {[got[i] for i in bad[:3]]}, expected {[expect[i] for i in bad[:3]]}"
                )
            if lite is not None:
                errs = sum(e[1] for e in expect)
                regs = {
                    k: await lite.read_dword(k) for k in (STATUS, IMAGES_IN, IMAGES_OUT, FRAMING_ERRORS, BUSY_CYCLES)
                }
                record["registers"] = {f"0x{k:03x}": v for k, v in regs.items()}
                want = {STATUS: 2 * (errs > 0), IMAGES_IN: len(expect), IMAGES_OUT: len(expect), FRAMING_ERRORS: errs}
                for k, v in want.items():
                    if regs[k] != v:
                        failures.append(f"{sc['name']}: register 0x{k:03x} reads {regs[k]}, expected {v}")
                if regs[BUSY_CYCLES] <= 0:
                    failures.append(f"{sc['name']}: BUSY_CYCLES is 0 after {len(expect)} images")
        else:
            for f in frames:
                src.send_nowait(AxiStreamFrame(f))
            await _collect(snk, rb, sc["soft_reset_after"], dut.aclk, timeout, got)
            # Stop the "DMA" in the middle of the stream, then soft-reset the accelerator.
            src.clear()
            src.assert_reset(True)
            await lite.write_dword(CONTROL, 1)
            await ClockCycles(dut.aclk, 4)
            await _collect(snk, rb, len(expect) + 1, dut.aclk, 0, got)
            snk.clear()
            src.assert_reset(False)
            record["before_reset"] = len(got)
            if len(got) < sc["soft_reset_after"] or len(got) >= len(expect) or got != expect[: len(got)]:
                failures.append(
                    f"{sc['name']}: {len(got)} results before the reset are not a correct proper prefix of "
                    f"{len(expect)}"
                )
            regs = {k: await lite.read_dword(k) for k in (STATUS, IMAGES_IN, IMAGES_OUT)}
            if any(regs.values()):
                failures.append(f"{sc['name']}: counters/status not cleared by the soft reset: {regs}")
            after = [bytes.fromhex(f) for f in sc["after"]]
            expect_after = sc["expect_after"]
            got_after: list = []
            for f in after:
                await src.send(AxiStreamFrame(f))
            await _collect(snk, rb, len(expect_after), dut.aclk, timeout, got_after)
            await ClockCycles(dut.aclk, 200)
            await _collect(snk, rb, len(expect_after) + 1, dut.aclk, 0, got_after)
            record["after_reset"] = len(got_after)
            if got_after != expect_after:
                failures.append(
                    f"{sc['name']}: after the soft reset got {len(got_after)} results for {len(expect_after)}; "
                    f"first: {got_after[:2]} vs {expect_after[:2]}"
                )
            if (await lite.read_dword(IMAGES_OUT)) != len(expect_after):
                failures.append(f"{sc['name']}: IMAGES_OUT after the restart is not {len(expect_after)}")
        record["received"] = len(got)
        summary["scenarios"].append(record)
        await RisingEdge(dut.aclk)

    summary["failures"] = failures
    Path(job["out"]).write_text(json.dumps(summary, indent=1))
    assert not failures, "; ".join(failures[:5])
