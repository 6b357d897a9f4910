"""`bnn-hw sim BUILD_DIR`: stream test images through the generated Verilog and check every result bit.

Loads the build's manifest and the model it came from (hash-checked), runs the reference (CuPy GPU when available,
else the numpy golden model), simulates with Icarus or Verilator through cocotb, and writes BUILD_DIR/sim_report.json.
Exit status 1 on any mismatch, lost/extra result or timeout.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bnn_hw.argtypes import nonneg_int, positive_int, probability
from bnn_hw.artifacts import SimReport

REPORT = SimReport.FILE
HISTORY = "sim_reports"  # earlier reports, one per simulator and run, kept when a new run replaces sim_report.json
SHOWN_MISMATCHES = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("build_dir", type=Path, help="folder written by `bnn-hw rtl MODEL -o DIR`")
    parser.add_argument(
        "--images",
        type=nonneg_int,
        default=200,
        metavar="N",
        help="simulate the first N test images, 0 = all (default: 200)",
    )
    parser.add_argument(
        "--simulator",
        choices=("icarus", "verilator"),
        default="verilator",
        help="HDL simulator; verilator is much faster on large runs (default: verilator)",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="the .bnn model the build was generated from (default: the one its manifest records)",
    )
    parser.add_argument(
        "--dataset", default=None, help="data set of the test images (default: the model's, else fashion-mnist)"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="folder holding the data set's files (default: the usual places)"
    )
    parser.add_argument(
        "--random-images",
        action="store_true",
        help="use seeded random images instead of a data set (for synthetic models)",
    )
    parser.add_argument(
        "--reference",
        choices=("auto", "golden", "gpu"),
        default="auto",
        help="reference model: CuPy GPU when available (auto), numpy golden, or GPU only (default: auto)",
    )
    parser.add_argument(
        "--seed", type=nonneg_int, default=1, help="seed of the input gaps, output backpressure and random images"
    )
    parser.add_argument("--gap", type=probability, default=0.2, help="probability of an idle input cycle, in [0, 1)")
    parser.add_argument(
        "--stall",
        type=probability,
        default=0.2,
        help="probability of a backpressure cycle on the result stream, in [0, 1)",
    )
    parser.add_argument(
        "--driver",
        choices=("harness", "python"),
        default="harness",
        help="harness: HDL-side stream driver (fast); python: cocotb drives every beat (default: harness)",
    )
    parser.add_argument(
        "--shards",
        type=positive_int,
        default=1,
        metavar="K",
        help="split the images into K contiguous shards, each in its own simulator process (at most one per core at "
        "a time; Dask tasks with --scheduler), and merge the scoreboards (default 1: one process)",
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the shards on a Dask cluster (tcp://HOST:PORT) instead of a local one; the build folder must be "
        "on a file system the workers share (default: a local cluster)",
    )
    parser.add_argument("--no-reset-check", action="store_true", help="skip the reset-mid-stream phases")
    parser.add_argument(
        "--waves", action="store_true", help="record waveforms (FST on Icarus, VCD on Verilator); the path is printed"
    )
    parser.add_argument("--work-dir", type=Path, default=None, help="simulator scratch folder (default: BUILD_DIR/sim)")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"the report to write (default: BUILD_DIR/{REPORT}; an earlier one moves to BUILD_DIR/{HISTORY}/)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def _images(args, model) -> tuple[Any, dict[str, Any]]:
    import numpy as np

    from bnn_hw.errors import BnnError

    if args.random_images:
        from bnn_hw.synthetic import random_images

        n = args.images or 200
        return random_images(model, n, seed=args.seed), {"source": "random", "seed": args.seed, "count": n}
    from bnn_hw.datasets import DATASETS, dataset_info, load_dataset

    name = args.dataset
    if name is None:
        src = model.source if isinstance(model.source, dict) else {}
        name = src.get("dataset") if src.get("dataset") in DATASETS else None
        if name is None:
            guess = [
                d
                for d in ("fashion-mnist", "digits", "cifar10")
                if dataset_info(d).input_shape == tuple(model.input_shape)
            ]
            if not guess:
                raise BnnError(
                    f"no data set matches the model's input {tuple(model.input_shape)}; pass --dataset or "
                    "--random-images"
                )
            name = guess[0]
    info = dataset_info(name)
    if tuple(info.input_shape) != tuple(model.input_shape):
        raise BnnError(
            f"{name} images are {info.input_shape} but the model takes {tuple(model.input_shape)}; pass "
            "a matching --dataset or --random-images"
        )
    data = load_dataset(name, "test", args.data_dir)
    n = len(data.images) if args.images == 0 else args.images
    if n > len(data.images):
        raise BnnError(f"--images {n} but the {name} test split has only {len(data.images)} images")
    return np.ascontiguousarray(data.images[:n]), {
        "source": name,
        "split": "test",
        "first": 0,
        "count": n,
        "labels": data.labels[:n],
    }


def _table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from bnn_hw.sim.manifest import load_design, model_for_build
    from bnn_hw.sim.network import Phase, abort_images, abort_point, measure, plan_phases, run_network, run_python
    from bnn_hw.sim.tools import cocotb_version, find_simulator
    from bnn_hw.sim.workspace import safe_workspace

    from bnn_hw import fileio
    from bnn_hw.errors import BnnError, UsageError
    from bnn_hw.progress import bar as progress_bar
    from bnn_hw.reference import reference_run

    sharded = args.shards != 1 or args.scheduler is not None
    if sharded:
        from bnn_hw.cluster import check_scheduler_address

        if args.driver != "harness":
            raise UsageError("--shards/--scheduler need the harness driver; drop --driver python")
        if args.waves:
            raise UsageError("--waves records one simulation; use it without --shards/--scheduler")
        if args.scheduler is not None:
            check_scheduler_address(args.scheduler)
    report_path = args.json or Path(args.build_dir) / REPORT
    design = load_design(args.build_dir)
    fileio.writable_file(report_path, what="--json" if args.json else "build folder")  # before the simulation
    sim = find_simulator(args.simulator)
    cocotb_ver = cocotb_version()
    model, model_path = model_for_build(design, args.build_dir, args.model)
    images, image_info = _images(args, model)
    labels = image_info.pop("labels", None)
    n = len(images)
    if n == 0:
        raise BnnError("no images to simulate")
    t0 = time.perf_counter()
    ref, ref_name = reference_run(model, images, prefer=args.reference)
    ref_s = time.perf_counter() - t0
    work = (args.work_dir or args.build_dir / "sim").resolve()
    fileio.writable_dir(work, what="--work-dir" if args.work_dir else "build folder")
    design, work, scratch = safe_workspace(design, work)
    if scratch is not None:
        print(
            f"note: GNU Make and Icarus cannot work in paths with spaces or non-ASCII characters: "
            f"simulating in {scratch}",
            flush=True,
        )
    if args.waves and n > 50:
        print(f"note: --waves with {n} images writes a large waveform file")
    reset_check = not args.no_reset_check
    t1 = time.perf_counter()
    if args.driver == "harness":
        phases = plan_phases(
            n,
            seed=args.seed,
            gap=args.gap,
            stall=args.stall,
            reset_check=reset_check,
            measure=True,
            beats_per_image=design.pixels.beats_per_image,
            cycles_per_image=design.cycles_per_image,
            latency=design.latency,
        )
        if not args.quiet:
            print(f"building the {sim.name} model of {args.build_dir} (cached after the first run)...", flush=True)
        bar = progress_bar(total=n, desc=f"sim {sim.name}", unit="img", enabled=not args.quiet, delay=0.5)

        started = []

        def progress(done: int, total: int) -> None:
            if not started:
                started.append(True)
                bar.reset()  # the rate counts from the start of simulation, not of the build
            if done != bar.n:
                bar.update(min(done, total) - bar.n)

        try:
            if sharded:
                from bnn_hw.sim.shards import run_sharded

                out = run_sharded(
                    design, images, ref.classes, ref.scores, sim, work, phases, args.shards,
                    scheduler=args.scheduler, progress=progress,
                )  # fmt: skip
            else:
                out = run_network(
                    design, images, ref.classes, ref.scores, sim, work, phases, waves=args.waves, progress=progress
                )
        finally:
            bar.close()
        phase_results = out["phases"]
        build_s, run_s = out["build_s"], out["run_s"]
        shard_summaries = out.get("shards")
    else:
        phases = [Phase("stream", 0, n)]
        if reset_check and n >= 2:
            k = min(n - 1, abort_images(design.cycles_per_image, design.latency))
            cut = abort_point(design.pixels.beats_per_image, k)
            phases += [
                Phase("abort", 0, min(n, k + 3), abort_after_beats=cut),
                Phase("restart", n // 2, min(n - n // 2, 16)),
            ]
        print(f"simulating {n} images on {sim.name}, driven from Python (slow)...")
        phase_results = run_python(
            design,
            images,
            ref.classes,
            ref.scores,
            sim,
            work,
            phases,
            seed=args.seed,
            gap=args.gap,
            stall=args.stall,
            waves=args.waves,
        )
        build_s, run_s = None, time.perf_counter() - t1
        shard_summaries = None
    metrics = measure(design, phase_results)
    mismatches = [m for p in phase_results for m in p["mismatches"]]
    mismatch_total = sum(p["mismatch_count"] for p in phase_results)
    timeouts = [
        p["name"] + (" (hang: no handshake)" if p.get("hung") else "") for p in phase_results if p.get("timed_out")
    ]
    stream = next(p for p in phase_results if p["name"] == "stream")
    passed = mismatch_total == 0 and not timeouts
    accuracy = None
    if labels is not None:
        accuracy = float(np.mean(ref.classes == labels))
    report = SimReport(
        passed=passed,
        model_hash=model.hash,
        model=str(model_path),
        build_dir=str(Path(args.build_dir).resolve()),
        manifest_model_hash=design.model_hash,
        simulator=sim.name,
        simulator_version=sim.version,
        cocotb_version=cocotb_ver,
        driver=args.driver,
        seed=args.seed,
        gap=args.gap,
        stall=args.stall,
        images=n,
        image_source=image_info,
        reference=ref_name,
        reference_seconds=ref_s,
        reference_accuracy=accuracy,
        results_checked=stream["results"],
        results_matched=stream["matched"],
        mismatch_count=mismatch_total,
        timeouts=timeouts,
        cycles_per_image=metrics.get("cycles_per_image"),
        latency_cycles=metrics.get("latency_cycles"),
        mismatches=mismatches[:SHOWN_MISMATCHES],
        phases=[
            {
                k: v
                for k, v in p.items()
                if k not in ("result_words", "result_cycles", "first_beat_cycles", "last_beat_cycles", "mismatches")
            }
            for p in phase_results
        ],
        metrics=metrics,
        build_seconds=build_s,
        simulation_seconds=run_s,
        waves=_waves_path(work, sim.name, args) if args.waves else None,
        shards=shard_summaries,
    )
    path = report_path
    kept = _keep_previous(path)
    report.write(path)
    util = metrics.get("utilization", {})
    rows = [
        ("model", f"{model.name} ({model.hash[:12]})"),
        ("simulator", sim.version),
        ("reference", ref_name),
        ("images", f"{n} ({image_info['source']})"),
        ("bit-exact", f"{stream['matched']}/{n}" + ("" if passed else f"  ({mismatch_total} mismatches)")),
        (
            "accuracy",
            "n/a (no labels)"
            if accuracy is None
            else f"{100 * accuracy:.2f} % of {n} labels" + (" (hardware identical)" if passed else " (reference)"),
        ),
        ("cycles/image", _vs(metrics.get("cycles_per_image"), metrics.get("predicted_cycles_per_image"))),
        ("latency (cycles)", _vs(metrics.get("latency_cycles"), metrics.get("predicted_latency_cycles"))),
        (
            "PE utilization",
            f"{100 * util['bottleneck_utilization']:.1f} % (layer {util['bottleneck_layer']})" if util else "n/a",
        ),
        ("time", f"build {build_s:.1f} s, simulate {run_s:.1f} s" if build_s is not None else f"{run_s:.1f} s"),
        *(
            [
                (
                    "shards",
                    f"{len(shard_summaries)} (" + ", ".join(sorted({str(s["worker"]) for s in shard_summaries})) + ")",
                )
            ]
            if shard_summaries
            else []
        ),
        ("report", str(path) + (f" (the previous one is kept as {kept})" if kept else "")),
    ]
    if report.waves:
        rows.append(("waveform", report.waves))
    if reset_check:
        rows.insert(
            5,
            (
                "reset mid-stream",
                "clean restart"
                if all(p["mismatch_count"] == 0 for p in phase_results if p["name"] in ("abort", "restart"))
                else "FAILED",
            ),
        )
    print(_table(rows))
    for m in mismatches[:SHOWN_MISMATCHES]:
        print(f"  mismatch: {m['detail']}")
    if timeouts:
        print(f"  timed out: {', '.join(timeouts)}")
    return 0 if passed else 1


def _keep_previous(path: Path) -> Path | None:
    """Move an earlier report at `path` into HISTORY/ (named by its simulator and time) instead of losing it."""
    if not path.is_file():
        return None
    try:  # only names the archived copy, whatever bnn-hw version wrote it: not a read of the report's contents
        old = json.loads(path.read_text())
        simulator = str(old["simulator"]) if isinstance(old, dict) and "simulator" in old else "unknown"
    except (ValueError, OSError):
        simulator = "unknown"
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(path.stat().st_mtime))
    folder = path.parent / HISTORY
    folder.mkdir(exist_ok=True)
    target = folder / f"{path.stem}-{simulator}-{stamp}.json"
    i = 1
    while target.exists():
        target = folder / f"{path.stem}-{simulator}-{stamp}-{i}.json"
        i += 1
    path.replace(target)
    return target


def _vs(measured, predicted) -> str:
    if measured is None:
        return "n/a"
    text = f"{measured:g}"
    if predicted is not None:
        text += f" (predicted {predicted}{', match' if measured == predicted else ', DIFFERENT'})"
    return text


def _waves_path(work: Path, sim: str, args) -> str:
    """Where the simulator left the waveform: Icarus dumps next to its build, Verilator in the run folder."""
    if args.driver == "harness":
        return str(work / "build_icarus" / "bnn_tb.fst" if sim == "icarus" else work / "run" / "dump.vcd")
    return str(work / "build_py_icarus" / "bnn_top.fst" if sim == "icarus" else work / "py_run" / "dump.vcd")
