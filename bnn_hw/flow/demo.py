"""`bnn-hw demo`: the whole chain on Fashion-MNIST, each stage through its own subcommand.

train -> export -> verify (golden vs PyTorch) -> rtl -> sim (bit for bit) -> summary. A stage whose output already
exists for the same inputs is skipped, so running the demo again is quick.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bnn_hw import fileio
from bnn_hw.argtypes import nonneg_int, positive_int
from bnn_hw.artifacts import Manifest, Metrics, SimReport, Verify
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


def _stage(title: str, argv: list[str], stages: list[dict] | None = None) -> float:
    import shlex

    from bnn_hw.cli import main

    command = shlex.join(["bnn-hw", *argv])
    print(f"\n=== {title}: {command}", flush=True)
    start = time.perf_counter()
    code = main(argv)
    seconds = time.perf_counter() - start
    if stages is not None:  # build.json's record of the exact commands (the report's reproducibility block)
        stages.append(
            {
                "name": title,
                "command": command,
                "status": "done" if code == 0 else f"failed: exit {code}",
                "seconds": round(seconds, 2),
            }
        )
    if code != 0:
        raise BnnError(f"stage '{title}' failed (exit {code}); rerun `bnn-hw {' '.join(argv)}` to see it alone")
    return seconds


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


def train_plan(args: argparse.Namespace, metrics_path: Path, checkpoint: Path) -> list[str] | None:
    """The `bnn-hw train` arguments to run, or None when the checkpoint already matches the options.

    A checkpoint is reused only if it was trained with the same preset, data set and seed for exactly --epochs
    epochs; fewer epochs of the same run are continued with --resume, anything else is trained from scratch."""
    argv = [
        "train",
        "--preset",
        args.preset,
        "--dataset",
        args.dataset,
        "--epochs",
        str(args.epochs),
        "--seed",
        str(args.seed),
        "--out",
        str(metrics_path.parent),
    ]
    if args.force or not checkpoint.exists() or not metrics_path.exists():
        return argv
    metrics = Metrics.read(metrics_path)
    cfg = metrics.train
    same_run = (cfg["preset"], cfg["dataset"], cfg["seed"]) == (args.preset, args.dataset, args.seed)
    trained = len(metrics.epochs)
    if same_run and trained == args.epochs:
        return None
    return argv + ["--resume"] if same_run and trained < args.epochs else argv


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
    validate(args)
    out: Path = fileio.writable_dir(args.out)
    train_dir, model_path, rtl_dir = out / "train", out / "model.bnn", out / "rtl"
    timings: dict[str, float] = {}
    stages: list[dict] = []
    checkpoint = train_dir / "checkpoint.pt"
    argv = train_plan(args, train_dir / "metrics.json", checkpoint)
    if argv is not None:
        if "--resume" not in argv and checkpoint.exists():  # `bnn-hw train` will not overwrite a checkpoint
            print(f"options changed (or --force): training again from scratch; removing {checkpoint}")
            checkpoint.unlink()
        timings["train"] = _stage("train", argv, stages)
    fresh = (
        argv is not None
        or args.force
        or not model_path.exists()
        or model_path.stat().st_mtime < checkpoint.stat().st_mtime
    )
    if fresh:
        timings["export"] = _stage("export", ["export", str(checkpoint), "-o", str(model_path)], stages)
    timings["verify"] = _stage(
        "verify",
        ["verify", str(model_path), "--against", str(checkpoint), "--json", str(out / "verify.json")],
        stages,
    )
    if rtl_stale(args, rtl_dir / "manifest.json", model_path):
        timings["rtl"] = _stage(
            "rtl", ["rtl", str(model_path), "--pe", args.pe, "--simd", args.simd, "-o", str(rtl_dir)], stages
        )
    # The simulation always runs (with this --images and --seed), so its report matches the RTL above.
    timings["sim"] = _stage(
        "sim",
        [
            "sim",
            str(rtl_dir),
            "--model",
            str(model_path),
            "--images",
            str(args.images),
            "--simulator",
            args.simulator,
            "--seed",
            str(args.seed),
        ],
        stages,
    )
    timings["bench"] = _stage(
        "bench cpu",
        ["bench", "cpu", "--model", str(model_path), "--quiet", "-o", str(out / "bench" / "cpu.json")],
        stages,
    )
    _record(out, stages, model_path)
    timings["report"] = _stage("report", ["report", str(out)], stages)
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
