"""`bnn-hw train`: train a binarized network with the BinaryNet recipe and write checkpoint, metrics and curve."""

from __future__ import annotations

import argparse

from bnn_hw.train.models import PRESETS as _PRESETS  # numpy-free, torch-free module: cheap at `--help` time

from bnn_hw.datasets import DATASETS as _DATASETS
from bnn_hw.errors import BnnError


def _widths(text: str) -> list[int]:
    try:
        widths = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 512,512, got {text!r}") from None
    if not widths or any(v < 1 for v in widths):
        raise argparse.ArgumentTypeError(f"expected positive widths like 512,512, got {text!r}")
    return widths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="mlp", help=f"architecture: {', '.join(_PRESETS)} (default mlp)")
    parser.add_argument("--dataset", default="fashion-mnist", help=f"{', '.join(_DATASETS)} (default fashion-mnist)")
    parser.add_argument("--out", default="runs/train", help="output folder (checkpoint.pt, metrics.json, PNG)")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the preset's)")
    parser.add_argument("--batch-size", type=int, help="mini-batch size (default: the preset's)")
    parser.add_argument("--lr-start", type=float, help="Adam learning rate at the first epoch")
    parser.add_argument("--lr-end", type=float, help="learning rate at the last epoch (exponential decay)")
    parser.add_argument(
        "--loss",
        default="squared-hinge",
        choices=("squared-hinge", "cross-entropy"),
        help="squared-hinge (the paper's) or cross-entropy",
    )
    parser.add_argument("--hidden", type=_widths, help="hidden dense widths, e.g. 512,512 (overrides the preset)")
    parser.add_argument("--dropout-in", type=float, help="dropout on the input of the first layer")
    parser.add_argument("--dropout-hidden", type=float, help="dropout on the input of later dense layers")
    parser.add_argument(
        "--binarize-input",
        type=int,
        metavar="T",
        help="FINN-style: the first layer sees bits (pixel >= T) instead of raw pixels",
    )
    parser.add_argument(
        "--augment",
        default="none",
        choices=("none", "shift", "shift-flip"),
        help="random shifts by up to 2 pixels (and mirroring) of training images",
    )
    parser.add_argument(
        "--no-lr-scale",
        action="store_true",
        help="disable BinaryNet's per-layer learning-rate scaling of binary weights",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, help="CPU threads for PyTorch (default: PyTorch's choice)")
    parser.add_argument("--data-dir", help="folder holding the data set in torchvision's layout")
    parser.add_argument("--train-limit", type=int, help="train on the first N training images only")
    parser.add_argument("--test-limit", type=int, help="test on the first N test images only")
    parser.add_argument("--resume", action="store_true", help="continue OUT/checkpoint.pt to --epochs")
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=1,
        metavar="N",
        help="save the checkpoint (and plot the curve) every N epochs and after the last (default 1)",
    )
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over the processes `torchrun` starts (DDP: NCCL on GPUs, gloo on CPUs); "
        "--batch-size is the global batch (docs/training.md)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from bnn_hw.train.loop import TrainConfig, train

    cfg = TrainConfig(
        out=args.out,
        preset=args.preset,
        dataset=args.dataset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr_start=args.lr_start,
        lr_end=args.lr_end,
        loss=args.loss,
        hidden=args.hidden,
        dropout_in=args.dropout_in,
        dropout_hidden=args.dropout_hidden,
        binarize_input=args.binarize_input,
        lr_scale=not args.no_lr_scale,
        augment=args.augment,
        seed=args.seed,
        device=args.device,
        data_dir=args.data_dir,
        train_limit=args.train_limit,
        test_limit=args.test_limit,
        threads=args.threads,
        resume=args.resume,
        progress=not args.quiet,
        checkpoint_every=args.checkpoint_every,
        distributed=args.distributed,
    )
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
