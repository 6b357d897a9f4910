"""The threshold-and-bitweight model form and its file format (docs/format.md is the byte-for-byte description).

A model is a chain of layers. Each layer multiplies its input by a {-1,+1} weight matrix stored as packed bits and
either thresholds the integer accumulator into output bits or adds an integer bias to produce class scores.
Everything here is integers: the file carries no float that could round differently on another machine.

Models are immutable (frozen dataclasses, read-only arrays, a read-only `source`), so the hash that identifies a
model, computed once from its content, can never describe anything but what the object holds. Change a model with
`dataclasses.replace` (or `Layer.replace` / `BnnModel.replace`), which builds a new object with its own hash.

The loader is strict: every rule below and in docs/format.md is checked before a model object exists, and every
refusal is one line naming the key and the rule.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import json
import math
import operator
import re
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bnn_hw.errors import BnnError
from bnn_hw.packing import WORD_BITS, words_for

MAGIC = b"BNNHWMDL"
FORMAT_VERSION = 1
FORMAT_NAME = "bnn-hw model"
_PREAMBLE = struct.Struct("<8sII")  # magic, version, header length
_DIGEST_BYTES = 32
PIXEL_MAX = 255
# The golden model sums pixel products in float32 BLAS; that is exact while every partial sum is below 2**24.
MAX_PIXEL_FAN_IN = (1 << 24) // PIXEL_MAX - 1
# Size limits, checked before anything is allocated or multiplied out (docs/format.md, "Limits").
MAX_FILE_BYTES = 1 << 32
MAX_HEADER_BYTES = 1 << 22
MAX_JSON_DEPTH = 32
MAX_LAYERS = 1024
MAX_DIMENSION = 1 << 16  # any one size: H, W, C, out_features, kernel, stride, padding, pool
MAX_ELEMENTS = 1 << 26  # values in one feature map (padded), and the fan-in of any neuron
MAX_WINDOW_ELEMENTS = 1 << 28  # fan-in x output pixels of one layer for one image (the golden model's im2col)
# Scores are dot + bias with |dot| <= 2**26 (fan-in limit); |bias| <= 2**30 keeps every score and the GPU kernels'
# `bias - K` offset inside a signed 32-bit integer.
BIAS_LIMIT = 1 << 30


class LayerKind(enum.StrEnum):
    """What a layer's weights are applied to: the whole input vector, or sliding windows of a feature map."""

    DENSE = "dense"
    CONV = "conv"


class InputKind(enum.StrEnum):
    """What a layer reads: raw uint8 pixels (first layer only) or +-1 bits."""

    PIXELS = "pixels"
    BITS = "bits"


class OutputKind(enum.StrEnum):
    """What a layer produces: thresholded bits (hidden layers) or integer class scores (the last layer)."""

    BITS = "bits"
    SCORES = "scores"


def _as_enum(cls: type[enum.StrEnum], value: Any, what: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        allowed = " or ".join(m.value for m in cls)
        raise BnnError(f"{what} must be {allowed}, got {_show(value)}") from None


def _frozen_array(value: Any) -> Any:
    """A read-only copy backed by immutable bytes (its WRITEABLE flag cannot be set again); non-arrays pass
    through for `validate` to refuse."""
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "biu":
        return value
    out = np.frombuffer(value.tobytes(), dtype=value.dtype).reshape(value.shape)
    return out


class FrozenDict(dict[str, Any]):
    """A dict that refuses changes: a model's `source` provenance, part of what its hash covers."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a model's source is read-only: build a new model with replace(source=...)")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(json.dumps(self, sort_keys=True))


def _freeze_json(value: Any, where: str, depth: int = 0) -> Any:
    """Deep read-only copy of JSON-like data (dicts -> FrozenDict, lists -> tuples); refuses what JSON cannot hold."""
    if depth > MAX_JSON_DEPTH:
        raise BnnError(f"{where} nests deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise BnnError(f"{where} has a key {_show(k)} that is not a string")
            out[k] = _freeze_json(v, f"{where}.{k}", depth + 1)
        return FrozenDict(out)
    if isinstance(value, list | tuple):
        return tuple(_freeze_json(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))
    if isinstance(value, float) and not math.isfinite(value):
        raise BnnError(f"{where} is {value}, which JSON cannot hold")
    if value is None or isinstance(value, str | int | float):  # bool is an int
        return value
    if isinstance(value, np.generic):
        return _freeze_json(value.item(), where, depth)
    raise BnnError(f"{where} holds a {type(value).__name__}, which JSON cannot hold")


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    try:
        items = tuple(value)
    except TypeError:
        raise BnnError(f"{what} must be a sequence of integers, got {_show(value)}") from None
    out = []
    for v in items:
        if isinstance(v, bool | np.bool_):
            raise BnnError(f"{what} must hold integers, got {_show(v)}")
        try:
            out.append(operator.index(v))
        except TypeError:
            raise BnnError(f"{what} must hold integers, got {_show(v)}") from None
    return tuple(out)


@dataclass(frozen=True, eq=False)
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

    def __post_init__(self) -> None:
        put = functools.partial(object.__setattr__, self)
        put("kind", _as_enum(LayerKind, self.kind, "kind"))
        put("input", _as_enum(InputKind, self.input, "input"))
        put("output", _as_enum(OutputKind, self.output, "output"))
        put("in_shape", _int_tuple(self.in_shape, "in_shape"))
        for name in ("weights", "thresholds", "bias"):
            put(name, _frozen_array(getattr(self, name)))

    def replace(self, **changes: Any) -> Layer:
        """A copy with some fields changed (the layer itself is immutable)."""
        return dataclasses.replace(self, **changes)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Layer, tuple(getattr(self, f.name) for f in dataclasses.fields(self)))

    @property
    def fan_in(self) -> int:
        """K, the number of inputs each output neuron sees."""
        if self.kind == LayerKind.DENSE:
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
        if self.kind == LayerKind.DENSE:
            return (self.out_features,)
        oh, ow = self.conv_shape
        if self.pool:
            oh, ow = oh // self.pool, ow // self.pool
        return (oh, ow, self.out_features)

    @property
    def input_vectors(self) -> int:
        """How many fan-in vectors one image needs through this layer (output pixels for conv, 1 for dense)."""
        if self.kind == LayerKind.DENSE:
            return 1
        oh, ow = self.conv_shape
        return oh * ow

    @property
    def acc_range(self) -> tuple[int, int]:
        """Smallest and largest accumulator value any input can produce."""
        k = self.fan_in
        if self.input == InputKind.BITS:
            return 0, k
        return -PIXEL_MAX * k, PIXEL_MAX * k

    @property
    def dot_bound(self) -> int:
        """The largest |dot| any input can produce: K for bits, 255 K for pixels."""
        return self.fan_in if self.input == InputKind.BITS else PIXEL_MAX * self.fan_in

    def dot_from_acc(self, acc: np.ndarray) -> np.ndarray:
        """The signed dot product behind an accumulator value."""
        return 2 * acc - self.fan_in if self.input == InputKind.BITS else acc

    def describe(self) -> str:
        if self.kind == LayerKind.DENSE:
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


@dataclass(frozen=True, eq=False)
class BnnModel:
    """A whole exported network: layers plus what a raw image needs and what the classes are called."""

    layers: tuple[Layer, ...]
    input_shape: tuple[int, int, int]  # (H, W, C) of the uint8 image
    classes: tuple[str, ...]
    binarize_at: int | None = None  # None: first layer sees raw pixels; else bit = (pixel >= binarize_at)
    name: str = "model"
    source: Mapping[str, Any] = field(default_factory=dict)  # free-form provenance: checkpoint hash, preset, accuracy

    def __post_init__(self) -> None:
        put = functools.partial(object.__setattr__, self)
        put("layers", tuple(self.layers))
        put("input_shape", _int_tuple(self.input_shape, "input shape"))
        put("classes", tuple(self.classes))
        if not isinstance(self.source, Mapping):
            raise BnnError(f"source must be a mapping of provenance, got {_show(self.source)}")
        put("source", _freeze_json(self.source, "source"))

    def replace(self, **changes: Any) -> BnnModel:
        """A copy with some fields changed; it gets its own hash."""
        return dataclasses.replace(self, **changes)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (tuple(getattr(self, f.name) for f in dataclasses.fields(self)), self.__dict__.get("hash")))

    @property
    def num_classes(self) -> int:
        return self.layers[-1].out_features

    @functools.cached_property
    def hash(self) -> str:
        """SHA-256 (hex) of the model file: for a loaded model the file's own checksum, for one built in Python
        that of the file `save_model` writes. The model recorded by every generated artefact."""
        return hashlib.sha256(_serialize_body(self)).hexdigest()

    def validate(self) -> None:
        _validate(self)


def _rebuild(values: tuple[Any, ...], digest: str | None) -> BnnModel:
    model = BnnModel(*values)
    if digest is not None:
        model.__dict__["hash"] = digest
    return model


# --------------------------------------------------------------------------------------------------------- writing


def _layer_header(layer: Layer, arrays: dict[str, dict[str, Any]]) -> dict[str, Any]:
    head: dict[str, Any] = {
        "kind": layer.kind.value,
        "input": layer.input.value,
        "output": layer.output.value,
        "in_shape": list(layer.in_shape),
        "out_features": layer.out_features,
    }
    if layer.kind == LayerKind.CONV:
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
        if layer.output == OutputKind.BITS:
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
        "format": FORMAT_NAME,
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
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")
    text += b" " * (-(len(text)) % 8)  # pad with spaces so the data section starts 8-byte aligned
    if len(text) > MAX_HEADER_BYTES:
        raise BnnError(f"the header would be {len(text):,} bytes, more than the limit {MAX_HEADER_BYTES:,}")
    return _PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(text)) + text + b"".join(blobs)


def save_model(model: BnnModel, path: str | Path) -> str:
    """Write `model` to `path`; returns the model hash."""
    body = _serialize_body(model)
    digest = hashlib.sha256(body).digest()
    from bnn_hw import fileio

    fileio.write_bytes(path, body + digest)
    return digest.hex()


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
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _bad(path, f"file is {size:,} bytes, more than the limit {MAX_FILE_BYTES:,}")
        data = path.read_bytes()
    except OSError as exc:
        raise BnnError(f"{path}: cannot read the model file: {exc.strerror or exc}") from None
    return parse_model(data, path)


def parse_model(data: bytes, path: str | Path = "<bytes>") -> BnnModel:
    """Validate and decode the bytes of a model file (see `load_model`)."""
    if len(data) > MAX_FILE_BYTES:
        raise _bad(path, f"file is {len(data):,} bytes, more than the limit {MAX_FILE_BYTES:,}")
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
    if header_len % 8 or header_len > MAX_HEADER_BYTES or data_start > len(body):
        raise _bad(
            path,
            f"header length {header_len} is invalid (a multiple of 8, at most {MAX_HEADER_BYTES:,}, "
            f"inside the file's {len(body) - _PREAMBLE.size:,} bytes after the preamble)",
        )
    try:
        header = _parse_header(body[_PREAMBLE.size : data_start])
        model = _decode(header, body[data_start:])
        _validate(model)
    except BnnError as exc:
        raise _bad(path, str(exc)) from None
    model.__dict__["hash"] = digest.hex()  # the file's own checksum (see BnnModel.hash)
    return model


# ---------------------------------------------------------------------------------------------- header: JSON text

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _nesting_depth(text: bytes) -> int:
    """Deepest [ / { nesting outside strings, found without recursion (json.loads would hit RecursionError)."""
    bare = np.frombuffer(_STRING.sub(b'""', text), dtype=np.uint8)
    step = np.zeros(len(bare), dtype=np.int64)
    step[(bare == ord("[")) | (bare == ord("{"))] = 1
    step[(bare == ord("]")) | (bare == ord("}"))] = -1
    return int(np.cumsum(step).max(initial=0))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BnnError(f"the header has the key {_show(key)} twice in one object (duplicate JSON keys)")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise BnnError(f"the header holds {name}, which is not JSON (numbers must be finite)")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BnnError(f"the header holds the number {text[:40]}, too large for a double (numbers must be finite)")
    return value


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > 40:
        raise BnnError(f"the header holds an integer of {len(text)} digits (at most 40)")
    return int(text)


def _parse_header(raw: bytes) -> dict[str, Any]:
    depth = _nesting_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise BnnError(f"the header JSON nests {depth} levels deep, more than the limit {MAX_JSON_DEPTH}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BnnError(f"the header is not UTF-8 (byte {exc.start})") from None
    try:
        header = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
            parse_int=_parse_int,
            parse_float=_parse_float,
        )
    except json.JSONDecodeError as exc:
        raise BnnError(f"the header is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:  # unreachable behind the depth check; kept so no input can show a traceback
        raise BnnError("the header JSON nests too deep") from None
    if not isinstance(header, dict):
        raise BnnError(f"the header must be a JSON object, got {_json_type(header)}")
    return header


# ------------------------------------------------------------------------------------------- header: the schema


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction or exponent"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _show(value: Any) -> str:
    """A short one-line rendering of a value for an error message."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= 60 else text[:57] + "..."


def _got(value: Any) -> str:
    if isinstance(value, dict | list):
        return _json_type(value)
    return f"{_json_type(value)} {_show(value)}" if value is not None else "null"


def _object(value: Any, key: str, keys: Iterator[str] | set[str] | tuple[str, ...]) -> dict[str, Any]:
    """A JSON object with exactly `keys`."""
    if not isinstance(value, dict):
        raise BnnError(f"{key} must be a JSON object, got {_got(value)}")
    want = set(keys)
    missing = sorted(want - value.keys())
    if missing:
        raise BnnError(f"{key} is missing the key {_show(missing[0])}")
    unknown = sorted(value.keys() - want)
    if unknown:
        raise BnnError(f"{key} has the unknown key {_show(unknown[0])} (allowed: {', '.join(sorted(want))})")
    return value


def _integer(value: Any, key: str, lo: int, hi: int) -> int:
    """A JSON integer (not a float, string or boolean) in lo..hi."""
    if type(value) is not int:
        raise BnnError(f"{key} must be a JSON integer, got {_got(value)}")
    if not lo <= value <= hi:
        raise BnnError(f"{key} must be {lo}..{hi}, got {value}")
    return value


def _string(value: Any, key: str, *, exactly: str | None = None, choices: type[enum.StrEnum] | None = None) -> str:
    if not isinstance(value, str):
        raise BnnError(f"{key} must be a JSON string, got {_got(value)}")
    if exactly is not None and value != exactly:
        raise BnnError(f"{key} must be {_show(exactly)}, got {_show(value)}")
    if choices is not None and value not in {m.value for m in choices}:
        allowed = " or ".join(_show(m.value) for m in choices)
        raise BnnError(f"{key} must be {allowed}, got {_show(value)}")
    return value


def _shape(value: Any, key: str, ndim: int) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise BnnError(f"{key} must be a JSON array of {ndim} integers, got {_got(value)}")
    if len(value) != ndim:
        raise BnnError(f"{key} must have {ndim} entries, got {len(value)}")
    return tuple(_integer(v, f"{key}[{i}]", 1, MAX_DIMENSION) for i, v in enumerate(value))


_TOP_KEYS = ("format", "version", "name", "input", "classes", "source", "data_bytes", "layers")
_INPUT_KEYS = ("shape", "layout", "dtype", "binarize_at")
_LAYER_KEYS = ("kind", "input", "output", "in_shape", "out_features", "arrays")
_CONV_KEYS = ("kernel", "stride", "padding", "pad_value", "pool")
_ARRAY_KEYS = ("offset", "dtype", "shape")
_PAD_RULE = "must be -1 or 1 for a bits input (0 is also accepted when padding is 0: nothing is padded)"
_ARRAY_DTYPE = {"weights": "<u8", "thresholds": "<i8", "bias": "<i8"}


def _decode(header: dict[str, Any], section: bytes) -> BnnModel:
    """Check the header against the schema (docs/format.md, "Header") and read the arrays it describes."""
    _object(header, "header", _TOP_KEYS)
    _string(header["format"], "format", exactly=FORMAT_NAME)
    _integer(header["version"], "version", FORMAT_VERSION, FORMAT_VERSION)
    name = _string(header["name"], "name")
    inp = _object(header["input"], "input", _INPUT_KEYS)
    h, w, c = _shape(inp["shape"], "input.shape", 3)
    input_shape = (h, w, c)
    _string(inp["layout"], "input.layout", exactly="HWC")
    _string(inp["dtype"], "input.dtype", exactly="uint8")
    binarize_at = inp["binarize_at"]
    if binarize_at is not None:
        _integer(binarize_at, "input.binarize_at", 1, PIXEL_MAX)
    classes = header["classes"]
    if not isinstance(classes, list):
        raise BnnError(f"classes must be a JSON array of strings, got {_got(classes)}")
    for i, c in enumerate(classes):
        _string(c, f"classes[{i}]")
    source = header["source"]
    if not isinstance(source, dict):
        raise BnnError(f"source must be a JSON object, got {_got(source)}")
    data_bytes = _integer(header["data_bytes"], "data_bytes", 0, MAX_FILE_BYTES)
    if data_bytes != len(section):
        raise BnnError(f"data_bytes says {data_bytes}, but the data section is {len(section)} bytes")
    heads = header["layers"]
    if not isinstance(heads, list) or not heads:
        raise BnnError(f"layers must be a non-empty JSON array, got {_got(heads)}")
    if len(heads) > MAX_LAYERS:
        raise BnnError(f"layers has {len(heads)} entries, more than the limit {MAX_LAYERS}")
    specs = [_layer_fields(i, head) for i, head in enumerate(heads)]
    spans = []
    for i, (_, arrays) in enumerate(specs):
        for aname, (offset, nbytes) in arrays.items():
            spans.append((offset, nbytes, f"layers[{i}].arrays.{aname}"))
    _check_cover(spans, data_bytes)
    layers = []
    for fields, arrays in specs:
        values: dict[str, Any] = {
            aname: np.frombuffer(section, dtype=_ARRAY_DTYPE[aname], count=nbytes // 8, offset=offset)
            .astype(np.int64 if aname != "weights" else np.uint64)
            .reshape(fields.pop(f"{aname}_shape"))
            for aname, (offset, nbytes) in arrays.items()
        }
        layers.append(Layer(**fields, **values))
    return BnnModel(
        layers=tuple(layers),
        input_shape=input_shape,
        classes=tuple(classes),
        binarize_at=binarize_at,
        name=name,
        source=source,
    )


def _layer_fields(i: int, head: Any) -> tuple[dict[str, Any], dict[str, tuple[int, int]]]:
    """The checked fields of layer i and (offset, bytes) of each of its arrays."""
    where = f"layers[{i}]"
    if not isinstance(head, dict):
        raise BnnError(f"{where} must be a JSON object, got {_got(head)}")
    if "kind" not in head:
        raise BnnError(f'{where} is missing the key "kind"')
    kind = _string(head["kind"], f"{where}.kind", choices=LayerKind)
    conv = kind == LayerKind.CONV
    _object(head, where, _LAYER_KEYS + (_CONV_KEYS if conv else ()))
    inp = _string(head["input"], f"{where}.input", choices=InputKind)
    out = _string(head["output"], f"{where}.output", choices=OutputKind)
    in_shape = _shape(head["in_shape"], f"{where}.in_shape", 3 if conv else 1)
    n = _integer(head["out_features"], f"{where}.out_features", 1, MAX_DIMENSION)
    fields: dict[str, Any] = {"kind": kind, "input": inp, "output": out, "in_shape": in_shape, "out_features": n}
    if conv:
        fields["kernel"] = _integer(head["kernel"], f"{where}.kernel", 1, MAX_DIMENSION)
        fields["stride"] = _integer(head["stride"], f"{where}.stride", 1, MAX_DIMENSION)
        fields["padding"] = _integer(head["padding"], f"{where}.padding", 0, MAX_DIMENSION)
        if inp == InputKind.BITS:
            pad_value = head["pad_value"]
            allowed = (-1, 1) if fields["padding"] else (-1, 0, 1)
            if type(pad_value) is not int or pad_value not in allowed:
                raise BnnError(f"{where}.pad_value {_PAD_RULE}, got {_got(pad_value)}")
            fields["pad_value"] = pad_value
        else:
            fields["pad_value"] = _integer(head["pad_value"], f"{where}.pad_value", 0, PIXEL_MAX)
        fields["pool"] = _integer(head["pool"], f"{where}.pool", 0, MAX_DIMENSION)
        fan_in = fields["kernel"] ** 2 * in_shape[2]
    else:
        fan_in = in_shape[0]
    if fan_in > MAX_ELEMENTS:
        raise BnnError(f"{where} has a fan-in of {fan_in:,}, more than the limit {MAX_ELEMENTS:,}")
    want_arrays = ("weights", "thresholds" if out == OutputKind.BITS else "bias")
    arrays_head = _object(head["arrays"], f"{where}.arrays", want_arrays)
    arrays = {}
    for aname in want_arrays:
        key = f"{where}.arrays.{aname}"
        spec = _object(arrays_head[aname], key, _ARRAY_KEYS)
        offset = _integer(spec["offset"], f"{key}.offset", 0, MAX_FILE_BYTES)
        if offset % 8:
            raise BnnError(f"{key}.offset must be a multiple of 8, got {offset}")
        _string(spec["dtype"], f"{key}.dtype", exactly=_ARRAY_DTYPE[aname])
        expect = [n, words_for(fan_in)] if aname == "weights" else [n]
        shape = spec["shape"]
        if not isinstance(shape, list) or len(shape) != len(expect) or any(type(s) is not int for s in shape):
            raise BnnError(f"{key}.shape must be a JSON array of {len(expect)} integers, got {_got(shape)}")
        if shape != expect:
            what = "[out_features, ceil(fan_in / 64)]" if aname == "weights" else "[out_features]"
            raise BnnError(f"{key}.shape must be {what} = {expect}, got {shape}")
        fields[f"{aname}_shape"] = tuple(expect)
        arrays[aname] = (offset, 8 * math.prod(expect))
    return fields, arrays


def _check_cover(spans: list[tuple[int, int, str]], data_bytes: int) -> None:
    """The arrays tile the data section exactly: no gap, no overlap, nothing past its end."""
    end, last = 0, None
    for offset, nbytes, key in sorted(spans):
        if offset < end:
            raise BnnError(f"{key} (offset {offset}) overlaps {last}, which ends at {end}")
        if offset > end:
            raise BnnError(f"{key} starts at offset {offset}, leaving bytes {end}..{offset} of the data section unused")
        end, last = offset + nbytes, key
    if end != data_bytes:
        if end > data_bytes:
            raise BnnError(f"{last} ends at {end}, past the end of the data section ({data_bytes} bytes)")
        raise BnnError(f"the arrays end at {end}, leaving bytes {end}..{data_bytes} of the data section unused")


# ------------------------------------------------------------------------------------------------------ validation


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _validate_layer(i: int, layer: Layer, expected_in: tuple[int, ...]) -> None:
    where = f"layers[{i}]"
    for name in ("out_features", "kernel", "stride", "padding", "pad_value", "pool"):
        value = getattr(layer, name)
        if not _is_int(value):
            raise BnnError(f"{where}.{name} must be an integer, got {_show(value)}")
    if not 1 <= layer.out_features <= MAX_DIMENSION:
        raise BnnError(f"{where}.out_features must be 1..{MAX_DIMENSION}, got {layer.out_features}")
    if any(not 1 <= v <= MAX_DIMENSION for v in layer.in_shape):
        raise BnnError(f"{where}.in_shape entries must be 1..{MAX_DIMENSION}, got {list(layer.in_shape)}")
    if layer.kind == LayerKind.DENSE:
        if len(layer.in_shape) != 1 or math.prod(expected_in) != layer.in_shape[0]:
            raise BnnError(
                f"{where}: dense input size {list(layer.in_shape)} does not match the previous output "
                f"{list(expected_in)}"
            )
        if (layer.kernel, layer.stride, layer.padding, layer.pad_value, layer.pool) != (1, 1, 0, 0, 0):
            raise BnnError(f"{where}: a dense layer has no kernel, stride, padding, pad_value or pool")
    else:
        if len(layer.in_shape) != 3 or tuple(layer.in_shape) != tuple(expected_in):
            raise BnnError(
                f"{where}: conv input shape {list(layer.in_shape)} does not match the previous output "
                f"{list(expected_in)}"
            )
        for name, lo in (("kernel", 1), ("stride", 1), ("padding", 0), ("pool", 0)):
            if not lo <= getattr(layer, name) <= MAX_DIMENSION:
                raise BnnError(f"{where}.{name} must be {lo}..{MAX_DIMENSION}, got {getattr(layer, name)}")
        h, width, c = layer.in_shape
        padded = (h + 2 * layer.padding) * (width + 2 * layer.padding) * c
        if padded > MAX_ELEMENTS:
            raise BnnError(f"{where}: the padded input has {padded:,} values, more than the limit {MAX_ELEMENTS:,}")
        oh, ow = layer.conv_shape
        if oh < 1 or ow < 1 or (layer.pool and (oh < layer.pool or ow < layer.pool)):
            raise BnnError(
                f"{where}: kernel {layer.kernel}/pool {layer.pool} larger than the feature map "
                f"{list(layer.in_shape[:2])}"
            )
        if layer.output != OutputKind.BITS:
            raise BnnError(f"{where}: the scores layer must be dense (one score per class), not conv")
        if layer.input == InputKind.BITS and layer.pad_value not in ((-1, 1) if layer.padding else (-1, 0, 1)):
            raise BnnError(f"{where}.pad_value {_PAD_RULE}, got {layer.pad_value}")
        if layer.input == InputKind.PIXELS and not 0 <= layer.pad_value <= PIXEL_MAX:
            raise BnnError(f"{where}.pad_value must be 0..255 for a pixel input, got {layer.pad_value}")
    k = layer.fan_in
    if k > MAX_ELEMENTS:
        raise BnnError(f"{where} has a fan-in of {k:,}, more than the limit {MAX_ELEMENTS:,}")
    if layer.input == InputKind.PIXELS and k > MAX_PIXEL_FAN_IN:
        raise BnnError(f"{where}: pixel fan-in {k} exceeds the exact-arithmetic limit {MAX_PIXEL_FAN_IN}")
    if k * layer.input_vectors > MAX_WINDOW_ELEMENTS:
        raise BnnError(
            f"{where}: fan-in x output pixels is {k * layer.input_vectors:,} per image, more than the limit "
            f"{MAX_WINDOW_ELEMENTS:,}"
        )
    if math.prod(layer.out_shape) > MAX_ELEMENTS:
        raise BnnError(f"{where}: the output has {math.prod(layer.out_shape):,} values, more than {MAX_ELEMENTS:,}")
    w = layer.weights
    if not isinstance(w, np.ndarray) or w.dtype != np.uint64 or w.shape != (layer.out_features, words_for(k)):
        raise BnnError(
            f"{where}.weights must be uint64 of shape {(layer.out_features, words_for(k))}, got "
            f"{getattr(w, 'dtype', type(w).__name__)} {getattr(w, 'shape', '')}"
        )
    spare = words_for(k) * WORD_BITS - k
    if spare and np.any(w[:, -1] >> np.uint64(WORD_BITS - spare)):
        raise BnnError(f"{where}.weights: padding bits past fan-in {k} must be 0")
    lo, hi = layer.acc_range
    if layer.output == OutputKind.BITS:
        t = layer.thresholds
        if layer.bias is not None:
            raise BnnError(f"{where}: a bits layer has thresholds, not a bias")
        if not isinstance(t, np.ndarray) or t.dtype != np.int64 or t.shape != (layer.out_features,):
            raise BnnError(f"{where}.thresholds must be int64 of shape ({layer.out_features},)")
        if t.min() < lo or t.max() > hi + 1:
            raise BnnError(
                f"{where}.thresholds must lie in [{lo}, {hi + 1}] (min(acc) .. max(acc) + 1), "
                f"got [{t.min()}, {t.max()}]"
            )
    else:
        b = layer.bias
        if layer.thresholds is not None:
            raise BnnError(f"{where}: a scores layer has a bias, not thresholds")
        if not isinstance(b, np.ndarray) or b.dtype != np.int64 or b.shape != (layer.out_features,):
            raise BnnError(f"{where}.bias must be int64 of shape ({layer.out_features},)")
        # min/max, not abs: np.abs(-2**63) is negative.
        if int(b.min()) < -BIAS_LIMIT or int(b.max()) > BIAS_LIMIT:
            raise BnnError(
                f"{where}.bias must lie in [-2**30, 2**30] (scores fit a signed 32-bit integer), "
                f"got [{int(b.min())}, {int(b.max())}]"
            )


def _validate(model: BnnModel) -> None:
    if not model.layers:
        raise BnnError("model has no layers")
    if len(model.layers) > MAX_LAYERS:
        raise BnnError(f"model has {len(model.layers)} layers, more than the limit {MAX_LAYERS}")
    if not all(isinstance(layer, Layer) for layer in model.layers):
        raise BnnError("layers must be bnn_hw.model.Layer objects")
    shape_ok = len(model.input_shape) == 3 and all(1 <= v <= MAX_DIMENSION for v in model.input_shape)
    if not shape_ok:
        raise BnnError(f"input shape must be (H, W, C) with sizes 1..{MAX_DIMENSION}, got {list(model.input_shape)}")
    if math.prod(model.input_shape) > MAX_ELEMENTS:
        raise BnnError(f"the input has {math.prod(model.input_shape):,} values, more than the limit {MAX_ELEMENTS:,}")
    if not isinstance(model.name, str):
        raise BnnError(f"name must be a string, got {_show(model.name)}")
    for i, c in enumerate(model.classes):
        if not isinstance(c, str):
            raise BnnError(f"classes[{i}] must be a string, got {_show(c)}")
    b = model.binarize_at
    if b is not None and (not _is_int(b) or not 1 <= b <= PIXEL_MAX):
        raise BnnError(f"binarize_at must be null or an integer 1..255 (bit = pixel >= binarize_at), got {_show(b)}")
    first_input = InputKind.PIXELS if b is None else InputKind.BITS
    shape: tuple[int, ...] = tuple(model.input_shape)
    for i, layer in enumerate(model.layers):
        want_input = first_input if i == 0 else InputKind.BITS
        if layer.input != want_input:
            why = " (input.binarize_at is null: raw pixels)" if i == 0 and b is None else ""
            why = " (input.binarize_at is set: the image arrives as bits)" if i == 0 and b is not None else why
            raise BnnError(f"layers[{i}].input must be {want_input.value!r}, got {layer.input.value!r}{why}")
        want_output = OutputKind.SCORES if i == len(model.layers) - 1 else OutputKind.BITS
        if layer.output != want_output:
            raise BnnError(
                f"layers[{i}].output must be {want_output.value!r}, got {layer.output.value!r} "
                "(only the last layer has scores)"
            )
        _validate_layer(i, layer, shape)
        shape = layer.out_shape
    if len(model.classes) != model.num_classes:
        raise BnnError(f"classes: {len(model.classes)} class names for {model.num_classes} output scores")
