"""The bit-exact numpy golden model: the reference every other component is checked against.

It follows docs/format.md literally: binary layers are XOR + popcount on packed uint64 words, pixel layers an integer
dot product (float32 BLAS, exact because every partial sum is an integer below 2**24), thresholds `acc >= t`,
OR max-pooling on bits, integer scores and the first index of the maximum as the class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bnn_hw.errors import BnnError
from bnn_hw.model import BnnModel, InputKind, Layer, LayerKind, OutputKind
from bnn_hw.packing import pack_bits, unpack_bits

_CHUNK_ELEMENTS = 1 << 22  # rows x neurons per popcount block: keeps temporaries small and in cache


@dataclass
class LayerTrace:
    """What one layer computed for a batch."""

    acc: np.ndarray  # int64 accumulators: (B, N) dense, (B, OH, OW, N) conv (before pooling)
    out: np.ndarray  # bool output bits (B, *out_shape) after pooling, or int64 scores (B, N) for the last layer


@dataclass
class GoldenResult:
    classes: np.ndarray  # int64 (B,)
    scores: np.ndarray  # int64 (B, num_classes)
    layers: list[LayerTrace]


def xnor_popcount(x_words: np.ndarray, w_words: np.ndarray, k: int) -> np.ndarray:
    """acc[m, n] = number of the first k bit positions where x[m] and w[n] agree (zero padding bits agree too,
    which is why mismatches are counted and subtracted from k)."""
    m, n = x_words.shape[0], w_words.shape[0]
    acc = np.empty((m, n), dtype=np.int64)
    rows = max(1, _CHUNK_ELEMENTS // max(n, 1))
    for start in range(0, m, rows):
        xs = x_words[start : start + rows]
        mismatches = np.zeros((xs.shape[0], n), dtype=np.int32)
        for j in range(x_words.shape[1]):
            mismatches += np.bitwise_count(xs[:, j, None] ^ w_words[None, :, j])
        acc[start : start + rows] = k - mismatches
    return acc


def as_images(model: BnnModel, images: np.ndarray) -> np.ndarray:
    """Accept (B, H, W, C), (B, H, W) for one channel, or (B, H*W*C) flattened HWC; return uint8 (B, H, W, C)."""
    images = np.asarray(images)
    h, w, c = model.input_shape
    if images.dtype != np.uint8:
        if not np.issubdtype(images.dtype, np.integer) or images.size and (images.min() < 0 or images.max() > 255):
            raise BnnError(f"images must be uint8 pixel values 0..255, got dtype {images.dtype}")
        images = images.astype(np.uint8)
    if images.ndim == 4 and images.shape[1:] == (h, w, c):
        return images
    if images.ndim == 3 and c == 1 and images.shape[1:] == (h, w):
        return images[..., None]
    if images.ndim == 2 and images.shape[1] == h * w * c:
        return images.reshape(-1, h, w, c)
    raise BnnError(
        f"images of shape {images.shape} do not fit the model's input (H, W, C) = {(h, w, c)}: "
        f"pass (B, {h}, {w}, {c}) channels-last uint8"
    )


def im2col(fmap: np.ndarray, layer: Layer, pad: int) -> np.ndarray:
    """(B, H, W, C) -> (B, OH, OW, k*k*C) windows in (ky, kx, c) order, the fan-in order of conv weights."""
    b, h, w, c = fmap.shape
    p, k, s = layer.padding, layer.kernel, layer.stride
    if p:
        padded = np.full((b, h + 2 * p, w + 2 * p, c), pad, dtype=fmap.dtype)
        padded[:, p : p + h, p : p + w] = fmap
        fmap = padded
    oh, ow = layer.conv_shape
    win = np.lib.stride_tricks.sliding_window_view(fmap, (k, k), axis=(1, 2))  # (B, H', W', C, k, k)
    win = win[:, : (oh - 1) * s + 1 : s, : (ow - 1) * s + 1 : s]
    return np.ascontiguousarray(win.transpose(0, 1, 2, 4, 5, 3)).reshape(b, oh, ow, k * k * c)


def _pixel_weights(layer: Layer) -> np.ndarray:
    """{-1,+1} float32 weights (K, N) for the exact float32 matmul of pixel layers."""
    return np.where(unpack_bits(layer.weights, layer.fan_in), np.float32(1), np.float32(-1)).T.copy()


def layer_accumulators(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Accumulators of `layer` for input x: uint8 pixels (pixel layers) or bool bits (B, *in_shape)."""
    b = x.shape[0]
    if layer.kind == LayerKind.CONV:
        if layer.input == InputKind.PIXELS:
            pad = layer.pad_value
        else:
            pad = layer.pad_value > 0
        vectors = im2col(x, layer, pad)
        lead = vectors.shape[:3]
    else:
        vectors = x.reshape(b, -1)
        lead = (b,)
    vectors = vectors.reshape(-1, layer.fan_in)
    if layer.input == InputKind.PIXELS:
        acc = (vectors.astype(np.float32) @ _pixel_weights(layer)).astype(np.int64)
    else:
        acc = xnor_popcount(pack_bits(vectors), layer.weights, layer.fan_in)
    out: np.ndarray = acc.reshape(lead + (layer.out_features,))
    return out


def or_pool(bits: np.ndarray, pool: int) -> np.ndarray:
    """Max-pooling of {-1,+1} values as bits: OR over non-overlapping pool x pool windows (floor mode)."""
    b, h, w, c = bits.shape
    oh, ow = h // pool, w // pool
    return np.asarray(bits[:, : oh * pool, : ow * pool].reshape(b, oh, pool, ow, pool, c).any(axis=(2, 4)))


def apply_layer(layer: Layer, x: np.ndarray) -> LayerTrace:
    acc = layer_accumulators(layer, x)
    if layer.output == OutputKind.SCORES:
        return LayerTrace(acc=acc, out=layer.dot_from_acc(acc) + layer.bias)
    bits = acc >= layer.thresholds
    if layer.pool:
        bits = or_pool(bits, layer.pool)
    return LayerTrace(acc=acc, out=bits)


def run(model: BnnModel, images: np.ndarray, batch_size: int = 2048) -> GoldenResult:
    """Run the integer model on uint8 images; every layer's accumulators and outputs are returned."""
    images = as_images(model, images)
    traces: list[list[LayerTrace]] = []
    for start in range(0, max(len(images), 1), batch_size):
        x = images[start : start + batch_size]
        if model.binarize_at is not None:
            x = x >= model.binarize_at
        batch = []
        for layer in model.layers:
            trace = apply_layer(layer, x)
            batch.append(trace)
            x = trace.out
        traces.append(batch)
    layers = [
        LayerTrace(acc=np.concatenate([t[i].acc for t in traces]), out=np.concatenate([t[i].out for t in traces]))
        for i in range(len(model.layers))
    ]
    scores = layers[-1].out
    return GoldenResult(classes=np.argmax(scores, axis=1).astype(np.int64), scores=scores, layers=layers)


def predict(model: BnnModel, images: np.ndarray) -> np.ndarray:
    """Predicted classes only."""
    return run(model, images).classes
