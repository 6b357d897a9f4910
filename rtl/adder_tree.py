"""Pipelined sum of N unsigned values (the pixel-input layer's per-cycle partial dot product)."""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Instance, Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from bnn_hw.rtl.bitheap import heap_latency, reduce_heap
from bnn_hw.rtl.errors import reject
from bnn_hw.rtl.heap_verilog import adder_tree_module_name


class AdderTree(wiring.Component):
    """Sum of `count` unsigned `value_width`-bit inputs, `latency` cycles later, as one bit heap.

    Attributes
    ----------
    planes : In(count * value_width)
        The values as bit planes: bit b of value i is bit b*count + i (so a plane can be one wide AND/XOR).
        Sampled every cycle (no valid or stall).
    total : Out(range(count * (2**value_width - 1) + 1))
        The sum of the values presented `latency` cycles ago.
    latency : int
        Pipeline depth in cycles (>= 1).

    `first_group=3` when every plane bit is a function of two signals (see Popcount).
    """

    def __init__(self, count: int, value_width: int, *, first_group: int = 6, verilog_module: bool = False):
        if not isinstance(count, int) or count < 1:
            reject(self, f"AdderTree count must be a positive integer, got {count!r}")
        if not isinstance(value_width, int) or value_width < 1:
            reject(self, f"AdderTree value_width must be a positive integer, got {value_width!r}")
        if first_group not in range(3, 7):
            reject(self, f"AdderTree first_group must be 3..6, got {first_group!r}")
        self.first_group = first_group
        self.count = count
        self.value_width = value_width
        self.max_total = count * ((1 << value_width) - 1)
        self.latency = heap_latency([count] * value_width, first_group)
        self.verilog_module = verilog_module  # see Popcount: instantiate rtl/heap_verilog.py's module instead
        self.module_name = adder_tree_module_name(count, value_width, first_group)
        super().__init__({"planes": In(unsigned(count * value_width)), "total": Out(range(self.max_total + 1))})

    def elaborate(self, platform) -> Module:
        m = Module()
        if self.verilog_module:
            m.submodules.heap = Instance(self.module_name, i_clk=ClockSignal(), i_d=self.planes, o_q=self.total)
            return m
        planes = Signal(self.count * self.value_width, name="planes_in")
        m.d.comb += planes.eq(self.planes)
        n = self.count
        columns = [[planes[b * n : (b + 1) * n]] for b in range(self.value_width)]
        total, latency = reduce_heap(m, columns, "at", self.first_group)
        assert latency == self.latency
        m.d.comb += self.total.eq(total)
        return m
