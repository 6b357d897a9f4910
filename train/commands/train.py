"""`bnn-hw train`: train a binarized network with the BinaryNet recipe and write checkpoint, metrics and curve."""

from __future__ import annotations

import argparse

from bnn_hw.train.models import PRESETS as _PRESETS  # numpy-free, torch-free module: cheap at `--help` time

from bnn_hw.argtypes import fraction, int_range, nonneg_int, positive_float, positive_int
from bnn_hw.datasets import DATASETS as _DATASETS
from bnn_hw.errors import BnnError

LOSSES = ("squared-hinge", "cross-entropy")
# Options that change the run's result and default to the preset's value (None when not given).
_PRESET_VALUED = (
    "epochs",
    "batch_size",
    "lr_start",
    "lr_end",
    "hidden",
    "dropout_in",
    "dropout_hidden",
    "binarize_input",
    "train_limit",
    "test_limit",
)


def _widths(text: str) -> list[int]:
    try:
        widths = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 512,512, got {text!r}") from None
    if not widths or any(v < 1 for v in widths):
        raise argparse.ArgumentTypeError(f"expected positive widths like 512,512, got {text!r}")
    return widths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Options whose value comes from the preset default to None here; with --resume every None is taken from the
    # checkpoint instead (see `bnn_hw.train.loop.resume_config`).
    parser.add_argument("--preset", default=None, help=f"architecture: {', '.join(_PRESETS)} (default: mlp)")
    parser.add_argument("--dataset", default=None, help=f"data set: {', '.join(_DATASETS)} (default: fashion-mnist)")
    parser.add_argument(
        "-o", "--out", default="runs/train", help="run folder for checkpoint.pt, metrics.json and the curve PNG"
    )
    parser.add_argument("--epochs", type=positive_int, help="training epochs (default: the preset's)")
    parser.add_argument("--batch-size", type=positive_int, help="mini-batch size (default: the preset's)")
    parser.add_argument(
        "--lr-start", type=positive_float, help="Adam learning rate at the first epoch (default: the preset's)"
    )
    parser.add_argument(
        "--lr-end",
        type=positive_float,
        help="learning rate at the last epoch, exponential decay in between (default: the preset's)",
    )
    parser.add_argument(
        "--loss",
        default=None,
        choices=LOSSES,
        help="squared-hinge (the paper's) or cross-entropy (default: squared-hinge)",
    )
    parser.add_argument("--hidden", type=_widths, help="hidden dense widths, e.g. 512,512 (default: the preset's)")
    parser.add_argument(
        "--dropout-in", type=fraction, help="dropout on the input of the first layer (default: the preset's)"
    )
    parser.add_argument(
        "--dropout-hidden", type=fraction, help="dropout on the input of later dense layers (default: the preset's)"
    )
    parser.add_argument(
        "--binarize-input",
        type=int_range(1, 255),
        metavar="T",
        help="FINN-style: the first layer sees bits (pixel >= T) instead of raw pixels (default: raw pixels)",
    )
    parser.add_argument(
        "--augment",
        default=None,
        choices=("none", "shift", "shift-flip"),
        help="random shifts by up to 2 pixels (and mirroring) of training images (default: none)",
    )
    parser.add_argument(
        "--no-lr-scale",
        action="store_true",
        default=None,
        help="disable BinaryNet's per-layer learning-rate scaling of binary weights",
    )
    parser.add_argument("--seed", type=nonneg_int, default=None, help="seed of every random choice (default: 0)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=positive_int, help="CPU threads for PyTorch (default: PyTorch's choice)")
    parser.add_argument(
        "--data-dir", help="folder holding the data set in torchvision's layout (default: the usual places)"
    )
    parser.add_argument(
        "--train-limit", type=positive_int, help="train on the first N training images only (default: all)"
    )
    parser.add_argument("--test-limit", type=positive_int, help="test on the first N test images only (default: all)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue OUT/checkpoint.pt with its own settings; only --epochs and run options may be given",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=1,
        metavar="N",
        help="save the checkpoint (and plot the curve) every N epochs and after the last",
    )
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over the processes `torchrun` starts (DDP: NCCL on GPUs, gloo on CPUs); "
        "--batch-size is the global batch (docs/training.md)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")


# What a fresh run uses for options left out (None above).
FRESH_DEFAULTS = {
    "preset": "mlp",
    "dataset": "fashion-mnist",
    "loss": "squared-hinge",
    "augment": "none",
    "seed": 0,
    "no_lr_scale": False,
}


def run(args: argparse.Namespace) -> int:
    from bnn_hw.train.loop import TrainConfig, resume_config, train

    given = {k: getattr(args, k) for k in (*FRESH_DEFAULTS, *_PRESET_VALUED) if getattr(args, k) is not None}
    if "no_lr_scale" in given:
        given["lr_scale"] = not given.pop("no_lr_scale")
    run_options = dict(
        device=args.device,
        data_dir=args.data_dir,
        threads=args.threads,
        progress=not args.quiet,
        checkpoint_every=args.checkpoint_every,
        distributed=args.distributed,
    )
    if args.resume:
        cfg = resume_config(args.out, given, **run_options)
    else:
        fresh = {k: v for k, v in FRESH_DEFAULTS.items() if k != "no_lr_scale"}
        cfg = TrainConfig(out=args.out, **{**fresh, "lr_scale": True, **given}, **run_options)
    result = train(cfg)
    if not result.hash:  # a distributed run's other processes: rank 0 reports
        return 0
    if not result.metrics.get("epochs"):
        raise BnnError("no epoch was trained")
    seconds = result.metrics.get("train_seconds", 0.0)
    print(
        f"test accuracy {100 * result.test_acc:.2f}% after {len(result.metrics['epochs'])} epochs "
        f"({seconds:.0f} s of training)"
    )
    print(
        f"checkpoint {result.checkpoint} (sha256 {result.hash[:16]}...), metrics {result.metrics_path}"
        + (f", curve {result.curve}" if result.curve else "")
    )
    return 0
