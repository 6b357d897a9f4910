"""Property-based fuzzing of the model-file contract (docs/format.md, "What the loader accepts").

Two real files made by the project's own exporter from tiny networks (an MLP on raw pixels and a ConvNet with
padding, pooling and a binarized input) are mutated: header JSON (values, types, keys added, removed or duplicated,
nesting, non-JSON constants, whole-header replacements, spacing), the arrays (offsets, dtypes, shapes, data words,
bit flips, a longer or shorter data section) and the preamble, with the checksum recomputed except where a mutation
is meant to break it. Every mutated file must either be refused with one BnnError line, or load to a model that an
independent reading of the doc allows and whose golden-model predictions equal an independent, loop-level
implementation of the doc's arithmetic. No other exception, ever.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bnn_hw import golden
from bnn_hw.errors import BnnError
from bnn_hw.model import MAGIC, parse_model, save_model

torch = pytest.importorskip(
    "torch", reason="the fuzzed files are made by the PyTorch exporter (pip install -e '.[train]')"
)


# ------------------------------------------------------------------------------------------- the two real files


def _exported(net, classes: list[str]) -> bytes:
    from bnn_hw.train.export import export_model
    from bnn_hw.train.layers import ThresholdBatchNorm

    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, ThresholdBatchNorm):
                m.running_mean.normal_(0, 6, generator=gen)
                m.running_var.uniform_(0.5, 30, generator=gen)
                m.weight.normal_(0, 1, generator=gen)
                m.bias.normal_(0, 1, generator=gen)
        net.blocks[-1].norm.bias.normal_(0, 4, generator=gen)
    return net, export_model(net.eval(), classes, name="fuzz", source={"producer": "test_format_fuzz"})


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, bytes]:
    from bnn_hw.train.layers import BinaryConv, BinaryDense, BinaryNet

    torch.manual_seed(1)
    mlp = BinaryNet((1, 4, 4), [BinaryDense(16, 70), BinaryDense(70, 5, output="scores")])
    cnn = BinaryNet(
        (1, 6, 6),
        [
            BinaryConv(1, 3, 3, padding=1, pad_value=-1, pool=2),
            BinaryConv(3, 4, 2, stride=1, padding=1, pad_value=1),
            BinaryDense(4 * 4 * 4, 3, output="scores"),
        ],
        binarize_input=100,
    )
    out = {}
    folder = tmp_path_factory.mktemp("fuzz")
    for name, net, classes in (("mlp", mlp, list("abcde")), ("cnn", cnn, list("xyz"))):
        _, model = _exported(net, classes)
        save_model(model, folder / f"{name}.bnn")
        out[name] = (folder / f"{name}.bnn").read_bytes()
    return out


# ------------------------------------------------------------------------------------ building mutated files


class Raw:
    """JSON text written verbatim (what json.dumps cannot produce: NaN, deep nesting, huge literals)."""

    def __init__(self, text: str) -> None:
        self.text = text


def dumps(value: Any, dup: tuple | None = None, indent: str | None = None) -> str:
    """JSON writer that can emit Raw text and one duplicated key (dup = (id(object), key, value))."""
    if isinstance(value, Raw):
        return value.text
    sep = "," if indent is None else ",\n" + indent
    if isinstance(value, dict):
        items = [f"{json.dumps(k)}:{dumps(v, dup, indent)}" for k, v in value.items()]
        if dup is not None and id(value) == dup[0]:
            items.append(f"{json.dumps(dup[1])}:{dumps(dup[2], None, indent)}")
        return "{" + sep.join(items) + "}"
    if isinstance(value, list):
        return "[" + sep.join(dumps(v, dup, indent) for v in value) + "]"
    return json.dumps(value)


def split(data: bytes) -> tuple[dict, bytes]:
    _, _, hlen = struct.unpack_from("<8sII", data)
    return json.loads(data[16 : 16 + hlen]), data[16 + hlen : -32]


def assemble(text: str, section: bytes, *, version: int = 1, magic: bytes = MAGIC, hlen_delta: int = 0) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    raw += b" " * (-len(raw) % 8)
    body = struct.pack("<8sII", magic, version, max(0, len(raw) + hlen_delta)) + raw + section
    return body + hashlib.sha256(body).digest()


def nodes(value: Any, path: tuple = ()) -> list[tuple]:
    """Every (container, key) in the JSON tree, and the path to it."""
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((value, k, path + (k,)))
            out.extend(nodes(v, path + (k,)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.append((value, i, path + (i,)))
            out.extend(nodes(v, path + (i,)))
    return out


KEYS = [
    "format", "version", "name", "input", "classes", "source", "data_bytes", "layers", "shape", "layout", "dtype",
    "binarize_at", "kind", "output", "in_shape", "out_features", "arrays", "kernel", "stride", "padding",
    "pad_value", "pool", "weights", "thresholds", "bias", "offset", "x",
]  # fmt: skip
STRINGS = ["", "dense", "conv", "bits", "pixels", "scores", "<u8", "<i8", ">i8", "u8", "<u4", "uint64", "HWC",
           "CHW", "uint8", "float32", "bnn-hw model", "512", "1", "\u00e9\n\x00", "x" * 300]  # fmt: skip
EDGE_INTS = [0, 1, -1, 2, 3, 7, 8, 63, 64, 65, 127, 128, 255, 256, 2**16, 2**16 + 1, 2**24, 2**26, 2**30,
             2**30 + 1, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), 2**64, 10**40, -(10**40)]  # fmt: skip
RAWS = ["NaN", "Infinity", "-Infinity", "1e400", "-0", "1.0", "784.9", "1" + "0" * 45, "true", "null"]

json_leaf = st.one_of(
    st.sampled_from(EDGE_INTS),
    st.integers(-300, 300),
    st.sampled_from([0.5, 1.0, 127.5, -1.0, 1e300, 2.0**63]),
    st.sampled_from(STRINGS),
    st.booleans(),
    st.none(),
    st.sampled_from(RAWS).map(Raw),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)),
    max_leaves=6,
)


def mutate_header(data, header: dict, section: bytes) -> tuple[str, bytes, str]:
    """One mutation of the JSON header (or the whole header); returns (text, section, what was done)."""
    targets = nodes(header)
    action = data.draw(
        st.sampled_from(
            ["replace", "int", "delete", "add", "duplicate", "nest", "wrap", "swap", "whole", "spacing", "text"]
        )
    )
    dup, indent = None, None
    if action == "whole":
        return dumps(data.draw(json_value)), section, action
    if action == "spacing":  # allowed: key order and whitespace are free
        items = list(header.items())
        data.draw(st.randoms(use_true_random=False)).shuffle(items)
        return dumps(dict(items), indent=data.draw(st.sampled_from(["", " ", "\t", "\n  "]))), section, action
    container, key, path = targets[data.draw(st.integers(0, len(targets) - 1))]
    what = f"{action} at {'.'.join(map(str, path))}"
    if action == "replace":
        container[key] = data.draw(json_value)
    elif action == "int":
        old = container[key]
        base = old if type(old) is int else 0
        container[key] = data.draw(
            st.one_of(
                st.integers(-3, 3).map(lambda d: base + d),
                st.sampled_from([base * 2, -base, base * 64, base + 8, base - 8]),
                st.sampled_from(EDGE_INTS),
            )
        )
    elif action == "delete":
        if isinstance(container, dict):
            del container[key]
        else:
            container.pop(key)
    elif action == "add":
        target = container[key] if isinstance(container[key], dict | list) else container
        if isinstance(target, dict):
            target[data.draw(st.sampled_from(KEYS))] = data.draw(json_value)
        else:
            target.insert(data.draw(st.integers(0, len(target))), data.draw(json_value))
    elif action == "duplicate":
        target = container if isinstance(container, dict) else None
        if target is None or not target:
            return dumps(header), section, what + " (nothing to duplicate)"
        k = data.draw(st.sampled_from(sorted(target)))
        dup = (id(target), k, data.draw(st.one_of(st.just(target[k]), json_value)))
    elif action == "nest":
        depth = data.draw(st.sampled_from([1, 2, 5, 20, 31, 32, 33, 100, 1000, 5000]))
        opener = data.draw(st.sampled_from(["[", '{"a":']))
        closer = "]" if opener == "[" else "}"
        container[key] = Raw(opener * depth + dumps(container[key]) + closer * depth)
    elif action == "wrap":
        container[key] = [container[key]]
    elif action == "swap":
        if isinstance(container, list) and len(container) > 1:
            j = data.draw(st.integers(0, len(container) - 1))
            container[key], container[j] = container[j], container[key]
    elif action == "text":
        text = dumps(header)
        at = data.draw(st.integers(0, len(text) - 1))
        piece = data.draw(st.sampled_from(["", "{", "}", "[", "]", ",", ":", '"', "\\", "NaN", " ", "\ud800", "0"]))
        return text[:at] + piece + text[at + data.draw(st.integers(0, 3)) :], section, f"text at {at}"
    return dumps(header, dup, indent), section, what


def mutate_arrays(data, header: dict, section: bytes) -> tuple[str, bytes, str]:
    """One mutation of the data section (words, bits, length) and/or the array specs that point into it."""
    specs = [(i, name, spec) for i, layer in enumerate(header["layers"]) for name, spec in layer["arrays"].items()]
    i, name, spec = specs[data.draw(st.integers(0, len(specs) - 1))]
    action = data.draw(st.sampled_from(["word", "bit", "offset", "dtype", "shape", "length", "swap"]))
    buf = bytearray(section)
    what = f"{action} of layers[{i}].arrays.{name}"
    n_words = math.prod(spec["shape"])
    if action == "word":
        at = spec["offset"] + 8 * data.draw(st.integers(0, n_words - 1))
        fan_in = header["layers"][i]["in_shape"][-1]
        value = data.draw(
            st.one_of(
                st.sampled_from(EDGE_INTS + [fan_in, fan_in + 1, fan_in + 2, -255 * fan_in, 255 * fan_in + 1]),
                st.integers(-600, 600),
            )
        )
        buf[at : at + 8] = (value % 2**64).to_bytes(8, "little")
    elif action == "bit":
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(0, len(buf) * 8 - 1))
            buf[at // 8] ^= 1 << (at % 8)
    elif action == "offset":
        spec["offset"] = data.draw(st.sampled_from([0, 4, 8, -8, len(section), len(section) - 8, 2**63]))
        spec["offset"] += data.draw(st.sampled_from([0, spec["offset"] * 0 + 8 * n_words]))
    elif action == "dtype":
        spec["dtype"] = data.draw(st.sampled_from(["<u8", "<i8", "<u4", ">u8", "|u1", "<f8", "uint64", "int64"]))
    elif action == "shape":
        spec["shape"] = data.draw(
            st.one_of(
                st.just(spec["shape"][::-1]),
                st.just(spec["shape"] + [1]),
                st.just([n_words]),
                st.lists(st.sampled_from([0, 1, 2, 3, 5, 70, 2**63]), min_size=1, max_size=3),
            )
        )
    elif action == "length":
        delta = data.draw(st.sampled_from([-16, -8, -1, 1, 8, 16]))
        buf = buf[:delta] if delta < 0 else buf + bytes(delta)
        if data.draw(st.booleans()):
            header["data_bytes"] = len(buf)
    elif action == "swap":
        other = specs[data.draw(st.integers(0, len(specs) - 1))][2]
        spec["offset"], other["offset"] = other["offset"], spec["offset"]
    return dumps(header), bytes(buf), what


@st.composite
def mutated(draw, originals: dict[str, bytes]) -> tuple[str, bytes, str]:
    kind = draw(st.sampled_from(sorted(originals)))
    original = originals[kind]
    header, section = split(original)
    data = _Drawer(draw)
    where = draw(st.sampled_from(["header", "header", "header", "arrays", "arrays", "both", "preamble"]))
    if where == "preamble":
        choice = draw(st.sampled_from(["version", "magic", "hlen", "checksum", "truncate"]))
        if choice == "checksum":
            at = draw(st.integers(0, len(original) - 1))
            return kind, original[:at] + bytes([original[at] ^ 1]) + original[at + 1 :], "stale checksum"
        if choice == "truncate":
            return kind, original[: draw(st.integers(0, len(original) - 1))], "truncated"
        text = dumps(header)
        if choice == "version":
            return kind, assemble(text, section, version=draw(st.sampled_from([0, 2, 2**32 - 1]))), choice
        if choice == "magic":
            return kind, assemble(text, section, magic=b"BNNHWMDX"), choice
        return kind, assemble(text, section, hlen_delta=draw(st.sampled_from([-8, -1, 8, 4, 2**20]))), choice
    steps = {"header": [mutate_header], "arrays": [mutate_arrays], "both": [mutate_arrays, mutate_header]}[where]
    what = []
    text = dumps(header)
    for step in steps:
        text, section, done = step(data, header, section)
        what.append(done)
    return kind, assemble(text, section), "; ".join(what)


class _Drawer:
    """Lets the mutators call data.draw(...) inside a composite strategy."""

    def __init__(self, draw) -> None:
        self.draw = draw


# --------------------------------------------------------------- the oracle: an independent reading of the doc


def _ints(value, lo, hi) -> bool:
    return type(value) is int and lo <= value <= hi


def doc_allows(data: bytes) -> bool:
    """True if docs/format.md allows this file, read independently of bnn_hw.model (which must agree)."""
    if len(data) < 48 or data[:8] != MAGIC or struct.unpack_from("<I", data, 8)[0] != 1:
        return False
    if hashlib.sha256(data[:-32]).digest() != data[-32:]:
        return False
    hlen = struct.unpack_from("<I", data, 12)[0]
    if hlen % 8 or hlen > 1 << 22 or 16 + hlen > len(data) - 32:
        return False
    raw = data[16 : 16 + hlen]
    depth = level = 0
    in_string = escaped = False
    for ch in raw.decode("latin-1"):
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            level += 1
            depth = max(depth, level)
        elif ch in "]}":
            level -= 1
    if depth > 32:
        return False
    pairs_ok = [True]

    def hook(pairs):
        if len({k for k, _ in pairs}) != len(pairs):
            pairs_ok[0] = False
        return dict(pairs)

    def bad_constant(_):
        pairs_ok[0] = False

    def parse_int(s):
        if len(s.lstrip("-")) > 40:
            pairs_ok[0] = False
            return 0
        return int(s)

    def parse_float(s):
        if not math.isfinite(float(s)):
            pairs_ok[0] = False
        return float(s)

    try:
        h = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=hook,
            parse_constant=bad_constant,
            parse_int=parse_int,
            parse_float=parse_float,
        )
    except (UnicodeDecodeError, ValueError):
        return False
    if not pairs_ok[0] or not isinstance(h, dict):
        return False
    section = data[16 + hlen : -32]
    top = {"format", "version", "name", "input", "classes", "source", "data_bytes", "layers"}
    if set(h) != top or h["format"] != "bnn-hw model" or not _ints(h["version"], 1, 1):
        return False
    if not isinstance(h["name"], str) or not isinstance(h["source"], dict) or not isinstance(h["classes"], list):
        return False
    if not all(isinstance(c, str) for c in h["classes"]) or not _ints(h["data_bytes"], len(section), len(section)):
        return False
    inp = h["input"]
    if not isinstance(inp, dict) or set(inp) != {"shape", "layout", "dtype", "binarize_at"}:
        return False
    if inp["layout"] != "HWC" or inp["dtype"] != "uint8":
        return False
    b = inp["binarize_at"]
    if b is not None and not _ints(b, 1, 255):
        return False
    shape = inp["shape"]
    if not isinstance(shape, list) or len(shape) != 3 or not all(_ints(v, 1, 2**16) for v in shape):
        return False
    if math.prod(shape) > 2**26:
        return False
    layers = h["layers"]
    if not isinstance(layers, list) or not 1 <= len(layers) <= 1024:
        return False
    spans = []
    cur = list(shape)
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict) or layer.get("kind") not in ("dense", "conv"):
            return False
        conv = layer["kind"] == "conv"
        keys = {"kind", "input", "output", "in_shape", "out_features", "arrays"}
        if set(layer) != keys | ({"kernel", "stride", "padding", "pad_value", "pool"} if conv else set()):
            return False
        want_in = ("pixels" if b is None else "bits") if i == 0 else "bits"
        want_out = "scores" if i == len(layers) - 1 else "bits"
        if layer["input"] != want_in or layer["output"] != want_out:
            return False
        n = layer["out_features"]
        ins = layer["in_shape"]
        if not _ints(n, 1, 2**16) or not isinstance(ins, list) or len(ins) != (3 if conv else 1):
            return False
        if not all(_ints(v, 1, 2**16) for v in ins):
            return False
        if conv:
            k, s, p, pv, pool = (layer[x] for x in ("kernel", "stride", "padding", "pad_value", "pool"))
            if not (_ints(k, 1, 2**16) and _ints(s, 1, 2**16) and _ints(p, 0, 2**16) and _ints(pool, 0, 2**16)):
                return False
            if not (_ints(pv, -1, 1) and (pv != 0 or p == 0) if want_in == "bits" else _ints(pv, 0, 255)):
                return False
            if ins != cur:
                return False
            hh, ww, c = ins
            if (hh + 2 * p) * (ww + 2 * p) * c > 2**26:
                return False
            oh, ow = (hh + 2 * p - k) // s + 1, (ww + 2 * p - k) // s + 1
            if oh < 1 or ow < 1 or (pool and (oh < pool or ow < pool)) or want_out != "bits":
                return False
            fan_in = k * k * c
            vectors = oh * ow
            cur = [oh // pool, ow // pool, n] if pool else [oh, ow, n]
        else:
            if ins != [math.prod(cur)]:
                return False
            fan_in, vectors, cur = ins[0], 1, [n]
        if fan_in > 2**26 or fan_in * vectors > 2**28 or math.prod(cur) > 2**26:
            return False
        if want_in == "pixels" and fan_in > 65792:
            return False
        arrays = layer["arrays"]
        second = "thresholds" if want_out == "bits" else "bias"
        if not isinstance(arrays, dict) or set(arrays) != {"weights", second}:
            return False
        for name, dtype, expect in (("weights", "<u8", [n, -(-fan_in // 64)]), (second, "<i8", [n])):
            spec = arrays[name]
            if not isinstance(spec, dict) or set(spec) != {"offset", "dtype", "shape"}:
                return False
            if spec["dtype"] != dtype or spec["shape"] != expect or any(type(v) is not int for v in spec["shape"]):
                return False
            if type(spec["offset"]) is not int or spec["offset"] < 0 or spec["offset"] % 8:
                return False
            spans.append((spec["offset"], 8 * math.prod(expect), i, name, fan_in, want_in))
    end = 0
    for offset, nbytes, *_ in sorted(spans):
        if offset != end:
            return False
        end = offset + nbytes
    if end != len(section):
        return False
    for offset, nbytes, _, name, fan_in, want_in in spans:
        words = np.frombuffer(section, "<u8", nbytes // 8, offset)
        if name == "weights":
            row = -(-fan_in // 64)
            spare = row * 64 - fan_in
            if spare and np.any(words.reshape(-1, row)[:, -1] >> np.uint64(64 - spare)):
                return False
        else:
            values = [int(v) for v in words.view("<i8")]
            if name == "thresholds":
                lo, hi = (0, fan_in) if want_in == "bits" else (-255 * fan_in, 255 * fan_in)
                if min(values) < lo or max(values) > hi + 1:
                    return False
            elif min(values) < -(2**30) or max(values) > 2**30:
                return False
    return len(h["classes"]) == layers[-1]["out_features"]


def doc_predictions(data: bytes, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores and classes by the doc's arithmetic, written as plainly as possible (int64 +-1 products, explicit
    padding and windows), from the file bytes alone."""
    hlen = struct.unpack_from("<I", data, 12)[0]
    h = json.loads(data[16 : 16 + hlen])
    section = data[16 + hlen : -32]
    b = h["input"]["binarize_at"]
    x = images.astype(np.int64)
    if b is not None:
        x = np.where(images >= b, 1, -1)
    for layer in h["layers"]:
        w_spec = layer["arrays"]["weights"]
        n, words = w_spec["shape"]
        raw = np.frombuffer(section, np.uint8, 8 * n * words, w_spec["offset"]).reshape(n, 8 * words)
        pixels = layer["input"] == "pixels"
        if layer["kind"] == "dense":
            fan_in = layer["in_shape"][0]
            vec = x.reshape(len(x), 1, 1, -1)  # (y, x, c) order = HWC flattening
        else:
            k, s, p, pv = layer["kernel"], layer["stride"], layer["padding"], layer["pad_value"]
            bsz, hh, ww, c = x.shape
            padded = np.full((bsz, hh + 2 * p, ww + 2 * p, c), pv, np.int64)
            padded[:, p : p + hh, p : p + ww] = x
            oh, ow = (hh + 2 * p - k) // s + 1, (ww + 2 * p - k) // s + 1
            vec = np.empty((bsz, oh, ow, k * k * c), np.int64)
            for oy in range(oh):
                for ox in range(ow):
                    win = padded[:, oy * s : oy * s + k, ox * s : ox * s + k, :]  # (ky, kx, c)
                    vec[:, oy, ox] = win.reshape(bsz, -1)
            fan_in = k * k * c
        bits = np.array([[(raw[j, i // 8] >> (i % 8)) & 1 for i in range(fan_in)] for j in range(n)], np.int64)
        signs = 2 * bits - 1
        dot = vec @ signs.T
        if layer["output"] == "scores":
            bias_spec = layer["arrays"]["bias"]
            bias = np.frombuffer(section, "<i8", n, bias_spec["offset"]).astype(np.int64)
            scores = dot.reshape(len(x), n) + bias
            return scores, np.argmax(scores, axis=1)
        t_spec = layer["arrays"]["thresholds"]
        thresholds = np.frombuffer(section, "<i8", n, t_spec["offset"]).astype(np.int64)
        acc = dot if pixels else (dot + fan_in) // 2
        out = np.where(acc >= thresholds, 1, -1)
        pool = layer.get("pool", 0)
        if pool:
            bsz, oh, ow, _ = out.shape
            out = out[:, : oh // pool * pool, : ow // pool * pool]
            out = out.reshape(bsz, oh // pool, pool, ow // pool, pool, n).max(axis=(2, 4))
        x = out
    raise AssertionError("no scores layer")


# ------------------------------------------------------------------------------------------------- the property


def check(kind: str, data: bytes, what: str) -> str:
    """Refused in one line, or loaded to what the doc says; returns which."""
    allowed = doc_allows(data)
    try:
        model = parse_model(data, f"{kind}.bnn")
    except BnnError as exc:
        text = str(exc)
        assert "\n" not in text and text.startswith(f"{kind}.bnn: "), f"{what}: not one line: {text!r}"
        assert not allowed, f"{what}: the doc allows this file, but the loader refused it: {text}"
        return "refused"
    assert allowed, f"{what}: the loader accepted a file the doc does not allow"
    header, _ = split(data)
    assert model.name == header["name"] and list(model.classes) == header["classes"]
    assert dict(model.source) == header["source"] or json.dumps(model.source) == json.dumps(header["source"])
    assert model.binarize_at == header["input"]["binarize_at"] and list(model.input_shape) == header["input"]["shape"]
    rng = np.random.default_rng(len(data))
    images = rng.integers(0, 256, (6, *model.input_shape), dtype=np.uint8)
    images[0], images[1] = 0, 255
    result = golden.run(model, images)
    scores, classes = doc_predictions(data, images)
    assert np.array_equal(result.scores, scores), f"{what}: golden scores differ from the doc's arithmetic"
    assert np.array_equal(result.classes, classes), f"{what}: golden classes differ from the doc's arithmetic"
    return "loaded"


def test_the_originals_load_and_match_the_doc(files):
    for kind, data in files.items():
        assert check(kind, data, "original") == "loaded"


FUZZ = dict(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))


def _fuzz(files, max_examples: int):
    seen = {"refused": 0, "loaded": 0}

    @settings(max_examples=max_examples, **FUZZ)
    @given(case=st.data())
    def run(case):
        kind, data, what = case.draw(mutated(files))
        seen[check(kind, data, what)] += 1

    run()
    return seen


def test_mutated_files_are_refused_in_one_line_or_load_as_the_doc_says(files):
    seen = _fuzz(files, 500)
    print(f"fuzz: {seen}")
    assert seen["refused"] > 200 and seen["loaded"] > 20, seen  # both outcomes are exercised


@pytest.mark.slow
def test_mutated_files_many(files):
    seen = _fuzz(files, 6000)
    print(f"fuzz: {seen}")
    assert seen["refused"] > 2000 and seen["loaded"] > 200, seen
