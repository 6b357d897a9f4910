"""Benchmark: wall time of `bnn-hw sim` on generated RTL, build included, and measured vs predicted cycles/image.

Example (the numbers in benchmarks/RESULTS.md, "## Simulation"):

    .venv/bin/python benchmarks/sim_throughput.py runs/quick-mlp/model.bnn --images 10000 --simulator verilator
    .venv/bin/python benchmarks/sim_throughput.py runs/quick-mlp/model.bnn --images 10 --simulator icarus

Each run generates the RTL into a fresh folder and uses a fresh cache folder (BNN_HW_CACHE), so the Verilator build
is measured cold (model C++ and Verilator's runtime objects both compiled). Prints one JSON line and appends it to
--out when given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bnn_hw.artifacts import Manifest, SimReport

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--simulator", choices=("icarus", "verilator"), default="verilator")
    ap.add_argument("--pe", default=None, help="passed to bnn-hw rtl (default: its default)")
    ap.add_argument("--simd", default=None)
    ap.add_argument("--work", type=Path, default=None, help="keep the build here (default: a temporary folder)")
    ap.add_argument("--warm-cache", action="store_true", help="keep the user's cache (Verilator runtime objects)")
    ap.add_argument("--out", type=Path, default=None, help="append the JSON result to this file")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="bnn-sim-bench-")
    work = args.work or Path(tmp.name)
    rtl_options = [*(["--pe", args.pe] if args.pe else []), *(["--simd", args.simd] if args.simd else [])]
    returncode, result, _ = measure(
        args.model, args.images, args.simulator, rtl_options, work, cold=not args.warm_cache
    )
    emit(result, args.out)
    return returncode


def measure(
    model: Path, images: int, simulator: str, rtl_options: list[str], work: Path, cold: bool
) -> tuple[int, dict, dict]:
    """`bnn-hw rtl MODEL RTL_OPTIONS` into WORK/build, then `bnn-hw sim` on it: (sim exit code, the JSON record,
    sim_report.json). `cold`: a fresh cache folder, so Verilator's runtime objects are compiled too."""
    build = work / "build"
    env = dict(os.environ)
    if cold:
        env["BNN_HW_CACHE"] = str(work / "cache")
    exe = [sys.executable, "-m", "bnn_hw"]
    t0 = time.perf_counter()
    subprocess.run([*exe, "rtl", str(model), "-o", str(build), "-q", *rtl_options], check=True, cwd=ROOT, env=env)
    t1 = time.perf_counter()
    sim = subprocess.run(
        [*exe, "sim", str(build), "--model", str(model), "--images", str(images), "--simulator", simulator],
        cwd=ROOT,
        env=env,
    )
    t2 = time.perf_counter()
    report = SimReport.read(build / "sim_report.json").to_json()
    manifest = Manifest.read(build / "manifest.json").to_json()
    m = report["metrics"]
    simulated = sum(p["cycles"] for p in report["phases"])
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()}-core {platform.machine()} {platform.system()}, load {os.getloadavg()[0]:.1f}",
        "model": str(model),
        "model_hash": report["model_hash"][:16],
        "folding": [(ly["PE"], ly["SIMD"]) for ly in manifest["layers"]],
        "simulator": report["simulator_version"],
        "images": images,
        "passed": report["passed"],
        "exit_code": sim.returncode,
        "mismatches": report["mismatch_count"],
        "reference": report["reference"],
        "rtl_seconds": round(t1 - t0, 1),
        "sim_command_seconds": round(t2 - t1, 1),
        "total_seconds": round(t2 - t0, 1),
        "sim_build_seconds": round(report["build_seconds"], 1),
        "sim_run_seconds": round(report["simulation_seconds"], 1),
        "cycles_per_image": m.get("cycles_per_image"),
        "predicted_cycles_per_image": m.get("predicted_cycles_per_image"),
        "latency_cycles": m.get("latency_cycles"),
        "predicted_latency_cycles": m.get("predicted_latency_cycles"),
        "bottleneck_utilization": m.get("utilization", {}).get("bottleneck_utilization"),
        "stream_cycles_per_image": m.get("stream_cycles_per_image"),
        "simulated_cycles": simulated,
        "simulated_cycles_per_second": round(simulated / max(report["simulation_seconds"], 1e-9)),
    }
    return sim.returncode, result, report


def emit(result: dict, out: Path | None) -> None:
    """Print the record as one JSON line and append it to `out` when given."""
    line = json.dumps(result)
    print(line)
    if out:
        with out.open("a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    sys.exit(main())
