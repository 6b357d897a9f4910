"""Host side of the network bench: prepare images and the reference, run the harness, turn results into metrics.

The simulation itself is `sim.benches.network` running inside the simulator around `sim/hdl/bnn_tb.v`; this module
writes its inputs (beat memory, expected results, the phase list), runs it through `sim.runner.Bench`, polls its
progress file for a progress bar, and computes cycles per image, latency and utilization from the cycle stamps.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from bnn_hw.sim.payload import PixelStream, ResultFormat
from bnn_hw.sim.runner import CLOCK_NS, Bench, SimulationFailed
from bnn_hw.sim.tools import Simulator, find_simulator

from bnn_hw.artifacts import Manifest
from bnn_hw.errors import BnnError

HARNESS = Path(__file__).parent / "hdl" / "bnn_tb.v"
TOP = "bnn_tb"


@dataclass
class Design:
    """What the bench needs to know about a generated top: its sources and stream layouts (from manifest.json)."""

    sources: list[Path]
    pixels: PixelStream
    result: ResultFormat
    model_hash: str | None = None
    cycles_per_image: int | None = None  # predicted steady-state initiation interval
    latency: int | None = None  # predicted cycles, first beat accepted -> result valid
    layers: list[dict[str, Any]] = field(default_factory=list)
    manifest: Manifest | None = None  # None for a hand-built Design (bench tests)


@dataclass
class Phase:
    name: str
    first_image: int
    n_images: int
    gap: float = 0.0  # probability that the harness withholds `valid` in a cycle
    stall: float = 0.0  # probability that it withholds `ready`
    seed: int = 1
    abort_after_beats: int | None = None  # reset after this many accepted beats
    report_progress: bool = False


def axis_tdata_bits(design: Design) -> int:
    """m_axis_tdata width of an AXI4-Stream build (the result padded to whole bytes); the result width otherwise."""
    axis = design.manifest.axis if design.manifest is not None else None
    return int(axis["m_axis_tdata_bits"]) if axis is not None else design.result.width


def harness_defines(design: Design) -> dict[str, object]:
    """Verilog defines that make sim/hdl/bnn_tb.v instantiate the AXI4-Stream top instead of the bare one."""
    if design.manifest is None or design.manifest.interface != "axis":
        return {}
    return {"BNN_AXIS": 1, **({"BNN_AXI_LITE": 1} if design.manifest.axi_lite else {})}


def check_harness_framing(design: Design) -> None:
    """The stream benches send one frame per image: an AXI build must accept that (frame_images 0 or 1)."""
    axis = design.manifest.axis if design.manifest is not None else None
    if axis is not None and axis["frame_images"] > 1:
        raise BnnError(
            f"this AXI build expects {axis['frame_images']} images per frame, but `bnn-hw sim` sends one frame per "
            "image: regenerate it with --frame-images 0 or 1 (or test it with bnn_hw.sim.axis)"
        )


def _prob16(p: float) -> int:
    if not 0.0 <= p < 1.0:
        raise BnnError(f"a gap or stall probability must be in [0, 1), got {p}")
    return int(round(p * 65536))


def _harness_seed(seed: int, k: int) -> int:
    """A non-zero 32-bit seed per phase (xorshift stays at zero forever)."""
    x = (seed * 0x9E3779B1 + k * 0x85EBCA77 + 0x165667B1) & 0xFFFFFFFF
    return x or 1


def _slots(n: int) -> int:
    """Image slots the harness is compiled for: rounded up so that nearby image counts share one build."""
    return max(256, 1 << max(0, n - 1).bit_length())


def abort_images(cycles_per_image: int | None, latency: int | None) -> int:
    """How many whole images the reset check streams before cutting: enough that some results have come out and
    others are still in flight when the reset hits."""
    cpi, lat = cycles_per_image or 1, latency or 0
    return min(64, -(-lat // max(1, cpi)) + 2)


def abort_point(beats_per_image: int, images_before: int = 2) -> int:
    """Accepted beats after which the reset check cuts the stream: inside image `images_before` when an image has
    several beats."""
    return images_before * beats_per_image + max(1, beats_per_image // 2)


def plan_phases(
    n_images: int,
    *,
    seed: int,
    gap: float,
    stall: float,
    reset_check: bool,
    measure: bool,
    beats_per_image: int,
    cycles_per_image: int | None = None,
    latency: int | None = None,
) -> list[Phase]:
    """The standard phase list: latency and throughput on a clean pipeline, the random stream, reset mid-stream."""
    phases: list[Phase] = []
    if measure:
        phases.append(Phase("latency", 0, 1, seed=_harness_seed(seed, 1)))
        phases.append(Phase("throughput", 0, min(n_images, 32), seed=_harness_seed(seed, 2)))
    phases.append(Phase("stream", 0, n_images, gap, stall, _harness_seed(seed, 3), report_progress=True))
    if reset_check and n_images >= 2:
        # Cut the stream off in the middle of an image, with earlier results out and others in flight, then restart
        # from a different image so that any stale state or result shows up as a mismatch.
        k = min(n_images - 1, abort_images(cycles_per_image, latency))
        phases.append(
            Phase(
                "abort",
                0,
                min(n_images, k + 3),
                gap,
                stall,
                _harness_seed(seed, 4),
                abort_after_beats=abort_point(beats_per_image, k),
            )
        )
        restart_from = min(n_images - 1, 8) if n_images > 8 else n_images // 2
        phases.append(
            Phase("restart", restart_from, min(n_images - restart_from, 16), gap, stall, _harness_seed(seed, 5))
        )
    return phases


def run_network(
    design: Design,
    images: np.ndarray,
    expected_classes: np.ndarray,
    expected_scores: np.ndarray,
    simulator: str | Simulator,
    work_dir: Path,
    phases: list[Phase],
    *,
    waves: bool = False,
    progress: Callable[[int, int], None] | None = None,
    build_dir: Path | None = None,
    first_index: int = 0,
    build_images: int | None = None,
) -> dict[str, Any]:
    """Simulate `phases` over `images` and return {"phases": [...], "build_s", "run_s", "simulator"}.

    `build_dir` (default WORK_DIR/build_SIM) may be shared by several runs: the build depends only on the design and
    the image count it is sized for, and is skipped when an identical one exists. `images` (with the expected results)
    may be a window of a larger set (sim.shards): `first_index` is the number of images[0] in that set, the numbering
    the phases and the reported mismatches use, and `build_images` the image count the build is sized for (default
    len(images)), so that every window of one set runs on one build and loads only its own beats.

    Raises SimulationFailed when the simulator could not build or run; result mismatches are reported in the
    returned phases (and by the bench's own assertion, which is tolerated here so the report can show them).
    """
    sim = simulator if isinstance(simulator, Simulator) else find_simulator(simulator)
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    n = len(images)
    if not design.result.fits(expected_scores):
        raise BnnError(
            f"reference scores span [{expected_scores.min()}, {expected_scores.max()}] but the design's "
            f"score fields are {design.result.score_bits} bits: the manifest and model disagree"
        )
    if design.result.class_bits < max(1, (design.result.num_classes - 1).bit_length()):
        raise BnnError(f"class_bits {design.result.class_bits} cannot hold {design.result.num_classes} classes")
    check_harness_framing(design)
    sized_for = n if build_images is None else build_images
    if sized_for < n or first_index < 0:
        raise BnnError(f"a build sized for {sized_for} images cannot hold {n} from image {first_index} on")
    image_slots, result_slots = _slots(sized_for), _slots(sized_for) + 64
    beats = design.pixels.beats(images)
    beats_file = work_dir / "beats.hex"
    design.pixels.write_hex(beats_file, beats)
    expected_file = work_dir / "expected.npz"
    np.savez(
        expected_file,
        classes=np.asarray(expected_classes, dtype=np.int64),
        scores=np.asarray(expected_scores, dtype=np.int64),
    )

    cpi = design.cycles_per_image or 4 * design.pixels.beats_per_image + 64
    lat = design.latency or 4 * cpi
    drain = lat + cpi + 64  # a late duplicate or extra result would surface within one latency
    job_phases = []
    for ph in phases:
        if ph.first_image < first_index or ph.first_image + ph.n_images > first_index + n:
            given = f"{first_index}..{first_index + n - 1}" if first_index else f"{n}"
            raise BnnError(f"phase {ph.name} needs images up to {ph.first_image + ph.n_images}, only {given} given")
        slow = 1.0 / max(1e-3, (1 - ph.gap) * (1 - ph.stall))
        job_phases.append(
            {
                "name": ph.name,
                "first_image": ph.first_image,
                "n_images": ph.n_images,
                "gap_prob": _prob16(ph.gap),
                "stall_prob": _prob16(ph.stall),
                "seed": ph.seed,
                "abort_after_beats": ph.abort_after_beats,
                "report_progress": ph.report_progress,
                "max_cycles": int(4 * slow * (ph.n_images * cpi + lat)) + 20000,
                "drain_cycles": drain,
            }
        )
    test_dir = work_dir / "run"
    test_dir.mkdir(exist_ok=True)
    progress_file = work_dir / "progress.txt"
    progress_file.unlink(missing_ok=True)
    job = {
        "clock_ns": CLOCK_NS,
        "out_dir": str(work_dir),
        "test_dir": str(test_dir),
        "expected": str(expected_file),
        "result_format": {
            "class_bits": design.result.class_bits,
            "score_bits": design.result.score_bits,
            "num_classes": design.result.num_classes,
        },
        "phases": job_phases,
        "progress_file": str(progress_file),
        "progress_every": max(64, cpi),  # a Python wake-up costs ~50 us: negligible at one per image
        "image_slots": image_slots,
        "result_slots": result_slots,
        "image_base": first_index,  # phases number images from here; the beat memory holds images from it on
        # No handshake at all for this long means the DUT hangs: report it instead of waiting for max_cycles.
        "stall_window": int(8 * (lat + cpi) / max(1e-3, min((1 - p.gap) * (1 - p.stall) for p in phases))) + 2000,
    }
    job_file = work_dir / "job.json"
    job_file.write_text(json.dumps(job, indent=1))
    (work_dir / "phases.json").unlink(missing_ok=True)

    bench = harness_bench(design, sized_for, sim, build_dir or work_dir / f"build_{sim.name}", waves=waves)
    t0 = time.perf_counter()
    bench.build(log_file=work_dir / f"build_{sim.name}.log")
    t1 = time.perf_counter()
    plus = [f"+bnn_beats={beats_file}"] + [
        f"+bnn_{k}={test_dir / (k + '.hex')}" for k in ("results", "result_cycles", "first_cycles", "last_cycles")
    ]
    stop = threading.Event()
    poller = None
    if progress is not None:
        progress(0, n)  # simulation starts now
        poller = threading.Thread(target=_poll, args=(progress_file, progress, stop), daemon=True)
        poller.start()
    error: SimulationFailed | None = None
    try:
        bench.run(
            "bnn_hw.sim.benches.network",
            env={"BNN_SIM_JOB": str(job_file)},
            plusargs=plus,
            log_file=work_dir / f"sim_{sim.name}.log",
            test_dir=test_dir,
        )
    except SimulationFailed as exc:
        error = exc
    finally:
        stop.set()
        if poller is not None:
            poller.join()
    t2 = time.perf_counter()
    summary_file = work_dir / "phases.json"
    if not summary_file.is_file():
        raise error or SimulationFailed(f"the bench wrote no {summary_file}")
    out = {
        "phases": json.loads(summary_file.read_text()),
        "build_s": t1 - t0,
        "run_s": t2 - t1,
        "simulator": sim.name,
        "simulator_version": sim.version,
        "work_dir": str(work_dir),
    }
    if progress is not None:
        for ph in out["phases"]:
            if ph["name"] == "stream":
                progress(ph["results"], ph["n_images"])
    return out


def harness_bench(design: Design, n_images: int, sim: Simulator, build_dir: Path, *, waves: bool = False) -> Bench:
    """The harness build for `n_images` images (its memories are sized by `_slots`)."""
    image_slots = _slots(n_images)
    return Bench(
        sim,
        [*design.sources, HARNESS],
        TOP,
        Path(build_dir).resolve(),
        parameters={
            "PAYLOAD_W": design.pixels.width,
            "RESULT_W": design.result.width,
            "BEATS_PER_IMAGE": design.pixels.beats_per_image,
            "IMAGE_SLOTS": image_slots,
            "RESULT_SLOTS": image_slots + 64,
            "RESULT_TDATA_W": axis_tdata_bits(design),
        },
        defines=harness_defines(design),
        waves=waves,
    )


def _poll(path: Path, progress: Callable[[int, int], None], stop: threading.Event) -> None:
    while not stop.wait(0.5):
        try:
            name, done, total = path.read_text().split()
        except (OSError, ValueError):
            continue
        if name == "stream":
            progress(int(done), int(total))


def measure(design: Design, phases: list[dict[str, Any]]) -> dict[str, Any]:
    """Cycles per image (steady state), single-image latency and PE utilization from the phase cycle stamps."""
    by = {p["name"]: p for p in phases}
    out: dict[str, Any] = {}
    lat = by.get("latency")
    if lat and lat["results"] >= 1 and lat["first_beat_cycles"]:
        # Cycles from the handshake of the image's first beat to the handshake of its result (ready is always high).
        out["latency_cycles"] = lat["result_cycles"][0] - lat["first_beat_cycles"][0]
        out["latency_from_last_beat"] = lat["result_cycles"][0] - lat["last_beat_cycles"][0]
    thr = by.get("throughput")
    if thr and thr["results"] >= 4:
        rc = thr["result_cycles"][: thr["n_images"]]
        half = len(rc) // 2
        gaps = np.diff(rc[half:])
        out["cycles_per_image"] = (rc[-1] - rc[half]) / (len(rc) - 1 - half)
        out["cycles_per_image_min"] = int(gaps.min())
        out["cycles_per_image_max"] = int(gaps.max())
        fb = thr["first_beat_cycles"][: thr["n_images"]]
        out["input_cycles_per_image"] = (fb[-1] - fb[half]) / (len(fb) - 1 - half)
        out["throughput_images"] = len(rc)
    stream = by.get("stream")
    if stream and stream["results"] >= 1 and stream.get("first_beat_cycles"):
        # With random gaps and backpressure: first beat accepted -> last result accepted.
        span = stream["result_cycles"][: stream["n_images"]][-1] - stream["first_beat_cycles"][0] + 1
        out["stream_cycles"] = span
        out["stream_cycles_per_image"] = span / max(1, stream["n_images"])
    if design.cycles_per_image:
        out["predicted_cycles_per_image"] = design.cycles_per_image
        if "cycles_per_image" in out:
            out["cycles_per_image_matches_prediction"] = out["cycles_per_image"] == design.cycles_per_image
    if design.latency is not None:
        out["predicted_latency_cycles"] = design.latency
    if "cycles_per_image" in out and design.layers:
        out["utilization"] = utilization(design.layers, out["cycles_per_image"])
    return out


def utilization(layers: list[dict[str, Any]], cycles_per_image: float) -> dict[str, Any]:
    """Fraction of the PE x SIMD lane-cycles that do useful binary MACs, per layer and for the bottleneck layer.

    A layer with MH neurons, MW fan-in, V input vectors per image and a PE x SIMD array performs MH*MW*V useful
    lane-operations per image and has PE*SIMD*cycles_per_image lane-cycles to do them in.
    """
    per_layer = []
    for i, layer in enumerate(layers):
        mh, mw, pe, simd, vec = (int(layer[k]) for k in ("MH", "MW", "PE", "SIMD", "input_vectors"))
        useful = mh * mw * vec
        busy = math.ceil(mh / pe) * math.ceil(mw / simd) * vec  # cycles the layer's array is busy per image
        per_layer.append(
            {
                "layer": i,
                "pe": pe,
                "simd": simd,
                "busy_cycles": busy,
                "busy_fraction": busy / cycles_per_image,
                "lane_utilization": useful / (pe * simd * cycles_per_image),
                "fold_efficiency": useful / (pe * simd * busy),
            }
        )
    if not per_layer:
        return {}
    bottleneck = max(per_layer, key=lambda x: x["busy_cycles"])
    return {
        "layers": per_layer,
        "bottleneck_layer": bottleneck["layer"],
        "bottleneck_utilization": bottleneck["lane_utilization"],
    }


def run_python(
    design: Design,
    images: np.ndarray,
    expected_classes: np.ndarray,
    expected_scores: np.ndarray,
    simulator: str | Simulator,
    work_dir: Path,
    phases: list[Phase],
    *,
    seed: int = 1,
    gap: float = 0.0,
    stall: float = 0.0,
    waves: bool = False,
    taps: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Drive `bnn_top` directly from Python (sim.benches.network_py) through `phases`; returns their summaries.
    Gap and stall probabilities apply to the whole run (the Python driver draws them from one seeded generator).
    `taps` (the manifest's debug_taps) are monitored too: each summary's "taps" maps layer -> tap words (hex)."""
    sim = simulator if isinstance(simulator, Simulator) else find_simulator(simulator)
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    data = work_dir / "py_data.npz"
    np.savez(
        data,
        beats=design.pixels.beats(images),
        classes=np.asarray(expected_classes, dtype=np.int64),
        scores=np.asarray(expected_scores, dtype=np.int64),
    )
    cpi = design.cycles_per_image or 4 * design.pixels.beats_per_image + 64
    lat = design.latency or 4 * cpi
    slow = 1.0 / max(1e-3, (1 - gap) * (1 - stall))
    out = work_dir / "py_phases.json"
    out.unlink(missing_ok=True)
    job = {
        "clock_ns": CLOCK_NS,
        "data": str(data),
        "beats_per_image": design.pixels.beats_per_image,
        "result_format": {
            "class_bits": design.result.class_bits,
            "score_bits": design.result.score_bits,
            "num_classes": design.result.num_classes,
        },
        "seed": seed,
        "gap": gap,
        "stall": stall,
        "interface": design.manifest.interface if design.manifest is not None else "bare",
        "axi_lite": bool(design.manifest is not None and design.manifest.axi_lite),
        "out": str(out),
        "taps": list(taps or []),
        "phases": [
            {
                "name": p.name,
                "first_image": p.first_image,
                "n_images": p.n_images,
                "abort_after_beats": p.abort_after_beats,
                "max_cycles": int(4 * slow * (p.n_images * cpi + lat)) + 2000,
                "drain_cycles": 2 * lat + 2 * cpi + 64,
            }
            for p in phases
        ],
    }
    job_file = work_dir / "py_job.json"
    job_file.write_text(json.dumps(job, indent=1))
    check_harness_framing(design)
    bench = Bench(sim, design.sources, "bnn_top", work_dir / f"build_py_{sim.name}", waves=waves)
    bench.build(log_file=work_dir / f"build_py_{sim.name}.log")
    error: SimulationFailed | None = None
    try:
        bench.run(
            "bnn_hw.sim.benches.network_py",
            env={"BNN_SIM_JOB": str(job_file)},
            log_file=work_dir / f"sim_py_{sim.name}.log",
            test_dir=work_dir / "py_run",
        )
    except SimulationFailed as exc:
        error = exc
    if not out.is_file():
        raise error or SimulationFailed(f"the Python-driven bench wrote no {out}")
    return json.loads(out.read_text())
