"""Checkpoints that rebuild their model with no other input: weights, model config, data set info, metrics.

Saved with `torch.save` and read back with `weights_only=True` (plain dicts, lists, numbers and tensors only), so a
checkpoint from someone else cannot run code when loaded. Writes are atomic: an interrupted run never leaves a
half-written file behind.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bnn_hw.train.models import ModelConfig, build_model

from bnn_hw import fileio
from bnn_hw.datasets import DatasetInfo
from bnn_hw.errors import BnnError
from bnn_hw.model import MAGIC

FORMAT = "bnn-hw-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint: `model` is a train.layers.BinaryNet in eval mode on the CPU."""

    model: Any
    config: ModelConfig
    dataset: DatasetInfo
    hash: str
    epoch: int
    metrics: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)  # the training settings that made it
    optimizer_state: dict | None = None  # for --resume
    path: Path | None = None


def file_hash(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _plain(data: dict) -> dict:
    """JSON-plain copy (str, numbers, lists, dicts): what `torch.load(weights_only=True)` accepts back."""
    return json.loads(json.dumps(data, default=str))


def save_checkpoint(
    path: str | Path,
    model,
    config: ModelConfig,
    dataset: DatasetInfo,
    *,
    epoch: int,
    metrics: dict | None = None,
    train: dict | None = None,
    optimizer_state: dict | None = None,
) -> str:
    """Write a checkpoint atomically; returns its sha256 hex digest."""
    import torch

    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_dict(),
        "dataset": dataset.to_dict(),
        "state_dict": state,
        "epoch": int(epoch),
        "metrics": _plain(metrics or {}),
        "train": _plain(train or {}),
        "optimizer": optimizer_state,
    }
    # Serialised in memory, then written atomically: a full disk is an OSError with its errno (one line, no
    # truncated file), not a torch RuntimeError from deep inside the zip writer.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    fileio.write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint and rebuild its model (eval mode, CPU). A bad or missing file raises BnnError."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise BnnError(f"checkpoint {path} not found; train one with `bnn-hw train --out DIR` (DIR/checkpoint.pt)")
    with path.open("rb") as handle:
        head = handle.read(8)
    if head == MAGIC:
        raise BnnError(
            f"{path} is an exported .bnn model, not a training checkpoint; pass the run's checkpoint.pt "
            f"(written by `bnn-hw train --out DIR`)"
        )
    if head[:4] != b"PK\x03\x04":  # torch.save writes a zip archive
        raise BnnError(
            f"{path} is not a PyTorch checkpoint (not a zip archive); pass DIR/checkpoint.pt written by `bnn-hw train`"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError, AttributeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights_only" in first or "Weights only" in first:
            first = "it holds Python objects other than tensors and plain data"
        raise BnnError(f"{path} is not a readable bnn-hw checkpoint ({first[:160]})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise BnnError(
            f"{path} is not a bnn-hw checkpoint (no '{FORMAT}' marker); pass DIR/checkpoint.pt "
            f"written by `bnn-hw train`"
        )
    if payload.get("version") != VERSION:
        raise BnnError(f"{path} is checkpoint version {payload.get('version')}; this bnn-hw reads version {VERSION}")
    try:
        config = ModelConfig.from_dict(payload["config"])
        dataset = DatasetInfo.from_dict(payload["dataset"])
        with torch.random.fork_rng(devices=[]):  # initial values are overwritten: leave the caller's RNG alone
            model = build_model(config)
        model.load_state_dict(payload["state_dict"], strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BnnError(f"{path}: checkpoint content does not rebuild a model ({first[:160]})") from exc
    model.eval()
    return Checkpoint(
        model=model,
        config=config,
        dataset=dataset,
        hash=file_hash(path),
        epoch=int(payload.get("epoch", 0)),
        metrics=dict(payload.get("metrics") or {}),
        train=dict(payload.get("train") or {}),
        optimizer_state=payload.get("optimizer"),
        path=path,
    )
