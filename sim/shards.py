"""Sharded network simulation: the test images split into contiguous shards, each simulated by its own simulator
process, the scoreboards merged into the report one run would give.

What is the same as one run: every image is simulated once and checked bit for bit against the same reference, and
the merged stream phase lists results in image order (each shard keeps its order; shards are concatenated). The
latency, throughput and reset-mid-stream phases run once, in shard 0, exactly as in one run. What differs: each
shard draws its own input gaps and backpressure (shard 0 the single run's), so the merged stream's cycle stamps are
the shards' laid end to end, not one timeline.

All shards share one simulator build, made before they start and sized for all the images; each shard writes and
loads the beats of only the images its phases use (its window). Without a scheduler the shards are threads of this
process, each waiting on its own simulator process (the simulation runs there, not in Python); with `scheduler`
they are Dask tasks on that cluster's workers.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from bnn_hw.sim.network import Design, Phase, harness_bench, run_network
from bnn_hw.sim.tools import Simulator, available, find_simulator

from bnn_hw.errors import BnnError

MAX_SHARDS = 1024
SHOWN_MISMATCHES = 20  # per merged phase, as the bench keeps per phase


def shard_bounds(n_images: int, shards: int) -> list[tuple[int, int]]:
    """Contiguous [first, end) ranges covering `n_images`, sizes differing by at most one."""
    if not 1 <= shards <= MAX_SHARDS:
        raise BnnError(f"--shards must be between 1 and {MAX_SHARDS}, got {shards}")
    if shards > n_images:
        raise BnnError(f"--shards {shards} is more than the {n_images} images to simulate; use at most {n_images}")
    return [(k * n_images // shards, (k + 1) * n_images // shards) for k in range(shards)]


def _shard_seed(seed: int, k: int) -> int:
    x = (seed * 0x9E3779B1 + k * 0xC2B2AE35) & 0xFFFFFFFF
    return x or 1


def shard_phases(phases: list[Phase], bounds: list[tuple[int, int]]) -> list[list[Phase]]:
    """Each shard's phase list: its part of the stream; shard 0 also runs every other phase, in the same order."""
    stream = next((p for p in phases if p.name == "stream"), None)
    if stream is None or (stream.first_image, stream.n_images) != (0, bounds[-1][1]):
        raise BnnError("sharding needs a stream phase over all the images")
    plans = []
    for k, (lo, hi) in enumerate(bounds):
        part = dataclasses.replace(
            stream, first_image=lo, n_images=hi - lo, seed=stream.seed if k == 0 else _shard_seed(stream.seed, k)
        )
        plans.append([part if p is stream else p for p in phases] if k == 0 else [part])
    return plans


def shard_window(plan: list[Phase]) -> tuple[int, int]:
    """The [first, end) range of images a shard's phases use: the images its beat file must hold."""
    return min(p.first_image for p in plan), max(p.first_image + p.n_images for p in plan)


def _run_shard(
    design: Design,
    images: np.ndarray,
    classes: np.ndarray,
    scores: np.ndarray,
    simulator: str | Simulator,
    work_dir: str,
    build_dir: str,
    phases: list[Phase],
    first_index: int,
    build_images: int,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """One shard: simulate its phases over its window of images with the shared build; the result names the worker
    (a Dask worker's address, or "local")."""
    from bnn_hw.cluster import worker_address

    started = time.perf_counter()
    out = run_network(
        design, images, classes, scores, simulator, Path(work_dir), phases, build_dir=Path(build_dir),
        first_index=first_index, build_images=build_images, progress=progress,
    )  # fmt: skip
    out["worker"] = worker_address()
    out["wall_s"] = time.perf_counter() - started
    return out


def _simulator_check(name: str) -> Callable[[], str | None]:
    def check() -> str | None:
        ok, why = available(name)
        return None if ok else why

    return check


def _shard_error(k: int, bounds: list[tuple[int, int]], exc: BaseException) -> BnnError:
    where = f"shard {k} (images {bounds[k][0]}..{bounds[k][1] - 1})"
    if isinstance(exc, BnnError):
        return BnnError(f"{where}: {exc}")
    return BnnError(f"{where} failed: {type(exc).__name__}: {exc}")  # a worker that died twice, a crash in the task


class _Progress:
    """Adds the shards' live stream counts into one (done, total) for the caller's progress callback."""

    def __init__(self, report: Callable[[int, int], None], sizes: list[int]) -> None:
        self.report, self.sizes = report, sizes
        self.done = [0] * len(sizes)
        self.lock = threading.Lock()

    def shard(self, k: int) -> Callable[[int, int], None]:
        def update(done: int, total: int) -> None:
            with self.lock:
                self.done[k] = min(done, self.sizes[k])
                self.report(sum(self.done), sum(self.sizes))

        return update


@contextmanager
def _environ_fixed() -> Iterator[None]:
    """Bench.run takes PYTEST_CURRENT_TEST out of os.environ around each run (else cocotb's runner exits on its own
    terms); taken out once here, so that runs in concurrent threads (the local shards, or the workers of an
    in-process Dask cluster) do not resize os.environ while another copies it."""
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved


def run_sharded(
    design: Design,
    images: np.ndarray,
    classes: np.ndarray,
    scores: np.ndarray,
    simulator: str | Simulator,
    work_dir: Path,
    phases: list[Phase],
    shards: int,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    build_dir: Path | None = None,
) -> dict[str, Any]:
    """Like `run_network`, over `shards` simulator processes; the result adds "shards" (one summary each).

    Without `scheduler`, at most `workers` (default: min(shards, CPU cores)) shards run at a time, as threads of this
    process; with it, the shards are tasks on that Dask cluster. `build_dir` (default WORK_DIR/build_SIM, where a
    one-process run in WORK_DIR builds too) is the shared build, sized for all the images.
    """
    sim = simulator if isinstance(simulator, Simulator) else find_simulator(simulator)
    n = len(images)
    bounds = shard_bounds(n, shards)
    plans = shard_phases(phases, bounds)
    windows = [shard_window(plan) for plan in plans]
    work_dir = Path(work_dir).resolve()
    build_dir = Path(build_dir).resolve() if build_dir is not None else work_dir / f"build_{sim.name}"
    t0 = time.perf_counter()
    work_dir.mkdir(parents=True, exist_ok=True)
    harness_bench(design, n, sim, build_dir).build(log_file=work_dir / f"build_{sim.name}.log")
    build_s = time.perf_counter() - t0
    images, classes, scores = (np.ascontiguousarray(a) for a in (images, classes, scores))
    parts = [(images[lo:hi], classes[lo:hi], scores[lo:hi]) for lo, hi in windows]
    t1 = time.perf_counter()
    with _environ_fixed():
        if scheduler is None:
            outs = _run_threads(design, parts, windows, sim, work_dir, build_dir, plans, bounds, n, workers, progress)
        else:
            outs = _run_dask(design, parts, windows, sim, work_dir, build_dir, plans, bounds, n, scheduler, progress)
    merged = merge_shards(outs, bounds)
    merged.update({"build_s": build_s, "run_s": time.perf_counter() - t1, "simulator": sim.name})
    merged["simulator_version"] = sim.version
    merged["work_dir"] = str(work_dir)
    return merged


def _run_threads(
    design: Design,
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    windows: list[tuple[int, int]],
    sim: Simulator,
    work_dir: Path,
    build_dir: Path,
    plans: list[list[Phase]],
    bounds: list[tuple[int, int]],
    n: int,
    workers: int | None,
    progress: Callable[[int, int], None] | None,
) -> list[dict[str, Any]]:
    """The shards as threads of this process, each running one simulator process at a time."""
    live = _Progress(progress, [hi - lo for lo, hi in bounds]) if progress is not None else None
    pool = ThreadPoolExecutor(max_workers=workers or min(len(plans), os.cpu_count() or 1), thread_name_prefix="shard")
    try:
        futures = [
            pool.submit(
                _run_shard,
                design,
                *part,
                sim,
                str(work_dir / f"shard_{k}"),
                str(build_dir),
                plan,
                lo,
                n,
                live.shard(k) if live is not None else None,
            )
            for k, (part, (lo, _), plan) in enumerate(zip(parts, windows, plans, strict=True))
        ]
        wait(futures, return_when=FIRST_EXCEPTION)
        for k, future in enumerate(futures):
            exc = future.exception() if future.done() else None
            if exc is not None:
                raise _shard_error(k, bounds, exc) from None
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # a shard already simulating runs to its end


def _run_dask(
    design: Design,
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    windows: list[tuple[int, int]],
    sim: Simulator,
    work_dir: Path,
    build_dir: Path,
    plans: list[list[Phase]],
    bounds: list[tuple[int, int]],
    n: int,
    scheduler: str,
    progress: Callable[[int, int], None] | None,
) -> list[dict[str, Any]]:
    """The shards as tasks on the Dask cluster at `scheduler`, each sent only its window of the images."""
    from bnn_hw.cluster import as_completed, dask_client, require_on_workers

    with dask_client(scheduler) as client:
        require_on_workers(client, _simulator_check(sim.name), f"the {sim.name} simulation")
        futures = [
            client.submit(
                _run_shard,
                design,
                *client.scatter(list(part)),
                sim.name,
                str(work_dir / f"shard_{k}"),
                str(build_dir),
                plan,
                lo,
                n,
                key=f"sim-shard-{k}-{design.model_hash or 'model'}-{time.time_ns()}",
                retries=1,
                pure=False,
            )
            for k, (part, (lo, _), plan) in enumerate(zip(parts, windows, plans, strict=True))
        ]
        outs: list[dict[str, Any] | None] = [None] * len(plans)
        index = {f.key: k for k, f in enumerate(futures)}
        done_images = 0
        try:
            for future in as_completed(futures):
                k = index[future.key]
                try:
                    outs[k] = future.result()
                except Exception as exc:
                    raise _shard_error(k, bounds, exc) from None
                done_images += bounds[k][1] - bounds[k][0]
                if progress is not None:
                    progress(done_images, n)
        except (KeyboardInterrupt, BnnError):
            client.cancel(futures)
            raise
    return [o for o in outs if o is not None]


def merge_shards(outs: list[dict[str, Any]], bounds: list[tuple[int, int]]) -> dict[str, Any]:
    """One run's phase list from the shards': shard 0's phases with the stream replaced by all shards' streams."""
    if len(outs) != len(bounds):
        raise BnnError(f"{len(bounds) - len(outs)} of {len(bounds)} shards returned nothing")
    streams = [next(p for p in o["phases"] if p["name"] == "stream") for o in outs]
    for (lo, hi), part in zip(bounds, streams, strict=True):
        if (part["first_image"], part["n_images"]) != (lo, hi - lo):
            raise BnnError(f"a shard simulated images {part['first_image']}.. instead of {lo}..{hi - 1}")
    offset = 0
    cycles: dict[str, list[int]] = {"result_cycles": [], "first_beat_cycles": [], "last_beat_cycles": []}
    for part in streams:  # the shards' timelines laid end to end
        for key in cycles:
            cycles[key] += [c + offset for c in part[key][: part["n_images"]]]
        offset += int(part["cycles"] or 0)
    mismatches = [m for part in streams for m in part["mismatches"]]
    stream = {
        "name": "stream",
        "first_image": 0,
        "n_images": bounds[-1][1],
        "results": sum(p["results"] for p in streams),
        "beats_sent": sum(p["beats_sent"] for p in streams),
        "cycles": offset,
        "timed_out": any(p["timed_out"] for p in streams),
        "hung": any(p["hung"] for p in streams),
        "aborted": False,
        "matched": sum(p["matched"] for p in streams),
        "mismatch_count": sum(p["mismatch_count"] for p in streams),
        "mismatches": mismatches[:SHOWN_MISMATCHES],
        "result_words": [w for p in streams for w in p["result_words"][: p["n_images"]]],
        **cycles,
    }
    phases = [stream if p["name"] == "stream" else p for p in outs[0]["phases"]]
    summaries = [
        {
            "shard": k,
            "first_image": lo,
            "n_images": hi - lo,
            "results": part["results"],
            "matched": part["matched"],
            "mismatch_count": part["mismatch_count"],
            "timed_out": part["timed_out"],
            "cycles": part["cycles"],
            "worker": out.get("worker"),
            "seconds": out.get("wall_s"),
        }
        for k, ((lo, hi), part, out) in enumerate(zip(bounds, streams, outs, strict=True))
    ]
    return {"phases": phases, "shards": summaries}
