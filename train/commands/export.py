"""`bnn-hw export CHECKPOINT -o model.bnn`."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="checkpoint.pt written by `bnn-hw train` (or its run folder)")
    parser.add_argument(
        "-o", "--out", type=Path, default=None, help="model file to write (default: model.bnn beside the checkpoint)"
    )
    parser.add_argument("--output", dest="out", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("--name", default=None, help="model name stored in the file (default: PRESET-DATASET)")


def run(args: argparse.Namespace) -> int:
    from bnn_hw.train.checkpoint import load_checkpoint
    from bnn_hw.train.export import export_model

    from bnn_hw import fileio
    from bnn_hw.summary import describe

    path = args.checkpoint / "checkpoint.pt" if args.checkpoint.is_dir() else args.checkpoint
    out = args.out or path.with_name("model.bnn")
    fileio.writable_file(out)
    ckpt = load_checkpoint(path)
    preset = getattr(ckpt.config, "preset", "model")
    name = args.name or f"{preset}-{ckpt.dataset.name}"
    source = {"checkpoint_sha256": ckpt.hash, "preset": preset, "dataset": ckpt.dataset.name, "epoch": ckpt.epoch}
    test_acc = (ckpt.metrics or {}).get("test_acc")
    if test_acc is not None:
        source["pytorch_test_accuracy"] = test_acc
    model = export_model(ckpt.model, ckpt.dataset.classes, name=name, source=source)
    from bnn_hw.model import save_model

    digest = save_model(model, out)
    print(describe(model))
    print(f"wrote {out} (model hash {digest[:16]})")
    return 0
