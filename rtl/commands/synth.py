"""`bnn-hw synth`: synthesize a generated build folder with Yosys; resources per layer and in total (JSON + table)."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from pathlib import Path

from bnn_hw.errors import BnnError

_COLUMNS = {
    "xilinx": ["luts", "lutram", "ffs", "bram36", "carry", "muxes"],
    "ice40": ["luts", "ffs", "bram_cells", "carry"],
    "ecp5": ["luts", "lutram", "ffs", "bram_cells", "carry", "muxes"],
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("build", type=Path, help="folder written by `bnn-hw rtl` (with manifest.json)")
    parser.add_argument("--target", default="xilinx", help="xilinx (7-series, synth_xilinx), ice40 or ecp5")
    parser.add_argument(
        "--pnr", action="store_true", help="ice40 only: place and route with nextpnr-ice40 and report Fmax"
    )
    parser.add_argument("--device", default="hx8k", help="nextpnr-ice40 device for --pnr (default hx8k)")
    parser.add_argument(
        "--package",
        default="ct256",
        help="nextpnr-ice40 package for --pnr (default ct256, the hx8k package with the most pins)",
    )
    parser.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    parser.add_argument("-o", "--output", type=Path, default=None, help="JSON report (default BUILD/synth_TARGET.json)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or table")


def run(args: argparse.Namespace) -> int:
    from bnn_hw.rtl.synthesis import TARGETS, find_yosys, run_yosys

    if args.target not in TARGETS:
        raise BnnError(f"unknown --target {args.target!r}: choose one of {', '.join(TARGETS)}")
    if args.pnr and args.target != "ice40":
        raise BnnError(
            "--pnr is only available for --target ice40 (nextpnr-ice40); no place and route exists here "
            "for xilinx or ecp5"
        )
    manifest_path = args.build / "manifest.json"
    if not manifest_path.is_file():
        raise BnnError(
            f"{args.build}: no manifest.json here; generate the build with `bnn-hw rtl MODEL -o {args.build}` first"
        )
    try:
        man = json.loads(manifest_path.read_text())
        top = man["top"]
        sources = [args.build / v for v in man["verilog"]]
        layers = man["layers"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BnnError(f"{manifest_path}: not a bnn-hw rtl manifest ({exc})") from None
    missing = [s for s in sources if not s.is_file()]
    if missing:
        raise BnnError(f"{missing[0]}: listed in the manifest but missing; rerun `bnn-hw rtl`")
    find_yosys()
    # Each layer engine and, inside it, its PE array stay separate modules (everything within them is flattened):
    # per-layer and per-array numbers. (Amaranth-built heaps map worse when flattened into an engine -- a 16 x 64
    # engine: 1580 LUTs kept, 2068 flattened; the Verilog heap modules of generated designs are not affected.)
    keep = [f"{top}.layer{d['index']}{sub}" for d in layers for sub in ("", ".array")]
    netlist = args.build / "netlist_ice40.json" if args.pnr else None
    rep = run_yosys(
        sources, top, args.target, args.build, keep=keep, progress=not args.quiet, timeout=args.timeout, netlist=netlist
    )
    per_layer = {}
    for d in layers:
        name = f"{top}.layer{d['index']}"
        counts = _add_counts(rep["modules"].get(name, {}), rep["modules"].get(f"{name}.array", {}))
        per_layer[str(d["index"])] = {
            **counts,
            "lanes": d["PE"] * d["SIMD"],
            "luts_per_lane": round(counts.get("luts", 0) / (d["PE"] * d["SIMD"]), 3),
        }
    glue = rep["modules"].get(top, {})
    report = {
        "target": args.target,
        "top": top,
        "model_hash": man.get("model_hash"),
        "generator_args": man.get("generator", {}).get("args"),
        "yosys": _yosys_version(),
        "check": "check -assert passed (no latches, no combinational loops)",
        "layers": per_layer,
        "glue": glue,
        "total": rep["total"],
        "log": rep["log"],
    }
    if args.pnr:
        report["pnr"] = _nextpnr(netlist, args.device, args.package, args.build, args.timeout)
        io_bits = sum(int(p.get("width", 1)) for p in man.get("ports", {}).values())
        report["pnr"]["io_bits"] = io_bits
        if report["pnr"]["fmax_mhz"] is None and "sb_io" in report["pnr"]["status"]:
            report["pnr"]["status"] += (
                f" -- the top has {io_bits} I/O bits, more than the {args.package} package "
                f"has pins; use a smaller --pixels-per-beat or fewer classes for an Fmax run"
            )
    out = args.output or args.build / f"synth_{args.target}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    if not args.quiet:
        cols = _COLUMNS[args.target]
        widths = [max(10, len(col) + 2) for col in cols]
        print(f"{'part':<10}" + "".join(f"{col:>{w}}" for col, w in zip(cols, widths, strict=True)))
        for name, c in [*((f"layer {k}", v) for k, v in per_layer.items()), ("glue", glue), ("total", rep["total"])]:
            print(f"{name:<10}" + "".join(f"{c.get(col, 0):>{w}g}" for col, w in zip(cols, widths, strict=True)))
        if args.pnr and report["pnr"]["fmax_mhz"] is not None:
            print(f"nextpnr-ice40 --{args.device}: Fmax {report['pnr']['fmax_mhz']} MHz ({report['pnr']['status']})")
        print(f"report: {out}")
    if args.pnr and report["pnr"]["fmax_mhz"] is None:  # asked for, not obtained: the synthesis report stands
        raise BnnError(f"place and route gave no Fmax ({report['pnr']['status']}); the synthesis report is in {out}")
    return 0


def _yosys_version() -> str:
    try:
        return subprocess.run(["yosys", "-V"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _add_counts(a: dict, b: dict) -> dict:
    return {k: a.get(k, 0) + b.get(k, 0) for k in {**a, **b}}


def _nextpnr(netlist: Path, device: str, package: str, build: Path, timeout: float | None) -> dict:
    exe = shutil.which("nextpnr-ice40")
    if exe is None:
        raise BnnError(
            "nextpnr-ice40 not found on PATH: install it (Debian: `apt-get install nextpnr-ice40`) or drop --pnr"
        )
    log = build / "nextpnr_ice40.log"
    cmd = [
        exe,
        f"--{device}",
        "--package",
        package,
        "--json",
        str(netlist),
        "--pcf-allow-unconstrained",
        "--freq",
        "12",
        "--log",
        str(log),
        "--quiet",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BnnError(f"nextpnr-ice40 did not finish within {timeout} s") from None
    text = log.read_text() if log.exists() else proc.stderr
    fmax = re.findall(r"Max frequency for clock\s+'[^']*':\s*([0-9.]+) MHz", text)
    if proc.returncode != 0 and not fmax:
        last = next((ln for ln in reversed(text.splitlines()) if "ERROR" in ln), "see log")
        return {
            "status": f"failed: {last.strip()}",
            "fmax_mhz": None,
            "log": str(log),
            "device": device,
            "package": package,
        }
    util = re.findall(r"Info:\s+ICESTORM_LC:\s+(\d+)/\s*(\d+)", text)
    return {
        "status": "routed",
        "fmax_mhz": float(fmax[-1]) if fmax else None,
        "device": device,
        "package": package,
        "logic_cells": f"{util[-1][0]}/{util[-1][1]}" if util else None,
        "log": str(log),
    }
