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
    build = work / "build"
    env = dict(os.environ)
    if not args.warm_cache:
        env["BNN_HW_CACHE"] = str(work / "cache")
    exe = [sys.executable, "-m", "bnn_hw"]
    rtl = [*exe, "rtl", str(args.model), "-o", str(build), "-q"]
    if args.pe:
        rtl += ["--pe", args.pe]
    if args.simd:
        rtl += ["--simd", args.simd]
    t0 = time.perf_counter()
    subprocess.run(rtl, check=True, cwd=ROOT, env=env)
    t1 = time.perf_counter()
    sim = subprocess.run([*exe, "sim", str(build), "--model", str(args.model), "--images", str(args.images),
                          "--simulator", args.simulator], cwd=ROOT, env=env)
    t2 = time.perf_counter()
    report = json.loads((build / "sim_report.json").read_text())
    manifest = json.loads((build / "manifest.json").read_text())
    m = report["metrics"]
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()}-core {platform.machine()} {platform.system()}, load {os.getloadavg()[0]:.1f}",
        "model": str(args.model), "model_hash": report["model_hash"][:16],
        "folding": [(ly["PE"], ly["SIMD"]) for ly in manifest["layers"]],
        "simulator": report["simulator_version"], "images": args.images, "passed": report["passed"],
        "exit_code": sim.returncode, "mismatches": report["mismatch_count"], "reference": report["reference"],
        "rtl_seconds": round(t1 - t0, 1), "sim_command_seconds": round(t2 - t1, 1),
        "sim_build_seconds": round(report["build_seconds"], 1),
        "sim_run_seconds": round(report["simulation_seconds"], 1),
        "cycles_per_image": m.get("cycles_per_image"),
        "predicted_cycles_per_image": m.get("predicted_cycles_per_image"),
        "latency_cycles": m.get("latency_cycles"), "predicted_latency_cycles": m.get("predicted_latency_cycles"),
        "bottleneck_utilization": m.get("utilization", {}).get("bottleneck_utilization"),
        "stream_cycles_per_image": m.get("stream_cycles_per_image"),
        "simulated_cycles_per_second": round(sum(p["cycles"] for p in report["phases"]) /
                                             max(report["simulation_seconds"], 1e-9)),
    }
    line = json.dumps(result)
    print(line)
    if args.out:
        with args.out.open("a") as f:
            f.write(line + "\n")
    return sim.returncode


if __name__ == "__main__":
    sys.exit(main())
