"""Cycle-level model of the accelerator's control (no data): predicts latency and cycles per image exactly.

It mirrors the handshake and sequencing rules of the RTL blocks (width converters, layer engines with double-buffered
input memory and FIFO credits, argmax) cycle by cycle, so the manifest's numbers are what a simulation measures; the
tests check that claim against Amaranth simulations with random valid/ready gaps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from bnn_hw.rtl.bitheap import heap_latency
from bnn_hw.rtl.folding import BLOCK_RAM_MIN_BITS, LayerFold, Plan, ceil_div


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

    def valid(self, up_valid: bool) -> bool:
        return up_valid if self.ni == self.no else self.cnt >= self.no  # equal widths: a pass-through

    def ready(self, down_ready: bool) -> bool:
        return down_ready if self.ni == self.no else self.cnt <= self.no

    def step(self, cycle: int, accept: bool, emit: bool) -> None:
        if self.ni == self.no:
            return
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
    return heap_latency([fold.SIMD] * 8, 3) if fold.input == "pixels" else heap_latency([fold.SIMD], 3)


# A block RAM's deepest configuration by word width (ECP5 DP16KD; Xilinx RAMB18 has the same shapes): a deeper memory
# needs a mux after the RAMs, which is split off into its own pipeline stage (see weight_banks).
_BRAM_SHAPES = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))


def weight_bank_words(fold: LayerFold) -> int:
    """Words per weight-memory bank: the depth of the block-RAM shape that needs the fewest RAMs for the whole
    memory (banks x RAMs side by side per word), the deepest (fewest banks, smallest bank mux) among equals. Every
    shape's width divides the engine's 144-bit weight slices, so RAMs per word = ceil(word bits / shape width)."""
    width, words = fold.PE * fold.SIMD, fold.NF * fold.SF
    return min(_BRAM_SHAPES, key=lambda s: (ceil_div(words, s[1]) * ceil_div(width, s[0]), -s[1]))[1]


def weight_banks(fold: LayerFold) -> int:
    """Banks of the weight memory: one for LUT memories, logic weights and memories no deeper than a block RAM."""
    if fold.weight_memory_bits < BLOCK_RAM_MIN_BITS or fold.weight_style == "logic":
        return 1
    return ceil_div(fold.NF * fold.SF, weight_bank_words(fold))


def memory_read_cycles(fold: LayerFold) -> int:
    """Issue -> memory words at the datapath (the input and start-value reads are delayed to match).

    A LUT memory: the registered address and a register on the read data (2). A block-RAM weight memory (5): an
    address transport register first (the sequencer's address, copied per memory slice beside the RAMs: no logic
    and no long wire in the cycle before a RAM address), the RAM's own register, then a register with one load that
    can sit beside the RAM (the RAM's own clock-to-data is most of a cycle), and two more to the datapath: for one
    bank plain copies (the input word's two-level copy tree takes the same cycles), for several banks the bank mux
    register (beside the RAMs) and one that carries the word across. Logic weights take 2: their address is
    registered twice and the constant ROM read after it."""
    return 5 if block_ram_weights(fold) else 2


def block_ram_weights(fold: LayerFold) -> bool:
    """Whether the layer's weights are a block-RAM memory (not logic constants, not a LUT memory)."""
    return fold.weight_style != "logic" and fold.weight_memory_bits >= BLOCK_RAM_MIN_BITS


def address_transport_cycles(fold: LayerFold) -> int:
    """Registers between the sequencer's memory addresses and the memories' own address registers (see
    memory_read_cycles): 1 for block-RAM weight memories, else 0."""
    return 1 if block_ram_weights(fold) else 0


def engine_delay(fold: LayerFold) -> int:
    """Cycles from the issue of a fold's last word to its result's write into the output FIFO (mirrors LayerEngine:
    memory read, heap pipeline, accumulator register, done register)."""
    return memory_read_cycles(fold) + engine_latency(fold) + 1


def engine_fifo_depth(fold: LayerFold) -> int:
    return max(2, ceil_div(engine_delay(fold) + 4, fold.SF) + 1)


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
        self.delay = engine_delay(self.fold)

    def ready(self, down_ready: bool) -> bool:
        return not self.full[self.wbank]

    def valid(self, up_valid: bool) -> bool:
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


WINDOW_FIFO_DEPTH = 6  # rtl.window.SlidingWindow's output FIFO and credits
WINDOW_READ_CYCLES = 4  # issue -> FIFO write: address, address copy, memory read, data register


@dataclass
class _Window:
    """Mirror of rtl.window.SlidingWindow."""

    map_words: int
    window_words: int  # K*K*CW per output pixel
    windows: int  # OH*OW
    depth: int = WINDOW_FIFO_DEPTH
    full: list[bool] = field(default_factory=lambda: [False, False])
    wbank: int = 0
    waddr: int = 0
    rbank: int = 0
    ridx: int = 0
    level: int = 0
    credits: int = WINDOW_FIFO_DEPTH
    pending: dict[int, int] = field(default_factory=dict)

    def ready(self, down_ready: bool) -> bool:
        return not self.full[self.wbank]

    def valid(self, up_valid: bool) -> bool:
        return self.level > 0

    def step(self, cycle: int, accept: bool, pop: bool) -> None:
        issue = self.full[self.rbank] and self.credits != 0
        w_done = accept and self.waddr == self.map_words - 1
        r_done = issue and self.ridx == self.window_words * self.windows - 1
        if issue:
            done = cycle + WINDOW_READ_CYCLES
            self.pending[done] = self.pending.get(done, 0) + 1
            self.ridx = 0 if r_done else self.ridx + 1
        write = self.pending.pop(cycle, 0)
        if accept:
            self.waddr = 0 if w_done else self.waddr + 1
        new_full = list(self.full)
        if w_done:
            new_full[self.wbank] = True
            self.wbank ^= 1
        if r_done:
            new_full[self.rbank] = False
            self.rbank ^= 1
        self.full = new_full
        self.level += write - int(pop)
        self.credits += int(pop) - int(issue)


@dataclass
class _Pool:
    """Mirror of rtl.pool.OrPool (combinational handshake)."""

    oh: int
    ow: int
    pool: int
    beats: int
    nf: int = 0
    ox: int = 0
    oy: int = 0

    def _emit(self) -> bool:
        p = self.pool
        keep = self.ox < (self.ow // p) * p and self.oy < (self.oh // p) * p
        return keep and self.ox % p == p - 1 and self.oy % p == p - 1

    def ready(self, down_ready: bool) -> bool:
        return (not self._emit()) or down_ready

    def valid(self, up_valid: bool) -> bool:
        return up_valid and self._emit()

    def step(self, cycle: int, accept: bool, emit: bool) -> None:
        if not accept:
            return
        if self.nf == self.beats - 1:
            self.nf = 0
            if self.ox == self.ow - 1:
                self.ox = 0
                self.oy = 0 if self.oy == self.oh - 1 else self.oy + 1
            else:
                self.ox += 1
        else:
            self.nf += 1


def argmax_levels(pe: int) -> int:
    """Register levels of the ArgMax's comparison tree over PE fields."""
    return (pe - 1).bit_length()


def argmax_delay(pe: int) -> int:
    """Extra cycles between a beat's handshake and its effect on the running maximum (input register + tree of a
    compare register and a select register per level)."""
    return 1 + 2 * argmax_levels(pe)


def argmax_result_depth(pe: int, beats: int) -> int:
    """Entries of the ArgMax's result FIFO: an image is outstanding for delay + 2 cycles after its last beat when
    results are read as soon as offered, and last beats come at least `beats` cycles apart, so this many never
    stall the input of a reader that keeps up."""
    return ceil_div(argmax_delay(pe) + 2, beats) + 1


@dataclass
class _ArgMax:
    """Mirror of rtl.argmax.ArgMax: `delay` pipeline stages that never stall, a result FIFO of `depth` entries and
    a credit that holds an image's last beat back while every entry is spoken for."""

    beats: int
    delay: int
    depth: int
    beat: int = 0
    outstanding: int = 0  # last beat in, result not yet read
    write: bool = False  # a result enters the FIFO at the end of this cycle
    stored: int = 0  # results readable in the FIFO
    pipe: list[tuple[bool, bool]] = field(default_factory=list)  # (valid, last beat) per stage, newest first

    def __post_init__(self) -> None:
        self.pipe = [(False, False)] * self.delay

    def ready(self, down_ready: bool) -> bool:
        return self.beat != self.beats - 1 or self.outstanding < self.depth

    def valid(self, up_valid: bool) -> bool:
        return self.stored > 0

    def step(self, cycle: int, accept: bool, pop: bool) -> None:
        last_in = self.beat == self.beats - 1
        if pop:
            self.stored -= 1
            self.outstanding -= 1
        if self.write:
            self.stored += 1
        v, last = self.pipe[-1]
        self.write = v and last
        self.pipe = [(accept, last_in), *self.pipe[:-1]]
        if accept:
            self.outstanding += last_in
            self.beat = 0 if last_in else self.beat + 1


class ControlModel(Protocol):
    """A block's handshakes cycle by cycle: `ready`/`valid` in a cycle from its neighbours', then `step` with what
    was transferred in (`accept`) and out (`pop`/`emit`)."""

    def ready(self, down_ready: bool) -> bool: ...

    def valid(self, up_valid: bool) -> bool: ...

    def step(self, cycle: int, accept: bool, pop: bool, /) -> None: ...


def simulate_control(
    plan: Plan,
    n_images: int,
    *,
    input_valid: Callable[[int], bool] | None = None,
    result_ready: Callable[[int], bool] | None = None,
    max_cycles: int = 10_000_000,
) -> dict[str, list[int]]:
    """Cycle stamps of input-beat handshakes ("in") and result handshakes ("out") for n_images images, stepping the
    cycle models of rtl.stages.network_stages(plan): the blocks rtl.top.BnnTop instantiates."""
    from bnn_hw.rtl.stages import network_stages  # the stages build components that import this module

    chain = [stage.control() for stage in network_stages(plan)]
    beats_left = n_images * plan.beats_per_image
    stamps: dict[str, list[int]] = {"in": [], "out": []}
    cycle = 0
    n = len(chain)
    while len(stamps["out"]) < n_images:
        if cycle > max_cycles:
            raise RuntimeError("control model did not finish (deadlock?)")
        # the source first, then the sink: random patterns draw from one generator in this order
        src_valid = beats_left > 0 and (input_valid is None or input_valid(cycle))
        out_ready = result_ready is None or result_ready(cycle)
        readies = [False] * (n + 1)  # readies[k]: block k accepts; readies[n]: the result's reader
        readies[n] = out_ready
        for k in range(n - 1, -1, -1):
            readies[k] = chain[k].ready(readies[k + 1])
        valids = [False] * (n + 1)  # valids[k]: offered into block k; valids[n]: a result offered
        valids[0] = src_valid
        for k in range(n):
            valids[k + 1] = chain[k].valid(valids[k])
        fires = [v and r for v, r in zip(valids, readies, strict=True)]
        if fires[0]:
            stamps["in"].append(cycle)
            beats_left -= 1
        if fires[n]:
            stamps["out"].append(cycle)
        for k, block in enumerate(chain):
            block.step(cycle, fires[k], fires[k + 1])
        cycle += 1
    return stamps


def predict_latency(plan: Plan) -> int:
    """Cycles from an image's first input beat to its result, empty pipeline, no stalls."""
    st = simulate_control(plan, 1)
    return st["out"][0] - st["in"][0]


def predict_interval(plan: Plan, n_images: int = 6) -> int:
    """Steady-state cycles between results with input always valid and results always accepted."""
    st = simulate_control(plan, n_images)
    return st["out"][-1] - st["out"][-2]
