"""Pipelined popcount of N bits (any N >= 1), built as a 6:3-counter bit heap with a register after every level."""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from bnn_hw.rtl.bitheap import heap_latency, reduce_heap
from bnn_hw.rtl.errors import reject
from bnn_hw.rtl.heap_verilog import popcount_module_name


class Popcount(wiring.Component):
    """Number of set bits of `bits`, `latency` clock cycles later.

    Parameters
    ----------
    width : int
        Number of input bits, >= 1.
    first_group : int
        Bits per counter in the first level (3..6). Use 3 when every input bit is a function of two signals (an XOR),
        so that the XOR and the first counter share one 6-input LUT.

    Attributes
    ----------
    bits : In(width)
        Sampled every cycle; no valid or stall: callers delay their own control by `latency`.
    count : Out(range(width + 1))
        popcount(bits) of `latency` cycles ago (a register output).
    latency : int
        Pipeline depth in cycles (>= 1), known at construction.

    With `verilog_module=True` the component instantiates the equivalent hand-written Verilog module
    (rtl/heap_verilog.py, named `module_name`) instead of building the heap in Amaranth: much faster to convert,
    but not simulatable by Amaranth's simulator.
    """

    def __init__(self, width: int, *, first_group: int = 6, verilog_module: bool = False):
        if not isinstance(width, int) or width < 1:
            reject(self, f"Popcount width must be a positive integer, got {width!r}")
        if first_group not in range(3, 7):
            reject(self, f"Popcount first_group must be 3..6, got {first_group!r}")
        self.width = width
        self.first_group = first_group
        self.latency = heap_latency([width], first_group)
        self.verilog_module = verilog_module
        self.module_name = popcount_module_name(width, first_group)
        super().__init__({"bits": In(width), "count": Out(range(width + 1))})

    def elaborate(self, platform) -> Module:
        m = Module()
        if self.verilog_module:
            m.submodules.heap = Instance(self.module_name, i_clk=ClockSignal(), i_d=self.bits, o_q=self.count)
            return m
        bits = Signal(self.width, name="bits_in")
        m.d.comb += bits.eq(self.bits)
        total, latency = reduce_heap(m, [[bits]], "pc", self.first_group)
        assert latency == self.latency
        m.d.comb += self.count.eq(total)
        return m
