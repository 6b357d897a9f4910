"""Binarized building blocks whose eval-mode arithmetic the exporter reproduces exactly.

Rules that keep every trained model exactly representable in the threshold-and-bitweight form (docs/format.md):
- weights and activations are sign(x) with sign(0) = +1; binary dot products of +-1 values are exact in float32;
- the first layer sees raw pixel values 0..255 as floats (integer sums, exact below 2**24), or their binarization;
- eval-mode BatchNorm is written as separate element-wise operations, each correctly rounded on any device and in any
  memory layout, so the exporter can evaluate the *same* arithmetic at every reachable integer sum;
- max-pooling comes after the sign, where max of +-1 values is the OR of the bits;
- convolution padding uses a +-1 value (bits) or a pixel value (first layer), never 0 in the +-1 domain;
- the last layer's scores are the integer dot product plus an integer (rounded) bias, so the arg-max is exact.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SignSTE(torch.autograd.Function):
    """sign(x) with sign(0) = +1 forward; straight-through estimator backward (gradient kept where |x| <= 1)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def binarize(x: torch.Tensor) -> torch.Tensor:
    return SignSTE.apply(x)


class RoundSTE(torch.autograd.Function):
    """round() forward, identity backward: trains a bias that is an integer at every forward pass."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


class BinaryLinear(nn.Linear):
    """Linear layer with sign-binarized weights and no bias; latent weights are clipped by `clip_weights`."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)
        nn.init.uniform_(self.weight, -1.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, binarize(self.weight))


class BinaryConv2d(nn.Conv2d):
    """3x3-style convolution with binarized weights; padding is applied explicitly with `pad_value`."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        pad_value: float = -1.0,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=False)
        nn.init.uniform_(self.weight, -1.0, 1.0)
        self.pad = padding
        self.pad_value = float(pad_value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, value=self.pad_value)
        return F.conv2d(x, binarize(self.weight), stride=self.stride)


class ThresholdBatchNorm(nn.BatchNorm1d):
    """BatchNorm over dim 1 (works for (B, C) and (B, C, H, W)); BinaryNet's eps 1e-4 and momentum 0.1.

    Eval mode computes ((x - mean) / sqrt(var + eps)) * weight + bias as separate element-wise ops. Each op is
    correctly rounded and monotone, so the result is a monotone function of x that the exporter can evaluate
    exactly (`eval_at`) and turn into an integer threshold.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features, eps=1e-4, momentum=0.1)
        self.synced = False  # True in distributed runs: batch statistics over every process (train.distributed)

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 4):
            raise ValueError(f"expected a 2D or 4D input, got {x.dim()}D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self._synced_forward(x) if self.synced else super().forward(x)
        return self.eval_at(x)

    def _synced_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Training-mode BatchNorm on the global batch of a distributed run (the statistics one process would see)."""
        from bnn_hw.train.distributed import synced_batch_stats

        mean, var, n = synced_batch_stats(x, [0, *range(2, x.dim())])
        with torch.no_grad():
            self.num_batches_tracked += 1
            self.running_mean.mul_(1 - self.momentum).add_(mean.detach(), alpha=self.momentum)
            unbiased = var.detach() * (n / max(1, n - 1))
            self.running_var.mul_(1 - self.momentum).add_(unbiased, alpha=self.momentum)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape)

    def eval_at(self, x: torch.Tensor) -> torch.Tensor:
        """The eval-mode arithmetic, element by element, for x of shape (B, C) or (B, C, H, W)."""
        shape = (1, -1) + (1,) * (x.dim() - 2)
        std = torch.sqrt(self.running_var + self.eps)
        y = (x - self.running_mean.view(shape)) / std.view(shape)
        return y * self.weight.view(shape) + self.bias.view(shape)


class ScoreHead(nn.Module):
    """Last-layer normalization that keeps the arg-max exact: scores = dot + round(bias).

    The loss sees `scale * scores` (a learned positive temperature, in place of BinaryNet's last BatchNorm, whose
    per-class float scales would make the integer arg-max differ at near-ties).
    """

    def __init__(self, num_classes: int, fan_in: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(num_classes))
        self.log_scale = nn.Parameter(torch.tensor(-0.5 * math.log(fan_in)))

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp()

    def forward(self, dot: torch.Tensor) -> torch.Tensor:
        return dot + RoundSTE.apply(self.bias)


class BinaryDense(nn.Module):
    """Dropout -> BinaryLinear -> (ThresholdBatchNorm -> sign) or ScoreHead."""

    def __init__(self, in_features: int, out_features: int, *, output: str = "bits", dropout: float = 0.0) -> None:
        super().__init__()
        if output not in ("bits", "scores"):
            raise ValueError(f"output must be 'bits' or 'scores', got {output!r}")
        self.output = output
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.linear = BinaryLinear(in_features, out_features)
        self.norm = ThresholdBatchNorm(out_features) if output == "bits" else ScoreHead(out_features, in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.linear(self.dropout(x.flatten(1))))
        return binarize(x) if self.output == "bits" else x


class BinaryConv(nn.Module):
    """BinaryConv2d -> ThresholdBatchNorm -> sign -> optional max-pool (after the sign: an OR of bits)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        padding: int = 0,
        pad_value: float = -1.0,
        pool: int = 0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.conv = BinaryConv2d(in_channels, out_channels, kernel_size, stride, padding, pad_value)
        self.norm = ThresholdBatchNorm(out_channels)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = binarize(self.norm(self.conv(self.dropout(x))))
        return F.max_pool2d(x, self.pool) if self.pool else x


class InputBinarize(nn.Module):
    """FINN-style variant: the first layer sees bits (pixel >= threshold) instead of raw pixels."""

    def __init__(self, threshold: int = 128) -> None:
        super().__init__()
        self.threshold = int(threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x >= self.threshold, torch.ones_like(x), -torch.ones_like(x))


class BinaryNet(nn.Module):
    """A chain of BinaryConv / BinaryDense blocks on raw pixels (float 0..255, NCHW); returns integer scores.

    `input_shape` is (C, H, W). Dense blocks flatten their input in PyTorch's (C, H, W) order; the exporter
    reorders those weights to the channels-last order of the model file.
    """

    def __init__(
        self, input_shape: tuple[int, int, int], blocks: list[nn.Module], binarize_input: int | None = None
    ) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.binarize_input = binarize_input
        self.input_binarize = InputBinarize(binarize_input) if binarize_input is not None else nn.Identity()
        self.blocks = nn.ModuleList(blocks)
        if not isinstance(self.blocks[-1], BinaryDense) or self.blocks[-1].output != "scores":
            raise ValueError("the last block must be a BinaryDense with output='scores'")

    @property
    def head(self) -> ScoreHead:
        return self.blocks[-1].norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_binarize(x)
        for block in self.blocks:
            x = block(x)
        return x

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Scores times the learned temperature: what the loss sees."""
        return self(x) * self.head.scale


def clip_weights(model: nn.Module) -> None:
    """BinaryNet: latent real weights are clipped to [-1, 1] after every optimizer step."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, BinaryLinear | BinaryConv2d):
                module.weight.clamp_(-1.0, 1.0)
