"""`bnn-hw demo`: the whole chain on Fashion-MNIST, each stage through its spoke's Python API.

train -> export -> verify (golden vs PyTorch) -> rtl -> sim (bit for bit) -> bench cpu -> report -> summary. Each
API call is the one its subcommand makes (bnn_hw.options), in this process. A stage whose output already exists for
the same inputs is skipped, so running the demo again is quick.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bnn_hw import fileio
from bnn_hw.argtypes import nonneg_int, positive_int
from bnn_hw.artifacts import BenchCpu, Manifest, Metrics, SimReport, Verify
from bnn_hw.errors import BnnError, UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--out", type=Path, default=Path("runs/demo"), help="run folder")
    parser.add_argument("--preset", default="mlp", help="model preset")
    parser.add_argument("--dataset", default="fashion-mnist", help="data set")
    parser.add_argument("--epochs", type=positive_int, default=3, help="training epochs (default: 3, about 86 %%)")
    parser.add_argument("--pe", default="32", help="processing elements per layer, as `bnn-hw rtl --pe`")
    parser.add_argument("--simd", default="32", help="SIMD lanes per PE, as `bnn-hw rtl --simd`")
    parser.add_argument(
        "--images", type=nonneg_int, default=1000, metavar="N", help="simulate the first N test images, 0 = all"
    )
    parser.add_argument(
        "--simulator", default="verilator", choices=["verilator", "icarus"], help="HDL simulator for the sim stage"
    )
    parser.add_argument("--seed", type=nonneg_int, default=0, help="seed of the training run")
    parser.add_argument("--force", action="store_true", help="redo every stage even if its output exists")


def _stage(title: str, command: str, stages: list[dict], call: Callable[..., Any], *args: Any, **options: Any) -> float:
    """Run one stage's API call (`command` is the equivalent `bnn-hw` line, recorded for build.json); its seconds.
    A failure raises the stage's own one-line BnnError."""
    print(f"\n=== {title}: {command}", flush=True)
    start = time.perf_counter()
    entry: dict[str, Any] = {"name": title, "command": command, "status": "running"}
    stages.append(entry)  # build.json's record of the exact commands (the report's reproducibility block)
    try:
        call(*args, **options)
    except BnnError as exc:
        entry.update(status=f"failed: {exc}"[:500], seconds=round(time.perf_counter() - start, 2))
        raise
    seconds = time.perf_counter() - start
    entry.update(status="done", seconds=round(seconds, 2))
    return seconds


def _command(module: str, command: str, **options: Any) -> str:
    from bnn_hw.options import command_line

    return command_line(module, command, **options)


def _record(out: Path, stages: list[dict], model_path: Path) -> None:
    """OUT/build.json as `bnn-hw build` writes it: the stages' commands, the environment and the git commit."""
    from bnn_hw.flow.build import BUILD_RECORD, environment, git_commit
    from bnn_hw.model import load_model

    record = {
        "schema": 1,
        "kind": "bnn-hw demo",
        "stages": stages,
        "git_commit": git_commit(),
        "environment": environment(),
        "model_hash": load_model(model_path).hash if model_path.exists() else None,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    fileio.write_json(out / BUILD_RECORD, record)


def _verify(model: Path, against: Path, **options: Any) -> None:
    from bnn_hw.train import verify

    report = verify(model, against, **options)
    if not report.bit_exact:
        raise BnnError(f"verify: the golden model and PyTorch disagree (see {options.get('json')})")


def _simulate(build: Path, **options: Any) -> None:
    from bnn_hw.sim import simulate

    report = simulate(build, **options)
    if not report.passed:
        raise BnnError(
            f"sim: {report.mismatch_count} mismatching results, {len(report.timeouts)} timeouts "
            f"(see {build / SimReport.FILE})"
        )


def validate(args: argparse.Namespace) -> None:
    """Check the options before any work, so that a typo fails in a second, not after training."""
    from bnn_hw.datasets import DATASETS
    from bnn_hw.train.models import PRESETS

    if args.preset not in PRESETS:
        raise UsageError(f"unknown --preset {args.preset!r}; choose from: {', '.join(PRESETS)}")
    if args.dataset not in DATASETS:
        raise UsageError(f"unknown --dataset {args.dataset!r}; choose from: {', '.join(DATASETS)}")
    if args.epochs < 1:
        raise BnnError(f"--epochs must be >= 1, got {args.epochs}")
    if args.images < 0:
        raise BnnError(f"--images must be >= 0 (0 = the whole test set), got {args.images}")
    if args.seed < 0:
        raise BnnError(f"--seed must be >= 0, got {args.seed}")
    for name in ("pe", "simd"):
        text = getattr(args, name)
        parts = str(text).split(",")
        if not all(p.strip().isdigit() and int(p) >= 1 for p in parts):
            raise UsageError(f"--{name} must be a positive integer or a comma-separated list of them, got {text!r}")
    available = count_test_images(args.dataset)  # also fails here, not after training, when the data set is missing
    if args.images > available:
        raise UsageError(
            f"--images {args.images} but the {args.dataset} test split has only {available:,} images; "
            f"pass at most {available}, or 0 for all of them"
        )


def count_test_images(dataset: str) -> int:
    """Number of images in the data set's test split (what `bnn-hw sim` can simulate)."""
    from bnn_hw.datasets import load_dataset

    return len(load_dataset(dataset, "test"))


def train_plan(args: argparse.Namespace, metrics_path: Path, checkpoint: Path) -> dict[str, Any] | None:
    """The `bnn_hw.train.train` options to run, or None when the checkpoint already matches the options.

    A checkpoint is reused only if it was trained with the same preset, data set and seed for exactly --epochs
    epochs; fewer epochs of the same run are continued with resume=True, anything else is trained from scratch."""
    options: dict[str, Any] = {
        "preset": args.preset,
        "dataset": args.dataset,
        "epochs": args.epochs,
        "seed": args.seed,
        "out": metrics_path.parent,
    }
    if args.force or not checkpoint.exists() or not metrics_path.exists():
        return options
    metrics = Metrics.read(metrics_path)
    cfg = metrics.train
    same_run = (cfg["preset"], cfg["dataset"], cfg["seed"]) == (args.preset, args.dataset, args.seed)
    trained = len(metrics.epochs)
    if same_run and trained == args.epochs:
        return None
    return {**options, "resume": True} if same_run and trained < args.epochs else options


def rtl_stale(args: argparse.Namespace, manifest_path: Path, model_path: Path) -> bool:
    """True when the Verilog in the manifest's folder was not generated from this model with the options the demo
    gives `bnn-hw rtl`: these --pe and --simd and the defaults of everything else."""
    if args.force or not manifest_path.exists():
        return True
    from bnn_hw.model import load_model

    manifest = Manifest.read(manifest_path)
    gen = manifest.generator.args
    first_simd = str(gen["simd"]).split(",")[0]
    return (
        manifest.model_hash != load_model(model_path).hash
        or (gen["requested_pe"], gen["requested_simd"]) != (args.pe, args.simd)
        or bool(gen["auto"])
        or bool(gen["debug_taps"])
        or str(gen["pixels_per_beat"]) != first_simd
    )


def run(args: argparse.Namespace) -> int:
    from bnn_hw.cuda_ref import bench
    from bnn_hw.flow import write_report
    from bnn_hw.rtl import generate_rtl
    from bnn_hw.train import export_checkpoint, train

    validate(args)
    out: Path = fileio.writable_dir(args.out)
    train_dir, model_path, rtl_dir = out / "train", out / "model.bnn", out / "rtl"
    timings: dict[str, float] = {}
    stages: list[dict] = []
    checkpoint = train_dir / "checkpoint.pt"
    training = train_plan(args, train_dir / Metrics.FILE, checkpoint)
    if training is not None:
        if not training.get("resume") and checkpoint.exists():  # training will not overwrite a checkpoint
            print(f"options changed (or --force): training again from scratch; removing {checkpoint}")
            checkpoint.unlink()
        command = _command("bnn_hw.train.commands.train", "train", **training)
        timings["train"] = _stage("train", command, stages, train, **training)
    fresh = (
        training is not None
        or args.force
        or not model_path.exists()
        or model_path.stat().st_mtime < checkpoint.stat().st_mtime
    )
    if fresh:
        command = _command("bnn_hw.train.commands.export", "export", checkpoint=checkpoint, out=model_path)
        timings["export"] = _stage("export", command, stages, export_checkpoint, checkpoint, out=model_path)
    verify_json = out / Verify.FILE
    command = _command("bnn_hw.train.commands.verify", "verify", model=model_path, against=checkpoint, json=verify_json)
    timings["verify"] = _stage("verify", command, stages, _verify, model_path, checkpoint, json=verify_json)
    if rtl_stale(args, rtl_dir / Manifest.FILE, model_path):
        folding = {"pe": args.pe, "simd": args.simd}
        command = _command("bnn_hw.rtl.commands.rtl", "rtl", model=model_path, out=rtl_dir, **folding)
        timings["rtl"] = _stage("rtl", command, stages, generate_rtl, model_path, rtl_dir, **folding)
    # The simulation always runs (with this --images and --seed), so its report matches the RTL above.
    sim = {"model": model_path, "images": args.images, "simulator": args.simulator, "seed": args.seed}
    command = _command("bnn_hw.sim.commands.sim", "sim", build_dir=rtl_dir, **sim)
    timings["sim"] = _stage("sim", command, stages, _simulate, rtl_dir, **sim)
    bench_options = {"model": model_path, "quiet": True, "out": out / "bench" / BenchCpu.FILE}
    command = _command("bnn_hw.cuda_ref.commands.bench", "bench", target="cpu", **bench_options)
    timings["bench"] = _stage("bench cpu", command, stages, bench, "cpu", **bench_options)
    _record(out, stages, model_path)
    command = _command("bnn_hw.flow.report", "report", run_dir=out)
    timings["report"] = _stage("report", command, stages, write_report, out)
    _record(out, stages, model_path)
    _summary(out, timings)
    print(f"report           {out / 'report' / 'report.html'}")
    return 0


def _summary(out: Path, timings: dict[str, float]) -> None:
    verify = Verify.read(out / Verify.FILE)
    manifest = Manifest.read(out / "rtl" / Manifest.FILE)
    sim = SimReport.read(out / "rtl" / SimReport.FILE)
    print("\n=== summary")
    print(f"model            {out / 'model.bnn'}  hash {verify.model_hash[:16]}")
    print(
        f"accuracy         golden {100 * verify.golden_accuracy:.2f} %, PyTorch "
        f"{100 * verify.pytorch_accuracy:.2f} % on {verify.images:,} test images"
    )
    print(f"golden vs torch  {'bit-exact' if verify.bit_exact else 'MISMATCH'} on every layer")
    measured = sim.cycles_per_image
    print(
        f"hardware         {manifest.predicted.cycles_per_image} cycles/image predicted, "
        + (f"{measured:g} measured" if measured is not None else "not measured")
    )
    print(
        f"RTL simulation   {sim.images} images on {sim.simulator}, "
        f"{sim.mismatch_count} mismatches against {sim.reference}"
    )
    print("stage seconds    " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
