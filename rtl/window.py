"""Sliding-window generator: turns a feature map (streamed in HWC order) into the K x K x C fan-in vectors of a
convolution, one SIMD-wide word per cycle, with the layer's padding value outside the map.

The whole input map of an image is kept in a memory (two banks: the next image is written while the current one is
read), so every window word is one memory read: word (ky, kx, cw) of output pixel (oy, ox) is channels
[cw*SIMD, (cw+1)*SIMD) of input pixel (oy*stride + ky - pad, ox*stride + kx - pad), or the padding word when that
pixel lies outside the map. This needs SIMD | C (each word inside one pixel); FINN's SWG has the same constraint.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from bnn_hw.rtl.errors import reject
from bnn_hw.rtl.timing import WINDOW_FIFO_DEPTH


class SlidingWindow(wiring.Component):
    """K x K windows of an H x W x (CW words) map, in (oy, ox) raster order, words in (ky, kx, cw) order.

    Attributes
    ----------
    i : In(stream.Signature(word_bits))
        H*W*CW words per image: pixel (y, x) word cw at position (y*W + x)*CW + cw.
    o : Out(stream.Signature(word_bits))
        OH*OW windows of K*K*CW words each.
    """

    def __init__(
        self,
        height: int,
        width: int,
        words_per_pixel: int,
        kernel: int,
        stride: int,
        padding: int,
        word_bits: int,
        pad_word: int,
    ):
        for name, v in (
            ("height", height),
            ("width", width),
            ("words_per_pixel", words_per_pixel),
            ("kernel", kernel),
            ("stride", stride),
            ("word_bits", word_bits),
        ):
            if not isinstance(v, int) or v < 1:
                reject(self, f"SlidingWindow {name} must be a positive integer, got {v!r}")
        if not isinstance(padding, int) or padding < 0:
            reject(self, f"SlidingWindow padding must be >= 0, got {padding!r}")
        self.h, self.w, self.cw, self.k, self.s, self.p = height, width, words_per_pixel, kernel, stride, padding
        self.oh = (height + 2 * padding - kernel) // stride + 1
        self.ow = (width + 2 * padding - kernel) // stride + 1
        if self.oh < 1 or self.ow < 1:
            reject(self, f"SlidingWindow kernel {kernel} does not fit a {height}x{width} map with padding {padding}")
        self.word_bits, self.pad_word = word_bits, pad_word
        self.map_words = height * width * words_per_pixel
        super().__init__({"i": In(stream.Signature(word_bits)), "o": Out(stream.Signature(word_bits))})

    def elaborate(self, platform) -> Module:
        m = Module()
        h, w, cw_n, k, s, p = self.h, self.w, self.cw, self.k, self.s, self.p
        n = self.map_words
        m.submodules.fmap = fmap = Memory(shape=unsigned(self.word_bits), depth=2 * n, init=[])
        wp = fmap.write_port()
        rp = fmap.read_port(transparent_for=())
        full = Signal(2)

        # writer
        wbank = Signal()
        waddr = Signal(range(max(n, 2)))
        w_acc = Signal()
        w_done = Signal()
        m.d.comb += [
            self.i.ready.eq(~Mux(wbank, full[1], full[0])),
            w_acc.eq(self.i.valid & self.i.ready),
            w_done.eq(w_acc & (waddr == n - 1)),
            wp.addr.eq(Mux(wbank, n + waddr, waddr)),
            wp.data.eq(self.i.payload),
            wp.en.eq(w_acc),
        ]
        with m.If(w_acc):
            m.d.sync += waddr.eq(Mux(w_done, 0, waddr + 1))
            with m.If(w_done):
                m.d.sync += wbank.eq(~wbank)

        # reader: (oy, ox, ky, kx, cw), cw fastest
        rbank = Signal()
        oy, ox = Signal(range(max(self.oh, 2))), Signal(range(max(self.ow, 2)))
        ky, kx = Signal(range(max(k, 2))), Signal(range(max(k, 2)))
        cw = Signal(range(max(cw_n, 2)))
        credits = Signal(range(WINDOW_FIFO_DEPTH + 1), init=WINDOW_FIFO_DEPTH)
        issue = Signal()
        r_done = Signal()
        last_cw, last_kx, last_ky, last_ox = (Signal(name=n_) for n_ in ("last_cw", "last_kx", "last_ky", "last_ox"))
        m.d.comb += [
            issue.eq(Mux(rbank, full[1], full[0]) & (credits != 0)),
            last_cw.eq(cw == cw_n - 1),
            last_kx.eq(kx == k - 1),
            last_ky.eq(ky == k - 1),
            last_ox.eq(ox == self.ow - 1),
            r_done.eq(issue & last_cw & last_kx & last_ky & last_ox & (oy == self.oh - 1)),
        ]
        # The input pixel of the current word (iy, ix) and the word's memory address, split as row = bank * n +
        # iy * W * CW and col = ix * CW + cw, are registers beside the counters, stepped by a constant at each issue:
        # no multiplication lies in any cycle (row times width was this block's critical path).
        wc = w * cw_n  # words per input row
        iy = Signal(range(-p - 1, h + p + 1), init=-p)
        ix = Signal(range(-p - 1, w + p + 1), init=-p)
        row = Signal(range(-p * wc - 1, 2 * n + p * wc + 1), init=-p * wc)
        col = Signal(range(-p * cw_n - 1, (w + p + 1) * cw_n + 1), init=-p * cw_n)
        with m.If(issue):
            m.d.sync += cw.eq(Mux(last_cw, 0, cw + 1))
            with m.If(~last_cw):
                m.d.sync += col.eq(col + 1)
            with m.Else():
                m.d.sync += kx.eq(Mux(last_kx, 0, kx + 1))
                with m.If(~last_kx):  # next pixel of the window row: its word 0 follows this pixel's last word
                    m.d.sync += [ix.eq(ix + 1), col.eq(col + 1)]
                with m.Else():
                    m.d.sync += ky.eq(Mux(last_ky, 0, ky + 1))
                    with m.If(~last_ky):  # next window row
                        m.d.sync += [
                            iy.eq(iy + 1),
                            row.eq(row + wc),
                            ix.eq(ix - (k - 1)),
                            col.eq(col - k * cw_n + 1),
                        ]
                    with m.Else():
                        m.d.sync += ox.eq(Mux(last_ox, 0, ox + 1))
                        with m.If(~last_ox):  # next window of the output row
                            m.d.sync += [
                                iy.eq(iy - (k - 1)),
                                row.eq(row - (k - 1) * wc),
                                ix.eq(ix + s - (k - 1)),
                                col.eq(col + (s - k) * cw_n + 1),
                            ]
                        with m.Else():
                            m.d.sync += [ix.eq(-p), col.eq(-p * cw_n)]
                            m.d.sync += oy.eq(Mux(oy == self.oh - 1, 0, oy + 1))
                            with m.If(oy == self.oh - 1):  # next image, in the other bank
                                m.d.sync += [rbank.eq(~rbank), iy.eq(-p), row.eq(-p * wc + Mux(rbank, 0, n))]
                            with m.Else():  # next output row
                                m.d.sync += [iy.eq(iy + s - (k - 1)), row.eq(row + (s - (k - 1)) * wc)]
        for b in range(2):
            with m.If(w_done & (wbank == b)):
                m.d.sync += full[b].eq(1)
            with m.If(r_done & (rbank == b)):
                m.d.sync += full[b].eq(0)

        # Address pipeline, timing.WINDOW_READ_CYCLES from issue to FIFO write: (1) the word's address row + col and
        # `inside`, (2) a copy of the address beside the memory, (3) the memory read (address register), (4) a
        # register on the read data. Outside the map the address is don't-care: the padding word replaces the data.
        pix1, pix2 = Signal(range(max(2 * n, 2)), name="pix1"), Signal(range(max(2 * n, 2)), name="pix2")
        inside1, valid1, inside2, valid2 = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [
            pix1.eq(row + col),
            inside1.eq((iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)),
            valid1.eq(issue),
            pix2.eq(pix1),
            inside2.eq(inside1),
            valid2.eq(valid1),
        ]
        m.d.comb += rp.addr.eq(pix2)
        valid3, inside3 = Signal(), Signal()
        m.d.sync += [valid3.eq(valid2), inside3.eq(inside2)]
        valid4, inside4 = Signal(), Signal()
        data4 = Signal(self.word_bits)
        m.d.sync += [valid4.eq(valid3), inside4.eq(inside3), data4.eq(rp.data)]

        m.submodules.ofifo = ofifo = fifo.SyncFIFO(width=self.word_bits, depth=WINDOW_FIFO_DEPTH)
        pop = Signal()
        m.d.comb += [
            ofifo.w_en.eq(valid4),
            ofifo.w_data.eq(Mux(inside4, data4, self.pad_word)),
            self.o.valid.eq(ofifo.r_rdy),
            self.o.payload.eq(ofifo.r_data),
            ofifo.r_en.eq(self.o.ready),
            pop.eq(ofifo.r_rdy & self.o.ready),
        ]
        m.d.sync += credits.eq(credits - issue + pop)
        return m
