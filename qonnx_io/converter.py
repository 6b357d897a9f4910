"""QONNX / FINN-style ONNX graph -> bnn-hw model (docs/qonnx.md).

The graph is walked as one chain from its image input to its score output. Each accumulating node (Gemm, MatMul,
Conv, XnorPopcountMatMul) with binary weights starts a layer; the float nodes after it (BatchNormalization, Mul,
Add, ...) up to the next quantizer (BipolarQuant, 1-bit Quant, MultiThreshold) are folded into one integer threshold
per neuron by running them, with QONNX's executor, at **every** reachable integer accumulator value: the graph's own
float arithmetic decides each bit, so BatchNorm epsilon, negative scales, ties and the quantizer's sign(0) rule are
honoured as the graph computes them. The nodes after the last accumulator become integer scores, accepted only when
they order the classes exactly as `dot + bias` does.

Layout: QONNX graphs are NCHW, bnn-hw is channels-last (HWC). The converter tracks, for every element of the current
tensor, which HWC position of the bnn-hw feature map it holds, through Reshape/Flatten/Transpose; a dense layer's
weights are reordered to the HWC fan-in order, a Conv or MaxPool must see the plain NCHW view of the feature map.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from bnn_hw.qonnx.graph import Graph, attrs, const_value, is_const, load_graph, run_nodes, where

from bnn_hw import __version__
from bnn_hw.errors import BnnError
from bnn_hw.model import PIXEL_MAX, BnnModel, Layer
from bnn_hw.packing import pack_bits

LAYOUT_OPS = ("Reshape", "Flatten", "Transpose", "Identity")
FLOAT_OPS = ("BatchNormalization", "Mul", "Add", "Sub", "Div", "Neg")
QUANT_OPS = ("BipolarQuant", "Quant", "MultiThreshold")
ACC_OPS = ("Gemm", "MatMul", "Conv", "XnorPopcountMatMul")
SUPPORTED = (
    "supported: BipolarQuant/1-bit Quant/MultiThreshold activations, Gemm/MatMul/Conv/XnorPopcountMatMul with binary "
    "weights, BatchNormalization/Mul/Add/Sub/Div/Neg before a quantizer, MaxPool after one, Pad, "
    "Reshape/Flatten/Transpose/Identity, an 8-bit Quant on the input"
)
_CHUNK = 1 << 22  # accumulator values x neurons evaluated per executor call
# Layers with more (accumulator value, neuron) pairs than this are folded by bisection instead of enumeration: the
# float ops allowed before a quantizer (BatchNorm, Mul, Add, Sub, Div, Neg by constants) are each monotone under
# IEEE rounding, so the chain is monotone in the sum and bisection finds the same boundary.
_ENUMERATE = 1 << 24
METADATA_PREFIX = "bnn_hw."
PAD_NOTE = "bnn_hw.pad_value="  # doc_string of an unpadded Conv written by bnn-hw: the (unused) pad value


def _is_pow2(x: np.ndarray | float) -> bool:
    x = np.abs(np.asarray(x, dtype=np.float64))
    return bool(np.all((x > 0) & (np.frexp(x)[0] == 0.5)))


def canonical(h: int, w: int, c: int) -> np.ndarray:
    """NCHW view (batch 1) of an HWC feature map: entry [0, c, y, x] is the HWC flat index (y * W + x) * C + c."""
    return np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1)[None]


@dataclass
class Activation:
    """The tensor between two layers: its two float levels and where each element sits in the bnn-hw map."""

    low: float
    high: float
    idx: np.ndarray  # same shape as the graph tensor (batch 1); HWC flat index of each element
    quantizer: Any  # the node that made it (for messages)


@dataclass
class PixelMap:
    """What the graph does to a raw pixel value p before the first layer: y(p) = alpha * p + beta (pixels input)."""

    alpha: float
    beta: float
    exact: bool


@dataclass
class Draft:
    """A layer being built: its accumulating node, the weight bits in HWC fan-in order and the float map from the
    integer accumulator to that node's output."""

    node: Any
    layer: Layer
    bits: np.ndarray  # bool (N, K)
    scale: np.ndarray  # float64 (N,): node output = scale * dot (+ offset) ...
    offset: np.ndarray  # float64 (N,)
    bias: np.ndarray | None  # float64 (N,) added in float32 after the product (Gemm C, Conv B)
    direct_acc: bool  # XnorPopcountMatMul: the node outputs the accumulator itself
    exact: bool
    chain: list[Any] = field(default_factory=list)

    def values(self, acc: np.ndarray) -> np.ndarray:
        """float32 (R, N) node outputs at accumulator values acc (R,), as exact arithmetic gives them."""
        acc = np.asarray(acc, dtype=np.float64)
        acc = acc[:, None] if acc.ndim == 1 else acc  # (R,) for all neurons, or (R, N) one value per neuron
        if self.direct_acc:
            v = np.broadcast_to(acc, (acc.shape[0], self.layer.out_features)).astype(np.float32)
        else:
            dot = 2 * acc - self.layer.fan_in if self.layer.input == "bits" else acc
            v = (self.scale[None, :] * dot + self.offset[None, :]).astype(np.float32)
        if self.bias is not None:
            v = (v + self.bias.astype(np.float32)[None, :]).astype(np.float32)
        return v


def _refuse(node: Any, why: str) -> BnnError:
    return BnnError(f"{where(node)}: {why}")


class Converter:
    """One conversion; `convert()` is the entry point."""

    def __init__(self, graph: Graph, input_scale: float, input_shape: tuple[int, int, int] | None):
        self.g = graph
        self.input_scale = float(input_scale)
        self.notes: list[str] = []
        shape = graph.input_shape
        if len(shape) == 4:
            _, c, h, w = shape
            self.image = (h, w, c)
            idx = canonical(h, w, c)
        elif len(shape) == 2:
            k = shape[1]
            if input_shape is None:
                input_shape = (28, 28, 1) if k == 784 else None
            if input_shape is None or int(np.prod(input_shape)) != k:
                raise BnnError(f"{graph.path}: flat input of {k} values: give the image shape with --input-shape H,W,C")
            self.image = tuple(int(v) for v in input_shape)
            idx = np.arange(k)[None]
        else:
            raise BnnError(f"{graph.path}: input shape {shape}: expected (1, C, H, W) NCHW images or (1, K) vectors")
        self.idx = idx
        self.layers: list[Layer] = []
        self.binarize_at: int | None = None
        self.pixel: PixelMap | None = None
        self.act: Activation | None = None
        self.pad: tuple[int, float, Any] | None = None  # pending Pad node: (pixels, value, node)
        self.exact = True

    # ------------------------------------------------------------------------------------------------- the walk

    def convert(self) -> list[Layer]:
        g = self.g
        t = g.input_name
        stage = "input"  # input -> (quantizer) -> act -> (acc node) -> acc -> (quantizer) -> act ...
        chain: list[Any] = []
        draft: Draft | None = None
        while t != g.output_name:
            users = g.consumers.get(t, [])
            if len(users) != 1:
                join = _join_node(g)
                if join is not None:
                    raise _refuse(
                        join, "combines computed tensors (a residual/skip connection); bnn-hw imports plain chains"
                    )
                if not users:
                    raise BnnError(f"tensor {t!r} is computed but not used and is not the graph output")
                names = ", ".join(f"{u.name or u.output[0]} ({u.op_type})" for u in users)
                raise BnnError(f"tensor {t!r} feeds {len(users)} nodes ({names}): bnn-hw imports a single chain")
            node = users[0]
            op = node.op_type
            dynamic = [i for i in node.input if i and not is_const(g, i)]
            if len(dynamic) != 1:
                if op in ("Add", "Sum", "Concat", "Mul", "Sub"):
                    raise _refuse(
                        node,
                        f"combines {len(dynamic)} computed tensors (a residual/skip connection); "
                        "bnn-hw imports plain chains",
                    )
                raise _refuse(node, f"has {len(dynamic)} computed inputs; {SUPPORTED}")
            if op not in FLOAT_OPS and node.input[0] != t:
                raise _refuse(node, f"takes the activation as input {list(node.input).index(t)}, expected input 0")
            if len(node.output) != 1 and op not in ("BatchNormalization",):
                raise _refuse(node, "has more than one output")
            if op == "Identity" and (stage == "acc" or chain):
                chain.append(node)  # a no-op inside a float chain: run it with the chain
            elif op in LAYOUT_OPS:
                if stage == "acc" or chain:
                    raise _refuse(
                        node, "reshapes the accumulator before its quantizer; put layout changes after the activation"
                    )
                self.idx = self._layout(node, self.idx)
            elif op in FLOAT_OPS:
                if stage == "act":
                    raise _refuse(
                        node,
                        "float arithmetic between an activation and the next layer has no bnn-hw "
                        "form (fold it into the previous layer's BatchNorm)",
                    )
                chain.append(node)
            elif op in QUANT_OPS:
                self._check_quantizer(node)
                if stage == "input":
                    self._finish_input(chain + [node])
                elif stage == "acc":
                    assert draft is not None
                    self._finish_layer(draft, chain + [node])
                else:
                    raise _refuse(node, "a second quantizer right after an activation")
                chain, stage = [], "act"
            elif op == "MaxPool":
                self._maxpool(node, stage)
            elif op == "Pad":
                self._pad(node, stage, chain)
            elif op in ACC_OPS:
                if stage == "input":
                    self._finish_input(chain)
                    chain = []
                elif stage == "acc":
                    raise _refuse(node, "two accumulating layers without a quantizer between them")
                draft = self._start_layer(node)
                stage = "acc"
            elif op == "Sign":
                raise _refuse(
                    node,
                    "ONNX Sign maps 0 to 0 (three levels, not binary); use BipolarQuant (0 -> +1) or MultiThreshold",
                )
            else:
                raise _refuse(node, f"op type {op} is not supported; {SUPPORTED}")
            t = node.output[0]
        if stage != "acc" or draft is None:
            raise BnnError(
                f"the graph output {g.output_name!r} is not the scores of a last Gemm/MatMul/Conv layer "
                "(nothing but float arithmetic may follow the last accumulating node)"
            )
        self._finish_scores(draft, chain)
        return self.layers

    # --------------------------------------------------------------------------------------------------- layout

    def _layout(self, node: Any, idx: np.ndarray) -> np.ndarray:
        op, a = node.op_type, attrs(node)
        if op == "Identity":
            return idx
        if op == "Transpose":
            perm = a.get("perm", list(range(idx.ndim))[::-1])
            return idx.transpose(perm)
        if op == "Flatten":
            axis = a.get("axis", 1)
            axis = axis + idx.ndim if axis < 0 else axis
            lead = int(np.prod(idx.shape[:axis]))
            return idx.reshape(lead, -1)
        shape = [int(v) for v in const_value(self.g, node.input[1])]
        shape = [idx.shape[i] if v == 0 and not a.get("allowzero", 0) else v for i, v in enumerate(shape)]
        try:
            return idx.reshape(shape)
        except ValueError:
            raise _refuse(node, f"cannot reshape {idx.shape} to {shape}") from None

    # ---------------------------------------------------------------------------------------------- quantizers

    def _check_quantizer(self, node: Any) -> None:
        op = node.op_type
        if op == "Quant":
            bits = float(np.asarray(const_value(self.g, node.input[3])).ravel()[0])
            if bits != 1 and self.act is not None:
                raise _refuse(
                    node,
                    f"{bits:g}-bit activation quantizer; bnn-hw activations are 1-bit (BipolarQuant "
                    "or a 1-bit Quant), only the input may have an 8-bit Quant",
                )
        elif op == "MultiThreshold":
            steps = np.asarray(const_value(self.g, node.input[1]))
            if steps.ndim != 2 or steps.shape[1] != 1:
                raise _refuse(
                    node,
                    f"{steps.shape[-1]} thresholds per channel give a multi-bit activation; "
                    "bnn-hw needs one threshold (a binary or bipolar output)",
                )

    def _levels(self, node: Any, channels: int, rank: int) -> tuple[float, float]:
        """The quantizer's two output levels, from the node itself at -inf and +inf (ish) inputs."""
        probe = np.zeros((2, channels) + (1,) * (rank - 2), dtype=np.float32)
        probe[0], probe[1] = -3e38, 3e38
        feeds = {node.input[0]: probe}
        out = run_nodes(self.g, [node], feeds, [node.output[0]])[node.output[0]].reshape(2, -1)
        low, high = np.unique(out[0]), np.unique(out[1])
        if len(low) != 1 or len(high) != 1 or not low[0] < high[0]:
            raise _refuse(
                node,
                f"output levels {out[0][:4]} / {out[1][:4]} are not one low and one high value for "
                "all channels (per-channel activation scales are not supported)",
            )
        return float(low[0]), float(high[0])

    # ----------------------------------------------------------------------------------------------- the input

    def _finish_input(self, nodes: list[Any]) -> None:
        """What the graph does to each raw pixel value 0..255 (given as pixel * input_scale) before the first
        layer: a monotone binarization (bits input, `binarize_at`) or a one-to-one affine map (pixels input)."""
        g = self.g
        shape = g.input_shape
        feed = (np.arange(256, dtype=np.float64) * self.input_scale).astype(np.float32)
        x = np.broadcast_to(feed.reshape((256,) + (1,) * (len(shape) - 1)), (256,) + shape[1:]).copy()
        if nodes:
            out_name = nodes[-1].output[0]
            y = run_nodes(g, nodes, {g.input_name: x}, [out_name])[out_name].reshape(256, -1)
        else:
            y = x.reshape(256, -1)
        if not np.all(y == y[:, :1]):
            what = where(nodes[-1]) if nodes else "the graph input"
            raise BnnError(
                f"{what}: the input preprocessing differs between pixels or channels (per-channel "
                "normalization); bnn-hw's first layer sees every pixel the same way"
            )
        y = y[:, 0].astype(np.float64)
        quant = nodes[-1] if nodes and nodes[-1].op_type in QUANT_OPS else None
        one_bit = quant is not None and (
            quant.op_type != "Quant" or float(np.asarray(const_value(g, quant.input[3])).ravel()[0]) == 1
        )
        if one_bit:
            assert quant is not None
            low, high = self._levels(quant, shape[1] if len(shape) == 4 else shape[1], len(shape))
            if not np.all((y == low) | (y == high)):
                raise _refuse(quant, "input quantizer output is not two-valued")
            fires = y == high
            first = int(np.argmax(fires)) if fires.any() else 256
            if not np.array_equal(fires, np.arange(256) >= first):
                raise _refuse(quant, "input binarization is not monotone in the pixel value (bit = pixel >= t)")
            if first in (0, 256):
                self.notes.append(
                    f"input binarization gives the same bit for every pixel (binarize_at = {first}); "
                    f"check --input-scale ({self.input_scale:g})"
                )
            self.binarize_at = first
            self.act = Activation(low, high, self.idx, quant)
            return
        alpha = float(y[1] - y[0])
        q = np.round((y - y[0]) / alpha) if alpha > 0 else None
        if q is None or not np.array_equal(q, np.arange(256)):
            what = where(quant) if quant is not None else "the graph input"
            raise BnnError(
                f"{what}: the first layer's input is not a one-to-one map of the pixel values 0..255 (it clips, "
                f"rounds or rescales them); bnn-hw's pixel layers take the raw value. Check --input-scale "
                f"({self.input_scale:g}); a graph fed with pixel/255 has scale 1/255"
            )
        exact = bool(_is_pow2(alpha) and np.array_equal(y, y[0] + alpha * np.arange(256)) and y[0] == 0)
        self.pixel = PixelMap(alpha=alpha, beta=float(y[0]), exact=exact)
        self.act = Activation(-1.0, 1.0, self.idx, quant)  # levels unused for pixels

    # ------------------------------------------------------------------------------------------------ the layers

    def _weights(self, node: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Binary weight bits (N, K) (True = +1) and each row's magnitude, from the constant weight tensor."""
        maker = self.g.producer.get(name)
        if maker is not None and maker.op_type == "Quant":
            bits = float(np.asarray(const_value(self.g, maker.input[3])).ravel()[0])
            if bits != 1:
                raise _refuse(
                    maker,
                    f"{bits:g}-bit weight quantizer; bnn-hw weights are binary (BipolarQuant or a bipolar 1-bit Quant)",
                )
        w = np.asarray(const_value(self.g, name), dtype=np.float64)
        if node.op_type == "Conv":
            if w.ndim != 4:
                raise _refuse(node, f"weights of shape {w.shape}: expected OIHW")
        elif node.op_type == "Gemm":
            w = w if attrs(node).get("transB", 0) else w.T
        else:  # MatMul, XnorPopcountMatMul: (K, N)
            w = w.T
        flat = w.reshape(w.shape[0], -1)
        if node.op_type == "XnorPopcountMatMul":
            if not np.all((flat == 0) | (flat == 1)):
                raise _refuse(node, "XnorPopcountMatMul weights must be binary 0/1")
            return w > 0, np.ones(w.shape[0])
        mag = np.abs(flat).max(axis=1)
        if not np.all((np.abs(flat) == mag[:, None]) & (mag[:, None] > 0)):
            kinds = np.unique(np.round(flat[0], 6))[:5]
            raise _refuse(node, f"weights are not binary (+a/-a per output), e.g. values {kinds}")
        return w > 0, mag

    def _start_layer(self, node: Any) -> Draft:
        op, a = node.op_type, attrs(node)
        act = self.act
        assert act is not None
        first = not self.layers
        input_kind = "pixels" if first and self.pixel is not None else "bits"
        bits, mag = self._weights(node, node.input[1])
        n = bits.shape[0]
        extra = None
        if op == "Gemm":
            if a.get("transA", 0):
                raise _refuse(node, "transA=1 is not supported")
            alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
            mag = mag * alpha
            if len(node.input) > 2 and node.input[2]:
                extra = beta * np.broadcast_to(np.asarray(const_value(self.g, node.input[2]), np.float64), (n,))
        if op == "Conv" and len(node.input) > 2 and node.input[2]:
            extra = np.asarray(const_value(self.g, node.input[2]), np.float64).reshape(n)
        if op == "Conv":
            layer, bits = self._conv_layer(node, bits, input_kind)
        else:
            idx = self.idx
            if idx.ndim != 2 or idx.shape[0] != 1:
                raise _refuse(node, f"input of shape {idx.shape}: flatten it to (1, K) first")
            flat = idx[0]
            k = flat.size
            if not np.array_equal(np.sort(flat), np.arange(k)) or bits.shape[1] != k:
                raise _refuse(node, "its input is not a reordering of the previous layer's outputs")
            hwc = np.empty_like(bits)
            hwc[:, flat] = bits
            bits = hwc
            in_shape = (k,)
            layer = Layer(
                kind="dense",
                input=input_kind,
                output="bits",
                in_shape=in_shape,
                out_features=n,
                weights=pack_bits(bits),
                thresholds=np.zeros(n, np.int64),
            )
        direct = op == "XnorPopcountMatMul"
        if direct:
            if (act.low, act.high) != (0.0, 1.0):
                raise _refuse(node, f"XnorPopcountMatMul needs a 0/1 input, got levels ({act.low:g}, {act.high:g})")
            scale, offset, exact = np.ones(n), np.zeros(n), True
        elif input_kind == "bits":
            if act.low != -act.high:
                raise _refuse(
                    act.quantizer,
                    f"activation levels ({act.low:g}, {act.high:g}) are not bipolar "
                    f"(-a, +a): {where(node)} would not compute an XNOR-popcount",
                )
            scale, offset = act.high * mag, np.zeros(n)
            exact = _is_pow2(scale)
        else:
            pm = self.pixel
            assert pm is not None
            sum_w = 2 * bits.sum(axis=1).astype(np.float64) - bits.shape[1]
            scale, offset = pm.alpha * mag, pm.beta * mag * sum_w
            exact = pm.exact and _is_pow2(scale)
        if extra is not None:
            exact = exact and bool(np.all(extra == np.round(extra)))
        return Draft(
            node=node, layer=layer, bits=bits, scale=scale, offset=offset, bias=extra, direct_acc=direct, exact=exact
        )

    def _conv_layer(self, node: Any, bits: np.ndarray, input_kind: str) -> tuple[Layer, np.ndarray]:
        a = attrs(node)
        n, c, kh, kw = bits.shape
        if kh != kw:
            raise _refuse(
                node,
                f"kernel {kh}x{kw} is not square; bnn-hw convolutions have square kernels, equal "
                "strides and paddings, no dilation, group 1",
            )
        strides = list(a.get("strides", [1, 1]))
        pads = list(a.get("pads", [0, 0, 0, 0]))
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise _refuse(node, "auto_pad is not supported; give explicit pads")
        if len(set(strides)) != 1 or len(set(pads)) != 1 or any(d != 1 for d in a.get("dilations", [1, 1])):
            raise _refuse(
                node,
                f"strides {strides} / pads {pads} / dilations differ between axes; bnn-hw "
                "convolutions have equal strides and paddings on both axes, no dilation",
            )
        if a.get("group", 1) != 1:
            raise _refuse(node, "grouped/depthwise convolution is not supported")
        idx = self.idx
        if idx.ndim != 4 or idx.shape[1] != c:
            raise _refuse(node, f"input of shape {idx.shape}: expected the NCHW feature map of {c} channels")
        _, _, h, w = idx.shape
        if not np.array_equal(idx, canonical(h, w, c)):
            raise _refuse(
                node,
                "its input is a reordered feature map (a Transpose/Reshape before it); a Conv must "
                "see the previous layer's NCHW output as is",
            )
        padding = pads[0]
        # Without padding the pad value changes nothing; bnn-hw's own export records it so the round trip is exact.
        pad_value = -1 if input_kind == "bits" else 0
        noted = node.doc_string.removeprefix(PAD_NOTE) if node.doc_string.startswith(PAD_NOTE) else ""
        if noted.lstrip("-").isdigit() and (int(noted) in (-1, 1) if input_kind == "bits" else 0 <= int(noted) <= 255):
            pad_value = int(noted)
        if self.pad is not None:
            if padding:
                raise _refuse(node, "both a Pad node and Conv pads")
            padding, pad_value, _ = self.pad
            self.pad = None
        elif padding:
            pad_value = self._pad_value(0.0, node, input_kind)
        bits = bits.transpose(0, 2, 3, 1).reshape(n, -1)  # (O, C, ky, kx) -> (O, ky, kx, C)
        layer = Layer(
            kind="conv",
            input=input_kind,
            output="bits",
            in_shape=(h, w, c),
            out_features=n,
            weights=pack_bits(bits),
            thresholds=np.zeros(n, np.int64),
            kernel=kh,
            stride=strides[0],
            padding=padding,
            pad_value=pad_value,
        )
        return layer, bits

    def _pad_value(self, value: float, node: Any, input_kind: str) -> int:
        """The bnn-hw pad value for a graph pad of float `value` (a level for bits, the y(p) of a pixel p)."""
        act = self.act
        assert act is not None
        if input_kind == "bits":
            if value == act.high:
                return 1
            if value == act.low:
                return -1
            raise _refuse(
                node,
                f"pads ±{act.high:g} activations with {value:g}; bnn-hw pads a bits input with "
                f"+1 or -1 (use a Pad node with value {act.high:g} or {act.low:g}, or no padding)",
            )
        pm = self.pixel
        assert pm is not None
        p = (value - pm.beta) / pm.alpha
        if p != round(p) or not 0 <= p <= PIXEL_MAX:
            raise _refuse(node, f"pad value {value:g} is no pixel value 0..255 after the input map")
        return int(round(p))

    def _pad(self, node: Any, stage: str, chain: list[Any]) -> None:
        a = attrs(node)
        if stage == "acc" or chain:
            raise _refuse(node, "Pad is supported only right before a Conv, after an activation")
        if a.get("mode", b"constant") not in (b"constant", "constant"):
            raise _refuse(node, "only constant padding is supported")
        pads = [int(v) for v in (const_value(self.g, node.input[1]) if len(node.input) > 1 else a["pads"])]
        value = 0.0
        if len(node.input) > 2 and node.input[2]:
            value = float(np.asarray(const_value(self.g, node.input[2])).ravel()[0])
        elif "value" in a:
            value = float(a["value"])
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or len({pads[i] for i in (2, 3, 6, 7)}) != 1:
            raise _refuse(node, f"pads {pads}: only equal spatial padding of an NCHW map is supported")
        kind = "pixels" if not self.layers and self.pixel is not None else "bits"
        self.pad = (pads[2], self._pad_value(value, node, kind), node)
        h = self.idx
        if h.ndim != 4:
            raise _refuse(node, "Pad needs an NCHW feature map")
        # the padded map is not a bnn-hw map: keep the unpadded view for the Conv's layout check

    def _maxpool(self, node: Any, stage: str) -> None:
        a = attrs(node)
        if stage != "act" or not self.layers or self.layers[-1].kind != "conv":
            raise _refuse(
                node,
                "max-pooling is supported only on a convolution's output bits, after the "
                "quantizer (bnn-hw pools bits; BinaryNet's pool-before-BatchNorm order is not exact)",
            )
        prev = self.layers[-1]
        k = list(a.get("kernel_shape", []))
        s = list(a.get("strides", k))
        if (
            len(set(k)) != 1
            or k != s
            or any(a.get("pads", [0, 0, 0, 0]))
            or a.get("ceil_mode", 0)
            or any(d != 1 for d in a.get("dilations", [1, 1]))
            or prev.pool
        ):
            raise _refuse(
                node,
                f"kernel {k} strides {s}: only square, non-overlapping (kernel = stride), unpadded "
                "floor-mode pooling, once per layer, is supported",
            )
        oh, ow = prev.conv_shape
        if not np.array_equal(self.idx, canonical(oh, ow, prev.out_features)):
            raise _refuse(node, "its input is a reordered feature map; pool directly after the quantizer")
        prev = self.layers[-1] = prev.replace(pool=k[0])
        h, w, c = prev.out_shape
        self.idx = canonical(h, w, c)

    # ------------------------------------------------------------------------------------------ integer folding

    def _evaluate(self, draft: Draft, nodes: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Every reachable accumulator value (R,) and the chain's float32 output there (R, N), chunked."""
        layer = draft.layer
        lo, hi = layer.acc_range
        accs = np.arange(lo, hi + 1, dtype=np.int64)
        n = layer.out_features
        rank = 4 if layer.kind == "conv" else 2
        rows = max(1, _CHUNK // n)
        parts = []
        for start in range(0, len(accs), rows):
            v = draft.values(accs[start : start + rows])
            if not nodes:
                parts.append(v)
                continue
            feed = v.reshape(v.shape + (1,) * (rank - 2))
            out = nodes[-1].output[0]
            y = run_nodes(self.g, nodes, {draft.node.output[0]: feed}, [out])[out]
            parts.append(y.reshape(v.shape[0], n))
        return accs, np.concatenate(parts)

    def _finish_layer(self, draft: Draft, nodes: list[Any]) -> None:
        """Fold the float chain and its quantizer into `acc >= threshold` (inverting the weights of neurons whose
        +1 set is the low end), from the chain's value at every reachable accumulator."""
        layer, quant = draft.layer, nodes[-1]
        rank = 4 if layer.kind == "conv" else 2
        low, high = self._levels(quant, layer.out_features, rank)
        lo, hi = layer.acc_range
        if (hi - lo + 1) * layer.out_features > _ENUMERATE:
            thresholds, down = self._bisect(draft, nodes, low, high)
        else:
            thresholds, down = self._enumerate(draft, nodes, low, high)
        bits = draft.bits.copy()
        bits[down] = ~bits[down]
        layer = layer.replace(weights=pack_bits(bits), thresholds=thresholds)
        self._note_exact(draft)
        self.layers.append(layer)
        if layer.kind == "conv":
            self.idx = canonical(*layer.out_shape)
        else:
            self.idx = np.arange(layer.out_features)[None]
        self.act = Activation(low, high, self.idx, quant)

    def _fires(self, draft: Draft, nodes: list[Any], acc: np.ndarray, low: float, high: float) -> np.ndarray:
        """Whether each neuron n's quantizer gives the high level at accumulator acc[n]."""
        layer, quant = draft.layer, nodes[-1]
        v = draft.values(acc[None, :])
        rank = 4 if layer.kind == "conv" else 2
        out = nodes[-1].output[0]
        y = run_nodes(self.g, nodes, {draft.node.output[0]: v.reshape(v.shape + (1,) * (rank - 2))}, [out])[out]
        y = y.reshape(-1)
        if not np.all((y == low) | (y == high)):
            raise _refuse(quant, f"output is not two-valued ({low:g}/{high:g}) on integer sums")
        return y == high

    def _bisect(self, draft: Draft, nodes: list[Any], low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
        """Thresholds by bisection over the accumulator range (large pixel layers; see _ENUMERATE)."""
        lo, hi = draft.layer.acc_range
        n = draft.layer.out_features
        f_lo = self._fires(draft, nodes, np.full(n, lo), low, high)
        f_hi = self._fires(draft, nodes, np.full(n, hi), low, high)
        down = f_lo & ~f_hi
        search = f_lo != f_hi
        left, right = np.full(n, lo), np.full(n, hi)  # up: left misses, right fires; down: the reverse
        while True:
            open_ = search & (right - left > 1)
            if not open_.any():
                break
            mid = (left + right) // 2
            fired = self._fires(draft, nodes, np.where(open_, mid, lo), low, high)
            to_right = open_ & (fired != down)  # up and fired, or down and missed: the boundary is at or below mid
            right = np.where(to_right, mid, right)
            left = np.where(open_ & ~to_right, mid, left)
        up_t = np.where(search, right, np.where(f_hi, lo, hi + 1))
        return np.where(down, hi - left, up_t).astype(np.int64), down

    def _enumerate(self, draft: Draft, nodes: list[Any], low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
        """Thresholds from the chain at every reachable accumulator, checking it is a threshold at all."""
        layer, quant = draft.layer, nodes[-1]
        accs, y = self._evaluate(draft, nodes)
        if not np.all((y == low) | (y == high)):
            raise _refuse(quant, f"output is not two-valued ({low:g}/{high:g}) on integer sums")
        fires = y == high  # (R, N)
        lo, hi = layer.acc_range
        r = len(accs)
        count = fires.sum(axis=0)
        first = np.where(count, np.argmax(fires, axis=0), r)
        last = np.where(count, r - 1 - np.argmax(fires[::-1], axis=0), -1)
        contiguous = last - first + 1 == count
        up = (count == 0) | (contiguous & (last == r - 1))
        down = ~up & contiguous & (first == 0)
        bad = ~(up | down)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _refuse(
                quant,
                f"neuron {i} of {where(draft.node)} is not a threshold of its integer sum (its "
                "float chain is not monotone); no exact bnn-hw form",
            )
        return np.where(up, lo + first, hi - last).astype(np.int64), down

    def _finish_scores(self, draft: Draft, nodes: list[Any]) -> None:
        """Integer scores dot + bias[n] that order every (class, sum) pair exactly as the graph's float scores do
        (equal floats give equal integers, so the first-index argmax rule agrees too)."""
        layer = draft.layer
        if layer.kind != "dense":
            raise _refuse(draft.node, "the last layer must be dense (Gemm/MatMul) scores")
        accs, f = self._evaluate(draft, nodes)
        what = where(nodes[-1]) if nodes else where(draft.node)
        if not np.all(np.isfinite(f)):
            raise BnnError(f"{what}: scores are not finite for some sums")
        dot = layer.dot_from_acc(accs).astype(np.float64)
        f64 = f.astype(np.float64)
        direct = f64 - dot[:, None]
        if np.all(direct == direct[:1]) and np.all(direct == np.round(direct)):
            bias = direct[0].astype(np.int64)
        else:
            bias = np.zeros(layer.out_features, np.int64)
            step = (f64[-1, 0] - f64[0, 0]) / (dot[-1] - dot[0]) if len(dot) > 1 else 1.0
            for n in range(1, layer.out_features):
                common, i_n, i_0 = np.intersect1d(f64[:, n], f64[:, 0], return_indices=True)
                if len(common):
                    bias[n] = int(dot[i_0[0]] - dot[i_n[0]])
                elif step > 0:
                    bias[n] = int(np.round((f64[0, n] - f64[0, 0]) / step))
        s = (dot[:, None] + bias[None, :]).ravel()
        v = f64.ravel()
        order = np.argsort(v, kind="stable")
        vs, ss = v[order], s[order]
        same = vs[1:] == vs[:-1]
        ok = np.where(same, ss[1:] == ss[:-1], ss[1:] > ss[:-1])
        if not ok.all():
            raise BnnError(
                f"{what}: the final layer's float scores order the classes differently from any integer "
                "dot + bias (e.g. a per-class BatchNorm scale); use a per-tensor scale (FINN's TensorNorm) or none"
            )
        if np.abs(bias).max(initial=0) > (1 << 30):
            raise BnnError(f"{what}: score biases beyond 2**30")
        layer = layer.replace(output="scores", thresholds=None, bias=bias)
        self._note_exact(draft)
        self.layers.append(layer)

    def _note_exact(self, draft: Draft) -> None:
        if not draft.exact and self.exact:
            self.exact = False
            self.notes.append(
                f"{where(draft.node)}: its scales are not powers of two, so the graph's float sums depend on the "
                "summation order; thresholds follow the exact sums, and executors (QONNX, Brevitas) may round "
                "differently on sums next to a threshold"
            )


def _join_node(g: Graph) -> Any:
    """The first node that takes two or more computed tensors (where a branch joins again), if any."""
    for node in g.nodes:
        if sum(1 for i in node.input if i and not is_const(g, i)) > 1:
            return node
    return None


def _read_classes(meta: dict[str, str], classes: list[str] | None, n: int) -> list[str]:
    if classes is not None:
        if len(classes) != n:
            raise BnnError(f"{len(classes)} class names given for {n} output scores")
        return list(classes)
    if METADATA_PREFIX + "classes" in meta:
        stored = json.loads(meta[METADATA_PREFIX + "classes"])
        if len(stored) == n:
            return [str(c) for c in stored]
    return [str(i) for i in range(n)]


def import_onnx(
    path: str | Path,
    input_scale: float = 1 / 255,
    input_shape: tuple[int, int, int] | None = None,
    name: str | None = None,
    classes: list[str] | None = None,
) -> tuple[BnnModel, list[str]]:
    """Convert a QONNX/FINN ONNX file to a bnn-hw model; also returns notes worth printing (exactness caveats).

    `input_scale`: the graph's input is the uint8 pixel times this (1/255 for a graph trained on ToTensor images).
    A file written by `export_qonnx` carries its model's name, classes and provenance, so the round trip gives the
    same model hash."""
    graph = load_graph(path)
    conv = Converter(graph, input_scale, input_shape)
    layers = conv.convert()
    meta = graph.metadata()
    try:
        stored_source = json.loads(meta[METADATA_PREFIX + "source"]) if METADATA_PREFIX + "source" in meta else None
    except json.JSONDecodeError:
        stored_source = None
    if stored_source is not None and METADATA_PREFIX + "model_hash" in meta:
        source = stored_source
    else:
        source = {
            "importer": f"bnn-hw {__version__}",
            "onnx_file": Path(path).name,
            "onnx_sha256": graph.sha256,
            "input_scale": input_scale,
            "float_sums_exact": conv.exact,
        }
    model = BnnModel(
        layers=layers,
        input_shape=conv.image,
        classes=_read_classes(meta, classes, layers[-1].out_features),
        binarize_at=conv.binarize_at,
        name=name or meta.get(METADATA_PREFIX + "name") or Path(path).stem,
        source=source,
    )
    model.validate()
    return model, conv.notes
