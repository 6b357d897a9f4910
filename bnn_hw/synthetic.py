"""Seeded random models in the bnn_hw form, for tests and benchmarks that need no training (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bnn_hw.model import BnnModel, InputKind, Layer, LayerKind, OutputKind
from bnn_hw.packing import pack_bits


@dataclass(frozen=True)
class ConvSpec:
    out_channels: int
    kernel: int = 3
    stride: int = 1
    padding: int = 0
    pad_value: int = -1  # for a pixel-input layer a pixel value, for bits +1/-1
    pool: int = 0


def _thresholds(rng: np.random.Generator, layer: Layer) -> np.ndarray:
    """Thresholds near the middle of the accumulator's typical range (so outputs are mixed), plus the extremes."""
    lo, hi = layer.acc_range
    n = layer.out_features
    if layer.input == InputKind.BITS:
        spread = max(1, int(np.sqrt(layer.fan_in)))
        t = layer.fan_in // 2 + rng.integers(-spread, spread + 1, n)
    else:
        t = rng.integers(-40 * layer.fan_in, 40 * layer.fan_in + 1, n)
    if n >= 3:  # one neuron that always fires, one that never does
        t[0], t[1] = lo, hi + 1
    return np.clip(t, lo, hi + 1).astype(np.int64)


def random_model(
    input_shape: tuple[int, int, int],
    hidden: list[int | ConvSpec],
    num_classes: int = 10,
    seed: int = 0,
    binarize_at: int | None = None,
    name: str = "random",
) -> BnnModel:
    """A valid random model: `hidden` lists conv specs and dense widths in order, then a scores layer."""
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    shape: tuple[int, ...] = tuple(input_shape)
    kinds = [*hidden, num_classes]
    for i, spec in enumerate(kinds):
        input_kind = (InputKind.PIXELS if binarize_at is None else InputKind.BITS) if i == 0 else InputKind.BITS
        last = i == len(kinds) - 1
        if isinstance(spec, ConvSpec):
            pad_value = spec.pad_value
            if input_kind == "pixels" and not 0 <= pad_value <= 255:
                pad_value = 0
            layer = Layer(
                kind=LayerKind.CONV,
                input=input_kind,
                output=OutputKind.BITS,
                in_shape=shape,
                out_features=spec.out_channels,
                weights=np.zeros((0, 0), np.uint64),
                kernel=spec.kernel,
                stride=spec.stride,
                padding=spec.padding,
                pad_value=pad_value,
                pool=spec.pool,
            )
        else:
            k = int(np.prod(shape))
            layer = Layer(
                kind=LayerKind.DENSE,
                input=input_kind,
                output=OutputKind.SCORES if last else OutputKind.BITS,
                in_shape=(k,),
                out_features=int(spec),
                weights=np.zeros((0, 0), np.uint64),
            )
        layer = layer.replace(weights=pack_bits(rng.random((layer.out_features, layer.fan_in)) < 0.5))
        if layer.output == OutputKind.BITS:
            layer = layer.replace(thresholds=_thresholds(rng, layer))
        else:
            layer = layer.replace(bias=rng.integers(-8, 9, layer.out_features).astype(np.int64))
        layers.append(layer)
        shape = layer.out_shape
    height, width, channels = input_shape
    model = BnnModel(
        layers=tuple(layers),
        input_shape=(int(height), int(width), int(channels)),
        classes=tuple(f"class{c}" for c in range(num_classes)),
        binarize_at=binarize_at,
        name=name,
        source={"synthetic_seed": seed},
    )
    model.validate()
    return model


def random_images(model: BnnModel, count: int, seed: int = 0) -> np.ndarray:
    """uint8 (count, H, W, C) images with a spread of pixel values, including 0 and 255."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, *model.input_shape), dtype=np.uint8)
    if count:
        images[0] = 0
    if count > 1:
        images[1] = 255
    return images
