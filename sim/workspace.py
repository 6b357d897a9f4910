"""A simulator scratch folder whose path every tool accepts.

GNU Make (Verilator's model build) refuses directories containing spaces, and Icarus' `$writememh` cannot open a
file whose name holds non-ASCII characters (both seen with cocotb 2.1, Icarus 11, Verilator 5.48). Quoting cannot
fix either: the limits are inside the tools. So when the build or work folder has such a path, the Verilog sources
are copied into a scratch folder with a plain ASCII path (one per work folder, so a Verilator model stays cached
between runs) and the simulator builds and runs there; the report still goes to the build folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import tempfile
from pathlib import Path
from typing import Any

_SAFE = re.compile(r"[A-Za-z0-9_./+-]*")


def is_safe(path: str | Path) -> bool:
    """True when Make, Verilator and Icarus all accept `path` as it is (plain ASCII, no spaces or shell characters)."""
    return _SAFE.fullmatch(str(path)) is not None


def _scratch_root() -> Path:
    from bnn_hw.datasets import cache_dir

    for root in (cache_dir() / "sim-scratch", Path(tempfile.gettempdir()) / "bnn-hw-sim-scratch"):
        if is_safe(root.resolve()):
            return root.resolve()
    return Path("/tmp/bnn-hw-sim-scratch")


def safe_workspace(design: Any, work: Path) -> tuple[Any, Path, Path | None]:
    """(design, work, scratch): unchanged when every path is safe, else redirected into a scratch folder.

    `design` is a sim.network.Design; its sources are copied (only when their content changed, so a cached
    Verilator build stays valid) and the returned design points at the copies.
    """
    work = Path(work).resolve()
    if is_safe(work) and all(is_safe(Path(s).resolve()) for s in design.sources):
        return design, work, None
    scratch = _scratch_root() / hashlib.sha256(str(work).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    src = scratch / "src"
    src.mkdir(parents=True, exist_ok=True)
    copies = []
    for i, source in enumerate(design.sources):
        source = Path(source)
        name = re.sub(r"[^A-Za-z0-9_.+-]", "_", source.name) or f"source{i}.v"
        target = src / (name if i == 0 else f"{i}_{name}")
        data = source.read_bytes()
        if not target.is_file() or target.read_bytes() != data:
            tmp = target.with_suffix(target.suffix + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(target)
        copies.append(target)
    (scratch / "origin.txt").write_text(f"{work}\n", encoding="utf-8")
    return dataclasses.replace(design, sources=copies), scratch / "sim", scratch
