"""Helpers for tests and benchmarks: random models and an Amaranth-simulator driver for `BnnTop`.

Not used by the generator itself. Random models are valid by construction (thresholds inside the reachable range,
zero padding bits), seeded, and exercise both rare and common outputs.
"""

from __future__ import annotations

import numpy as np

from bnn_hw.model import PIXEL_MAX, BnnModel, Layer
from bnn_hw.packing import pack_bits


def random_dense_model(
    sizes: list[int],
    input_shape: tuple[int, int, int],
    *,
    seed: int = 0,
    binarize_at: int | None = None,
    name: str = "random",
) -> BnnModel:
    """Dense chain input -> sizes[0] -> ... -> sizes[-1] (scores) with random weights. Thresholds are calibrated on
    random images (a random quantile of each neuron's accumulator, so output bits are mixed), plus a few extreme ones
    (always +1 / never +1). Biases are small, so tied scores occur and exercise the first-index rule."""
    from bnn_hw import golden

    rng = np.random.default_rng(seed)
    calib = rng.integers(0, PIXEL_MAX + 1, size=(64, *input_shape), dtype=np.uint8)
    x = calib.reshape(64, -1)
    if binarize_at is not None:
        x = x >= binarize_at
    k = int(np.prod(input_shape))
    layers = []
    for i, n in enumerate(sizes):
        inp = "pixels" if i == 0 and binarize_at is None else "bits"
        out = "scores" if i == len(sizes) - 1 else "bits"
        w = pack_bits(rng.random((n, k)) < 0.5)
        layer = Layer(kind="dense", input=inp, output=out, in_shape=(k,), out_features=n, weights=w)
        if out == "bits":
            lo, hi = layer.acc_range
            acc = golden.layer_accumulators(layer, x)
            q = rng.uniform(0.2, 0.8, size=n)
            t = np.array([np.quantile(acc[:, j], q[j], method="nearest") for j in range(n)], dtype=np.int64)
            t[rng.random(n) < 0.05] = lo
            t[rng.random(n) < 0.05] = hi + 1
            layer = layer.replace(thresholds=t)
            x = acc >= t
        else:
            layer = layer.replace(bias=rng.integers(-2, 3, size=n).astype(np.int64))
        layers.append(layer)
        k = n
    model = BnnModel(
        layers=layers,
        input_shape=tuple(input_shape),
        classes=[f"c{j}" for j in range(sizes[-1])],
        binarize_at=binarize_at,
        name=name,
    )
    model.validate()
    return model


def random_model(
    spec: list[tuple],
    input_shape: tuple[int, int, int],
    *,
    seed: int = 0,
    binarize_at: int | None = None,
    name: str = "random",
) -> BnnModel:
    """Any chain of layers: spec items ("conv", channels, kernel, stride, padding, pad_value, pool) or
    ("dense", features); the last item is the scores layer (dense). Thresholds calibrated as in
    random_dense_model; pad_value None picks one at random (a pixel value for a pixel layer)."""
    from bnn_hw import golden

    rng = np.random.default_rng(seed)
    calib = rng.integers(0, PIXEL_MAX + 1, size=(32, *input_shape), dtype=np.uint8)
    x = calib if binarize_at is None else calib >= binarize_at
    shape: tuple[int, ...] = tuple(input_shape)
    layers = []
    for i, item in enumerate(spec):
        inp = "pixels" if i == 0 and binarize_at is None else "bits"
        out = "scores" if i == len(spec) - 1 else "bits"
        if item[0] == "conv":
            _, n, k, st, pad, pad_value, pool = item
            if pad_value is None:
                pad_value = int(rng.integers(0, 256)) if inp == "pixels" else int(rng.choice([-1, 1]))
            layer = Layer(
                kind="conv",
                input=inp,
                output=out,
                in_shape=tuple(shape),
                out_features=n,
                weights=np.zeros((n, 1), np.uint64),
                kernel=k,
                stride=st,
                padding=pad,
                pad_value=pad_value,
                pool=pool,
            )
        else:
            n = item[1]
            layer = Layer(
                kind="dense",
                input=inp,
                output=out,
                in_shape=(int(np.prod(shape)),),
                out_features=n,
                weights=np.zeros((n, 1), np.uint64),
            )
        k_in = layer.fan_in
        layer = layer.replace(weights=pack_bits(rng.random((n, k_in)) < 0.5))
        if out == "bits":
            lo, hi = layer.acc_range
            acc = golden.layer_accumulators(layer, x).reshape(-1, n)
            q = rng.uniform(0.2, 0.8, size=n)
            t = np.array([np.quantile(acc[:, j], q[j], method="nearest") for j in range(n)], dtype=np.int64)
            t[rng.random(n) < 0.05] = lo
            t[rng.random(n) < 0.05] = hi + 1
            layer = layer.replace(thresholds=t)
            x = golden.apply_layer(layer, x).out
        else:
            layer = layer.replace(bias=rng.integers(-2, 3, size=n).astype(np.int64))
        layers.append(layer)
        shape = layer.out_shape
    model = BnnModel(
        layers=layers,
        input_shape=tuple(input_shape),
        classes=[f"c{j}" for j in range(spec[-1][1])],
        binarize_at=binarize_at,
        name=name,
    )
    model.validate()
    return model


def image_beats(images: np.ndarray, ppb: int) -> list[list[int]]:
    """uint8 (B, ...) images -> per image its beats as ints (pixel j of a beat in bits [8j+7:8j])."""
    flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1)
    n = flat.shape[1]
    beats = -(-n // ppb)
    padded = np.zeros((len(flat), beats * ppb), dtype=np.uint8)
    padded[:, :n] = flat
    return [
        [int.from_bytes(padded[b, j * ppb : (j + 1) * ppb].tobytes(), "little") for j in range(beats)]
        for b in range(len(flat))
    ]


def decode_result(word: int, class_bits: int, score_bits: int, classes: int) -> tuple[int, list[int]]:
    cls = word & ((1 << class_bits) - 1)
    scores = []
    for n in range(classes):
        v = (word >> (class_bits + n * score_bits)) & ((1 << score_bits) - 1)
        if v >> (score_bits - 1):
            v -= 1 << score_bits
        scores.append(v)
    return cls, scores


def random_patterns(gap: float, stall: float, seed: int):
    """(input_valid(cycle), result_ready(cycle)) that withhold valid with probability `gap` and ready with
    probability `stall`, the same for a given seed (shared by the simulator driver and rtl.timing)."""
    rng = np.random.default_rng(seed)
    cache_v: list[bool] = []
    cache_r: list[bool] = []

    def _get(cache, p, cycle):
        while len(cache) <= cycle:
            cache.append(not (p and rng.random() < p))
        return cache[cycle]

    return (lambda c: _get(cache_v, gap, c)), (lambda c: _get(cache_r, stall, c))


def simulate_top(
    model: BnnModel,
    plan,
    images: np.ndarray,
    *,
    gap: float = 0.0,
    stall: float = 0.0,
    seed: int = 0,
    max_cycles: int | None = None,
    debug_taps: bool = False,
    reset_after_beats: int | None = None,
):
    """Run images through BnnTop in Amaranth's simulator. Returns (classes, scores, stamps) where stamps holds
    the cycle numbers of input-beat accepts and result handshakes (for throughput and latency checks).

    `reset_after_beats=n`: first send n beats of garbage (a partial image), pulse `rst` for one cycle (results that
    came out before are discarded), then run the images; nothing of the garbage may survive the reset."""
    from amaranth.hdl import ClockDomain, Elaboratable, Module, Signal
    from amaranth.sim import Simulator
    from bnn_hw.rtl.top import BnnTop

    dut = BnnTop(model, plan, debug_taps=debug_taps)
    rst = Signal()

    class _Harness(Elaboratable):  # owns the sync domain so the bench can drive its reset
        def elaborate(self, platform):
            m = Module()
            m.domains.sync = cd = ClockDomain("sync")
            m.d.comb += cd.rst.eq(rst)
            m.submodules.dut = dut
            return m

    beats = image_beats(images, plan.pixels_per_beat)
    valid_at, ready_at = random_patterns(gap, stall, seed)
    results: list[int] = []
    stamps = {"in": [], "out": []}
    total_cycles = max_cycles or (len(images) + 4) * (plan.cycles_per_image + 200) * (4 if gap or stall else 1) + 2000

    async def bench(ctx):
        queue = [b for img in beats for b in img]
        qi = 0
        cycle = 0
        if reset_after_beats:
            junk = np.random.default_rng(seed + 1)
            sent = 0
            while sent < reset_after_beats:
                ctx.set(dut.pixels.valid, 1)
                ctx.set(dut.pixels.payload, int(junk.integers(0, 1 << 62)))
                ctx.set(dut.result.ready, 0)
                if ctx.get(dut.pixels.ready):
                    sent += 1
                await ctx.tick()
            ctx.set(dut.pixels.valid, 0)
            for _ in range(7):  # let partial work spread into the pipeline
                await ctx.tick()
            ctx.set(rst, 1)
            await ctx.tick()
            ctx.set(rst, 0)
        while len(results) < len(images):
            if cycle > total_cycles:
                raise AssertionError(f"simulation timed out after {cycle} cycles with {len(results)} results")
            drive_valid = qi < len(queue) and valid_at(cycle)
            ready = ready_at(cycle)
            ctx.set(dut.pixels.valid, int(drive_valid))
            if drive_valid:
                ctx.set(dut.pixels.payload, queue[qi])
            ctx.set(dut.result.ready, int(ready))
            # sample handshakes in this cycle (after the combinational settle), then clock
            in_fire = drive_valid and ctx.get(dut.pixels.ready)
            out_fire = ready and ctx.get(dut.result.valid)
            if out_fire:
                results.append(ctx.get(dut.result.payload))
                stamps["out"].append(cycle)
            if in_fire:
                qi += 1
                stamps["in"].append(cycle)
            await ctx.tick()
            cycle += 1

    sim = Simulator(_Harness())
    sim.add_clock(1e-8, domain="sync")
    sim.add_testbench(bench)
    sim.run()
    decoded = [decode_result(r, plan.class_bits, plan.score_bits, plan.num_classes) for r in results]
    classes = np.array([d[0] for d in decoded], dtype=np.int64)
    scores = np.array([d[1] for d in decoded], dtype=np.int64)
    return classes, scores, stamps
