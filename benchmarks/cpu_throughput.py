"""CPU throughput: the numpy golden model vs the same network in PyTorch float32 (issue 7).

Runs `bnn-hw bench cpu` with the recorded parameters and keeps its JSON next to this script; the numbers go into
benchmarks/RESULTS.md ("GPU and CPU throughput"). Usage:

    .venv/bin/python benchmarks/cpu_throughput.py [--model FILE.bnn] [any other `bnn-hw bench cpu` option]

Without --model it uses a seeded random 784-256-256-10 MLP (the default MLP shape) on the 10,000 Fashion-MNIST
test images.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bnn_hw.cli import main

OUT = Path(__file__).with_name("cpu_throughput.json")

if __name__ == "__main__":
    extra = sys.argv[1:]
    sys.exit(main(["bench", "cpu", "--images", "10000", "--repeats", "5", "-o", str(OUT), *extra]))
