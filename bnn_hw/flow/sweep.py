"""`bnn-hw sweep model.bnn --pe 8,16,32 --simd 16,32,64`: the design space of one model.

Each (PE, SIMD) point is generated (`bnn_hw.rtl.generate_rtl`), synthesized with Yosys and optionally simulated
(`bnn_hw.sim.simulate`) in its own folder `OUT/pe<P>_simd<S>`. Every point is a Dask task: on a LocalCluster of
`--jobs` worker processes (default: the machine's cores), or on a running cluster with `--scheduler
tcp://HOST:PORT` (docs/cluster.md; the sweep folder must be on a file system the workers share). A point whose
`point.json` exists and matches the request (model, target, flow, simulation) is not resubmitted, so an interrupted
sweep resumes where it stopped; the client writes each `point.json` when its task returns. A point whose worker dies
is retried once elsewhere.
The result is `OUT/sweep.json`, a Markdown table `OUT/sweep.md` and a
Pareto plot `OUT/pareto.png` of throughput against LUTs.

Synthesis is the project's one Yosys flow (`bnn_hw.rtl.synthesis.synthesize`, the same as `bnn-hw synth`), in
its `fast` variant by default (`--flow full` for the Verilog as generated; the two differ only in the glue's ABC
noise, see that module). With `--pnr` (targets ecp5 and ice40) every point is also placed and routed
(`bnn_hw.rtl.pnr.place_and_route`): its Fmax is measured, and images/s and the Pareto front use it. Without
`--pnr`, images/s use `--clock-mhz`, labelled "assumed" everywhere it appears. Compare points within one flow.
`tests/test_sweep.py` compares the two flows.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path

from bnn_hw import fileio
from bnn_hw.argtypes import nonneg_int, positive_float, positive_int
from bnn_hw.artifacts import Manifest, Point, PointRequest, Sweep, SynthReport
from bnn_hw.cluster import as_completed, dask_client, require_on_workers
from bnn_hw.errors import BnnError

TARGETS = ("xilinx", "ice40", "ecp5")
FLOWS = ("fast", "full")
POINT_VERSION = 4  # 4: one Yosys flow with `bnn-hw synth`; optional place and route
# Block RAM per synthesis target: its count's key in synth_<target>.json, its unit and the unit's size.
BRAM = {
    "xilinx": ("bram36", "RAMB36 equivalents", "36 kbit"),
    "ice40": ("bram_cells", "SB_RAM40_4K", "4 kbit"),
    "ecp5": ("bram_cells", "DP16KD", "18 kbit"),
}


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return sorted(set(values))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="the .bnn model")
    parser.add_argument(
        "--pe",
        type=_int_list,
        default=[4, 8, 16, 32],
        help="PE values, e.g. 4,8,16,32 (each applied to every layer, capped per layer)",
    )
    parser.add_argument("--simd", type=_int_list, default=[16, 32], help="SIMD values, e.g. 16,32,64")
    parser.add_argument("--target", default="xilinx", choices=TARGETS, help="Yosys synthesis target")
    parser.add_argument(
        "--flow",
        default="fast",
        choices=FLOWS,
        help="fast: weight memories' block-RAM contents zeroed just before mapping (same resources, much "
        "faster; docs/rtl.md); full: the Verilog as generated (default: fast)",
    )
    parser.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        help="sweep folder; an existing sweep there is continued (default: runs/sweep/MODEL-HASH, one per model)",
    )
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=os.cpu_count() or 1,
        help="worker processes of the local Dask cluster (default: the CPU cores); ignored with --scheduler",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=None,
        metavar="S",
        help="give up on a point's synthesis after S seconds (default: no limit)",
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the points on this Dask scheduler (tcp://HOST:PORT) instead of a local cluster (default: local)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="local cluster of worker threads in this process instead of processes (debugging)",
    )
    parser.add_argument(
        "--simulate",
        type=nonneg_int,
        default=0,
        metavar="N",
        help="also simulate N test images per point (Verilator) and measure cycles/image (default: 0, none)",
    )
    parser.add_argument(
        "--random-images",
        action="store_true",
        help="with --simulate: seeded random images instead of the model's data set",
    )
    parser.add_argument(
        "--clock-mhz",
        type=positive_float,
        default=200.0,
        help="without --pnr: clock assumed for images/s, labelled assumed (default: 200)",
    )
    pnr = parser.add_argument_group("place and route (--target ecp5 or ice40)")
    pnr.add_argument("--pnr", action="store_true", help="place and route every point: measured Fmax and images/s")
    pnr.add_argument("--device", default=None, help="as `bnn-hw synth --device` (default: ecp5 85k)")
    pnr.add_argument("--package", default=None, help="as `bnn-hw synth --package` (default: the device's)")
    pnr.add_argument("--speed", type=positive_int, default=None, help="ecp5 speed grade 6, 7 or 8 (default 6)")
    pnr.add_argument(
        "--freq", type=positive_float, default=None, help="target clock for placement, MHz (default: as synth)"
    )
    pnr.add_argument("--seed", type=nonneg_int, default=1, help="nextpnr seed (default 1)")
    pnr.add_argument(
        "--pnr-timeout",
        type=positive_float,
        default=3600.0,
        metavar="S",
        help="give up on a point's place and route after S seconds",
    )
    parser.add_argument("--redo", action="store_true", help="redo every point, even finished ones")


# ---------------------------------------------------------------------------------------------- one point


# Amaranth elaboration is pure Python (the GIL serialises it anyway) and not known to be thread-safe: with
# --in-process worker threads, one point generates its Verilog at a time. Worker processes each have their own.
_ELABORATE = threading.Lock()


def _request(model_hash: str, pe: int, simd: int, args: argparse.Namespace) -> dict:
    return {
        "version": POINT_VERSION,
        "model_hash": model_hash,
        "pe": pe,
        "simd": simd,
        "target": args.target,
        "flow": args.flow,
        "simulate": args.simulate,
        "random_images": bool(args.simulate and getattr(args, "random_images", False)),
        "pnr": _pnr_request(args),
    }


def _pnr_request(args: argparse.Namespace) -> dict | None:
    if not getattr(args, "pnr", False):
        return None
    return {k: getattr(args, k, None) for k in ("device", "package", "speed", "freq", "seed")}


def _finished(done: Path, request: dict) -> dict | None:
    """The point's record (as a dict) when it exists and answers the same request, else None: the point is redone
    (a file of another bnn-hw version, or one cut short, is not an error here)."""
    try:
        point = Point.read(done)
    except BnnError:
        return None
    if point.request != PointRequest.from_json(request):
        return None
    return _plain_point(point)


def _plain_point(point: Point) -> dict:
    data = point.to_json()
    del data["schema"], data["version"]
    return data


def _point(model: Path, model_hash: str, pe: int, simd: int, args: argparse.Namespace) -> dict:
    folder = args.out / f"pe{pe}_simd{simd}"
    done = folder / "point.json"
    request = _request(model_hash, pe, simd, args)
    if not args.redo and (point := _finished(done, request)) is not None:
        return {**point, "reused": True}
    started = time.time()
    t0 = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / "manifest.json"
    manifest = None
    if manifest_path.is_file() and not args.redo:  # an interrupted point: keep its Verilog when it is the same
        try:
            manifest = Manifest.read(manifest_path).to_json()
        except BnnError:  # from another bnn-hw version: generate it again
            manifest = None
        if manifest is not None and (
            manifest["model_hash"] != model_hash
            or manifest["generator"]["args"]["requested_pe"] != str(pe)
            or manifest["generator"]["args"]["requested_simd"] != str(simd)
            or not all((folder / v).is_file() for v in manifest["verilog"])
        ):
            manifest = None
    if manifest is None:
        from bnn_hw.rtl import generate_rtl

        with _ELABORATE:
            generate_rtl(model, folder, pe=str(pe), simd=str(simd), quiet=True)
        manifest = Manifest.read(manifest_path).to_json()
    t1 = time.perf_counter()
    from bnn_hw.rtl.pnr import place_and_route
    from bnn_hw.rtl.synthesis import synthesize

    if getattr(args, "pnr", False):
        synth = place_and_route(
            folder,
            args.target,
            device_name=args.device,
            package=args.package,
            speed=args.speed,
            freq_mhz=args.freq,
            seed=args.seed,
            flow=args.flow,
            synth_timeout=args.timeout,
            timeout=args.pnr_timeout,
            progress=False,
        )
        if synth["pnr"].get("fmax_mhz") is None:
            raise BnnError(f"place and route gave no Fmax ({synth['pnr']['status']})")
    else:
        synth = synthesize(folder, args.target, flow=args.flow, manifest=manifest, timeout=args.timeout)
    SynthReport.of(synth).write(folder / SynthReport.file_name(args.target))
    t2 = time.perf_counter()
    total = synth["total"]
    cycles = manifest["predicted"]["cycles_per_image"]
    layers = manifest["layers"]
    point = {
        "request": request,
        "pe": pe,
        "simd": simd,
        "pe_per_layer": [d["PE"] for d in layers],
        "simd_per_layer": [d["SIMD"] for d in layers],
        "lanes": manifest["lanes_total"],
        "target": args.target,
        "flow": args.flow,
        "cycles_per_image": cycles,
        "latency_cycles": manifest["predicted"]["latency_cycles"],
        "limited_by": manifest["predicted"]["limited_by"],
        "luts": total.get("luts"),
        "lutram": total.get("lutram"),
        "ffs": total.get("ffs"),
        "brams": total.get(BRAM[args.target][0]),
        "bram_unit": BRAM[args.target][1],
        "carry": total.get("carry"),
        "memory_bits": manifest["memory_bits"]["total"],
        "luts_per_layer": {k: v.get("luts") for k, v in synth["layers"].items()},
        "measured_cycles_per_image": None,
        "sim_mismatches": None,
        "fmax_mhz": None,
        "images_per_s": None,
        "clock_source": None,
        "critical_path": None,
        "seconds": {"rtl": round(t1 - t0, 1), "synth": round(t2 - t1, 1)},
    }
    if synth.get("pnr") is not None:
        pnr = synth["pnr"]
        point["fmax_mhz"] = pnr["fmax_mhz"]
        point["images_per_s"] = pnr.get("images_per_s")
        point["clock_source"] = pnr.get("clock_source")
        point["critical_path"] = (pnr.get("critical_path") or {}).get("through")
    if args.simulate:
        from bnn_hw.sim import simulate

        sim = simulate(
            folder, model=model, images=args.simulate, simulator="verilator", random_images=bool(args.random_images)
        )
        point["measured_cycles_per_image"] = sim.cycles_per_image
        point["sim_mismatches"] = sim.mismatch_count
        point["seconds"]["sim"] = round(time.perf_counter() - t2, 1)
    point["started"] = started
    point["finished"] = time.time()
    from bnn_hw.cluster import worker_address

    point["worker"] = worker_address()
    return {**point, "reused": False}


def _write_point(out: Path, point: dict) -> None:
    """The client writes each finished point (atomically: an interrupted write never leaves a half point)."""
    done = out / f"pe{point['pe']}_simd{point['simd']}" / "point.json"
    done.parent.mkdir(parents=True, exist_ok=True)
    Point.of({k: v for k, v in point.items() if k != "reused"}).write(done)


def _tools_check(target: str, pnr_wanted: bool, simulate: bool):
    """What every worker must have, as a function the cluster runs on each (None: fit, else why not)."""

    def check() -> str | None:
        try:
            from bnn_hw.rtl.synthesis import find_yosys

            find_yosys()
            if pnr_wanted:
                from bnn_hw.rtl import pnr

                pnr.tool(target)
            if simulate:
                from bnn_hw.sim.tools import available

                ok, why = available("verilator")
                if not ok:
                    return why
        except BnnError as exc:
            return str(exc)
        except ImportError as exc:
            return f"bnn-hw's rtl/sim dependencies are missing ({exc})"
        return None

    return check


# ---------------------------------------------------------------------------------------------- summary


def throughput(p: dict, clock_mhz: float) -> float:
    """A point's images/s: from its measured Fmax when it was placed and routed, else at the assumed clock."""
    if p.get("images_per_s"):
        return float(p["images_per_s"])
    return clock_mhz * 1e6 / p["cycles_per_image"]


def pareto_front(points: list[dict], clock_mhz: float = 200.0) -> list[dict]:
    """Points that no other point beats on both LUTs (fewer) and images/s (more; at one assumed clock that is
    fewer cycles per image, with measured clocks each point's own Fmax counts)."""
    points = [p for p in points if p.get("luts") is not None]
    front = []
    for p in points:
        tp = throughput(p, clock_mhz)
        dominated = any(
            q["luts"] <= p["luts"]
            and throughput(q, clock_mhz) >= tp
            and (q["luts"], throughput(q, clock_mhz)) != (p["luts"], tp)
            for q in points
        )
        if not dominated:
            front.append(p)
    return sorted(front, key=lambda p: (p["luts"], -throughput(p, clock_mhz)))


def _clock_words(points: list[dict], clock_mhz: float) -> str:
    measured = [p for p in points if p.get("images_per_s")]
    if measured and len(measured) == len(points):
        return f"measured Fmax per point ({measured[0]['clock_source']})"
    return f"assumed: {clock_mhz:g} MHz (--clock-mhz), not measured"


def _plot(points: list[dict], front: list[dict], clock_mhz: float, target: str, path: Path) -> None:
    """pareto.png: images/s against LUTs and against block RAM, each front a staircase (the report draws the same)."""
    from bnn_hw.flow.report import pareto_figure

    fig = pareto_figure([p for p in points if p.get("luts") is not None], clock_mhz, target, BRAM[target][1])
    with fileio.atomic(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    import matplotlib.pyplot as plt

    plt.close(fig)


def _table(points: list[dict], pareto: set[tuple[int, int]], clock_mhz: float, target: str) -> list[str]:
    measured = all(p.get("images_per_s") for p in points)
    head = [
        "PE",
        "SIMD",
        "PE x SIMD per layer",
        "lanes",
        "cycles/image",
        *(["Fmax (MHz, post-route)", "images/s (measured clock)"] if measured else []),
        *([] if measured else [f"images/s @ {clock_mhz:g} MHz (assumed)"]),
        "LUTs",
        "FFs",
        f"BRAM ({BRAM[target][1]})",
        "LUTs/lane",
        "Pareto",
    ]
    rows = []
    for p in points:
        folding = " ".join(f"{a}x{b}" for a, b in zip(p["pe_per_layer"], p["simd_per_layer"], strict=True))
        per_lane = f"{p['luts'] / p['lanes']:.2f}" if p.get("luts") is not None else "-"
        clock = [f"{p['fmax_mhz']:.1f}"] if measured else []
        rows.append(
            [
                str(p["pe"]),
                str(p["simd"]),
                folding,
                f"{p['lanes']:,}",
                f"{p['cycles_per_image']:,}",
                *clock,
                f"{throughput(p, clock_mhz):,.0f}",
                f"{p['luts']:,}",
                f"{p['ffs']:,}",
                f"{p['brams']:g}",
                per_lane,
                "*" if (p["pe"], p["simd"]) in pareto else "",
            ]
        )
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


def _commit() -> str | None:
    """The git commit of this checkout (with "+dirty" for local changes), when it is one; the generator may change."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from bnn_hw.model import load_model

    model = load_model(args.model)  # fail early, with the loader's clear message
    from bnn_hw.rtl.synthesis import find_yosys

    find_yosys()  # one clear message before any point starts
    if args.pnr:
        from bnn_hw.rtl import pnr

        if args.target not in ("ecp5", "ice40"):
            raise BnnError("--pnr needs --target ecp5 or ice40 (no open place and route for xilinx)")
        dev = pnr.device(args.target, args.device)  # bad names fail here, not in every point
        if args.package is not None and args.package not in dev.packages:
            raise BnnError(
                f"unknown --package {args.package!r} for {dev.code}: choose one of {', '.join(dev.packages)}"
            )
        pnr.tool(args.target)
    if args.out is None:  # one folder per model: another model's sweep is never overwritten
        args.out = Path("runs/sweep") / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', model.name)}-{model.hash[:12]}"
    fileio.writable_dir(args.out)
    if (args.out / "sweep.json").is_file():
        print(f"{args.out}: continuing the sweep there (finished points are reused)", file=sys.stderr)
    args.out, args.model = args.out.resolve(), args.model.resolve()  # workers may run elsewhere
    # largest arrays first: they take longest to synthesize, so the pool does not end with one long point alone
    grid = sorted(((pe, simd) for pe in args.pe for simd in args.simd), key=lambda g: (-g[0] * g[1], g))
    points, failures = [], []
    t0 = time.perf_counter()
    commit = _commit()  # at the start: the code that runs
    todo = []
    for pe, simd in grid:  # finished points are not resubmitted
        done = args.out / f"pe{pe}_simd{simd}" / "point.json"
        reuse = None if args.redo else _finished(done, _request(model.hash, pe, simd, args))
        if reuse is not None:
            points.append({**reuse, "reused": True})
        else:
            todo.append((pe, simd))
    cluster = dask_client(args.scheduler, args.jobs, processes=not args.in_process) if todo else nullcontext()
    with cluster as client:
        if client is not None:
            require_on_workers(client, _tools_check(args.target, args.pnr, bool(args.simulate)), "this sweep's points")
        futures = {
            client.submit(
                _point, args.model, model.hash, pe, simd, args, key=f"point-pe{pe}-simd{simd}-{time.time_ns()}",
                retries=1, pure=False,
            ): (pe, simd)
            for pe, simd in todo
        }  # fmt: skip
        try:
            bar = tqdm(
                as_completed(futures) if futures else [],
                total=len(futures),
                desc="sweep",
                unit="point",
                disable=not sys.stderr.isatty(),
            )
            for fut in bar:
                pe, simd = futures[fut]
                try:
                    point = fut.result()
                except BnnError as exc:
                    failures.append(f"PE={pe} SIMD={simd}: {exc}")
                    continue
                except Exception as exc:  # a worker that died twice (KilledWorker), or a crash inside the point
                    failures.append(f"PE={pe} SIMD={simd}: {type(exc).__name__}: {exc}")
                    continue
                if not point.get("reused"):
                    _write_point(args.out, point)
                points.append(point)
                if not sys.stderr.isatty():
                    how = "reused" if point["reused"] else f"{sum(point['seconds'].values()):.0f} s"
                    print(
                        f"point PE={pe} SIMD={simd}: {point['luts']:,} LUTs, {point['cycles_per_image']:,} "
                        f"cycles/image"
                        + (f", Fmax {point['fmax_mhz']:g} MHz" if point.get("fmax_mhz") else "")
                        + f" ({how})",
                        file=sys.stderr,
                        flush=True,
                    )
        except KeyboardInterrupt:  # finished points are saved; cancel the others
            client.cancel(list(futures))
            raise
    if not points:
        raise BnnError(f"no point of the sweep succeeded: {'; '.join(failures[:3])}")
    points.sort(key=lambda p: (p["pe"], p["simd"]))
    front = pareto_front(points, args.clock_mhz)
    pareto = {(p["pe"], p["simd"]) for p in front}
    wall = round(time.perf_counter() - t0, 1)
    summary = {
        "model": str(args.model),
        "model_hash": model.hash,
        "model_name": model.name,
        "target": args.target,
        "flow": args.flow,
        "bnn_hw_commit": commit,
        "clock_mhz": None if args.pnr else args.clock_mhz,
        "clock": _clock_words(points, args.clock_mhz),
        "jobs": args.jobs,
        "wall_seconds": wall,
        "reused": sum(p["reused"] for p in points),
        "points": [Point.of({k: v for k, v in p.items() if k != "reused"}) for p in points],
        "pareto": [[p["pe"], p["simd"]] for p in front],
        "failures": failures,
    }
    Sweep.of(summary).write(args.out / Sweep.FILE)
    _plot(points, front, args.clock_mhz, args.target, args.out / "pareto.png")
    table = _table(points, pareto, args.clock_mhz, args.target)
    fileio.write_text(
        args.out / "sweep.md",
        f"# Sweep of {model.name} ({model.hash[:12]}), Yosys {args.target}, {args.flow} flow\n\n"
        + "\n".join(table)
        + f"\n\nimages/s = clock / predicted cycles per image; clock: {_clock_words(points, args.clock_mhz)}. "
        "`*` = on the Pareto front (no other point has both fewer LUTs and more images/s).\n",
    )
    print("\n".join(table))
    for f in failures:
        print(f"failed: {f}")
    print(
        f"{len(points)} points ({summary['reused']} reused) in {wall:g} s; wrote {args.out / 'sweep.json'}, "
        f"{args.out / 'sweep.md'} and {args.out / 'pareto.png'}"
    )
    return 1 if failures else 0
