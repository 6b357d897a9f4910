"""`bnn-hw import MODEL.onnx -o model.bnn`: a QONNX / FINN-style binarized network as a bnn-hw model."""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

from bnn_hw import fileio
from bnn_hw.errors import BnnError


def _scale(text: str) -> float:
    try:
        value = float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or fraction like 1/255") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _shape(text: str) -> tuple[int, int, int]:
    try:
        parts = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected H,W,C such as 28,28,1")
    return parts  # type: ignore[return-value]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("onnx", type=Path, help="QONNX or FINN-style ONNX file (e.g. from Brevitas' export_qonnx)")
    parser.add_argument(
        "-o", "--out", type=Path, default=None, help="model file to write (default: MODEL.bnn beside it)"
    )
    parser.add_argument(
        "--input-scale",
        type=_scale,
        default=Fraction(1, 255),
        help="the graph's input is pixel * this (default 1/255: images as torchvision's ToTensor gives them)",
    )
    parser.add_argument(
        "--input-shape",
        type=_shape,
        default=None,
        help="H,W,C of a graph with a flat (1, K) input (default: the graph's)",
    )
    parser.add_argument("--name", default=None, help="model name stored in the file (default: from the graph)")
    parser.add_argument(
        "--classes",
        default=None,
        help="class names: a data set name (fashion-mnist, ...) or a comma-separated list "
        "(default: the graph's, else 0, 1, ...)",
    )


def _classes(text: str | None) -> list[str] | None:
    if text is None:
        return None
    from bnn_hw.datasets import DATASETS, dataset_info

    if text in DATASETS:
        return list(dataset_info(text).classes)
    return [c.strip() for c in text.split(",")]


def run(args: argparse.Namespace) -> int:
    from bnn_hw.qonnx.converter import import_onnx

    from bnn_hw.commands.info import describe
    from bnn_hw.model import save_model

    model, notes = import_onnx(
        args.onnx,
        input_scale=float(args.input_scale),
        input_shape=args.input_shape,
        name=args.name,
        classes=_classes(args.classes),
    )
    out = args.out or args.onnx.with_suffix(".bnn")
    if out.is_dir():
        raise BnnError(f"{out}: is a directory; give a .bnn file name with -o")
    fileio.writable_file(out)
    for note in notes:
        print(f"note: {note}")
    digest = save_model(model, out)
    print(describe(model))
    print(f"wrote {out} (model hash {digest[:16]})")
    return 0
