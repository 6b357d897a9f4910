"""Stream width converter that regroups a vector of elements from one beat width to another.

Upstream sends a vector of `total` elements as ceil(total / in_elems) beats (the last beat's spare slots are
don't-care); downstream receives it as ceil(total / out_elems) words whose spare slots are **zero**. Zero is the
neutral padding of the whole accelerator: a zero pixel adds nothing to a dot product, and a zero activation bit
XOR a zero (padding) weight bit is no mismatch, so padded lanes can never change a result.
"""

from __future__ import annotations

import functools
import math
import operator

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from bnn_hw.rtl.errors import reject


def _ceil_to(x: int, m: int) -> int:
    return -(-x // m) * m


class WidthConverter(wiring.Component):
    """Regroup a `total`-element vector from `in_elems` to `out_elems` elements per beat (elements of `elem_bits`).

    Full rate: one input beat per cycle when `in_elems <= out_elems`, one output word per cycle otherwise. Vectors
    follow each other without a bubble: the next vector starts in a fresh output word. With `in_elems == out_elems`
    it is a combinational pass-through (no buffer, no cycle of latency) that only zeroes the spare slots of each
    vector's last beat: the wide buffer and shifter of the general case cost up to ~500 LUTs for 8-bit pixels.

    Attributes
    ----------
    i : In(stream.Signature(in_elems * elem_bits))
        Element j of a beat in bits [j*elem_bits, (j+1)*elem_bits).
    o : Out(stream.Signature(out_elems * elem_bits))
        Same element order; slots past the vector's end are zero.
    """

    def __init__(self, in_elems: int, out_elems: int, total: int, elem_bits: int = 1):
        for name, v in (("in_elems", in_elems), ("out_elems", out_elems), ("total", total), ("elem_bits", elem_bits)):
            if not isinstance(v, int) or v < 1:
                reject(self, f"WidthConverter {name} must be a positive integer, got {v!r}")
        self.in_elems, self.out_elems, self.total, self.elem_bits = in_elems, out_elems, total, elem_bits
        self.in_beats = -(-total // in_elems)
        self.out_words = -(-total // out_elems)
        self.last_elems = total - (self.in_beats - 1) * in_elems  # valid elements in a vector's last input beat
        super().__init__(
            {
                "i": In(stream.Signature(in_elems * elem_bits)),
                "o": Out(stream.Signature(out_elems * elem_bits)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        ni, no, eb = self.in_elems, self.out_elems, self.elem_bits
        beat = Signal(range(max(self.in_beats, 2)))
        last_beat = Signal()
        m.d.comb += last_beat.eq(beat == self.in_beats - 1)
        # Elements of the incoming beat; the last beat of a vector has its spare slots forced to zero.
        data = Signal(ni * eb)
        if self.last_elems == ni:
            m.d.comb += data.eq(self.i.payload)
        else:
            keep = Const((1 << (self.last_elems * eb)) - 1, ni * eb)
            m.d.comb += data.eq(Mux(last_beat, self.i.payload & keep, self.i.payload))
        if ni == no:
            return self._pass_through(m, beat, last_beat, data)
        # Fill level in units of g = gcd(in, out) elements (it is always a multiple of g), held one-hot: the
        # position where a beat goes is then a mux of two state bits, not a subtraction and a decoder in front of
        # every buffer bit (the count register's path into the buffer was a converter's critical path).
        g = math.gcd(ni, no)
        cap = no + _ceil_to(ni, no)  # most elements ever held (see the accept rule below)
        ui, uo, units = ni // g, no // g, cap // g
        buf = Signal(cap * eb)
        occ = Signal(units + 1, init=1)  # occ[u]: the buffer holds u*g elements

        emit = Signal()
        accept = Signal()
        m.d.comb += [
            self.o.valid.eq(occ[uo:].any()),
            self.o.payload.eq(buf[: no * eb]),
            emit.eq(self.o.valid & self.o.ready),
            # Accept while at most one output word is held: then base + in_elems fits in `cap`.
            self.i.ready.eq(occ[: uo + 1].any()),
            accept.eq(self.i.valid & self.i.ready),
        ]
        shifted = Signal(cap * eb)
        m.d.comb += shifted.eq(Mux(emit, buf >> (no * eb), buf))
        # base[u]: the new beat goes to element u*g (accepting needs a fill of at most one word, so u <= uo)
        base = Signal(uo + 1)
        m.d.comb += base.eq(Mux(emit, occ[uo:], occ[: uo + 1]))
        gb = g * eb
        placed = Signal(cap * eb)
        for q in range(units):  # buffer unit q takes the beat's unit q - u when the beat goes to u
            terms = [Mux(base[u], data[(q - u) * gb : (q - u + 1) * gb], 0) for u in range(uo + 1) if 0 <= q - u < ui]
            if terms:
                m.d.comb += placed[q * gb : (q + 1) * gb].eq(functools.reduce(operator.or_, terms))
        # After a vector's last beat the fill is rounded up to a whole word: the next vector starts a fresh one. One
        # expression: assembled bit by bit in a process, the Verilog would hold constant `always @*` blocks, which
        # Icarus never runs (the bits stay x).
        end = Signal(units + 1)
        sources: list[list[int]] = [[] for _ in range(units + 1)]
        for u in range(uo + 1):
            sources[_ceil_to(u * g + self.last_elems, no) // g].append(u)
        m.d.comb += end.eq(Cat(*[Cat(*[base[u] for u in us]).any() if us else Const(0, 1) for us in sources]))
        with m.If(accept):
            m.d.sync += buf.eq(shifted | placed)
            with m.If(last_beat):
                # The next vector starts in a fresh output word (buf is zero above the data).
                m.d.sync += [beat.eq(0), occ.eq(end)]
            with m.Else():
                m.d.sync += [beat.eq(beat + 1), occ.eq(base << ui)]
        with m.Elif(emit):
            m.d.sync += [buf.eq(shifted), occ.eq(occ >> uo)]
        return m

    def _pass_through(self, m: Module, beat: Signal, last_beat: Signal, data: Signal) -> Module:
        """Equal widths: beats (`data`, spare slots of a last beat already zeroed) go straight through."""
        m.d.comb += [
            self.o.payload.eq(data),
            self.o.valid.eq(self.i.valid),
            self.i.ready.eq(self.o.ready),
        ]
        with m.If(self.i.valid & self.o.ready):
            m.d.sync += beat.eq(Mux(last_beat, 0, beat + 1))
        return m
