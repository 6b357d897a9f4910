"""cocotb test for the fast network harness (sim/hdl/bnn_tb.v): phases of streamed images, checked in Python.

Loaded by the simulator (COCOTB_TEST_MODULES=sim.benches.network); the job comes from the JSON file named by the
environment variable BNN_SIM_JOB (written by `bnn_hw.sim.network`). Python wakes up only every few thousand cycles: the
harness streams beats, applies random gaps and backpressure and records results; here each phase is started, waited
for, dumped and scored. Phases run back to back in one simulator process, separated by a synchronous reset; a phase
with `abort_after_beats` is cut off by that reset mid-stream, which is how the reset-and-restart check works.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from bnn_hw.sim.payload import ResultFormat, read_hex_words
from bnn_hw.sim.scoreboard import Scoreboard
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, Timer

DUMPS = ("results", "result_cycles", "first_cycles", "last_cycles")


def _job() -> dict:
    path = os.environ.get("BNN_SIM_JOB")
    if not path:
        raise RuntimeError("BNN_SIM_JOB is not set: run this bench through sim.network, not directly")
    return json.loads(Path(path).read_text())


async def _cycles(dut, n: int, period: int) -> None:
    """Let n clock cycles pass with a single simulator callback (we sit at a falling edge before and after)."""
    if n > 0:
        await Timer(n * period, unit="ns")


async def _reset(dut, period: int, cycles: int = 4) -> None:
    dut.start.value = 0
    dut.dump.value = 0
    dut.rst.value = 1
    await _cycles(dut, cycles, period)
    dut.rst.value = 0


def _as_int(handle) -> int | None:
    try:
        return int(handle.value)
    except ValueError:  # x or z bits
        return None


@cocotb.test()
async def network_phases(dut) -> None:
    """Run every phase of the job; fail if any phase is not bit-exact and complete."""
    job = _job()
    period = int(job["clock_ns"])
    out_dir = Path(job["out_dir"])
    fmt = ResultFormat(**job["result_format"])
    expected = np.load(job["expected"])
    progress = Path(job["progress_file"]) if job.get("progress_file") else None
    every = int(job.get("progress_every", 4096))
    Clock(dut.clk, period, unit="ns").start(start_high=False)
    await FallingEdge(dut.clk)
    failures: list[str] = []
    summaries = []
    base = int(job.get("image_base", 0))  # the number of the first image in the beat memory and `expected`
    for phase in job["phases"]:
        name = phase["name"]
        lo = phase["first_image"] - base
        dut.first_image.value = lo  # configuration first: the reset seeds the generators
        dut.n_images.value = phase["n_images"]
        dut.gap_prob.value = phase["gap_prob"]
        dut.stall_prob.value = phase["stall_prob"]
        dut.seed.value = phase["seed"]
        await _reset(dut, period)
        await _cycles(dut, 1, period)
        dut.start.value = 1
        abort = phase.get("abort_after_beats")
        limit = int(phase["max_cycles"])
        window = int(job.get("stall_window", 1 << 30))  # cycles without any handshake that count as a hang
        waited = 0
        stalled = False
        watch = _HangWatch(dut, window)
        if abort is not None:
            # Short phase: watch the accepted-beat count every cycle and reset right after the target beat.
            while waited < limit and (_as_int(dut.beats_sent) or 0) < abort:
                await _cycles(dut, 1, period)
                waited += 1
                if watch.hung(waited):
                    stalled = True
                    break
        while abort is None and waited < limit:
            step = min(every, limit - waited)
            await _cycles(dut, step, period)
            waited += step
            if progress is not None and phase.get("report_progress"):
                progress.write_text(f"{name} {_as_int(dut.n_results) or 0} {phase['n_images']}\n")
            if _as_int(dut.done) == 1:
                break
            if watch.hung(waited):
                stalled = True
                break
        timed_out = _as_int(dut.done) != 1 if abort is None else (_as_int(dut.beats_sent) or 0) < abort
        if abort is None and not timed_out:
            await _cycles(dut, int(phase["drain_cycles"]), period)  # anything after the last result is an extra
        cycles = _as_int(dut.cycle)
        n_results = _as_int(dut.n_results) or 0
        beats_sent = _as_int(dut.beats_sent) or 0
        dut.start.value = 0
        if abort is not None:
            dut.rst.value = 1  # reset now, with the stream mid-image (the result memories survive reset)
        dut.dump.value = 1
        await _cycles(dut, 1, period)
        dut.dump.value = 0
        slots = int(job["result_slots"])
        kept = min(n_results, slots)
        files = {}
        for what in DUMPS:
            src = Path(job["test_dir"]) / f"{what}.hex"
            dst = out_dir / f"{name}.{what}.hex"
            os.replace(src, dst)
            files[what] = dst
        words = read_hex_words(files["results"], kept) if kept else []
        ok = [w is not None for w in words]
        classes, scores = fmt.decode([w or 0 for w in words])
        sb = Scoreboard(
            expected["classes"][lo : lo + phase["n_images"]],
            expected["scores"][lo : lo + phase["n_images"]],
            first_index=phase["first_image"],
        )
        sb.push_many(classes, scores, ok)
        mismatches = sb.finish()
        if abort is not None:
            # Cut off by reset: only what did arrive is checked (a correct prefix), the rest is not lost.
            mismatches = [m for m in mismatches if m.kind != "lost"]
        if n_results > slots:
            mismatches.append(_overflow(n_results, slots))
        summary = {
            "name": name,
            "first_image": phase["first_image"],
            "n_images": phase["n_images"],
            "results": n_results,
            "beats_sent": beats_sent,
            "cycles": cycles,
            "timed_out": timed_out,
            "hung": stalled,
            "aborted": abort is not None,
            "matched": sb.matched,
            "mismatch_count": len(mismatches),
            "mismatches": [m.as_dict() for m in mismatches[:20]],
            "result_words": [None if w is None else format(w, "x") for w in words],
            "result_cycles": _ints(files["result_cycles"], kept),
            "first_beat_cycles": _ints(files["first_cycles"], min(phase["n_images"], int(job["image_slots"]))),
            "last_beat_cycles": _ints(files["last_cycles"], min(phase["n_images"], int(job["image_slots"]))),
        }
        summaries.append(summary)
        if timed_out:
            why = f"no handshake for {window} cycles (hang)" if stalled else f"not done after {limit} cycles"
            failures.append(f"{name}: {why}, with {n_results} of {phase['n_images']} results")
        if mismatches:
            failures.append(f"{name}: {len(mismatches)} mismatches, first: {mismatches[0].detail}")
        dut._log.info("phase %s: %d results, %d mismatches, %s cycles", name, n_results, len(mismatches), cycles)
    (out_dir / "phases.json").write_text(json.dumps(summaries))
    assert not failures, "; ".join(failures)


class _HangWatch:
    """Notices when neither an input beat nor a result has been accepted for `window` cycles."""

    def __init__(self, dut, window: int) -> None:
        self.dut, self.window = dut, window
        self.last_change, self.last_seen = 0, (0, 0)

    def hung(self, now_cycle: int) -> bool:
        seen = (_as_int(self.dut.beats_sent) or 0, _as_int(self.dut.n_results) or 0)
        if seen != self.last_seen:
            self.last_seen, self.last_change = seen, now_cycle
        return now_cycle - self.last_change > self.window


def _ints(path: Path, count: int) -> list[int]:
    if count == 0:
        return []
    return [w if w is not None else -1 for w in read_hex_words(path, count)]


def _overflow(n_results: int, slots: int):
    from bnn_hw.sim.scoreboard import Mismatch

    return Mismatch(
        slots,
        "extra",
        f"{n_results} results arrived, more than the harness keeps ({slots}); the DUT emitted many extra results",
    )
