"""Host side of the AXI bench (sim.benches.axis): the framing reference, scenarios, and running them on a build.

The generated AXI4-Stream top is driven by cocotbext-axi's AxiStreamSource / AxiStreamSink / AxiLiteMaster (third
party, so the bus protocol is not checked by our own drivers). What the top must return is computed here: the
framing rules of rtl/axis_top.py, written again independently in Python (`frame_images_of`), decide which images
the accelerator sees (an image cut short by TLAST is completed with zero pixels) and which results carry the error
flag; the golden model gives every result word. Every received beat is compared bit for bit: TDATA, TUSER, TLAST.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bnn_hw.errors import BnnError
from bnn_hw.model import BnnModel

CONTROL, FRAME_IMAGES, RESULT_FRAMING = 0x008, 0x020, 0x024
IMAGES_IN, IMAGES_OUT, FRAMING_ERRORS, BUSY_CYCLES, STATUS = 0x010, 0x014, 0x018, 0x01C, 0x00C


@dataclass
class Completed:
    """One image as the accelerator sees it after framing: pixel bytes, framing error, frame end."""

    data: bytes
    error: bool
    end: bool


def frame_images_of(
    frames: list[bytes], pixels_per_beat: int, beats_per_image: int, frame_images: int
) -> list[Completed]:
    """The images a stream of frames (each a whole number of beats, TLAST on its last) turns into, per docs/rtl.md:
    the beat counter is authoritative; an early TLAST ends an image (completed with zero beats, flagged); with
    frame_images = k > 0 a TLAST missing on the k-th image's last beat, or present on an earlier image's, flags
    that image. A partial image at the end of the stream is still waiting and yields nothing."""
    p, bpi = pixels_per_beat, beats_per_image
    out: list[Completed] = []
    cur: list[bytes] = []
    in_frame = 0
    for frame in frames:
        if len(frame) == 0 or len(frame) % p:
            raise BnnError(f"a test frame of {len(frame)} bytes is not whole {p}-byte beats")
        beats = [frame[i : i + p] for i in range(0, len(frame), p)]
        for j, data in enumerate(beats):
            tlast = j == len(beats) - 1
            cur.append(data)
            last_beat = len(cur) == bpi
            if tlast and not last_beat:
                out.append(Completed(b"".join(cur) + bytes(p * (bpi - len(cur))), True, True))
                cur, in_frame = [], 0
            elif last_beat:
                expected_end = frame_images > 0 and in_frame == frame_images - 1
                err = frame_images > 0 and tlast != expected_end
                end = tlast or expected_end
                out.append(Completed(b"".join(cur), err, end))
                cur = []
                in_frame = 0 if end else in_frame + 1
    return out


def image_bytes(images: np.ndarray, pixels_per_beat: int, beats_per_image: int) -> list[bytes]:
    """uint8 (N, H, W, C) -> each image's beats as bytes (spare slots of the last beat zero)."""
    flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1)
    slots = pixels_per_beat * beats_per_image
    padded = np.zeros((len(flat), slots), dtype=np.uint8)
    padded[:, : flat.shape[1]] = flat
    return [row.tobytes() for row in padded]


def result_words(model: BnnModel, completed: list[Completed], manifest: dict[str, Any]) -> list[int]:
    from bnn_hw.golden import run as golden

    if not completed:
        return []
    h, w, c = model.input_shape
    n = h * w * c
    images = np.stack([np.frombuffer(x.data[:n], dtype=np.uint8) for x in completed]).reshape(-1, h, w, c)
    ref = golden(model, images)
    cb, sb = manifest["class_bits"], manifest["score_bits"]
    words = []
    for cls, scores in zip(ref.classes, ref.scores, strict=True):
        word = int(cls)
        for k, s in enumerate(scores):
            word |= (int(s) & ((1 << sb) - 1)) << (cb + k * sb)
        words.append(word)
    return words


@dataclass
class Scenario:
    """Frames sent back to back with pause generators on both streams; what must come back."""

    name: str
    frames: list[bytes]
    frame_images: int = 0
    result_framing: str = "image"
    in_pause: float = 0.3
    out_pause: float = 0.3
    soft_reset_after: int | None = None  # results received before the soft reset (then the rest is dropped)
    after: list[bytes] = field(default_factory=list)  # frames sent after the soft reset
    registers: dict[int, int] = field(default_factory=dict)  # expected AXI4-Lite reads after the scenario

    def expected(self, model: BnnModel, manifest: dict[str, Any], frames: list[bytes]) -> list[list[int]]:
        done = frame_images_of(frames, manifest["pixels_per_beat"], manifest["beats_per_image"], self.frame_images)
        words = result_words(model, done, manifest)
        return [
            [w, int(c.error), 1 if self.result_framing == "image" else int(c.end)]
            for w, c in zip(words, done, strict=True)
        ]


def standard_scenarios(
    model: BnnModel, manifest: dict[str, Any], n_images: int = 12, seed: int = 1, *, axi_lite: bool
) -> list[Scenario]:
    """Batch frame, one frame per image, injected framing errors (both kinds when AXI4-Lite can set the frame
    size), batch result framing, and a soft reset mid-stream followed by a clean batch (AXI4-Lite only)."""
    rng = np.random.default_rng(seed)
    h, w, c = model.input_shape
    p, bpi = manifest["pixels_per_beat"], manifest["beats_per_image"]
    imgs = image_bytes(rng.integers(0, 256, size=(n_images, h, w, c), dtype=np.uint8), p, bpi)
    out = [
        Scenario("batch", [b"".join(imgs)]),
        Scenario("per_image", list(imgs), in_pause=0.5, out_pause=0.1),
    ]
    cut = max(1, bpi // 2) * p if bpi > 1 else None
    errs = [imgs[0]]
    if cut is not None:
        errs += [imgs[1][:cut], imgs[2] + imgs[3][:p]]  # early TLAST inside an image, twice
    errs += [b"".join(imgs[4:8])]
    out.append(Scenario("early_tlast", errs))
    if axi_lite:
        k2 = [imgs[0] + imgs[1], imgs[2] + imgs[3] + imgs[4], imgs[5], imgs[6] + imgs[7]]  # missing / early TLAST
        out.append(Scenario("frame_of_2", k2, frame_images=2, result_framing="frame"))
        one = [imgs[8] + imgs[9], imgs[10] + imgs[11][:p], imgs[0]]
        out.append(Scenario("frame_of_1", one, frame_images=1, result_framing="frame"))
        out.append(
            Scenario(
                "soft_reset",
                [imgs[i] for i in range(n_images)],
                soft_reset_after=3,
                after=[b"".join(imgs[::-1][:6])],
            )
        )
    return out


def run_axis(
    build_dir: Path,
    model: BnnModel,
    scenarios: list[Scenario],
    work: Path,
    *,
    seed: int = 1,
    simulator: str = "verilator",
    build_subdir: str | None = None,
) -> dict[str, Any]:
    """Run `scenarios` on the AXI build in `build_dir`; returns the bench's summary (raises SimulationFailed on any
    mismatch, with the log tail)."""
    from bnn_hw.sim.manifest import read_manifest
    from bnn_hw.sim.runner import CLOCK_NS, Bench

    typed, _ = read_manifest(build_dir)
    if typed.interface != "axis":
        raise BnnError(f"{build_dir} is not an AXI4-Stream build: regenerate it with `bnn-hw rtl ... --interface axis`")
    manifest = typed.to_json()  # the plain form the expected-result helpers and the bench job take
    lite = typed.axi_lite
    work = Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    jobs = []
    for sc in scenarios:
        if not lite and (sc.frame_images != manifest["axis"]["frame_images"] or sc.soft_reset_after is not None):
            raise BnnError(f"scenario {sc.name} needs the AXI4-Lite port (--axi-lite)")
        jobs.append(
            {
                "name": sc.name,
                "frames": [f.hex() for f in sc.frames],
                "frame_images": sc.frame_images,
                "result_framing": int(sc.result_framing == "frame"),
                "in_pause": sc.in_pause,
                "out_pause": sc.out_pause,
                "seed": rnd.getrandbits(32),
                "expect": sc.expected(model, manifest, sc.frames),
                "soft_reset_after": sc.soft_reset_after,
                "after": [f.hex() for f in sc.after],
                "expect_after": sc.expected(model, manifest, sc.after),
                "registers": {str(k): v for k, v in sc.registers.items()},
            }
        )
    out = work / "axis_summary.json"
    out.unlink(missing_ok=True)
    consts = {str(r["offset"]): r["value"] for r in (lite or {}).get("registers", []) if "value" in r}
    job = {
        "clock_ns": CLOCK_NS,
        "axi_lite": bool(lite),
        "result_bytes": manifest["axis"]["m_axis_tdata_bits"] // 8,
        "constants": consts,
        "timeout_cycles": 40 * (manifest["predicted"]["latency_cycles"] + manifest["predicted"]["cycles_per_image"])
        + 2000,
        "scenarios": jobs,
        "out": str(out),
    }
    job_file = work / "axis_job.json"
    job_file.write_text(json.dumps(job))
    sources = [Path(build_dir).resolve() / v for v in manifest["verilog"]]
    # The same build as the Python stream driver's (`build_py_<sim>` under the same work folder) can be shared.
    sub = build_subdir or f"build_{simulator}"
    bench = Bench(simulator, sources, manifest["top"], work / sub)
    bench.build(log_file=work / f"{sub}.log")
    bench.run(
        "bnn_hw.sim.benches.axis",
        env={"BNN_SIM_JOB": str(job_file)},
        log_file=work / "axis_sim.log",
        test_dir=work / "run",
    )
    return json.loads(out.read_text())
