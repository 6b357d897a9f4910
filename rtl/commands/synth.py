"""`bnn-hw synth`: synthesize a generated build folder with Yosys (resources per layer and in total) and, with --pnr,
place and route it (nextpnr-ecp5 or nextpnr-ice40) for a measured Fmax and images/s."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bnn_hw import fileio
from bnn_hw.argtypes import nonneg_int, positive_float, positive_int
from bnn_hw.artifacts import SynthReport
from bnn_hw.errors import BnnError, UsageError

_COLUMNS = {
    "xilinx": ["luts", "lutram", "ffs", "bram36", "carry", "muxes"],
    "ice40": ["luts", "ffs", "bram_cells", "carry"],
    "ecp5": ["luts", "lutram", "ffs", "bram_cells", "carry", "muxes"],
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("build", type=Path, help="folder written by `bnn-hw rtl` (with manifest.json)")
    parser.add_argument(
        "--target", default="xilinx", help="xilinx (7-series, synth_xilinx), ice40 or ecp5 (default: xilinx)"
    )
    parser.add_argument(
        "--flow",
        default="full",
        choices=["full", "fast"],
        help="full (default): the Verilog as generated; fast: memory initialisers via $readmemh and weight "
        "block-RAM contents zeroed just before mapping (same cells, minutes faster; docs/rtl.md)",
    )
    pnr = parser.add_argument_group("place and route (--target ecp5 or ice40)")
    pnr.add_argument(
        "--pnr",
        action="store_true",
        help="also place and route (nextpnr-ecp5 / nextpnr-ice40): Fmax, critical path, images/s",
    )
    pnr.add_argument("--device", default=None, help="ecp5: 25k, 45k or 85k (default 85k); ice40: hx1k, hx8k, up5k")
    pnr.add_argument(
        "--package", default=None, help="package (default: ecp5 CABGA381, ice40 hx8k ct256 / hx1k tq144 / up5k sg48)"
    )
    pnr.add_argument(
        "--speed", type=positive_int, default=None, help="ecp5 speed grade 6, 7 or 8 (default 6, nextpnr's)"
    )
    pnr.add_argument(
        "--freq",
        type=positive_float,
        default=None,
        help="target clock in MHz for timing-driven placement (default: ecp5 150, ice40 50)",
    )
    pnr.add_argument(
        "--io",
        default="auto",
        choices=["auto", "wrapper", "direct"],
        help="auto (default): the top's own ports when they fit the package's pins, else a pin wrapper "
        "(serial-fed inputs, XOR-reduced outputs; docs/rtl.md)",
    )
    pnr.add_argument("--seed", type=nonneg_int, default=1, help="nextpnr placement seed (default 1)")
    pnr.add_argument(
        "--router", default=None, choices=["router1", "router2"], help="nextpnr router (default: ecp5 router2)"
    )
    pnr.add_argument(
        "--pnr-timeout",
        type=positive_float,
        default=3600.0,
        help="give up on place and route after this many seconds (default 3600)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=None,
        metavar="S",
        help="give up on Yosys after S seconds (default: no limit)",
    )
    parser.add_argument(
        "-o", "--out", type=Path, default=None, help="JSON report to write (default: BUILD/synth_TARGET.json)"
    )
    parser.add_argument("--output", dest="out", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress or table")


def run(args: argparse.Namespace) -> int:
    from bnn_hw.rtl import pnr as pnr_flow
    from bnn_hw.rtl.synthesis import TARGETS, find_yosys, read_manifest, synthesize

    if args.target not in TARGETS:
        raise UsageError(f"unknown --target {args.target!r}: choose one of {', '.join(TARGETS)}")
    if args.pnr and args.target not in ("ecp5", "ice40"):
        raise UsageError(
            "--pnr needs --target ecp5 (nextpnr-ecp5) or --target ice40 (nextpnr-ice40); "
            "no open place and route exists for xilinx"
        )
    given = [
        o for o, v in (("--device", args.device), ("--package", args.package), ("--speed", args.speed)) if v is not None
    ]
    if given and not args.pnr:
        raise UsageError(f"{given[0]} only applies with --pnr")
    man = read_manifest(args.build)
    find_yosys()
    out = args.out or args.build / f"synth_{args.target}.json"
    fileio.writable_file(out)  # before minutes of synthesis
    fileio.writable_dir(args.build, what="build folder")  # Yosys writes its script, log and netlist there
    progress = not args.quiet
    if args.pnr:
        report = pnr_flow.place_and_route(
            args.build,
            args.target,
            device_name=args.device,
            package=args.package,
            speed=args.speed,
            freq_mhz=args.freq,
            io=args.io,
            seed=args.seed,
            router=args.router,
            flow=args.flow,
            synth_timeout=args.timeout,
            timeout=args.pnr_timeout,
            progress=progress,
        )
    else:
        report = synthesize(
            args.build, args.target, flow=args.flow, manifest=man, timeout=args.timeout, progress=progress
        )
    pnr = report.get("pnr")
    if pnr is not None and pnr.get("fmax_mhz") is None and pnr.get("io") == "direct" and "io" in pnr["status"].lower():
        pnr["status"] += (
            f" -- I/O placement failed with the top's {pnr['io_bits']} I/O bits on the {pnr['package']} package's "
            f"{pnr['package_pins']} pins; use --io wrapper (4 pins)"
        )
    SynthReport.of(report).write(out)
    if not args.quiet:
        _print(report, args.target, out)
    if pnr is not None and pnr.get("fmax_mhz") is None:  # asked for, not obtained: the synthesis report stands
        raise BnnError(f"place and route gave no Fmax ({pnr['status']}); the synthesis report is in {out}")
    return 0


def _print(report: dict, target: str, out: Path) -> None:
    cols = _COLUMNS[target]
    widths = [max(10, len(col) + 2) for col in cols]
    print(f"{'part':<10}" + "".join(f"{col:>{w}}" for col, w in zip(cols, widths, strict=True)))
    rows = [*((f"layer {k}", v) for k, v in report["layers"].items()), ("glue", report["glue"])]
    for name, c in [*rows, ("total", report["total"])]:
        print(f"{name:<10}" + "".join(f"{c.get(col, 0):>{w}g}" for col, w in zip(cols, widths, strict=True)))
    pnr = report.get("pnr")
    if pnr and pnr.get("fmax_mhz") is not None:
        frac = pnr["fraction_of_device"]
        print(
            f"{pnr['device']} {pnr['package']}"
            + (f" speed {pnr['speed_grade']}" if pnr.get("speed_grade") else "")
            + f": LUTs {frac['luts']:.1%}, FFs {frac['ffs']:.1%}, block RAM {frac['brams']:.1%} of the device; "
            f"I/O: {pnr['io']}"
        )
        print(f"Fmax {pnr['fmax_mhz']:g} MHz post-route ({pnr['status']}, target {pnr['target_mhz']:g} MHz)")
        crit = pnr.get("critical_path")
        if crit:
            print(
                f"critical path {crit['delay_ns']:g} ns ({crit['logic_ns']:g} logic + {crit['routing_ns']:g} routing): "
                f"{crit['start_component']} -> {' -> '.join(crit['through'][1:-1]) or '.'} -> {crit['end_component']}"
            )
        if pnr.get("images_per_s"):
            print(
                f"{pnr['images_per_s']:,.0f} images/s = {pnr['fmax_mhz']:g} MHz / {pnr['cycles_per_image']:,} "
                "cycles per image (clock measured by place and route)"
            )
    print(f"report: {out}", file=sys.stdout)
