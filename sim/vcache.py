"""Reuse Verilator's runtime objects (verilated.o, verilated_vpi.o, ...) across model builds.

They depend only on the Verilator version and the compile flags, not on the design, yet take about 25 s of CPU to
compile for every new model. `sim.runner` runs `python -m bnn_hw.sim.vcache restore DIR BUILD` between verilator
and make (fresh objects are copied in and touched, so make sees them as up to date) and `save` after make.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

OBJECTS = (
    "verilated.o",
    "verilated_vpi.o",
    "verilated_threads.o",
    "verilated_dpi.o",
    "verilated_vcd_c.o",
    "verilated_fst_c.o",
)


def restore(cache: Path, build: Path) -> int:
    n = 0
    for name in OBJECTS:
        src = cache / name
        if src.is_file() and not (build / name).exists():
            shutil.copyfile(src, build / name)
            os.utime(build / name)  # newer than its sources: make will not rebuild it
            n += 1
    return n


def save(cache: Path, build: Path) -> int:
    cache.mkdir(parents=True, exist_ok=True)
    n = 0
    for name in OBJECTS:
        src = build / name
        if src.is_file() and not (cache / name).exists():
            tmp = cache / f".{name}.{os.getpid()}"
            shutil.copyfile(src, tmp)
            os.replace(tmp, cache / name)  # atomic: parallel builds never see a half-written object
            n += 1
    return n


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("restore", "save"):
        print("usage: python -m bnn_hw.sim.vcache restore|save CACHE_DIR BUILD_DIR", file=sys.stderr)
        return 2
    try:
        (restore if argv[0] == "restore" else save)(Path(argv[1]), Path(argv[2]))
    except OSError as exc:  # a cache problem must never fail a build
        print(f"sim.vcache: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
