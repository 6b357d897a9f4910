"""`bnn-hw export-qonnx model.bnn -o model.onnx`: a bnn-hw model as a QONNX graph (QONNX executor, FINN)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bnn_hw import fileio
from bnn_hw.errors import BnnError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="model.bnn")
    parser.add_argument(
        "-o", "--out", type=Path, default=None, help="ONNX file to write (default: MODEL.onnx beside it)"
    )
    parser.add_argument(
        "--hwc-flatten",
        action="store_true",
        help="flatten feature maps with Transpose(NCHW->NHWC)+Flatten instead of reordering the dense weights",
    )


def run(args: argparse.Namespace) -> int:
    from bnn_hw.qonnx.writer import export_qonnx

    from bnn_hw.model import load_model

    model = load_model(args.model)
    out = args.out or args.model.with_suffix(".onnx")
    if out.is_dir():
        raise BnnError(f"{out}: is a directory; give an .onnx file name with -o")
    fileio.writable_file(out)
    with fileio.atomic(out) as tmp:  # a full disk leaves no truncated graph
        export_qonnx(model, tmp, hwc_flatten=args.hwc_flatten)
    print(
        f"wrote {out}: QONNX graph of {model.name} ({len(model.layers)} layers, model hash {model.hash[:16]}); "
        "input x = pixel / 255 (NCHW), output scores"
    )
    return 0
