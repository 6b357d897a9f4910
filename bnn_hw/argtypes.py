"""argparse value types shared by every subcommand: a meaningless number is a usage error (exit 2) at parse time.

`bnn-hw train --epochs 0`, `--threads 0`, `synth --timeout 0` and `report --clock-mhz -1` are refused by argparse in
one line, before any import or work, with the same wording in every command (docs/cli.md).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (counts: epochs, threads, jobs, images per run, batch sizes)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def nonneg_int(text: str) -> int:
    """An integer >= 0 (seeds; counts where 0 means "all" or "none", as each option's help says)."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (clocks in MHz, timeouts in seconds, learning rates)."""
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def probability(text: str) -> float:
    """A number in [0, 1) (idle-cycle and backpressure probabilities)."""
    value = _float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1] (dropout rates)."""
    value = _float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def int_range(lo: int, hi: int) -> Callable[[str], int]:
    """An integer in lo..hi (inclusive)."""

    def parse(text: str) -> int:
        value = _int(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be an integer in {lo}..{hi}, got {text}")
        return value

    parse.__name__ = f"int_{lo}_{hi}"
    return parse
