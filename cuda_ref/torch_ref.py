"""The same network as a plain PyTorch float model, built from a .bnn model's unpacked weights.

This is the comparison the benchmarks need ("the same network in PyTorch"), not the trainer's model: it is built
from the exported integer form alone (cuda_ref does not import train/), with {-1,+1} weights, the thresholds as a
comparison and the integer biases. In float32 every sum is an integer below 2**24, so it is exact and its classes
equal the golden model's; in float16/bfloat16 the matmuls round (the comparison is still done in float32), and the
benchmarks report how many classes still agree rather than assume it. Torch is imported here, so import this
module only when it is needed.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bnn_hw.model import BnnModel, Layer
from bnn_hw.packing import unpack_bits

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _signs(layer: Layer) -> torch.Tensor:
    """{-1,+1} float32 weights (N, K) in the layer's fan-in order."""
    bits = unpack_bits(layer.weights, layer.fan_in)
    return torch.from_numpy(np.where(bits, np.float32(1), np.float32(-1)))


class FloatLayer(nn.Module):
    """One layer in float: matmul/conv in `dtype`, then (in float32) threshold -> +-1, or dot + bias."""

    def __init__(self, layer: Layer, dtype: torch.dtype) -> None:
        super().__init__()
        self.kind, self.output, self.input = layer.kind, layer.output, layer.input
        self.kernel, self.stride, self.padding, self.pool = layer.kernel, layer.stride, layer.padding, layer.pool
        self.pad_value = float(layer.pad_value)
        self.fan_in = layer.fan_in
        w = _signs(layer)
        if layer.kind == "conv":  # fan-in order (ky, kx, c) -> PyTorch's (N, C, k, k)
            c = layer.in_shape[2]
            w = w.reshape(layer.out_features, layer.kernel, layer.kernel, c).permute(0, 3, 1, 2).contiguous()
        self.register_buffer("weight", w.to(dtype))
        if layer.output == "bits":
            # acc >= t with acc = dot (pixels) or (dot + K) / 2 (bits)  <=>  dot >= t' below (exact integers)
            t = layer.thresholds.astype(np.float64)
            t = t if layer.input == "pixels" else 2 * t - layer.fan_in
            self.register_buffer("threshold", torch.from_numpy(t.astype(np.float32)))
        else:
            self.register_buffer("bias", torch.from_numpy(layer.bias.astype(np.int64)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) for conv, (B, K) for dense, in the weights' dtype; returns the next layer's input
        (+-1 in the same dtype and layout) or int64 scores."""
        if self.kind == "conv":
            if self.padding:
                x = F.pad(x, (self.padding,) * 4, value=self.pad_value)
            dot = F.conv2d(x, self.weight, stride=self.stride)
        else:
            dot = x @ self.weight.T
        if self.output == "scores":
            return dot.float().round().to(torch.int64) + self.bias
        shape = (1, -1, 1, 1) if self.kind == "conv" else (1, -1)
        y = torch.where(dot.float() >= self.threshold.view(shape), 1.0, -1.0).to(x.dtype)
        if self.pool:
            y = F.max_pool2d(y, self.pool)  # max of +-1 = OR of the bits; floor mode like the format
        return y


class FloatBnn(nn.Module):
    """The whole network in float: uint8 images (B, H, W, C) in, int64 scores out (`classify` for classes)."""

    def __init__(self, model: BnnModel, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.dtype = dtype
        self.binarize_at = model.binarize_at
        self.layers = nn.ModuleList(FloatLayer(layer, dtype) for layer in model.layers)
        self.kinds = [layer.kind for layer in model.layers]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(torch.float32)
        if self.binarize_at is not None:
            x = torch.where(x >= self.binarize_at, 1.0, -1.0)
        x = x.to(self.dtype).permute(0, 3, 1, 2)  # NCHW for convolutions
        for layer in self.layers:
            if layer.kind == "dense" and x.dim() == 4:  # the format flattens channels-last (HWC)
                x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
            x = layer(x)
        return x

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """First index of the maximum score (torch.argmax's and numpy's convention)."""
        return torch.argmax(self(images), dim=1)


def float_model(model: BnnModel, dtype: str | torch.dtype = "float32", device: str = "cpu") -> FloatBnn:
    """The float PyTorch network of `model`, in eval mode on `device`."""
    if isinstance(dtype, str):
        dtype = DTYPES[dtype]
    return FloatBnn(model, dtype).to(device).eval()
