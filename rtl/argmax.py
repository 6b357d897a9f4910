"""Collects the last layer's scores and picks the class: the FIRST index of the maximum score (numpy's argmax)."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from bnn_hw.rtl.errors import reject


class ArgMax(wiring.Component):
    """Turns NF beats of PE scores into one result word per image.

    Attributes
    ----------
    i : In(stream.Signature(pe * score_bits))
        Beat f carries scores of classes f*pe .. f*pe + pe - 1 (two's complement); fields past `classes` ignored.
    o : Out(stream.Signature(class_bits + classes * score_bits))
        Bits [0, class_bits): class index; then score n at [class_bits + n*score_bits, ...).
    """

    def __init__(self, classes: int, pe: int, score_bits: int):
        for name, v in (("classes", classes), ("pe", pe), ("score_bits", score_bits)):
            if not isinstance(v, int) or v < 1:
                reject(self, f"ArgMax {name} must be a positive integer, got {v!r}")
        if pe > classes:
            reject(self, f"ArgMax pe={pe} exceeds classes={classes}")
        self.classes, self.pe, self.score_bits = classes, pe, score_bits
        self.beats = -(-classes // pe)
        self.class_bits = max(1, (classes - 1).bit_length())
        super().__init__(
            {
                "i": In(stream.Signature(pe * score_bits)),
                "o": Out(stream.Signature(self.class_bits + classes * score_bits)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        n, pe, sb, cb = self.classes, self.pe, self.score_bits, self.class_bits
        beat = Signal(range(max(self.beats, 2)))
        scores = [Signal(signed(sb), name=f"score{c}") for c in range(n)]
        best = Signal(signed(sb))
        best_idx = Signal(cb)
        done = Signal()
        accept = Signal()
        m.d.comb += [
            self.i.ready.eq(~done | self.o.ready),
            accept.eq(self.i.valid & self.i.ready),
            self.o.valid.eq(done),
            self.o.payload.eq(Cat(best_idx, *scores)),
        ]
        # Running maximum through this beat's fields, lowest index first; replace only on strictly greater.
        cur_v, cur_i = best, best_idx
        for p in range(pe):
            s_p = Signal(signed(sb), name=f"in{p}")
            m.d.comb += s_p.eq(self.i.payload[p * sb : (p + 1) * sb].as_signed())
            idx = Signal(cb + 1, name=f"idx{p}")
            m.d.comb += idx.eq(beat * pe + p)
            take = Signal(name=f"take{p}")
            if p == 0:
                m.d.comb += take.eq((beat == 0) | (s_p > cur_v))
            else:
                m.d.comb += take.eq((idx < n) & (s_p > cur_v))
            nv, ni = Signal(signed(sb), name=f"best{p}"), Signal(cb, name=f"best_idx{p}")
            m.d.comb += [nv.eq(Mux(take, s_p, cur_v)), ni.eq(Mux(take, idx, cur_i))]
            cur_v, cur_i = nv, ni
            for c in range(p, n, pe):
                with m.If(accept & (beat == c // pe)):
                    m.d.sync += scores[c].eq(s_p)
        with m.If(accept):
            m.d.sync += [best.eq(cur_v), best_idx.eq(cur_i)]
            with m.If(beat == self.beats - 1):
                m.d.sync += [beat.eq(0), done.eq(1)]
            with m.Else():
                m.d.sync += [beat.eq(beat + 1), done.eq(0)]
        with m.Elif(self.o.ready):
            m.d.sync += done.eq(0)
        return m
