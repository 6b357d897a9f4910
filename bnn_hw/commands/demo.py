"""`bnn-hw demo`: the whole chain on Fashion-MNIST, each stage through its own subcommand.

train -> export -> verify (golden vs PyTorch) -> rtl -> sim (bit for bit) -> summary. A stage whose output already
exists for the same inputs is skipped, so running the demo again is quick.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bnn_hw.errors import BnnError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder (default runs/demo)")
    parser.add_argument("--preset", default="mlp", help="model preset (default mlp)")
    parser.add_argument("--dataset", default="fashion-mnist", help="data set (default fashion-mnist)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (default 3: about 86 %%)")
    parser.add_argument("--pe", default="32", help="processing elements per layer (default 32)")
    parser.add_argument("--simd", default="32", help="SIMD lanes per PE (default 32)")
    parser.add_argument("--images", type=int, default=1000, help="test images simulated in RTL (default 1000)")
    parser.add_argument("--simulator", default="verilator", choices=["verilator", "icarus"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="redo every stage even if its output exists")


def _stage(title: str, argv: list[str]) -> float:
    from bnn_hw.cli import main

    print(f"\n=== {title}: bnn-hw {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    code = main(argv)
    if code != 0:
        raise BnnError(f"stage '{title}' failed (exit {code}); rerun `bnn-hw {' '.join(argv)}` to see it alone")
    return time.perf_counter() - start


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    train_dir, model_path, rtl_dir = out / "train", out / "model.bnn", out / "rtl"
    timings: dict[str, float] = {}
    checkpoint = train_dir / "checkpoint.pt"
    metrics_path = train_dir / "metrics.json"
    trained = 0
    if metrics_path.exists() and not args.force:
        trained = len(json.loads(metrics_path.read_text()).get("epochs", []))
    if trained < args.epochs or not checkpoint.exists():
        argv = ["train", "--preset", args.preset, "--dataset", args.dataset, "--epochs", str(args.epochs),
                "--seed", str(args.seed), "--out", str(train_dir)]
        if checkpoint.exists() and not args.force:
            argv.append("--resume")
        timings["train"] = _stage("train", argv)
    fresh = args.force or not model_path.exists() or model_path.stat().st_mtime < checkpoint.stat().st_mtime
    if fresh:
        timings["export"] = _stage("export", ["export", str(checkpoint), "-o", str(model_path)])
    timings["verify"] = _stage("verify", ["verify", str(model_path), "--against", str(checkpoint),
                                          "--json", str(out / "verify.json")])
    manifest = rtl_dir / "manifest.json"
    if args.force or fresh or not manifest.exists() or \
            json.loads(manifest.read_text())["generator"]["args"].get("requested_pe") != args.pe:
        timings["rtl"] = _stage("rtl", ["rtl", str(model_path), "--pe", args.pe, "--simd", args.simd,
                                        "-o", str(rtl_dir)])
    timings["sim"] = _stage("sim", ["sim", str(rtl_dir), "--model", str(model_path), "--images", str(args.images),
                                    "--simulator", args.simulator, "--seed", str(args.seed)])
    timings["bench"] = _stage("bench cpu", ["bench", "cpu", "--model", str(model_path), "--quiet",
                                            "-o", str(out / "bench" / "cpu.json")])
    timings["report"] = _stage("report", ["report", str(out)])
    _summary(out, timings)
    print(f"report           {out / 'report' / 'report.html'}")
    return 0


def _summary(out: Path, timings: dict[str, float]) -> None:
    verify = json.loads((out / "verify.json").read_text())
    manifest = json.loads((out / "rtl" / "manifest.json").read_text())
    sim = json.loads((out / "rtl" / "sim_report.json").read_text())
    print("\n=== summary")
    print(f"model            {out / 'model.bnn'}  hash {verify['model_hash'][:16]}")
    print(f"accuracy         golden {100 * verify['golden_accuracy']:.2f} %, PyTorch "
          f"{100 * verify['pytorch_accuracy']:.2f} % on {verify['images']:,} test images")
    exact = all(r["agree"] == r["total"] for r in verify["layers"]) and verify["classes_agree"] == verify["images"]
    print(f"golden vs torch  {'bit-exact' if exact else 'MISMATCH'} on every layer")
    print(f"hardware         {manifest['predicted']['cycles_per_image']} cycles/image predicted, "
          f"{sim.get('cycles_per_image')} measured")
    print(f"RTL simulation   {sim.get('images')} images on {sim.get('simulator')}, "
          f"{sim.get('mismatches_total', sim.get('mismatches'))} mismatches against {sim.get('reference')}")
    print("stage seconds    " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
