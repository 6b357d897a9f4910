"""`bnn-hw sweep model.bnn --pe 8,16,32 --simd 16,32,64`: the design space of one model.

Each (PE, SIMD) point is generated (`bnn-hw rtl`), synthesized with Yosys and optionally simulated (`bnn-hw sim`)
in its own folder `OUT/pe<P>_simd<S>`, the points running in parallel (`--jobs`, default: the machine's cores). A
point whose `point.json` exists and matches the request (model, target, flow, simulation) is not redone, so an
interrupted sweep resumes where it stopped. The result is `OUT/sweep.json`, a Markdown table `OUT/sweep.md` and a
Pareto plot `OUT/pareto.png` of throughput against LUTs.

Two synthesis flows report the same per-layer resources:

- `full`: `bnn-hw synth` (Yosys `synth_<target>` on the generated Verilog as it is).
- `fast` (default): the same `synth_<target>` script, split at its block-RAM mapping step, with two changes that
  cannot change what is built: the memory initialisers are read with `$readmemh` from hex files (Yosys 0.23's
  Verilog front end needs minutes for the thousands of `mem[i] = ...` lines of a large weight memory; `$readmemh`
  takes a second), and the *weight* memories (`rom_style = "block"`, which Yosys must map to block RAM or fail) get
  all-zero contents just before block-RAM mapping, once the passes that optimise on memory contents have run. A
  block RAM is a black box to the rest of synthesis, so only the bits stored in it differ, but Yosys no longer
  elaborates one mapping template per distinct block (minutes for the default MLP). Threshold and other memories
  keep their contents.
  Flip-flops, carries, block RAMs and every layer's LUTs come out identical; the top-level glue's LUTs differ (by
  0.04-3.8 % of the whole design in the measured cases, benchmarks/RESULTS.md "## Sweep"). Both flows hand ABC the
  same glue netlist, but `$readmemh` makes Yosys' front end create a different number of objects, so the glue's
  automatically numbered cells are named, hence ordered, differently, and ABC's result depends on the order of its
  inputs (the 8x16 demo MLP's glue: 585-842 ABC LUTs over 60 orders of one netlist; docs/rtl.md). Compare points within
  one flow; quote `--flow full`. `tests/test_sweep.py` compares the two flows.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from bnn_hw.errors import BnnError

TARGETS = ("xilinx", "ice40", "ecp5")
FLOWS = ("fast", "full")
POINT_VERSION = 3  # 3: PE arrays kept as modules, as `bnn-hw synth` does since 90ed4a2
# synth_<target> options (as `bnn-hw synth` uses them) and the script label where block-RAM mapping starts
_SYNTH = {
    "xilinx": ("synth_xilinx -top {top} -flatten", "map_memory"),
    "ice40": ("synth_ice40 -top {top}", "map_ram"),
    "ecp5": ("synth_ecp5 -top {top}", "map_ram"),
}
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
    parser.description = __doc__.split("\n", 1)[1].strip()  # the flows, as documented above
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
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
        help="fast (default): weight memories' block-RAM contents zeroed just before mapping (same "
        "resources, much faster); full: `bnn-hw synth` as it is",
    )
    parser.add_argument("-o", "--out", type=Path, default=Path("runs/sweep"), help="sweep folder")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel points (default: cores)")
    parser.add_argument("--timeout", type=float, default=None, help="give up on a point's synthesis after S seconds")
    parser.add_argument(
        "--simulate",
        type=int,
        default=0,
        metavar="N",
        help="also simulate N test images per point (Verilator) and measure cycles/image",
    )
    parser.add_argument(
        "--random-images",
        action="store_true",
        help="with --simulate: seeded random images instead of the model's data set",
    )
    parser.add_argument(
        "--clock-mhz", type=float, default=200.0, help="clock assumed for images/s (labelled assumed; default 200)"
    )
    parser.add_argument("--redo", action="store_true", help="redo every point, even finished ones")


# ---------------------------------------------------------------------------------------------- Verilog helpers

_INIT_BLOCK = re.compile(r"^([ \t]*)initial begin\n((?:[ \t]*[\w$\\.]+\[\d+\] = [^;\n]+;\n)+)[ \t]*end\n", re.M)
_INIT_LINE = re.compile(r"[ \t]*([\w$\\.]+)\[(\d+)\] = (\d+)'([hbd])([0-9a-fA-F_]+);\n")


def readmem_verilog(text: str, hex_dir: Path, prefix: str = "mem") -> tuple[str, int]:
    """Rewrite `initial begin m[0] = W'h..; m[1] = ...; end` blocks as `$readmemh` of hex files in `hex_dir`.

    A block is rewritten only when it sets every word 0..N-1 of one memory, in order, with defined constants;
    anything else is left as it was. Returns the new text and the number of blocks rewritten.
    """
    count = 0

    def rewrite(match: re.Match) -> str:
        nonlocal count
        lines = match.group(2).splitlines(keepends=True)
        words = []
        for i, line in enumerate(lines):
            m = _INIT_LINE.fullmatch(line)
            if m is None or int(m.group(2)) != i or (words and m.group(1) != words[0][0]):
                return match.group(0)
            width, base, digits = int(m.group(3)), m.group(4), m.group(5).replace("_", "")
            try:
                value = int(digits, {"h": 16, "b": 2, "d": 10}[base])
            except ValueError:
                return match.group(0)
            if value >> width:
                return match.group(0)
            words.append((m.group(1), value, width))
        name, _, width = words[0]
        digits = (width + 3) // 4
        path = hex_dir / f"{prefix}{count}.hex"
        path.write_text("".join(f"{v:0{digits}x}\n" for _, v, _ in words))
        count += 1
        return f'{match.group(1)}initial $readmemh("{path.name}", {name});\n'

    return _INIT_BLOCK.sub(rewrite, text), count


_MODULE = re.compile(r"^module (\\?\S+?)\s*\(", re.M)
_BLOCK_ROM = re.compile(r'\(\* rom_style = "block" \*\)\s*\n\s*reg \[(\d+):(\d+)\] (\S+) \[(\d+):(\d+)\];')


def block_roms(text: str) -> dict[str, list[tuple[str, int]]]:
    """{module: [(memory, bits), ...]} of the memories marked `rom_style = "block"` in generated Verilog."""
    found: dict[str, list[tuple[str, int]]] = {}
    starts = [(m.start(), m.group(1).lstrip("\\")) for m in _MODULE.finditer(text)] + [(len(text), "")]
    for (begin, module), (end, _) in zip(starts, starts[1:], strict=False):
        for m in _BLOCK_ROM.finditer(text, begin, end):
            hi, lo, name, a, b = m.groups()
            bits = (abs(int(hi) - int(lo)) + 1) * (abs(int(a) - int(b)) + 1)
            found.setdefault(module, []).append((name, bits))
    return found


def _yosys_fast(build: Path, manifest: dict, target: str, timeout: float | None) -> dict[str, Any]:
    """The fast flow: `synth_<target>` split at block-RAM mapping, weight contents zeroed there (module docstring)."""
    from bnn_hw.rtl.synthesis import find_yosys, parse_stat

    exe = find_yosys()
    work = build / "synth_fast"
    work.mkdir(exist_ok=True)
    top = manifest["top"]
    sources, zero = [], []
    for i, name in enumerate(manifest["verilog"]):
        original = (build / name).read_text()
        for module, roms in block_roms(original).items():
            if len({bits for _, bits in roms}) == 1:  # one size per module (the engine's weight memory)
                sel = f"{module}/t:$mem_v2 {module}/a:rom_style=block %i"
                zero += [f"select -assert-count {len(roms)} {sel}", f"setparam -set INIT {roms[0][1]}'b0 {sel}"]
        text, _ = readmem_verilog(original, work, prefix=f"src{i}_mem")
        (work / name).write_text(text)
        sources.append(name)
    # the modules `bnn-hw synth` keeps (rtl/commands/synth.py): each layer engine and, inside it, its PE array
    keep = " ".join(f"{top}.layer{d['index']}{sub}" for d in manifest["layers"] for sub in ("", ".array"))
    synth, label = _SYNTH[target]
    synth = synth.format(top=top)
    stat = f"yosys_{target}_stat.json"
    script = (
        "\n".join(
            [
                f"read_verilog {' '.join(sources)}",
                f"hierarchy -check -top {top}",
                f"setattr -mod -set keep_hierarchy 1 {keep}",
                f"{synth} -run begin:{label}",
                *zero,
                f"{synth} -run {label}:",
                "check -assert",
                f"tee -q -o {stat} stat -json",
            ]
        )
        + "\n"
    )
    (work / f"yosys_{target}.ys").write_text(script)
    log = work / f"yosys_{target}.log"
    (work / stat).unlink(missing_ok=True)
    try:
        proc = subprocess.run(
            [exe, "-q", "-l", log.name, "-s", f"yosys_{target}.ys"],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise BnnError(f"yosys did not finish within {timeout:.0f} s (log: {log})") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        raise BnnError(f"yosys failed for {target} ({lines[-1].strip() if lines else 'no message'}); log: {log}")
    modules, total = parse_stat(target, (work / stat).read_text())  # the same reading as `bnn-hw synth`
    if total["latches"]:
        raise BnnError(f"synthesis produced {total['latches']} latches (log: {log}); this is a generator bug")
    layers = {}
    for d in manifest["layers"]:
        name = f"{top}.layer{d['index']}"
        engine, array = modules.get(name, {}), modules.get(f"{name}.array", {})
        layers[str(d["index"])] = {k: engine.get(k, 0) + array.get(k, 0) for k in set(engine) | set(array)}
    return {
        "target": target,
        "top": top,
        "model_hash": manifest.get("model_hash"),
        "flow": f"fast: synth_{target}, weight memories' contents zeroed just before block-RAM mapping",
        "check": "check -assert passed (no latches, no combinational loops)",
        "layers": layers,
        "glue": modules.get(top, {}),
        "total": total,
        "log": str(log),
    }


# ---------------------------------------------------------------------------------------------- one point


def _cli(*argv: str, timeout: float | None = None) -> None:
    try:
        proc = subprocess.run([sys.executable, "-m", "bnn_hw", *argv], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BnnError(f"`bnn-hw {argv[0]}` did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise BnnError(f"`bnn-hw {' '.join(argv)}` failed: {last}")


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
    }


def _finished(done: Path, request: dict) -> dict | None:
    """The point's record when it exists and answers the same request, else None."""
    try:
        point = json.loads(done.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(point, dict) or point.get("request") != request:
        return None
    return point


def _point(model: Path, model_hash: str, pe: int, simd: int, args: argparse.Namespace) -> dict:
    folder = args.out / f"pe{pe}_simd{simd}"
    done = folder / "point.json"
    request = _request(model_hash, pe, simd, args)
    if not args.redo and (point := _finished(done, request)) is not None:
        return {**point, "reused": True}
    started = time.time()
    t0 = time.perf_counter()
    manifest_path = folder / "manifest.json"
    manifest = None
    if manifest_path.is_file() and not args.redo:  # an interrupted point: keep its Verilog when it is the same
        try:
            manifest = json.loads(manifest_path.read_text())
            rec = manifest["generator"]["args"]
            if (
                manifest["model_hash"] != model_hash
                or rec.get("requested_pe") != str(pe)
                or rec.get("requested_simd") != str(simd)
                or not all((folder / v).is_file() for v in manifest["verilog"])
            ):
                manifest = None
        except (ValueError, KeyError, TypeError):
            manifest = None
    if manifest is None:
        _cli("rtl", str(model), "--pe", str(pe), "--simd", str(simd), "-o", str(folder), "-q")
        manifest = json.loads(manifest_path.read_text())
    t1 = time.perf_counter()
    if args.flow == "full":
        out = folder / f"synth_{args.target}.json"
        cmd = ["synth", str(folder), "--target", args.target, "-q", "-o", str(out)]
        if args.timeout:
            cmd += ["--timeout", str(args.timeout)]
        _cli(*cmd)
        synth = json.loads(out.read_text())
    else:
        synth = _yosys_fast(folder, manifest, args.target, args.timeout)
        (folder / f"synth_{args.target}.json").write_text(json.dumps(synth, indent=2) + "\n")
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
        "lanes": int(manifest.get("lanes_total", sum(d["PE"] * d["SIMD"] for d in layers))),
        "target": args.target,
        "flow": args.flow,
        "cycles_per_image": cycles,
        "latency_cycles": manifest["predicted"].get("latency_cycles"),
        "limited_by": manifest["predicted"].get("limited_by"),
        "luts": total.get("luts"),
        "lutram": total.get("lutram"),
        "ffs": total.get("ffs"),
        "brams": total.get(BRAM[args.target][0]),
        "bram_unit": BRAM[args.target][1],
        "carry": total.get("carry"),
        "memory_bits": manifest.get("memory_bits", {}).get("total"),
        "luts_per_layer": {k: v.get("luts") for k, v in synth["layers"].items()},
        "measured_cycles_per_image": None,
        "seconds": {"rtl": round(t1 - t0, 1), "synth": round(t2 - t1, 1)},
    }
    if args.simulate:
        _cli(
            "sim",
            str(folder),
            "--model",
            str(model),
            "--images",
            str(args.simulate),
            "--simulator",
            "verilator",
            *(["--random-images"] if args.random_images else []),
        )
        sim = json.loads((folder / "sim_report.json").read_text())
        point["measured_cycles_per_image"] = sim.get("cycles_per_image")
        point["sim_mismatches"] = sim.get("mismatches_total", sim.get("mismatches"))
        point["seconds"]["sim"] = round(time.perf_counter() - t2, 1)
    point["started"] = started
    point["finished"] = time.time()
    tmp = done.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(point, indent=2) + "\n")
    tmp.replace(done)  # atomic: an interrupted write never leaves a half point
    return {**point, "reused": False}


# ---------------------------------------------------------------------------------------------- summary


def pareto_front(points: list[dict]) -> list[dict]:
    """Points that no other point beats on both LUTs (fewer) and cycles per image (fewer)."""
    points = [p for p in points if p.get("luts") is not None]
    front = []
    for p in points:
        dominated = any(
            q["luts"] <= p["luts"]
            and q["cycles_per_image"] <= p["cycles_per_image"]
            and (q["luts"], q["cycles_per_image"]) != (p["luts"], p["cycles_per_image"])
            for q in points
        )
        if not dominated:
            front.append(p)
    return sorted(front, key=lambda p: (p["luts"], p["cycles_per_image"]))


def _plot(points: list[dict], front: list[dict], clock_mhz: float, target: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [p for p in points if p.get("luts") is not None]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ips = [clock_mhz * 1e6 / p["cycles_per_image"] for p in points]
    ax.scatter([p["luts"] for p in points], ips, label="design points")
    for p, y in zip(points, ips, strict=True):
        ax.annotate(f"{p['pe']}x{p['simd']}", (p["luts"], y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.plot(
        [p["luts"] for p in front], [clock_mhz * 1e6 / p["cycles_per_image"] for p in front], "r-", label="Pareto front"
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"LUTs (Yosys, {target})")
    ax.set_ylabel(f"images/s at {clock_mhz:g} MHz (assumed clock)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _table(points: list[dict], pareto: set[tuple[int, int]], clock_mhz: float, target: str) -> list[str]:
    head = [
        "PE",
        "SIMD",
        "PE x SIMD per layer",
        "lanes",
        "cycles/image",
        f"images/s @ {clock_mhz:g} MHz (assumed)",
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
        rows.append(
            [
                str(p["pe"]),
                str(p["simd"]),
                folding,
                f"{p['lanes']:,}",
                f"{p['cycles_per_image']:,}",
                f"{clock_mhz * 1e6 / p['cycles_per_image']:,.0f}",
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
    if args.jobs < 1:
        raise BnnError(f"--jobs must be >= 1, got {args.jobs}")
    if args.simulate < 0:
        raise BnnError(f"--simulate must be >= 0 images, got {args.simulate}")
    if args.clock_mhz <= 0:
        raise BnnError(f"--clock-mhz must be positive, got {args.clock_mhz:g}")
    from bnn_hw.rtl.synthesis import find_yosys

    find_yosys()  # one clear message before any point starts
    if args.out.exists() and not args.out.is_dir():
        raise BnnError(f"{args.out}: exists and is not a directory; choose another -o")
    args.out.mkdir(parents=True, exist_ok=True)
    # largest arrays first: they take longest to synthesize, so the pool does not end with one long point alone
    grid = sorted(((pe, simd) for pe in args.pe for simd in args.simd), key=lambda g: (-g[0] * g[1], g))
    points, failures = [], []
    t0 = time.perf_counter()
    commit = _commit()  # at the start: the code that runs
    pool = ThreadPoolExecutor(max_workers=args.jobs)
    try:
        futures = {pool.submit(_point, args.model, model.hash, pe, simd, args): (pe, simd) for pe, simd in grid}
        bar = tqdm(
            as_completed(futures), total=len(futures), desc="sweep", unit="point", disable=not sys.stderr.isatty()
        )
        for fut in bar:
            pe, simd = futures[fut]
            try:
                point = fut.result()
            except (BnnError, OSError, ValueError, KeyError) as exc:
                what = str(exc) if isinstance(exc, BnnError) else f"{type(exc).__name__}: {exc}"
                failures.append(f"PE={pe} SIMD={simd}: {what}")
                continue
            points.append(point)
            if not sys.stderr.isatty():
                how = "reused" if point["reused"] else f"{sum(point['seconds'].values()):.0f} s"
                print(
                    f"point PE={pe} SIMD={simd}: {point['luts']:,} LUTs, {point['cycles_per_image']:,} "
                    f"cycles/image ({how})",
                    file=sys.stderr,
                    flush=True,
                )
    except KeyboardInterrupt:  # finished points are saved; do not start the queued ones
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    if not points:
        raise BnnError(f"no point of the sweep succeeded: {'; '.join(failures[:3])}")
    points.sort(key=lambda p: (p["pe"], p["simd"]))
    front = pareto_front(points)
    pareto = {(p["pe"], p["simd"]) for p in front}
    wall = round(time.perf_counter() - t0, 1)
    summary = {
        "model": str(args.model),
        "model_hash": model.hash,
        "model_name": model.name,
        "target": args.target,
        "flow": args.flow,
        "bnn_hw_commit": commit,
        "clock_mhz": args.clock_mhz,
        "clock": "assumed (--clock-mhz), not measured",
        "jobs": args.jobs,
        "wall_seconds": wall,
        "reused": sum(p["reused"] for p in points),
        "points": [{k: v for k, v in p.items() if k != "reused"} for p in points],
        "pareto": [[p["pe"], p["simd"]] for p in front],
        "failures": failures,
    }
    (args.out / "sweep.json").write_text(json.dumps(summary, indent=2) + "\n")
    _plot(points, front, args.clock_mhz, args.target, args.out / "pareto.png")
    table = _table(points, pareto, args.clock_mhz, args.target)
    (args.out / "sweep.md").write_text(
        f"# Sweep of {model.name} ({model.hash[:12]}), Yosys {args.target}, {args.flow} flow\n\n"
        + "\n".join(table)
        + f"\n\nimages/s = {args.clock_mhz:g} MHz (assumed, not measured) / predicted cycles per "
        "image. `*` = on the Pareto front (no other point has both fewer LUTs and fewer cycles).\n"
    )
    print("\n".join(table))
    for f in failures:
        print(f"failed: {f}")
    print(
        f"{len(points)} points ({summary['reused']} reused) in {wall:g} s; wrote {args.out / 'sweep.json'}, "
        f"{args.out / 'sweep.md'} and {args.out / 'pareto.png'}"
    )
    return 1 if failures else 0
