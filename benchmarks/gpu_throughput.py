"""GPU throughput: binary matmul at 8192^3, MLP layers over batch sizes 1..65,536 and whole networks, against the
naive XNOR kernel and PyTorch (cuBLAS) fp32/fp16/bf16/int8 in the same run (issue 7).

Runs `bnn-hw bench gpu` with the recorded parameters and keeps its JSON next to this script; the numbers go into
benchmarks/RESULTS.md ("GPU and CPU throughput"), with the card's name. On a machine without a usable GPU it
prints one line saying nothing was measured and exits 1. Usage (on an H100/H200):

    .venv/bin/python benchmarks/gpu_throughput.py [--model FILE.bnn] [any other `bnn-hw bench gpu` option]
"""

from __future__ import annotations

import sys
from pathlib import Path

from bnn_hw.cli import main

OUT = Path(__file__).with_name("gpu_throughput.json")

if __name__ == "__main__":
    extra = sys.argv[1:]
    sys.exit(main(["bench", "gpu", "--images", "10000", "--repeats", "10", "-o", str(OUT), *extra]))
