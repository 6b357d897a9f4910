"""The threshold-and-bitweight model form and its file format (docs/format.md is the byte-for-byte description).

A model is a chain of layers. Each layer multiplies its input by a {-1,+1} weight matrix stored as packed bits and
either thresholds the integer accumulator into output bits or adds an integer bias to produce class scores.
Everything here is integers: the file carries no float that could round differently on another machine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bnn_hw.errors import BnnError
from bnn_hw.packing import WORD_BITS, words_for

MAGIC = b"BNNHWMDL"
FORMAT_VERSION = 1
_PREAMBLE = struct.Struct("<8sII")  # magic, version, header length
_DIGEST_BYTES = 32
PIXEL_MAX = 255
# The golden model sums pixel products in float32 BLAS; that is exact while every partial sum is below 2**24.
MAX_PIXEL_FAN_IN = (1 << 24) // PIXEL_MAX - 1

LayerKind = Literal["dense", "conv"]
InputKind = Literal["pixels", "bits"]
OutputKind = Literal["bits", "scores"]


@dataclass
class Layer:
    """One layer of the integer model.

    Accumulator: for `input == "bits"` the popcount of XNOR(input bits, weight bits) over the K fan-in bits
    (0..K; the dot product is 2*acc - K); for `input == "pixels"` the dot product sum(w_i * x_i) with x_i the raw
    uint8 pixel values. Output `bits`: bit = (acc >= threshold) per neuron, then optional OR max-pooling.
    Output `scores`: score = dot + bias per neuron (integers); the class is the first index of the maximum score.
    """

    kind: LayerKind
    input: InputKind
    output: OutputKind
    in_shape: tuple[int, ...]  # dense: (K,); conv: (H, W, C) channels last
    out_features: int  # neurons (dense) or output channels (conv)
    weights: np.ndarray  # uint64 (out_features, words_for(fan_in)); fan-in order for conv is (ky, kx, c)
    thresholds: np.ndarray | None = None  # int64 (out_features,) when output == "bits"
    bias: np.ndarray | None = None  # int64 (out_features,) when output == "scores"
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    pad_value: int = 0  # bits input: +1 or -1; pixels input: a pixel value 0..255
    pool: int = 0  # max-pool window = stride after the output bits (0 = none); OR of the bits

    @property
    def fan_in(self) -> int:
        """K, the number of inputs each output neuron sees."""
        if self.kind == "dense":
            return self.in_shape[0]
        return self.kernel * self.kernel * self.in_shape[2]

    @property
    def conv_shape(self) -> tuple[int, int]:
        """Output height and width of a convolution before pooling."""
        h, w, _ = self.in_shape
        oh = (h + 2 * self.padding - self.kernel) // self.stride + 1
        ow = (w + 2 * self.padding - self.kernel) // self.stride + 1
        return oh, ow

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Shape of the layer's output (after pooling): (N,) for dense, (H, W, N) for conv."""
        if self.kind == "dense":
            return (self.out_features,)
        oh, ow = self.conv_shape
        if self.pool:
            oh, ow = oh // self.pool, ow // self.pool
        return (oh, ow, self.out_features)

    @property
    def input_vectors(self) -> int:
        """How many fan-in vectors one image needs through this layer (output pixels for conv, 1 for dense)."""
        if self.kind == "dense":
            return 1
        oh, ow = self.conv_shape
        return oh * ow

    @property
    def acc_range(self) -> tuple[int, int]:
        """Smallest and largest accumulator value any input can produce."""
        k = self.fan_in
        if self.input == "bits":
            return 0, k
        return -PIXEL_MAX * k, PIXEL_MAX * k

    def dot_from_acc(self, acc: np.ndarray) -> np.ndarray:
        """The signed dot product behind an accumulator value."""
        return 2 * acc - self.fan_in if self.input == "bits" else acc

    def describe(self) -> str:
        if self.kind == "dense":
            shape = f"dense {self.fan_in} -> {self.out_features}"
        else:
            h, w, c = self.in_shape
            shape = (
                f"conv {h}x{w}x{c} k{self.kernel} s{self.stride} p{self.padding}"
                f"(pad {self.pad_value:+d}) -> {self.out_features} ch"
            )
            if self.pool:
                shape += f", maxpool {self.pool}"
        return f"{shape} [{self.input} in, {self.output} out]"


@dataclass
class BnnModel:
    """A whole exported network: layers plus what a raw image needs and what the classes are called."""

    layers: list[Layer]
    input_shape: tuple[int, int, int]  # (H, W, C) of the uint8 image
    classes: list[str]
    binarize_at: int | None = None  # None: first layer sees raw pixels; else bit = (pixel >= binarize_at)
    name: str = "model"
    source: dict[str, Any] = field(default_factory=dict)  # free-form provenance: checkpoint hash, preset, accuracy
    _hash: str | None = field(default=None, repr=False, compare=False)

    @property
    def num_classes(self) -> int:
        return self.layers[-1].out_features

    @property
    def hash(self) -> str:
        """SHA-256 (hex) of the serialized file: the model's identity, recorded by every generated artefact."""
        if self._hash is None:
            self._hash = hashlib.sha256(_serialize_body(self)).hexdigest()
        return self._hash

    def validate(self) -> None:
        _validate(self)


# --------------------------------------------------------------------------------------------------------- writing


def _layer_header(layer: Layer, arrays: dict[str, dict[str, Any]]) -> dict[str, Any]:
    head: dict[str, Any] = {
        "kind": layer.kind,
        "input": layer.input,
        "output": layer.output,
        "in_shape": list(layer.in_shape),
        "out_features": layer.out_features,
    }
    if layer.kind == "conv":
        head.update(
            kernel=layer.kernel, stride=layer.stride, padding=layer.padding, pad_value=layer.pad_value, pool=layer.pool
        )
    head["arrays"] = arrays
    return head


def _serialize_body(model: BnnModel) -> bytes:
    """Everything before the checksum trailer; deterministic for a given model."""
    _validate(model)
    blobs: list[bytes] = []
    offset = 0
    layer_heads = []
    for layer in model.layers:
        arrays = {}
        named = [("weights", np.ascontiguousarray(layer.weights, dtype="<u8"))]
        if layer.output == "bits":
            named.append(("thresholds", np.ascontiguousarray(layer.thresholds, dtype="<i8")))
        else:
            named.append(("bias", np.ascontiguousarray(layer.bias, dtype="<i8")))
        for name, arr in named:
            raw = arr.tobytes()
            arrays[name] = {"offset": offset, "dtype": arr.dtype.str, "shape": list(arr.shape)}
            blobs.append(raw)
            offset += len(raw)  # all dtypes are 8 bytes wide, so every array stays 8-byte aligned
        layer_heads.append(_layer_header(layer, arrays))
    header = {
        "format": "bnn-hw model",
        "version": FORMAT_VERSION,
        "name": model.name,
        "input": {
            "shape": list(model.input_shape),
            "layout": "HWC",
            "dtype": "uint8",
            "binarize_at": model.binarize_at,
        },
        "classes": list(model.classes),
        "source": model.source,
        "layers": layer_heads,
        "data_bytes": offset,
    }
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(len(text)) % 8)  # pad with spaces so the data section starts 8-byte aligned
    return _PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(text)) + text + b"".join(blobs)


def save_model(model: BnnModel, path: str | Path) -> str:
    """Write `model` to `path`; returns the model hash."""
    body = _serialize_body(model)
    digest = hashlib.sha256(body).digest()
    Path(path).write_bytes(body + digest)
    model._hash = digest.hex()
    return model._hash


# --------------------------------------------------------------------------------------------------------- reading


def _bad(path: str | Path, why: str) -> BnnError:
    return BnnError(f"{path}: not a valid bnn-hw model file: {why}")


def load_model(path: str | Path) -> BnnModel:
    """Read and fully validate a model file; any defect raises one BnnError that says what is wrong."""
    path = Path(path)
    if not path.exists():
        raise BnnError(f"{path}: model file not found (make one with `bnn-hw export CHECKPOINT -o {path.name}`)")
    if path.is_dir():
        raise BnnError(f"{path}: is a directory, expected a .bnn model file")
    data = path.read_bytes()
    return parse_model(data, path)


def parse_model(data: bytes, path: str | Path = "<bytes>") -> BnnModel:
    if len(data) < _PREAMBLE.size + _DIGEST_BYTES:
        raise _bad(path, f"file is truncated ({len(data)} bytes)")
    magic, version, header_len = _PREAMBLE.unpack_from(data)
    if magic != MAGIC:
        if data[:4] == b"PK\x03\x04":  # a zip archive: what torch.save writes
            raise BnnError(
                f"{path}: this is a PyTorch checkpoint, not a .bnn model; export it first: "
                f"`bnn-hw export {path}` (writes model.bnn beside it)"
            )
        raise _bad(path, f"wrong magic {magic!r}, expected {MAGIC!r}")
    if version != FORMAT_VERSION:
        raise _bad(
            path,
            f"format version {version} is not supported by this bnn-hw (reads version "
            f"{FORMAT_VERSION}); re-export the model with this version",
        )
    body, digest = data[:-_DIGEST_BYTES], data[-_DIGEST_BYTES:]
    if hashlib.sha256(body).digest() != digest:
        raise _bad(path, "checksum mismatch: the file is corrupt or truncated")
    data_start = _PREAMBLE.size + header_len
    if header_len % 8 or data_start > len(body):
        raise _bad(path, f"header length {header_len} is invalid")
    try:
        header = json.loads(body[_PREAMBLE.size : data_start].decode("utf-8"))
        section = body[data_start:]
        if header.get("version") != version:
            raise ValueError("header version differs from the preamble's")
        if header["data_bytes"] != len(section):
            raise ValueError(f"data section is {len(section)} bytes, header says {header['data_bytes']}")
        layers = [_read_layer(head, section) for head in header["layers"]]
        inp = header["input"]
        model = BnnModel(
            layers=layers,
            input_shape=tuple(int(v) for v in inp["shape"]),
            classes=[str(c) for c in header["classes"]],
            binarize_at=inp["binarize_at"],
            name=str(header["name"]),
            source=dict(header["source"]),
        )
    except BnnError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise _bad(path, f"malformed header ({type(exc).__name__}: {exc})") from None
    try:
        _validate(model)
    except BnnError as exc:
        raise _bad(path, str(exc)) from None
    model._hash = digest.hex()
    return model


def _read_array(spec: dict[str, Any], section: bytes) -> np.ndarray:
    dtype = np.dtype(spec["dtype"])
    if dtype.str not in ("<u8", "<i8"):
        raise ValueError(f"array dtype {spec['dtype']} is not allowed")
    shape = tuple(int(s) for s in spec["shape"])
    offset = int(spec["offset"])
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if offset < 0 or offset % 8 or offset + nbytes > len(section):
        raise ValueError(f"array at offset {offset} ({nbytes} bytes) lies outside the data section")
    return np.frombuffer(section, dtype=dtype, count=nbytes // dtype.itemsize, offset=offset).reshape(shape).copy()


def _read_layer(head: dict[str, Any], section: bytes) -> Layer:
    arrays = head["arrays"]
    output = head["output"]
    layer = Layer(
        kind=head["kind"],
        input=head["input"],
        output=output,
        in_shape=tuple(int(v) for v in head["in_shape"]),
        out_features=int(head["out_features"]),
        weights=_read_array(arrays["weights"], section).astype(np.uint64),
        thresholds=_read_array(arrays["thresholds"], section).astype(np.int64) if output == "bits" else None,
        bias=_read_array(arrays["bias"], section).astype(np.int64) if output == "scores" else None,
    )
    if layer.kind == "conv":
        layer = dataclasses.replace(
            layer,
            kernel=int(head["kernel"]),
            stride=int(head["stride"]),
            padding=int(head["padding"]),
            pad_value=int(head["pad_value"]),
            pool=int(head["pool"]),
        )
    return layer


# ------------------------------------------------------------------------------------------------------ validation


def _validate_layer(i: int, layer: Layer, expected_in: tuple[int, ...]) -> None:
    where = f"layer {i}"
    if layer.kind not in ("dense", "conv"):
        raise BnnError(f"{where}: unknown kind {layer.kind!r} (expected dense or conv)")
    if layer.input not in ("pixels", "bits") or layer.output not in ("bits", "scores"):
        raise BnnError(f"{where}: input must be pixels|bits and output bits|scores")
    if layer.out_features < 1:
        raise BnnError(f"{where}: out_features must be >= 1")
    if layer.kind == "dense":
        if len(layer.in_shape) != 1 or int(np.prod(expected_in)) != layer.in_shape[0]:
            raise BnnError(
                f"{where}: dense input size {layer.in_shape} does not match the previous output {expected_in}"
            )
    else:
        if len(layer.in_shape) != 3 or tuple(layer.in_shape) != tuple(expected_in):
            raise BnnError(
                f"{where}: conv input shape {layer.in_shape} does not match the previous output {expected_in}"
            )
        if layer.kernel < 1 or layer.stride < 1 or layer.padding < 0 or layer.pool < 0:
            raise BnnError(f"{where}: kernel/stride must be >= 1 and padding/pool >= 0")
        oh, ow = layer.conv_shape
        if oh < 1 or ow < 1 or (layer.pool and (oh < layer.pool or ow < layer.pool)):
            raise BnnError(
                f"{where}: kernel {layer.kernel}/pool {layer.pool} larger than the feature map {layer.in_shape[:2]}"
            )
        if layer.pool and layer.output != "bits":
            raise BnnError(f"{where}: pooling is only defined on output bits")
        if layer.input == "bits" and layer.padding and layer.pad_value not in (-1, 1):
            raise BnnError(f"{where}: pad_value for a bits input must be +1 or -1, got {layer.pad_value}")
        if layer.input == "pixels" and not 0 <= layer.pad_value <= PIXEL_MAX:
            raise BnnError(f"{where}: pad_value for a pixel input must be 0..255, got {layer.pad_value}")
    k = layer.fan_in
    if layer.input == "pixels" and k > MAX_PIXEL_FAN_IN:
        raise BnnError(f"{where}: pixel fan-in {k} exceeds the exact-arithmetic limit {MAX_PIXEL_FAN_IN}")
    w = layer.weights
    if not isinstance(w, np.ndarray) or w.dtype != np.uint64 or w.shape != (layer.out_features, words_for(k)):
        raise BnnError(
            f"{where}: weights must be uint64 of shape {(layer.out_features, words_for(k))}, got "
            f"{getattr(w, 'dtype', type(w))} {getattr(w, 'shape', '')}"
        )
    spare = words_for(k) * WORD_BITS - k
    if spare and np.any(w[:, -1] >> np.uint64(WORD_BITS - spare)):
        raise BnnError(f"{where}: weight padding bits past fan-in {k} must be 0")
    lo, hi = layer.acc_range
    if layer.output == "bits":
        t = layer.thresholds
        if t is None or t.shape != (layer.out_features,):
            raise BnnError(f"{where}: thresholds must have shape ({layer.out_features},)")
        if t.min() < lo or t.max() > hi + 1:
            raise BnnError(f"{where}: thresholds must lie in [{lo}, {hi + 1}], got [{t.min()}, {t.max()}]")
    else:
        b = layer.bias
        if b is None or b.shape != (layer.out_features,):
            raise BnnError(f"{where}: bias must have shape ({layer.out_features},)")
        if np.abs(b).max(initial=0) > (1 << 30):
            raise BnnError(f"{where}: bias magnitude must be <= 2**30")


def _validate(model: BnnModel) -> None:
    if not model.layers:
        raise BnnError("model has no layers")
    if len(model.input_shape) != 3 or min(model.input_shape) < 1:
        raise BnnError(f"input shape must be (H, W, C) with positive sizes, got {model.input_shape}")
    first_input = "pixels" if model.binarize_at is None else "bits"
    if model.binarize_at is not None and not 0 <= model.binarize_at <= PIXEL_MAX + 1:
        raise BnnError(f"binarize_at must be 0..256, got {model.binarize_at}")
    shape: tuple[int, ...] = tuple(model.input_shape)
    for i, layer in enumerate(model.layers):
        want_input = first_input if i == 0 else "bits"
        if layer.input != want_input:
            raise BnnError(f"layer {i}: input must be {want_input!r}, got {layer.input!r}")
        want_output = "scores" if i == len(model.layers) - 1 else "bits"
        if layer.output != want_output:
            raise BnnError(f"layer {i}: output must be {want_output!r}, got {layer.output!r}")
        _validate_layer(i, layer, shape)
        shape = layer.out_shape
    if len(model.classes) != model.num_classes:
        raise BnnError(f"{len(model.classes)} class names for {model.num_classes} output scores")
