"""Folding: how each layer is spread over PE x SIMD lanes, and what that predicts (numpy only, no Amaranth).

A layer with MH output neurons and MW fan-in on PE processing elements of SIMD lanes runs NF = ceil(MH / PE) neuron
folds of SF = ceil(MW / SIMD) synapse folds each, one (PE x SIMD) step per clock: NF * SF cycles per input vector.
Neuron n = nf * PE + p lives in PE p; its fan-in element j = sf * SIMD + i is lane i of word (nf, sf). Neurons and
lanes past MH and MW are padding: zero weights, zero inputs (see rtl/width_converter.py for why zero is neutral).

The engine accumulates `init + mismatches` (bits in) or `init + dot` (pixels in) so that the output bit is the sign
of the accumulator (no comparator) and a score needs no final add. With m = popcount(x XOR w) = K - acc:

- bits in, bits out:   init = t - K - 1,    bit = (init + m < 0)          <=>  K - m >= t  <=>  acc >= t
- bits in, scores out: init = -(K + bias),  score = -(init + 2m)          =  2*acc - K + bias
- pixels in, bits out: init = -t,           bit = (init + dot >= 0)       <=>  dot >= t
- pixels in, scores:   init = bias,         score = init + dot

Counting mismatches *upwards* lets the popcount register be the adder's first operand, which Yosys' Xilinx carry
mapping uses directly as the carry-chain data input: the accumulator then costs one LUT per bit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from bnn_hw.errors import BnnError
from bnn_hw.model import PIXEL_MAX, BnnModel, Layer
from bnn_hw.packing import pack_bits, unpack_bits


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def signed_width(lo: int, hi: int) -> int:
    """Bits of the smallest two's-complement type holding every integer in [lo, hi]."""
    w = 1
    while not (-(1 << (w - 1)) <= lo and hi <= (1 << (w - 1)) - 1):
        w += 1
    return w


def init_values(layer: Layer) -> np.ndarray:
    """Per-neuron accumulator start value (int64, MH), see the module docstring."""
    k = layer.fan_in
    if layer.input == "bits":
        return (layer.thresholds - k - 1) if layer.output == "bits" else -(k + layer.bias)
    return -layer.thresholds if layer.output == "bits" else layer.bias.copy()


def acc_range(layer: Layer) -> tuple[int, int]:
    """Every value the accumulator (and, for bits-in scores, its negation) can take, padding neurons (init 0)
    included."""
    init = init_values(layer)
    lo, hi = min(int(init.min()), 0), max(int(init.max()), 0)
    k = layer.fan_in
    if layer.input == "bits":
        hi += 2 * k if layer.output == "scores" else k
        if layer.output == "scores":
            lo, hi = min(lo, -hi), max(hi, -lo)
        return lo, hi
    return lo - PIXEL_MAX * k, hi + PIXEL_MAX * k


@dataclass(frozen=True)
class LayerFold:
    """One layer's folding and its consequences (everything the manifest says about the layer)."""

    index: int
    kind: str
    input: str
    output: str
    MW: int
    MH: int
    PE: int
    SIMD: int
    NF: int
    SF: int
    input_vectors: int
    cycles_per_image: int
    acc_bits: int
    elem_bits: int
    weight_memory_bits: int
    threshold_memory_bits: int
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()
    conv_shape: tuple[int, int] = (1, 1)  # output map before pooling (convolutions)
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    pool: int = 0
    window_memory_bits: int = 0  # the sliding-window generator's two feature-map banks (convolutions)
    weight_style: str = "block"  # "block": a weight memory; "logic": constant ROMs in LUTs (see weight_style_for)

    @property
    def out_elements(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def lanes(self) -> int:
        return self.PE * self.SIMD

    def to_json(self) -> dict:
        return asdict(self)


def fold_layer(index: int, layer: Layer, pe: int, simd: int) -> LayerFold:
    mw, mh = layer.fan_in, layer.out_features
    where = f"layer {index} ({layer.describe()})"
    if not isinstance(pe, int) or not 1 <= pe <= mh:
        raise BnnError(f"{where}: PE={pe} must be between 1 and the layer's {mh} output neurons")
    if not isinstance(simd, int) or not 1 <= simd <= mw:
        raise BnnError(f"{where}: SIMD={simd} must be between 1 and the layer's fan-in {mw}")
    if layer.kind == "conv":
        c = layer.in_shape[2]
        if c % simd:
            raise BnnError(
                f"{where}: SIMD={simd} must divide the {c} input channels of a convolution (each SIMD word "
                f"holds channels of one pixel); try {_divisors_hint(c, simd)}"
            )
        if mh % pe:
            raise BnnError(
                f"{where}: PE={pe} must divide the {mh} output channels of a convolution; try {_divisors_hint(mh, pe)}"
            )
        if layer.output != "bits":
            raise BnnError(f"{where}: a convolution as the last (scores) layer is not supported in hardware")
    nf, sf = ceil_div(mh, pe), ceil_div(mw, simd)
    lo, hi = acc_range(layer)
    if layer.input == "pixels":  # padding lanes (zero weight, zero pixel) are summed as 255 before their -255 is
        lo -= PIXEL_MAX * (sf * simd - mw)  # offset: the running sum may dip by that much more
    acc_bits = signed_width(lo, hi)
    return LayerFold(
        index=index,
        kind=layer.kind,
        input=layer.input,
        output=layer.output,
        MW=mw,
        MH=mh,
        PE=pe,
        SIMD=simd,
        NF=nf,
        SF=sf,
        input_vectors=layer.input_vectors,
        cycles_per_image=nf * sf * layer.input_vectors,
        acc_bits=acc_bits,
        elem_bits=8 if layer.input == "pixels" else 1,
        weight_memory_bits=nf * sf * pe * simd,
        threshold_memory_bits=nf * pe * acc_bits,
        in_shape=tuple(layer.in_shape),
        out_shape=tuple(layer.out_shape),
        conv_shape=layer.conv_shape if layer.kind == "conv" else (1, 1),
        kernel=layer.kernel,
        stride=layer.stride,
        padding=layer.padding,
        pool=layer.pool,
        window_memory_bits=2 * int(np.prod(layer.in_shape)) * (8 if layer.input == "pixels" else 1)
        if layer.kind == "conv"
        else 0,
    )


BLOCK_RAM_MIN_BITS = 4096  # weight memories at least this big are forced into block RAM
WEIGHT_STYLES = ("auto", "block", "logic")  # `bnn-hw rtl --weights`
LOGIC_MAX_DEPTH = 32  # `auto` builds weight memories no deeper than this as logic


def weight_style_for(fold: LayerFold, weights: str) -> str:
    """The weight memory style of a layer for `--weights` = `weights`.

    `block`: one memory of NF x SF words of PE x SIMD bits (block RAM from BLOCK_RAM_MIN_BITS bits on). `logic`: the
    weights are constants of the design, one ROM per PE and lane group read combinationally from a registered address
    (rtl/pe_array.py), so the ROM, the XNOR and the popcount's first level can share LUTs. `auto`: logic when the
    memory would be forced into block RAM but is at most LOGIC_MAX_DEPTH words deep (a block RAM is 512 to 16,384
    words deep, so such a memory would leave over 90 % of every block it occupies empty), block otherwise."""
    if weights not in WEIGHT_STYLES:
        raise BnnError(f"--weights must be one of {', '.join(WEIGHT_STYLES)}, got {weights!r}")
    if weights != "auto":
        return weights
    shallow = fold.NF * fold.SF <= LOGIC_MAX_DEPTH
    return "logic" if shallow and fold.weight_memory_bits >= BLOCK_RAM_MIN_BITS else "block"


def _divisors_hint(n: int, near: int) -> str:
    divs = [d for d in range(1, n + 1) if n % d == 0]
    best = sorted(divs, key=lambda d: (abs(d - near), d))[:3]
    return " or ".join(str(d) for d in sorted(best))


def weight_words(layer: Layer, fold: LayerFold) -> list[int]:
    """Weight memory image: word nf*SF + sf holds PE x SIMD bits, bit p*SIMD + i = weight of neuron nf*PE + p at
    fan-in sf*SIMD + i (padding 0)."""
    pe, simd, nf, sf = fold.PE, fold.SIMD, fold.NF, fold.SF
    bits = np.zeros((nf * pe, sf * simd), dtype=bool)
    bits[: fold.MH, : fold.MW] = unpack_bits(layer.weights, fold.MW)
    words = bits.reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, pe * simd)
    packed = pack_bits(words)  # (nf*sf, ceil(pe*simd/64)) little-endian: bit k of the word = element k
    return [int.from_bytes(row.astype("<u8").tobytes(), "little") for row in packed]


def fold_init_values(layer: Layer, fold: LayerFold) -> np.ndarray:
    """The accumulator start value of every (padded) neuron as the engine stores it (int64, NF * PE): init_values,
    minus 255 per zero weight of the padded fan-in for pixel layers (see the module docstring)."""
    vals = np.zeros(fold.NF * fold.PE, dtype=np.int64)
    vals[: fold.MH] = init_values(layer)
    if layer.input == "pixels":
        ones = np.zeros(fold.NF * fold.PE, dtype=np.int64)
        ones[: fold.MH] = unpack_bits(layer.weights, fold.MW).sum(axis=1)
        vals -= PIXEL_MAX * (fold.SF * fold.SIMD - ones)
    return vals


def init_words(layer: Layer, fold: LayerFold) -> list[int]:
    """Init (threshold/bias) memory image: word nf holds PE two's-complement fields of acc_bits bits."""
    vals = fold_init_values(layer, fold)
    mask = (1 << fold.acc_bits) - 1
    words = []
    for f in range(fold.NF):
        word = 0
        for p in range(fold.PE):
            word |= (int(vals[f * fold.PE + p]) & mask) << (p * fold.acc_bits)
        words.append(word)
    return words


def fit_value(value: int, layer: Layer, what: str) -> int:
    """The largest legal PE (what="pe") or SIMD not above `value` for this layer."""
    if what == "pe":
        n = layer.out_features
        cands = [d for d in range(1, n + 1) if n % d == 0] if layer.kind == "conv" else range(1, n + 1)
    else:
        n = layer.in_shape[2] if layer.kind == "conv" else layer.fan_in
        cands = [d for d in range(1, n + 1) if n % d == 0] if layer.kind == "conv" else range(1, n + 1)
    return max(c for c in cands if c <= value) if value >= 1 else value


def parse_list(text: str | int | list[int], n_layers: int, what: str) -> list[int]:
    """'16' or '8,16,4' (one per layer) -> a list of n_layers ints."""
    if isinstance(text, int):
        values = [text]
    elif isinstance(text, list):
        values = text
    else:
        try:
            values = [int(v) for v in str(text).split(",") if v.strip() != ""]
        except ValueError:
            raise BnnError(f"--{what} must be an integer or a comma-separated list of integers, got {text!r}") from None
    if len(values) == 1:
        values = values * n_layers
    if len(values) != n_layers:
        raise BnnError(
            f"--{what} lists {len(values)} values but the model has {n_layers} layers: give one value or one per layer"
        )
    return values


@dataclass(frozen=True)
class Plan:
    """The whole accelerator's folding."""

    layers: list[LayerFold]
    pixels_per_beat: int
    beats_per_image: int
    num_classes: int
    class_bits: int
    score_bits: int
    input_elements: int = 0  # H*W*C of the image

    @property
    def cycles_per_image(self) -> int:
        return max(self.stage_cycles().values())

    def stage_cycles(self) -> dict[str, int]:
        """Cycles per image each stage needs at full rate (the slowest one sets the throughput)."""
        stages = {"input beats": self.beats_per_image}
        for f in self.layers:
            stages[f"layer {f.index}"] = f.cycles_per_image
            if f.kind == "conv":
                stages[f"layer {f.index} window"] = f.input_vectors * f.SF
        return stages

    @property
    def bottleneck(self) -> str:
        cyc = self.stage_cycles()
        return max(cyc, key=lambda k: cyc[k])


# Amaranth 0.5 numbers the output bits of a netlist cell with 16 bits (`Net.from_cell` in amaranth/hdl/_nir.py
# asserts `bit in range(1 << 16)`, and the port builder probes the bit after a port's last one): a signal of 65,536
# bits or more that crosses a module boundary fails with a bare AssertionError after a long elaboration.
MAX_SIGNAL_BITS = 65_535
TOP_CONTROL_INPUT_BITS = 4  # clk, rst, pixels__valid, result__ready beside pixels__payload
TOP_FIRST_NET = 2  # the top cell's input bits start at net 2 (0 and 1 are the constants)


def fold_widths(fold: LayerFold, in_elems: int, in_elem_bits: int) -> list[tuple[int, str, str]]:
    """(bits, what, how to lower it) of every signal of this layer's hardware whose width grows with the folding:
    the weight word (PE x SIMD), the pixel input word (SIMD x 8, also the window memory of a convolution), the
    threshold word and output FIFO (PE x accumulator bits), and the buffer of the width converter that feeds the
    layer `in_elems` elements of `in_elem_bits` bits per beat (rtl/width_converter.py: SIMD + in_elems rounded up
    to a multiple of SIMD elements; its shifted and placed copies are no wider)."""
    pe, simd = fold.PE, fold.SIMD
    out = [(pe * simd, f"PE x SIMD = {pe} x {simd} = {pe * simd:,} bits per weight word", "lower --pe or --simd")]
    if fold.elem_bits > 1:
        out.append(
            (
                simd * fold.elem_bits,
                f"SIMD x {fold.elem_bits} = {simd} x {fold.elem_bits} = "
                f"{simd * fold.elem_bits:,} bits per pixel input word",
                "lower --simd",
            )
        )
    out.append(
        (
            pe * fold.acc_bits,
            f"PE x accumulator bits = {pe} x {fold.acc_bits} = {pe * fold.acc_bits:,} bits per threshold word",
            "lower --pe",
        )
    )
    cap = simd + ceil_div(in_elems, simd) * simd
    source = "--pixels-per-beat" if fold.index == 0 else f"layer {fold.index - 1}'s --pe"
    out.append(
        (
            cap * in_elem_bits,
            f"the width converter from {in_elems} to {simd} elements"
            f"{f' of {in_elem_bits} bits' if in_elem_bits > 1 else ''} buffers "
            f"{cap * in_elem_bits:,} bits",
            f"lower --simd or {source}",
        )
    )
    return out


def width_error(layer: Layer, fold: LayerFold, in_elems: int, in_elem_bits: int) -> str | None:
    """The one-line error for the first signal of this layer over MAX_SIGNAL_BITS, or None."""
    for bits, what, fix in fold_widths(fold, in_elems, in_elem_bits):
        if bits > MAX_SIGNAL_BITS:
            return (
                f"layer {fold.index} ({layer.describe()}): {what}; Amaranth signals are limited to "
                f"{MAX_SIGNAL_BITS:,} bits: {fix}"
            )
    return None


def input_elem_bits(first_layer: Layer) -> int:
    """Bits per element of the input width converter: 8 for pixels, 1 when the top binarizes them first."""
    return 8 if first_layer.input == "pixels" else 1


def max_pixels_per_beat() -> int:
    """The largest P whose input port (8 x P bits beside the control inputs) Amaranth can number."""
    return (MAX_SIGNAL_BITS - TOP_FIRST_NET - TOP_CONTROL_INPUT_BITS) // 8


def make_plan(
    model: BnnModel, pe: list[int], simd: list[int], pixels_per_beat: int | None = None, weights: str = "auto"
) -> Plan:
    """The folding of every layer, checked: legal PE/SIMD per layer and every signal within MAX_SIGNAL_BITS (so
    that an unbuildable request fails here, at once, and not in Amaranth after minutes of elaboration). `weights`:
    the weight memory style (WEIGHT_STYLES, resolved per layer by weight_style_for)."""
    if weights not in WEIGHT_STYLES:
        raise BnnError(f"--weights must be one of {', '.join(WEIGHT_STYLES)}, got {weights!r}")
    folds = [fold_layer(i, layer, pe[i], simd[i]) for i, layer in enumerate(model.layers)]
    folds = [replace(f, weight_style=weight_style_for(f, weights)) for f in folds]
    h, w, c = model.input_shape
    n_pixels = h * w * c
    ppb = folds[0].SIMD if pixels_per_beat is None else pixels_per_beat
    if not isinstance(ppb, int) or not 1 <= ppb <= n_pixels:
        raise BnnError(f"--pixels-per-beat={ppb} must be between 1 and the image's {n_pixels} pixels")
    if ppb > max_pixels_per_beat():
        given = "--pixels-per-beat" if pixels_per_beat is not None else "pixels per beat (SIMD of layer 0)"
        raise BnnError(
            f"{given} {ppb}: the input port would be 8 x {ppb} = {8 * ppb:,} bits; Amaranth signals are "
            f"limited to {MAX_SIGNAL_BITS:,} bits: use --pixels-per-beat {max_pixels_per_beat()} or less"
        )
    for i, (layer, fold) in enumerate(zip(model.layers, folds, strict=True)):
        in_elems, in_bits = (ppb, input_elem_bits(layer)) if i == 0 else (folds[i - 1].PE, 1)
        message = width_error(layer, fold, in_elems, in_bits)
        if message:
            raise BnnError(message)
    last = folds[-1]
    ncls = model.num_classes
    return Plan(
        layers=folds,
        pixels_per_beat=ppb,
        beats_per_image=ceil_div(n_pixels, ppb),
        num_classes=ncls,
        class_bits=max(1, (ncls - 1).bit_length()),
        score_bits=last.acc_bits,
        input_elements=n_pixels,
    )
