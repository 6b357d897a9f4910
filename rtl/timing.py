"""Cycle-level model of the accelerator's control (no data): predicts latency and cycles per image exactly.

It mirrors the handshake and sequencing rules of the RTL blocks (width converters, layer engines with double-buffered
input memory and FIFO credits, argmax) cycle by cycle, so the manifest's numbers are what a simulation measures; the
tests check that claim against Amaranth simulations with random valid/ready gaps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rtl.bitheap import heap_latency
from rtl.folding import LayerFold, Plan, ceil_div


def _ceil_to(x: int, m: int) -> int:
    return -(-x // m) * m


@dataclass
class _Converter:
    ni: int
    no: int
    total: int
    cnt: int = 0
    beat: int = 0

    @property
    def in_beats(self) -> int:
        return ceil_div(self.total, self.ni)

    def valid(self) -> bool:
        return self.cnt >= self.no

    def ready(self) -> bool:
        return self.cnt <= self.no

    def step(self, accept: bool, emit: bool) -> None:
        base = self.cnt - self.no if emit else self.cnt
        if accept:
            if self.beat == self.in_beats - 1:
                self.cnt = _ceil_to(base + self.total - (self.in_beats - 1) * self.ni, self.no)
                self.beat = 0
            else:
                self.cnt = base + self.ni
                self.beat += 1
        elif emit:
            self.cnt -= self.no


def engine_latency(fold: LayerFold) -> int:
    """Pipeline depth of the engine's datapath (mirrors LayerEngine)."""
    return heap_latency([fold.SIMD] * 8) if fold.input == "pixels" else heap_latency([fold.SIMD], 3)


def engine_fifo_depth(fold: LayerFold) -> int:
    return max(2, ceil_div(engine_latency(fold) + 3 + 3, fold.SF) + 1)


@dataclass
class _Engine:
    fold: LayerFold
    full: list[bool] = field(default_factory=lambda: [False, False])
    wbank: int = 0
    wsf: int = 0
    rbank: int = 0
    nf: int = 0
    sf: int = 0
    level: int = 0
    credits: int = 0
    pending: dict[int, int] = field(default_factory=dict)  # cycle -> FIFO writes then

    def __post_init__(self) -> None:
        self.depth = engine_fifo_depth(self.fold)
        self.credits = self.depth
        self.delay = engine_latency(self.fold) + 2  # issue of a fold's last word -> FIFO write

    def ready(self) -> bool:
        return not self.full[self.wbank]

    def valid(self) -> bool:
        return self.level > 0

    def step(self, cycle: int, accept: bool, pop: bool) -> None:
        f = self.fold
        issue = self.full[self.rbank] and (self.sf != 0 or self.credits != 0)
        fold_start = issue and self.sf == 0
        w_done = accept and self.wsf == f.SF - 1
        r_done = issue and self.sf == f.SF - 1 and self.nf == f.NF - 1
        if issue and self.sf == f.SF - 1:
            self.pending[cycle + self.delay] = self.pending.get(cycle + self.delay, 0) + 1
        write = self.pending.pop(cycle, 0)
        if accept:
            self.wsf = 0 if self.wsf == f.SF - 1 else self.wsf + 1
        new_full = list(self.full)
        if w_done:
            new_full[self.wbank] = True
            self.wbank ^= 1
        if r_done:
            new_full[self.rbank] = False
        if issue:
            if self.sf == f.SF - 1:
                self.sf = 0
                if self.nf == f.NF - 1:
                    self.nf = 0
                    self.rbank ^= 1
                else:
                    self.nf += 1
            else:
                self.sf += 1
        self.full = new_full
        self.level += write - int(pop)
        self.credits += int(pop) - int(fold_start)


@dataclass
class _ArgMax:
    beats: int
    beat: int = 0
    done: bool = False

    def step(self, accept: bool, out_ready: bool) -> None:
        if accept:
            last = self.beat == self.beats - 1
            self.beat = 0 if last else self.beat + 1
            self.done = last
        elif out_ready:
            self.done = False


def simulate_control(plan: Plan, n_images: int, *, input_valid: Callable[[int], bool] | None = None,
                     result_ready: Callable[[int], bool] | None = None,
                     max_cycles: int = 10_000_000) -> dict[str, list[int]]:
    """Cycle stamps of input-beat handshakes ("in") and result handshakes ("out") for n_images images."""
    first = plan.layers[0]
    chain: list[object] = [_Converter(plan.pixels_per_beat, first.SIMD, _n_inputs(plan))]
    for i, f in enumerate(plan.layers):
        chain.append(_Engine(f))
        if i + 1 < len(plan.layers):
            chain.append(_Converter(f.PE, plan.layers[i + 1].SIMD, f.MH))
    am = _ArgMax(plan.layers[-1].NF)
    beats_left = n_images * plan.beats_per_image
    stamps: dict[str, list[int]] = {"in": [], "out": []}
    cycle = 0
    while len(stamps["out"]) < n_images:
        if cycle > max_cycles:
            raise RuntimeError("control model did not finish (deadlock?)")
        src_valid = beats_left > 0 and (input_valid is None or input_valid(cycle))
        out_ready = result_ready is None or result_ready(cycle)
        valids = [src_valid] + [b.valid() for b in chain]
        readies = [b.ready() for b in chain] + [(not am.done) or out_ready]
        fires = [v and r for v, r in zip(valids, readies, strict=True)]  # fires[k]: into block k (k=len: argmax)
        out_fire = am.done and out_ready
        if fires[0]:
            stamps["in"].append(cycle)
            beats_left -= 1
        if out_fire:
            stamps["out"].append(cycle)
        for k, b in enumerate(chain):
            if isinstance(b, _Converter):
                b.step(fires[k], fires[k + 1])
            else:
                b.step(cycle, fires[k], fires[k + 1])
        am.step(fires[-1], out_ready)
        cycle += 1
    return stamps


def _n_inputs(plan: Plan) -> int:
    return plan.layers[0].MW


def predict_latency(plan: Plan) -> int:
    """Cycles from an image's first input beat to its result, empty pipeline, no stalls."""
    st = simulate_control(plan, 1)
    return st["out"][0] - st["in"][0]


def predict_interval(plan: Plan, n_images: int = 6) -> int:
    """Steady-state cycles between results with input always valid and results always accepted."""
    st = simulate_control(plan, n_images)
    return st["out"][-1] - st["out"][-2]
