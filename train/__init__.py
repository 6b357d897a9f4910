"""PyTorch training of binarized networks (BinaryNet recipe); writes the bnn_hw model form.

The public API, each function the same call its `bnn-hw` subcommand makes (torch is imported on first use):

- `train(config)` / `train(**options)` -- `bnn-hw train`: checkpoint.pt, metrics.json and the curve in `config.out`.
- `export_checkpoint(checkpoint, out=None)` -- `bnn-hw export`: the .bnn model; returns its path.
- `verify(model, against=checkpoint)` -- `bnn-hw verify`: golden model vs PyTorch on every bit; returns the report.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bnn_hw.artifacts import Verify

if TYPE_CHECKING:
    from bnn_hw.train.loop import TrainConfig, TrainResult

__all__ = ["TrainConfig", "TrainResult", "export_checkpoint", "train", "verify"]


def train(config: TrainConfig | None = None, **options: Any) -> TrainResult:
    """Train with the BinaryNet recipe (`bnn-hw train`); `options` are TrainConfig fields, applied over `config`."""
    import dataclasses

    from bnn_hw.train.loop import TrainConfig
    from bnn_hw.train.loop import train as _train

    cfg = dataclasses.replace(config or TrainConfig(), **options)
    return _train(cfg)


def export_checkpoint(checkpoint: str | Path, out: str | Path | None = None, *, name: str | None = None) -> Path:
    """Export a checkpoint (or its run folder) to the .bnn form (`bnn-hw export`); returns the model file written."""
    from bnn_hw.options import run_command

    checkpoint = Path(checkpoint)
    run_command("bnn_hw.train.commands.export", "export", checkpoint=checkpoint, output=out, name=name)
    if out is not None:
        return Path(out)
    return (checkpoint / "checkpoint.pt" if checkpoint.is_dir() else checkpoint).with_name("model.bnn")


def verify(model: str | Path, against: str | Path, **options: Any) -> Verify:
    """Golden model against the PyTorch checkpoint, every hidden bit and class (`bnn-hw verify`).

    Returns the agreement report (what `--json` writes); `report.bit_exact` is True when every bit agreed.
    `options`: dataset, split, images (the first N), data_dir, json (also write the report there)."""
    from bnn_hw.options import run_command

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(options.pop("json", None) or Path(tmp) / Verify.FILE)
        run_command("bnn_hw.train.commands.verify", "verify", model=model, against=against, json=path, **options)
        return Verify.read(path)


def __getattr__(name: str) -> Any:
    if name in ("TrainConfig", "TrainResult"):
        from bnn_hw.train import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'bnn_hw.train' has no attribute {name!r}")
