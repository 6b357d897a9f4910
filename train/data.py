"""Data sets as torch tensors, seeded mini-batches and light augmentation for training.

The images stay uint8 on the device and become float only batch by batch: the model's input is raw pixel values
0..255 (integers in float32, no normalization), so the first layer's sums are exact integers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bnn_hw.datasets import Dataset
from bnn_hw.errors import BnnError

AUGMENTATIONS = ("none", "shift", "shift-flip")


@dataclass
class TensorData:
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def to_tensors(dataset: Dataset, device: str | torch.device = "cpu") -> TensorData:
    """Channels-last uint8 numpy images -> uint8 NCHW tensors on `device`."""
    images = torch.from_numpy(dataset.images.copy()).permute(0, 3, 1, 2).contiguous()
    return TensorData(images.to(device), torch.from_numpy(dataset.labels).to(device))


def batches(
    data: TensorData, batch_size: int, generator: torch.Generator | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(float pixels, labels) mini-batches; shuffled with `generator` when given, in order otherwise."""
    n = len(data)
    if generator is not None:
        order = torch.randperm(n, generator=generator).to(data.images.device)
    else:
        order = None
    for start in range(0, n, batch_size):
        if order is None:
            x, y = data.images[start : start + batch_size], data.labels[start : start + batch_size]
        else:
            idx = order[start : start + batch_size]
            x, y = data.images[idx], data.labels[idx]
        yield x.float(), y


def augment_params(n: int, kind: str, generator: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Random (dy, dx, mirror) for `n` images, drawn in one go: one host-to-device copy per epoch, not per step.

    Copying small tensors to a GPU every step forces the host to wait for the GPU, which made short steps
    launch-bound; drawing an epoch's worth at once keeps the steps free of synchronisation.
    """
    if kind not in AUGMENTATIONS:
        raise BnnError(f"unknown augmentation {kind!r}; choose from: {', '.join(AUGMENTATIONS)}")
    s = max_shift
    dy = torch.randint(-s, s + 1, (n,), generator=generator)
    dx = torch.randint(-s, s + 1, (n,), generator=generator)
    flip = (
        (torch.rand(n, generator=generator) < 0.5).long() if kind == "shift-flip" else torch.zeros(n, dtype=torch.long)
    )
    return torch.stack([dy, dx, flip], 1)


def apply_augment(x: torch.Tensor, kind: str, params: torch.Tensor, max_shift: int = 2) -> torch.Tensor:
    """Translate each image by its (dy, dx) (padded with 0, the background) and mirror it where asked.

    Values stay integer pixels, so the first layer still sees exact integers. `params` is on x's device.
    """
    if kind == "none":
        return x
    b, _, h, w = x.shape
    s = max_shift
    dev = x.device
    dy, dx, flip = params[:, 0], params[:, 1], params[:, 2]
    padded = F.pad(x, (s, s, s, s))
    iy = torch.arange(h, device=dev)[None, :] + s + dy[:, None]  # (B, H)
    ix = torch.arange(w, device=dev)[None, :] + s + dx[:, None]  # (B, W)
    if kind == "shift-flip":
        ix = torch.where(flip[:, None].bool(), ix.flip(1), ix)
    bi = torch.arange(b, device=dev)[:, None, None, None]
    ci = torch.arange(x.shape[1], device=dev)[None, :, None, None]
    return padded[bi, ci, iy[:, None, :, None], ix[:, None, None, :]]
