"""Automatic folding: per layer PE and SIMD that balance the layers for a cycle target or a LUT budget.

In a dataflow pipeline the slowest layer sets the throughput, so every layer is folded to just meet a common
cycles-per-image target T at the lowest estimated cost; a LUT budget is met by the smallest T whose cheapest
folding fits (binary search, cost is monotone in T). Costs come from `estimate_luts`, a linear model fitted to
Yosys synth_xilinx results of generated engines (see benchmarks/RESULTS.md, "## RTL").
"""

from __future__ import annotations

from bnn_hw.errors import BnnError
from bnn_hw.model import BnnModel, Layer
from rtl.folding import ceil_div, fold_layer

# LUTs ~ per lane + per PE (accumulator, sign, FIFO) + per SIMD lane (input buffer, converter) + fixed control
LUT_PER_BIT_LANE = 1.15  # bit heap incl. XOR: 36 LUTs per 32 lanes, 76 per 64 (RESULTS.md, PE array)
LUT_PER_PIXEL_LANE = 9.5  # 8 XOR bits per pixel lane: 302 LUTs per 32 lanes (default MLP layer 0: 10.6 with the rest)
LUT_PER_PE_BIT = 1.2  # times the accumulator width
LUT_PER_SIMD = 1.0
LUT_FIXED = 70


def estimate_luts(layer: Layer, pe: int, simd: int) -> float:
    f = fold_layer(0, layer, pe, simd)
    lane = LUT_PER_PIXEL_LANE if layer.input == "pixels" else LUT_PER_BIT_LANE
    return lane * pe * simd + LUT_PER_PE_BIT * f.acc_bits * pe + LUT_PER_SIMD * simd * f.elem_bits + LUT_FIXED


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


def cheapest_fold(layer: Layer, target: int) -> tuple[int, int, float] | None:
    """(PE, SIMD, LUTs) of the cheapest folding with NF * SF * input_vectors <= target, or None. Convolutions need
    PE | output channels and SIMD | input channels (see rtl/window.py)."""
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
        cost = estimate_luts(layer, pe, simd)
        key = (cost, nf * ceil_div(layer.fan_in, simd))
        if best is None or key < best[0]:
            best = (key, pe, simd)
    if best is None:
        return None
    return best[1], best[2], best[0][0]


def auto_fold(model: BnnModel, *, target_cycles: int | None = None, lut_budget: int | None = None
              ) -> tuple[list[int], list[int]]:
    layers = model.layers
    if target_cycles is not None:
        if target_cycles < 1:
            raise BnnError(f"--target-cycles must be >= 1, got {target_cycles}")
        return _fold_for(layers, target_cycles, what=f"--target-cycles {target_cycles}")
    if lut_budget is None or lut_budget < 1:
        raise BnnError(f"--lut-budget must be >= 1, got {lut_budget}")
    hi = max(layer.fan_in * layer.out_features * layer.input_vectors for layer in layers)
    if _cost(layers, hi) > lut_budget:
        raise BnnError(f"--lut-budget {lut_budget} is below the smallest possible design (~{_cost(layers, hi):.0f} "
                       f"estimated LUTs with PE = SIMD = 1); raise the budget")
    lo = 1
    while lo < hi:  # smallest target whose cheapest folding fits the budget
        mid = (lo + hi) // 2
        if _cost(layers, mid) <= lut_budget:
            hi = mid
        else:
            lo = mid + 1
    return _fold_for(layers, lo, what=f"--lut-budget {lut_budget}")


def _cost(layers: list[Layer], target: int) -> float:
    total = 0.0
    for layer in layers:
        c = cheapest_fold(layer, target)
        if c is None:
            return float("inf")
        total += c[2]
    return total


def _fold_for(layers: list[Layer], target: int, what: str) -> tuple[list[int], list[int]]:
    pe, simd = [], []
    for i, layer in enumerate(layers):
        c = cheapest_fold(layer, target)
        if c is None:
            fastest = layer.input_vectors * (layer.kernel ** 2 if layer.kind == "conv" else 1)
            raise BnnError(f"{what}: layer {i} ({layer.describe()}) needs at least {fastest} cycles per image even "
                           f"fully parallel; raise the target")
        pe.append(c[0])
        simd.append(c[1])
    return pe, simd
