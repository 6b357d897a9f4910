"""`bnn-hw sweep model.bnn --pe 8,16,32 --simd 16,32,64`: the design space of one model.

Each (PE, SIMD) point is generated (`bnn-hw rtl`), synthesized (`bnn-hw synth`) and optionally simulated
(`bnn-hw sim`) in its own folder, as separate processes in parallel over the machine's cores. A point whose result
file exists is not redone, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from bnn_hw.errors import BnnError


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="the .bnn model")
    parser.add_argument("--pe", type=_int_list, default=[4, 8, 16, 32], help="PE values, e.g. 4,8,16,32")
    parser.add_argument("--simd", type=_int_list, default=[16, 32], help="SIMD values, e.g. 16,32,64")
    parser.add_argument("--target", default="xilinx", choices=["xilinx", "ice40", "ecp5"])
    parser.add_argument("-o", "--out", type=Path, default=Path("runs/sweep"), help="sweep folder")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel points (default: cores)")
    parser.add_argument("--simulate", type=int, default=0, metavar="N",
                        help="also simulate N test images per point (Verilator) and measure cycles/image")
    parser.add_argument("--clock-mhz", type=float, default=200.0,
                        help="clock assumed for images/s (labelled assumed; default 200)")


def _cli(*argv: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "bnn_hw", *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise BnnError(f"`bnn-hw {' '.join(argv)}` failed: {last}")


def _point(model: Path, pe: int, simd: int, args: argparse.Namespace) -> dict:
    folder = args.out / f"pe{pe}_simd{simd}"
    done = folder / "point.json"
    if done.is_file():
        return json.loads(done.read_text())
    _cli("rtl", str(model), "--pe", str(pe), "--simd", str(simd), "-o", str(folder))
    _cli("synth", str(folder), "--target", args.target)
    manifest = json.loads((folder / "manifest.json").read_text())
    synth_files = sorted(folder.glob("synth*.json"))
    if not synth_files:
        raise BnnError(f"{folder}: `bnn-hw synth` wrote no synth*.json")
    synth = json.loads(synth_files[0].read_text())
    point = {"pe": pe, "simd": simd, "lanes": pe * simd, "target": args.target,
             "cycles_per_image": manifest["predicted"]["cycles_per_image"], "luts": synth["total"].get("luts"),
             "ffs": synth["total"].get("ffs"), "brams": synth["total"].get("bram36"),
             "fmax_mhz": (synth.get("pnr") or {}).get("fmax_mhz"), "measured_cycles_per_image": None}
    if args.simulate:
        _cli("sim", str(folder), "--model", str(model), "--images", str(args.simulate), "--simulator", "verilator")
        sim = json.loads((folder / "sim_report.json").read_text())
        point["measured_cycles_per_image"] = sim.get("cycles_per_image")
        point["sim_mismatches"] = sim.get("mismatches_total", sim.get("mismatches"))
    done.write_text(json.dumps(point, indent=2))
    return point


def pareto_front(points: list[dict]) -> list[dict]:
    """Points that no other point beats on both LUTs (fewer) and cycles per image (fewer)."""
    front = []
    for p in points:
        dominated = any(q["luts"] <= p["luts"] and q["cycles_per_image"] <= p["cycles_per_image"]
                        and (q["luts"], q["cycles_per_image"]) != (p["luts"], p["cycles_per_image"]) for q in points)
        if not dominated:
            front.append(p)
    return sorted(front, key=lambda p: p["luts"])


def _plot(points: list[dict], front: list[dict], clock_mhz: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ips = [clock_mhz * 1e6 / p["cycles_per_image"] for p in points]
    ax.scatter([p["luts"] for p in points], ips, label="design points")
    for p, y in zip(points, ips, strict=True):
        ax.annotate(f"{p['pe']}x{p['simd']}", (p["luts"], y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.plot([p["luts"] for p in front], [clock_mhz * 1e6 / p["cycles_per_image"] for p in front], "r-",
            label="Pareto front")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("LUTs (Yosys)")
    ax.set_ylabel(f"images/s at {clock_mhz:g} MHz (assumed clock)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from bnn_hw.model import load_model

    model = load_model(args.model)  # fail early, with the loader's clear message
    if args.jobs < 1:
        raise BnnError("--jobs must be >= 1")
    args.out.mkdir(parents=True, exist_ok=True)
    grid = [(pe, simd) for pe in args.pe for simd in args.simd]
    points, failures = [], []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(_point, args.model, pe, simd, args): (pe, simd) for pe, simd in grid}
        for fut in tqdm(as_completed(futures), total=len(futures), desc="sweep", unit="point"):
            try:
                points.append(fut.result())
            except BnnError as exc:
                failures.append(f"PE={futures[fut][0]} SIMD={futures[fut][1]}: {exc}")
    if not points:
        raise BnnError("no point of the sweep succeeded: " + "; ".join(failures[:3]))
    points.sort(key=lambda p: (p["pe"], p["simd"]))
    front = pareto_front(points)
    summary = {"model": str(args.model), "model_hash": model.hash, "target": args.target,
               "clock_mhz_assumed": args.clock_mhz, "points": points, "pareto": [(p["pe"], p["simd"]) for p in front],
               "failures": failures}
    (args.out / "sweep.json").write_text(json.dumps(summary, indent=2))
    _plot(points, front, args.clock_mhz, args.out / "pareto.png")
    print(f"{'PE':>4} {'SIMD':>5} {'lanes':>6} {'cycles/img':>10} {'img/s@' + format(args.clock_mhz, 'g') + 'MHz':>14} "
          f"{'LUTs':>8} {'FFs':>8} {'BRAM':>5}  pareto")
    for p in points:
        ips = args.clock_mhz * 1e6 / p["cycles_per_image"]
        mark = "*" if (p["pe"], p["simd"]) in summary["pareto"] else ""
        print(f"{p['pe']:>4} {p['simd']:>5} {p['lanes']:>6} {p['cycles_per_image']:>10,} {ips:>14,.0f} "
              f"{p['luts'] or 0:>8,} {p['ffs'] or 0:>8,} {p['brams'] or 0:>5}  {mark}")
    for f in failures:
        print(f"failed: {f}")
    print(f"wrote {args.out / 'sweep.json'} and {args.out / 'pareto.png'}")
    return 1 if failures else 0
