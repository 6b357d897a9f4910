"""cocotb stream driver and monitor for valid/ready interfaces, and a synchronous reset helper.

Timing discipline (the same on Icarus and Verilator): at each falling edge every source and sink drives its outputs,
then at ReadOnly of that same time step all comb paths have settled and each samples whether a handshake *will*
happen at the next rising edge (valid and ready both high; the DUT's registered outputs cannot change before that
edge). Two simulator callbacks per cycle; per-cycle Python work is a couple of handle reads and writes, with all
words to send prepared in lists beforehand. For large runs use the HDL harness (sim/hdl/bnn_tb.v) instead.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cocotb.triggers import FallingEdge, ReadOnly


def bit(handle) -> int | None:
    """A one-bit signal as 0/1, or None while it is x/z."""
    try:
        return int(handle.value)
    except ValueError:
        return None


def word(handle) -> int | None:
    try:
        return int(handle.value)
    except ValueError:
        return None


@dataclass
class StreamSource:
    """Offers `words` in order on (valid, payload), withholding valid with probability `gap` each cycle.
    Once offered, a word stays on the bus until accepted, as the protocol requires."""

    valid: object
    ready: object
    payload: object
    words: Sequence[int] = ()
    gap: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(1))
    index: int = 0  # next word to offer
    offering: bool = False
    accepted_cycles: list[int] = field(default_factory=list)
    last: object = None  # optional TLAST, driven high on every `last_every`-th word (an image's last beat)
    last_every: int = 1

    def load(self, words: Sequence[int]) -> None:
        self.words, self.index, self.offering = list(words), 0, False
        self.accepted_cycles = []

    @property
    def done(self) -> bool:
        return self.index >= len(self.words) and not self.offering

    def drive(self) -> None:
        if self.offering:
            return
        if self.index < len(self.words) and (self.gap <= 0 or self.rng.random() >= self.gap):
            self.payload.value = self.words[self.index]
            if self.last is not None:
                self.last.value = int((self.index + 1) % self.last_every == 0)
            self.valid.value = 1
            self.offering = True
        else:
            self.valid.value = 0

    def sample(self, cycle: int) -> None:
        if self.offering and bit(self.ready) == 1:
            self.offering = False
            self.index += 1
            self.accepted_cycles.append(cycle)

    def idle(self) -> None:
        self.valid.value = 0
        self.offering = False


@dataclass
class StreamSink:
    """Accepts words with `ready` withheld with probability `stall` each cycle; records (word, cycle).
    A word with x/z bits is recorded as None."""

    valid: object
    ready: object
    payload: object
    stall: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(2))
    received: list[int | None] = field(default_factory=list)
    cycles: list[int] = field(default_factory=list)
    on_word: Callable[[int | None], None] | None = None
    flags: tuple = ()  # optional (error, last) handles: a word with error high or last low is recorded as None
    _ready_now: bool = False

    def drive(self) -> None:
        self._ready_now = self.stall <= 0 or self.rng.random() >= self.stall
        self.ready.value = int(self._ready_now)

    def sample(self, cycle: int) -> None:
        if self._ready_now and bit(self.valid) == 1:
            w = word(self.payload)
            if self.flags and (bit(self.flags[0]) != 0 or bit(self.flags[1]) != 1):
                w = None
            self.received.append(w)
            self.cycles.append(cycle)
            if self.on_word is not None:
                self.on_word(w)

    def idle(self) -> None:
        self.ready.value = 0
        self._ready_now = False


async def run_streams(
    clk,
    sources: Sequence[StreamSource],
    sinks: Sequence[StreamSink],
    until: Callable[[], bool],
    max_cycles: int,
    start_cycle: int = 0,
) -> int:
    """Clock the sources and sinks until `until()` or `max_cycles`; returns the cycle count reached.
    Call with the simulator at (or before) a falling edge of `clk`."""
    cycle = start_cycle
    while cycle - start_cycle < max_cycles and not until():
        await FallingEdge(clk)
        for s in sources:
            s.drive()
        for k in sinks:
            k.drive()
        await ReadOnly()
        for s in sources:
            s.sample(cycle)
        for k in sinks:
            k.sample(cycle)
        cycle += 1
    await FallingEdge(clk)  # leave the simulator writable, with no handshake possible until the next call
    for s in sources:
        if not s.offering:  # an offered word stays (the protocol forbids retracting valid)
            s.valid.value = 0
    for k in sinks:
        k.idle()
    return cycle


async def reset(clk, rst, cycles: int = 4, idle: Sequence[StreamSource | StreamSink] = (), active: int = 1) -> None:
    """Hold the synchronous reset (active high, or low with active=0) for `cycles` rising edges, streams idle."""
    await FallingEdge(clk)
    for s in idle:
        s.idle()
    rst.value = active
    for _ in range(cycles):
        await FallingEdge(clk)
    rst.value = 1 - active


@dataclass
class TapMonitor:
    """Passive monitor of a debug tap: records `payload` in every cycle whose `valid` is high (a tap pulses once per
    handshake inside the DUT). Goes in the `sinks` list of `run_streams`."""

    valid: object
    payload: object
    words: list[int | None] = field(default_factory=list)

    def drive(self) -> None:
        pass

    def sample(self, cycle: int) -> None:
        if bit(self.valid) == 1:
            self.words.append(word(self.payload))

    def idle(self) -> None:
        pass
