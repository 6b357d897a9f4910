"""`bnn-hw info model.bnn`: what a model file holds."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bnn_hw.model import load_model
from bnn_hw.summary import describe, memory_summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="a .bnn model file")
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        default=None,
        metavar="PATH",
        help="write the summary as JSON to PATH, or to stdout with `--json` alone or `--json -` (default: a table)",
    )


def run(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    if args.json is None:
        print(describe(model))
    elif args.json == "-":
        print(json.dumps(memory_summary(model), indent=2))
    else:
        from bnn_hw import fileio

        print(f"wrote {fileio.write_json(args.json, memory_summary(model))}")
    return 0
