"""Automatic folding: per layer PE and SIMD that balance the layers for a cycle target or a LUT budget.

In a dataflow pipeline the slowest layer sets the throughput, so every layer is folded to just meet a common
cycles-per-image target T at the lowest estimated cost; a LUT budget is met by the smallest T whose cheapest
folding fits (binary search, cost is monotone in T). Costs come from `estimate_luts`, a linear model fitted to
Yosys synth_xilinx results of generated engines (see benchmarks/RESULTS.md, "## RTL"). Only foldings that can be
built are considered: every signal within Amaranth's MAX_SIGNAL_BITS (rtl/folding.py: the weight word of PE x SIMD
bits first of all), so a target below the fastest buildable design is refused with that design's cycle count.
"""

from __future__ import annotations

from bnn_hw.rtl.folding import (
    MAX_SIGNAL_BITS,
    LayerFold,
    ceil_div,
    fold_layer,
    input_elem_bits,
    max_pixels_per_beat,
    width_error,
)

from bnn_hw.errors import BnnError
from bnn_hw.model import BnnModel, Layer

# LUTs ~ per lane + per PE (accumulator, sign, FIFO) + per SIMD lane (input buffer, converter) + fixed control
LUT_PER_BIT_LANE = 1.15  # bit heap incl. XOR: 36 LUTs per 32 lanes, 76 per 64 (RESULTS.md, PE array)
LUT_PER_PIXEL_LANE = 9.5  # 8 XOR bits per pixel lane: 302 LUTs per 32 lanes (default MLP layer 0: 10.6 with the rest)
LUT_PER_PE_BIT = 1.2  # times the accumulator width
LUT_PER_SIMD = 1.0
LUT_FIXED = 70


def estimate_luts(layer: Layer, pe: int, simd: int, fold: LayerFold | None = None) -> float:
    return estimate_fold_luts(fold_layer(0, layer, pe, simd) if fold is None else fold)


def estimate_fold_luts(f: LayerFold) -> float:
    """The cost model's LUTs for one engine folded as `f` (rtl.stages.EngineStage asks this)."""
    lane = LUT_PER_PIXEL_LANE if f.input == "pixels" else LUT_PER_BIT_LANE
    return lane * f.PE * f.SIMD + LUT_PER_PE_BIT * f.acc_bits * f.PE + LUT_PER_SIMD * f.SIMD * f.elem_bits + LUT_FIXED


def _candidates(n: int) -> list[int]:
    """Values v in 1..n that are the smallest giving their ceil(n / v) (no other value is cheaper for the same
    number of folds)."""
    out = set()
    for folds in range(1, n + 1):
        v = ceil_div(n, folds)
        if ceil_div(n, v) == folds:
            out.add(v)
    return sorted(out)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def cheapest_fold(
    layer: Layer, target: int, in_elems: int | None = None, index: int = 0
) -> tuple[int, int, float] | None:
    """(PE, SIMD, LUTs) of the cheapest buildable folding with NF * SF * input_vectors <= target, or None.
    Convolutions need PE | output channels and SIMD | input channels (see rtl/window.py). Buildable: every signal
    within MAX_SIGNAL_BITS (rtl/folding.py, `fold_widths`), the width converter feeding the layer taking `in_elems`
    elements per beat (the previous layer's PE; for the first layer None = the default pixels per beat, SIMD)."""
    best = None
    vec = layer.input_vectors
    conv = layer.kind == "conv"
    pes = _divisors(layer.out_features) if conv else _candidates(layer.out_features)
    simds = _divisors(layer.in_shape[2]) if conv else None
    for pe in pes:
        nf = ceil_div(layer.out_features, pe)
        sf_max = target // (nf * vec)
        if sf_max < 1:
            continue
        need = ceil_div(layer.fan_in, sf_max)  # fewest lanes that meet the target with this PE
        if simds is not None:
            fitting = [d for d in simds if d >= need]
            if not fitting:
                continue
            simd = fitting[0]
        else:
            simd = ceil_div(layer.fan_in, ceil_div(layer.fan_in, need))  # same SF, fewest lanes
        f = fold_layer(index, layer, pe, simd)
        # the fewest lanes for this PE give its narrowest signals: if they do not fit, skip the PE
        if width_error(layer, f, simd if in_elems is None else in_elems, input_elem_bits(layer) if index == 0 else 1):
            continue
        if index == 0 and in_elems is None and simd > max_pixels_per_beat():
            continue
        cost = estimate_luts(layer, pe, simd, f)
        key = (cost, nf * ceil_div(layer.fan_in, simd))
        if best is None or key < best[0]:
            best = (key, pe, simd)
    if best is None:
        return None
    return best[1], best[2], best[0][0]


def auto_fold(
    model: BnnModel,
    *,
    target_cycles: int | None = None,
    lut_budget: int | None = None,
    pixels_per_beat: int | None = None,
) -> tuple[list[int], list[int]]:
    """Per-layer (PE list, SIMD list). `pixels_per_beat` is the input beat width the design will have (None: the
    first layer's SIMD, the `bnn-hw rtl` default); it sizes the first width converter."""
    layers = model.layers
    if target_cycles is not None:
        if target_cycles < 1:
            raise BnnError(f"--target-cycles must be >= 1, got {target_cycles}")
        return _fold_for(layers, target_cycles, f"--target-cycles {target_cycles}", pixels_per_beat)
    if lut_budget is None or lut_budget < 1:
        raise BnnError(f"--lut-budget must be >= 1, got {lut_budget}")
    hi = _slowest(layers)
    smallest = _cost(layers, hi, pixels_per_beat)
    if smallest > lut_budget:
        raise BnnError(
            f"--lut-budget {lut_budget} is below the smallest possible design (~{smallest:.0f} "
            f"estimated LUTs with PE = SIMD = 1); raise the budget"
        )
    lo = 1
    while lo < hi:  # smallest target whose cheapest folding fits the budget (unbuildable targets cost inf)
        mid = (lo + hi) // 2
        if _cost(layers, mid, pixels_per_beat) <= lut_budget:
            hi = mid
        else:
            lo = mid + 1
    return _fold_for(layers, lo, f"--lut-budget {lut_budget}", pixels_per_beat)


def _slowest(layers: list[Layer]) -> int:
    """Cycles per image of the slowest layer at PE = SIMD = 1: every target at or above it can be met."""
    return max(layer.fan_in * layer.out_features * layer.input_vectors for layer in layers)


def _chain(
    layers: list[Layer], target: int, pixels_per_beat: int | None
) -> tuple[list[tuple[int, int, float]], int | None]:
    """The cheapest folding of each layer in turn (each sized with the previous layer's PE, which sets the width
    converter feeding it); stops at the first layer with none: (foldings so far, index of that layer or None)."""
    out: list[tuple[int, int, float]] = []
    in_elems = pixels_per_beat
    for i, layer in enumerate(layers):
        c = cheapest_fold(layer, target, in_elems, i)
        if c is None:
            return out, i
        out.append(c)
        in_elems = c[0]
    return out, None


def _cost(layers: list[Layer], target: int, pixels_per_beat: int | None = None) -> float:
    folds, failed = _chain(layers, target, pixels_per_beat)
    return float("inf") if failed is not None else sum(c[2] for c in folds)


def fastest_buildable(layers: list[Layer], pixels_per_beat: int | None = None) -> int:
    """The smallest cycles-per-image target that some buildable folding meets (binary search: a folding that
    meets a target meets every larger one)."""
    lo, hi = 1, _slowest(layers)
    while lo < hi:
        mid = (lo + hi) // 2
        if _chain(layers, mid, pixels_per_beat)[1] is None:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _fold_for(layers: list[Layer], target: int, what: str, pixels_per_beat: int | None) -> tuple[list[int], list[int]]:
    folds, failed = _chain(layers, target, pixels_per_beat)
    if failed is not None:
        layer = layers[failed]
        fastest = layer.input_vectors * (layer.kernel**2 if layer.kind == "conv" else 1)
        if target < fastest:
            raise BnnError(
                f"{what}: layer {failed} ({layer.describe()}) needs at least {fastest} cycles per image "
                f"even fully parallel; raise the target"
            )
        floor = fastest_buildable(layers, pixels_per_beat)
        raise BnnError(
            f"{what}: layer {failed} ({layer.describe()}) cannot meet it with every signal within "
            f"Amaranth's {MAX_SIGNAL_BITS:,}-bit limit (a weight word is PE x SIMD bits, a pixel word "
            f"SIMD x 8); the fastest buildable design needs {floor} cycles per image: use --target-cycles "
            f"{floor} or more"
        )
    return [c[0] for c in folds], [c[1] for c in folds]
