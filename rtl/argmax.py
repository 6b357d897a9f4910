"""Collects the last layer's scores and picks the class: the FIRST index of the maximum score (numpy's argmax).

Pipelined so that no path holds more than one comparison: a beat is registered as it leaves the engine's FIFO, its PE
fields are reduced by a comparison tree with two registers per level (the comparison, then the selection), and only
the last stage compares the beat's winner with the running maximum of the image (the one comparison that must finish
in a cycle at full rate). The pipeline never stalls: backpressure is a credit on results (an image's last beat is
taken only while the result FIFO has room for every result not yet read), so no stall condition has to reach every
register in a cycle.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from bnn_hw.rtl.errors import reject
from bnn_hw.rtl.timing import argmax_delay, argmax_levels, argmax_result_depth

SCORES_PER_COPY = 2  # score registers enabled by one copy of the last stage's valid bit and beat number


class ArgMax(wiring.Component):
    """Turns NF beats of PE scores into one result word per image.

    The pipeline moves every cycle; only an image's last beat can wait (`i.ready` low) until the result FIFO
    (`depth` entries) has room for it and every result still in flight, so nothing is dropped and backpressure
    costs no logic in the pipeline. A beat accepted in cycle t reaches the running maximum `delay` =
    1 + 2 * ceil(log2(pe)) cycles later than it would combinationally; the result of an image is written into the
    FIFO at t + delay + 1 after its last beat's handshake at t and offered from t + delay + 2.

    Attributes
    ----------
    i : In(stream.Signature(pe * score_bits))
        Beat f carries scores of classes f*pe .. f*pe + pe - 1 (two's complement); fields past `classes` ignored.
    o : Out(stream.Signature(class_bits + classes * score_bits))
        Bits [0, class_bits): class index; then score n at [class_bits + n*score_bits, ...).
    delay : int
        Pipeline stages before the running maximum (see above).
    depth : int
        Results the FIFO holds: enough that a reader that is always ready never stalls the input.
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
        self.levels = argmax_levels(pe)
        self.delay = argmax_delay(pe)
        self.depth = argmax_result_depth(pe, self.beats)
        super().__init__(
            {
                "i": In(stream.Signature(pe * score_bits)),
                "o": Out(stream.Signature(self.class_bits + classes * score_bits)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        n, pe, sb, cb = self.classes, self.pe, self.score_bits, self.class_bits
        beats = self.beats
        last_fields = n - (beats - 1) * pe  # real fields in an image's last beat

        # ---------------------------------------------------------------- result FIFO and its credit
        m.submodules.results = results = fifo.SyncFIFO(width=cb + n * sb, depth=self.depth)
        beat = Signal(range(max(beats, 2)))
        outstanding = Signal(range(self.depth + 1))  # images whose last beat is in, result not yet read
        last_in = Signal()
        accept = Signal()
        read = Signal()
        m.d.comb += [
            last_in.eq(beat == beats - 1),
            self.i.ready.eq(~last_in | (outstanding < self.depth)),
            accept.eq(self.i.valid & self.i.ready),
            self.o.valid.eq(results.r_rdy),
            self.o.payload.eq(results.r_data),
            results.r_en.eq(self.o.ready),
            read.eq(results.r_rdy & self.o.ready),
        ]
        m.d.sync += outstanding.eq(outstanding + (accept & last_in) - read)
        with m.If(accept):
            m.d.sync += beat.eq(Mux(last_in, 0, beat + 1))

        # ---------------------------------------------------------------- stage 0: the beat, registered
        # Only the valid bits, the beat counter, the credit and the FIFO are reset; values, indices and the travelling
        # beat are data that nothing reads while their valid bit is low (docs/rtl.md, "Reset").
        v = Signal(name="v0")
        data = Signal(pe * sb, name="data0", reset_less=True)
        bidx = Signal(range(max(beats, 2)), name="beat0", reset_less=True)
        m.d.sync += [v.eq(accept), data.eq(self.i.payload), bidx.eq(beat)]
        v_src, b_src = accept, beat  # what the current stage's v and bidx were registered from

        def follow(stage: int) -> None:
            """The beat's fields (for the score output), its number and valid, one register further."""
            nonlocal v, data, bidx, v_src, b_src
            v2 = Signal(name=f"v{stage}")
            d2 = Signal(pe * sb, name=f"data{stage}", reset_less=True)
            b2 = Signal(range(max(beats, 2)), name=f"beat{stage}", reset_less=True)
            m.d.sync += [v2.eq(v), d2.eq(data), b2.eq(bidx)]
            v_src, b_src = v, bidx
            v, data, bidx = v2, d2, b2

        # ---------------------------------------------------------------- comparison tree, two registers per level
        # Entries are (value, index within the beat, real): a field is real unless it is padding of the last beat.
        # A level first registers the comparison of each pair (with the pair), then the selected entry: the compare
        # (a carry chain) and the select (one LUT per bit, driven by a register) never share a cycle.
        lb = max(1, (pe - 1).bit_length())
        nodes = []
        for p in range(pe):
            ok = Const(1) if p < last_fields else (bidx != beats - 1)
            nodes.append((data[p * sb : (p + 1) * sb].as_signed(), Const(p, lb), ok))
        stage = 0
        for lvl in range(self.levels):
            pairs = []
            for k in range(0, len(nodes), 2):
                names = f"l{lvl + 1}_n{k // 2}"
                if k + 1 == len(nodes):
                    (a_v, a_i, a_ok), b = nodes[k], None
                    take = Const(0)
                else:
                    (a_v, a_i, a_ok), (b_v, b_i, b_ok) = nodes[k], nodes[k + 1]
                    take = b_ok & (b_v > a_v)  # the higher index wins only when strictly greater
                    b = (b_v, b_i)
                regs = [
                    (Signal(signed(sb), name=f"{names}_a", reset_less=True), a_v),
                    (Signal(lb, name=f"{names}_ai", reset_less=True), a_i),
                    (Signal(name=f"{names}_ok", reset_less=True), a_ok),
                    (Signal(name=f"{names}_take", reset_less=True), take),
                ]
                if b is not None:
                    regs += [
                        (Signal(signed(sb), name=f"{names}_b", reset_less=True), b[0]),
                        (Signal(lb, name=f"{names}_bi", reset_less=True), b[1]),
                    ]
                m.d.sync += [r.eq(x) for r, x in regs]
                pairs.append([r for r, _ in regs])
            follow(stage + 1)
            nxt = []
            for k, pair in enumerate(pairs):
                rv = Signal(signed(sb), name=f"l{lvl + 1}_val{k}", reset_less=True)
                ri = Signal(lb, name=f"l{lvl + 1}_idx{k}", reset_less=True)
                rok = Signal(name=f"l{lvl + 1}_ok{k}", reset_less=True)
                if len(pair) == 4:
                    a_v, a_i, a_ok, _ = pair
                    sel_v, sel_i = a_v, a_i
                else:
                    a_v, a_i, a_ok, take, b_v, b_i = pair
                    sel_v, sel_i = Mux(take, b_v, a_v), Mux(take, b_i, a_i)
                m.d.sync += [rv.eq(sel_v), ri.eq(sel_i), rok.eq(a_ok)]
                nxt.append((rv, ri, rok))
            follow(stage + 2)
            stage += 2
            nodes = nxt
        (win_v, win_i, _) = nodes[0]

        # ---------------------------------------------------------------- running maximum and the result
        best = Signal(signed(sb), reset_less=True)  # set by every image's first beat
        best_idx = Signal(cb, reset_less=True)
        scores = [Signal(signed(sb), name=f"score{c}", reset_less=True) for c in range(n)]
        take = Signal()
        m.d.comb += take.eq((bidx == 0) | (win_v > best))
        with m.If(v & take):
            m.d.sync += [best.eq(win_v), best_idx.eq(bidx * pe + win_i)]
        # The score registers sit by the FIFO, away from the pipeline: each group of SCORES_PER_COPY has its own copy
        # of the last stage's valid bit and beat number (identical, kept apart: rtl.generate.keep_registers).
        for g in range(0, n, SCORES_PER_COPY):
            vg = Signal(name=f"v_sc{g}", attrs={"keep": 1})
            bg = Signal(range(max(beats, 2)), name=f"beat_sc{g}", reset_less=True, attrs={"keep": 1})
            m.d.sync += [vg.eq(v_src), bg.eq(b_src)]
            for c in range(g, min(n, g + SCORES_PER_COPY)):
                with m.If(vg & (bg == c // pe)):
                    m.d.sync += scores[c].eq(data[(c % pe) * sb : (c % pe + 1) * sb])
        # the image's last beat is in the registers one cycle later: write the result then
        write = Signal(name="write")
        m.d.sync += write.eq(v & (bidx == beats - 1))
        m.d.comb += [results.w_en.eq(write), results.w_data.eq(Cat(best_idx, *scores))]
        return m
