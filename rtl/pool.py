"""OR max-pooling on a stream of output pixels: the max of {-1,+1} values is the OR of their bits.

Pooling P x P with stride P, floor mode (rows and columns that do not fill a window are dropped), applied to the
output bits after the threshold, exactly as docs/format.md defines it. Works on the fly: a rotating register of NF
beats ORs the P pixels of a window row, a FIFO of one pooled row carries the partial ORs to the next input row.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from bnn_hw.rtl.errors import reject


class OrPool(wiring.Component):
    """OH x OW pixels of `beats` beats (PE bits each) in, (OH//P) x (OW//P) pooled pixels out, same beat layout.

    Attributes
    ----------
    i : In(stream.Signature(pe))
    o : Out(stream.Signature(pe))
    """

    def __init__(self, out_h: int, out_w: int, pool: int, beats: int, pe: int):
        for name, v in (("out_h", out_h), ("out_w", out_w), ("pool", pool), ("beats", beats), ("pe", pe)):
            if not isinstance(v, int) or v < 1:
                reject(self, f"OrPool {name} must be a positive integer, got {v!r}")
        if pool > out_h or pool > out_w:
            reject(self, f"OrPool window {pool} larger than the {out_h}x{out_w} map")
        self.oh, self.ow, self.pool, self.beats, self.pe = out_h, out_w, pool, beats, pe
        self.ph, self.pw = out_h // pool, out_w // pool
        super().__init__({"i": In(stream.Signature(pe)), "o": Out(stream.Signature(pe))})

    def elaborate(self, platform) -> Module:
        m = Module()
        pool, nf_n, pe = self.pool, self.beats, self.pe
        nf = Signal(range(max(nf_n, 2)))
        ox, oy = Signal(range(max(self.ow, 2))), Signal(range(max(self.oh, 2)))
        hx, vy = Signal(range(max(pool, 2))), Signal(range(max(pool, 2)))
        cur = Signal(nf_n * pe)  # partial horizontal ORs of the current window row, entry 0 = this beat's nf
        # one pooled row of partial ORs; +1 because a full SyncFIFO refuses a write even while it is read
        m.submodules.rows = rows = fifo.SyncFIFO(width=pe, depth=self.pw * nf_n + 1)

        keep = Signal()
        h_or = Signal(pe)
        v_or = Signal(pe)
        h_done = Signal()
        emit = Signal()
        accept = Signal()
        m.d.comb += [
            keep.eq((ox < self.pw * pool) & (oy < self.ph * pool)),
            h_or.eq(Mux(hx == 0, self.i.payload, cur[:pe] | self.i.payload)),
            v_or.eq(Mux(vy == 0, h_or, rows.r_data | h_or)),
            h_done.eq(keep & (hx == pool - 1)),
            emit.eq(h_done & (vy == pool - 1)),
            self.i.ready.eq(~emit | self.o.ready),
            accept.eq(self.i.valid & self.i.ready),
            self.o.valid.eq(self.i.valid & emit),
            self.o.payload.eq(v_or),
            rows.w_data.eq(v_or),
            rows.w_en.eq(accept & h_done & (vy != pool - 1)),
            rows.r_en.eq(accept & h_done & (vy != 0)),
        ]
        with m.If(accept):
            m.d.sync += cur.eq(Cat(cur[pe:], h_or) if nf_n > 1 else h_or)
            with m.If(nf == nf_n - 1):
                m.d.sync += nf.eq(0)
                with m.If(ox == self.ow - 1):
                    m.d.sync += [ox.eq(0), hx.eq(0)]
                    with m.If(oy == self.oh - 1):
                        m.d.sync += [oy.eq(0), vy.eq(0)]
                    with m.Else():
                        m.d.sync += [oy.eq(oy + 1), vy.eq(Mux(vy == pool - 1, 0, vy + 1))]
                with m.Else():
                    m.d.sync += [ox.eq(ox + 1), hx.eq(Mux(hx == pool - 1, 0, hx + 1))]
            with m.Else():
                m.d.sync += nf.eq(nf + 1)
        return m
