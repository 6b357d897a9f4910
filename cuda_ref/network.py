"""Whole-network batched inference on the GPU with the interface and results of `bnn_hw.golden.run`.

Per layer: the input is gathered into packed rows (image bit planes, or the im2col / flattening of a packed bit
map), one fused matmul launch writes the thresholded bits already packed as the next layer's input (or the scores),
conv outputs are OR-pooled on packed words, and the last layer's class is the first index of the maximum score.
With `trace=True` (the default, like the golden model) each layer's int32 accumulators are written by the same
launch and every trace is copied back; `trace=False` keeps everything on the device and returns the scores and
classes only (`layers` empty), for throughput.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cupy as cp
import numpy as np
from bnn_hw.cuda_ref import kernels as K
from bnn_hw.cuda_ref._device import require

from bnn_hw import golden
from bnn_hw.errors import BnnError
from bnn_hw.golden import GoldenResult, LayerTrace
from bnn_hw.model import BnnModel, Layer

KernelChoice = Literal["auto", "tiled", "bmma", "bmma256", "bmma_v", "bmma256_v", "bmma_v3"]
PixelKernelChoice = Literal[
    "auto",
    "tiled",
    "bmma",
    "bmma256",
    "bmma_v",
    "bmma256_v",
    "bmma_v3",
    "imma",
    "imma256",
    "imma_v",
    "imma256_v",
    "imma_v3",
]
_INT32_LIMIT = (1 << 31) - 1


@dataclass
class DeviceLayer:
    """A layer's constants on the device, in the form the fused kernels take."""

    layer: Layer
    ld: int  # words per packed input row (per plane)
    planes: int  # 8 for pixel input, 1 for bits
    weights: cp.ndarray  # uint32 (N, ld)
    colc_xor: cp.ndarray  # int32 (N,) correction of the CUDA-core kernel
    colc_and: cp.ndarray  # int32 (N,) correction of the tensor-core kernel
    thresholds: cp.ndarray | None  # int32 (N,) for bits output
    score_scale: int  # scores = acc * score_scale + score_off
    score_off: cp.ndarray | None  # int32 (N,) for the scores layer
    weights_i8: cp.ndarray | None = None  # int8 +-1 rows seen as uint32 (N, ld_i8): pixel layers on 8-bit kernels
    ld_i8: int = 0


@dataclass
class DeviceModel:
    """A model uploaded once; pass it to `run` in place of the BnnModel to skip the upload."""

    model: BnnModel
    layers: list[DeviceLayer]
    kernel: str  # bits layers: "tiled" or one of kernels.BINARY_TENSOR_CORE
    pixel_kernel: str  # layers on 8-bit pixels: one of the above (8 bit planes) or of kernels.INT8_TENSOR_CORE


def _int32(values: np.ndarray, what: str) -> cp.ndarray:
    values = np.asarray(values, dtype=np.int64)
    if values.size and np.abs(values).max() > _INT32_LIMIT:
        raise BnnError(f"{what} exceed the GPU kernels' int32 range")
    return cp.asarray(values.astype(np.int32))


def prepare(model: BnnModel, kernel: KernelChoice = "auto", pixel_kernel: PixelKernelChoice = "auto") -> DeviceModel:
    """Validate `model` and upload its weights, corrections, thresholds and biases.

    `kernel` runs the bits layers; `pixel_kernel` a first layer on 8-bit pixels: "auto" is the 8-bit tensor-core
    kernel of the same tile when `kernel` is a tensor-core one (one int8 MAC instead of 8 bit-plane MACs), else
    `kernel` itself on 8 bit planes."""
    status = require()
    if kernel == "auto":
        kernel = "bmma" if status.tensor_cores else "tiled"
    if kernel not in ("tiled", *K.BINARY_TENSOR_CORE):
        raise BnnError(f"unknown kernel {kernel!r}; choose auto, tiled, {', '.join(K.BINARY_TENSOR_CORE)}")
    if pixel_kernel == "auto":
        pixel_kernel = K.int8_partner(kernel) if kernel in K.BINARY_TENSOR_CORE else kernel
    if pixel_kernel not in ("tiled", *K.TENSOR_CORE_TILES):
        raise BnnError(f"unknown pixel kernel {pixel_kernel!r}; choose auto, tiled, {', '.join(K.TENSOR_CORE_TILES)}")
    require(tensor_cores=kernel != "tiled" or pixel_kernel != "tiled")
    model.validate()
    if model.layers[-1].kind != "dense":
        raise BnnError("the GPU reference needs a dense scores layer last (one score vector per image)")
    layers = []
    for i, layer in enumerate(model.layers):
        k = layer.fan_in
        if 2 * k + (1 << 30) > _INT32_LIMIT:
            raise BnnError(f"layer {i}: fan-in {k} is too large for the GPU kernels' int32 accumulators")
        ld = K.row_words(k)
        planes = K.PIXEL_PLANES if layer.input == "pixels" else 1
        weights = K.upload_bits(layer.weights, k, ld)
        pw = K.row_weights(weights, ld)
        if planes == 1:
            colc_xor = cp.full(layer.out_features, k, dtype=cp.int32)
            colc_and = (k - pw).astype(cp.int32)
        else:
            colc_xor = (255 * pw).astype(cp.int32)
            colc_and = cp.zeros(layer.out_features, dtype=cp.int32)
        thresholds = score_off = None
        score_scale = 1
        if layer.output == "bits":
            thresholds = _int32(layer.thresholds, f"layer {i} thresholds")
        else:  # scores = dot + bias; dot = 2 * acc - K for bits input, acc for pixels
            score_scale = 2 if layer.input == "bits" else 1
            offset = layer.bias.astype(np.int64) - (k if layer.input == "bits" else 0)
            score_off = _int32(offset, f"layer {i} biases")
        dl = DeviceLayer(layer, ld, planes, weights, colc_xor, colc_and, thresholds, score_scale, score_off)
        if planes != 1 and pixel_kernel in K.INT8_TENSOR_CORE:
            dl.ld_i8 = K.byte_words(k)
            dl.weights_i8 = K.upload_signs_i8(layer.weights, k, dl.ld_i8)
        layers.append(dl)
    return DeviceModel(model, layers, kernel, pixel_kernel)


def _first_layer_rows(dm: DeviceModel, images: cp.ndarray) -> cp.ndarray:
    """Packed rows of layer 0 from uint8 images (B, H, W, C)."""
    model = dm.model
    dl = dm.layers[0]
    layer = dl.layer
    h, w, _ = model.input_shape
    if layer.kind == "conv":
        window = dict(
            kernel_hw=(layer.kernel, layer.kernel), stride=layer.stride, padding=layer.padding, out_hw=layer.conv_shape
        )
    else:
        window = dict(kernel_hw=(h, w))
    if layer.input == "pixels" and dl.weights_i8 is not None:
        return K.gather_bytes(images, pad_pixel=layer.pad_value if layer.kind == "conv" else 0, ld=dl.ld_i8, **window)
    if layer.input == "pixels":
        return K.gather_u8(
            images, planes=K.PIXEL_PLANES, pad_pixel=layer.pad_value if layer.kind == "conv" else 0, ld=dl.ld, **window
        )
    pad_bit = int(layer.pad_value > 0) if layer.kind == "conv" else 0
    return K.gather_u8(images, planes=1, thresh=int(model.binarize_at), pad_bit=pad_bit, ld=dl.ld, **window)


def _run_batch(dm: DeviceModel, images: cp.ndarray, trace: bool) -> tuple[cp.ndarray, cp.ndarray, list]:
    """Scores (int32), classes (int64) and, with trace, host LayerTraces of one batch."""
    batch = images.shape[0]
    traces: list[LayerTrace] = []
    fmap: cp.ndarray | None = None  # packed output of the previous layer: (B, H, W, ldp) map or (B, ld) rows
    prev: Layer | None = None
    scores = classes = None
    for i, dl in enumerate(dm.layers):
        layer = dl.layer
        if i == 0:
            a = _first_layer_rows(dm, images)
        elif prev is not None and prev.kind == "conv":
            h, w, c = prev.out_shape
            if layer.kind == "conv":
                a = K.gather_bits(
                    fmap,
                    channels=c,
                    kernel_hw=(layer.kernel, layer.kernel),
                    stride=layer.stride,
                    padding=layer.padding,
                    out_hw=layer.conv_shape,
                    pad_bit=int(layer.pad_value > 0),
                    ld=dl.ld,
                )
            else:  # HWC flattening before a dense layer
                a = K.gather_bits(fmap, channels=c, kernel_hw=(h, w), ld=dl.ld)
        else:  # dense -> dense: the previous launch already wrote rows of this layer's stride
            a = fmap
        rows = batch * layer.input_vectors
        n = layer.out_features
        name = dm.pixel_kernel if dl.planes != 1 else dm.kernel
        ld, weights = dl.ld, dl.weights
        if name in K.INT8_TENSOR_CORE:  # pixel bytes times int8 weights: no corrections
            ld, weights, colc, roww = dl.ld_i8, dl.weights_i8, None, None
        elif name in K.BINARY_TENSOR_CORE:
            colc, roww = dl.colc_and, K.row_weights(a, dl.ld, dl.planes)
        else:
            colc, roww = dl.colc_xor, None
        planes = 1 if name in K.INT8_TENSOR_CORE else dl.planes
        acc = cp.empty((rows, n), dtype=cp.int32) if trace else None
        if layer.output == "bits":
            nxt = dm.layers[i + 1]
            # A conv output is a map of pixels with ceil(N/32) words each; a dense output is the next dense
            # layer's input rows (its stride, zero words past the bits included).
            ldo = K.words32(n) if layer.kind == "conv" else nxt.ld
            out = cp.zeros((rows, ldo), dtype=cp.uint32)
            K.gemm(
                a,
                weights,
                m=rows,
                n=n,
                ld=ld,
                planes=planes,
                kernel_name=name,
                colc=colc,
                roww=roww,
                acc_out=acc,
                thr=dl.thresholds,
                bits_out=out,
                ldo=ldo,
            )
            if layer.kind == "conv":
                oh, ow = layer.conv_shape
                out = out.reshape(batch, oh, ow, ldo)
                if layer.pool:
                    out = K.or_pool(out, layer.pool)
            if trace:
                acc_host = cp.asnumpy(acc).astype(np.int64)
                bits = K.download_bits(out.reshape(-1, out.shape[-1]), n)
                if layer.kind == "conv":
                    acc_host = acc_host.reshape(batch, *layer.conv_shape, n)
                traces.append(LayerTrace(acc=acc_host, out=bits.reshape(batch, *layer.out_shape)))
            fmap = out
        else:
            scores = cp.empty((rows, n), dtype=cp.int32)
            K.gemm(
                a,
                weights,
                m=rows,
                n=n,
                ld=ld,
                planes=planes,
                kernel_name=name,
                colc=colc,
                roww=roww,
                acc_out=acc,
                score_scale=dl.score_scale,
                score_off=dl.score_off,
                scores_out=scores,
            )
            classes = K.argmax_rows(scores)
            if trace:
                traces.append(LayerTrace(acc=cp.asnumpy(acc).astype(np.int64), out=cp.asnumpy(scores).astype(np.int64)))
        prev = layer
    return scores, classes, traces


def bytes_per_image(dm: DeviceModel, trace: bool) -> int:
    """Device bytes one image needs in the largest layer (packed input rows, int32 accumulators, packed output)."""
    worst = 0
    for dl in dm.layers:
        layer = dl.layer
        rows = layer.input_vectors
        need = rows * dl.planes * dl.ld * 4 + rows * K.words32(layer.out_features) * 4 * 2
        if trace or layer.output == "scores":
            need += rows * layer.out_features * 4
        worst = max(worst, need)
    return worst


def run(
    model: BnnModel | DeviceModel,
    images: np.ndarray,
    batch_size: int = 8192,
    kernel: KernelChoice = "auto",
    trace: bool = True,
    memory_budget: int = 1 << 30,
    pixel_kernel: PixelKernelChoice = "auto",
) -> GoldenResult:
    """Run the integer model on uint8 images on the GPU; the same results as `bnn_hw.golden.run`.

    `kernel`: one of kernels.BINARY_TENSOR_CORE (binary tensor cores, sm_80+), "tiled" (CUDA cores) or
    "auto" (bmma when the device has it); `pixel_kernel`: the first layer on 8-bit pixels (see `prepare`).
    `trace=False` returns scores and classes only (`layers` is empty): the fast path for throughput.
    Batches are cut smaller than `batch_size` when needed to keep a layer's device buffers within `memory_budget`
    bytes (convolutions on large images)."""
    dm = model if isinstance(model, DeviceModel) else prepare(model, kernel, pixel_kernel)
    images = golden.as_images(dm.model, images)
    if batch_size < 1:
        raise BnnError(f"batch_size must be >= 1, got {batch_size}")
    batch_size = max(1, min(batch_size, memory_budget // max(1, bytes_per_image(dm, trace))))
    all_scores, all_classes, all_traces = [], [], []
    for start in range(0, max(len(images), 1), batch_size):
        chunk = images[start : start + batch_size]
        if not len(chunk):
            break
        scores, classes, traces = _run_batch(dm, cp.asarray(chunk), trace)
        all_scores.append(cp.asnumpy(scores).astype(np.int64))
        all_classes.append(cp.asnumpy(classes))
        all_traces.append(traces)
    n_cls = dm.model.num_classes
    if not all_scores:
        return golden.run(dm.model, images)  # an empty batch: nothing to launch
    scores = np.concatenate(all_scores)
    layers = []
    if trace:
        layers = [
            LayerTrace(
                acc=np.concatenate([t[i].acc for t in all_traces]), out=np.concatenate([t[i].out for t in all_traces])
            )
            for i in range(len(dm.layers))
        ]
    classes = np.concatenate(all_classes).astype(np.int64)
    assert scores.shape[1] == n_cls
    return GoldenResult(classes=classes, scores=scores, layers=layers)


def predict(
    model: BnnModel | DeviceModel,
    images: np.ndarray,
    batch_size: int = 65536,
    kernel: KernelChoice = "auto",
    pixel_kernel: PixelKernelChoice = "auto",
) -> np.ndarray:
    """Predicted classes only (int64)."""
    return run(model, images, batch_size=batch_size, kernel=kernel, trace=False, pixel_kernel=pixel_kernel).classes


def run_device(dm: DeviceModel, images: cp.ndarray) -> tuple[cp.ndarray, cp.ndarray]:
    """Scores and classes of device-resident uint8 images (B, H, W, C), nothing copied back: for benchmarks."""
    return _run_batch(dm, images, trace=False)[:2]
