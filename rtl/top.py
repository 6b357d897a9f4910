"""The network top `bnn_top`: pixel stream in, (class, scores) stream out, layer engines chained in between.

    pixels -> [binarize] -> width converter -> [window] engine 0 [pool] -> width converter -> ... -> argmax

Every link is a valid/ready stream with backpressure; results leave in the order images entered. The port layout is
the contract with the simulation benches (see docs/rtl.md and manifest.json).
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from bnn_hw.rtl.argmax import ArgMax
from bnn_hw.rtl.engine import LayerEngine
from bnn_hw.rtl.errors import reject
from bnn_hw.rtl.folding import Plan
from bnn_hw.rtl.pool import OrPool
from bnn_hw.rtl.width_converter import WidthConverter
from bnn_hw.rtl.window import SlidingWindow

from bnn_hw.model import BnnModel


class BnnTop(wiring.Component):
    """The whole accelerator for `model` folded as `plan`.

    Attributes
    ----------
    pixels : In(stream.Signature(8 * pixels_per_beat))
        An image in HWC order, pixels_per_beat uint8 pixels per beat (pixel j in bits [8j+7:8j]), beats_per_image
        beats per image; spare slots of an image's last beat are don't-care. Image boundaries are by count.
    result : Out(stream.Signature(class_bits + num_classes * score_bits))
        Class index in bits [0, class_bits), then score n (two's complement) at [class_bits + n*score_bits, ...).
    tap<l>_valid, tap<l>_payload : Out(1), Out(PE)  (only with debug_taps, for every layer but the last)
        1 in a cycle where layer l's engine hands an output beat downstream, and that beat (neuron nf*PE + p in
        bit p, beats in nf order; for convolutions NF beats per output pixel, before pooling).
    """

    def __init__(self, model: BnnModel, plan: Plan, *, debug_taps: bool = False, verilog_heaps: bool = False):
        if len(plan.layers) != len(model.layers):
            reject(self, "plan and model have different layer counts")
        self.model, self.plan, self.debug_taps = model, plan, debug_taps
        self.verilog_heaps = verilog_heaps
        members = {
            "pixels": In(stream.Signature(8 * plan.pixels_per_beat)),
            "result": Out(stream.Signature(plan.class_bits + plan.num_classes * plan.score_bits)),
        }
        if debug_taps:
            for f in plan.layers[:-1]:
                members[f"tap{f.index}_valid"] = Out(1)
                members[f"tap{f.index}_payload"] = Out(f.PE)
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        model, plan = self.model, self.plan
        h, w, c = model.input_shape
        n_pixels = h * w * c
        first = plan.layers[0]
        ppb = plan.pixels_per_beat

        # ---------------------------------------------------------------- input: pixels (or bits) -> SIMD words
        eb = 8 if model.binarize_at is None else 1
        conv = WidthConverter(ppb, first.SIMD, n_pixels, elem_bits=eb)
        m.submodules.in_conv = conv
        if model.binarize_at is None:
            wiring.connect(m, wiring.flipped(self.pixels), conv.i)
        else:
            bits = Signal(ppb)
            m.d.comb += [
                bits.eq(Cat(*[self.pixels.payload[8 * j : 8 * j + 8] >= model.binarize_at for j in range(ppb)])),
                conv.i.payload.eq(bits),
                conv.i.valid.eq(self.pixels.valid),
                self.pixels.ready.eq(conv.i.ready),
            ]
        upstream = conv.o

        # ---------------------------------------------------------------- layer chain
        for layer, fold in zip(model.layers, plan.layers, strict=True):
            if layer.kind == "conv":
                h, w, c = layer.in_shape
                if fold.elem_bits == 8:
                    pad_word = sum(layer.pad_value << (8 * j) for j in range(fold.SIMD))
                else:
                    pad_word = (1 << fold.SIMD) - 1 if layer.pad_value > 0 else 0
                win = SlidingWindow(
                    h,
                    w,
                    c // fold.SIMD,
                    layer.kernel,
                    layer.stride,
                    layer.padding,
                    fold.SIMD * fold.elem_bits,
                    pad_word if layer.padding else 0,
                )
                m.submodules[f"window{fold.index}"] = win
                wiring.connect(m, upstream, win.i)
                upstream = win.o
            eng = LayerEngine(layer, fold, verilog_heaps=self.verilog_heaps)
            m.submodules[f"layer{fold.index}"] = eng
            wiring.connect(m, upstream, eng.i)
            upstream = eng.o
            if fold.output == "scores":
                break
            if self.debug_taps:
                m.d.comb += [
                    getattr(self, f"tap{fold.index}_valid").eq(eng.o.valid & eng.o.ready),
                    getattr(self, f"tap{fold.index}_payload").eq(eng.o.payload),
                ]
            if layer.kind == "conv" and layer.pool:
                oh, ow = layer.conv_shape
                pool = OrPool(oh, ow, layer.pool, fold.NF, fold.PE)
                m.submodules[f"pool{fold.index}"] = pool
                wiring.connect(m, upstream, pool.i)
                upstream = pool.o
            nxt = plan.layers[fold.index + 1]
            gear = WidthConverter(fold.PE, nxt.SIMD, int(np.prod(layer.out_shape)), elem_bits=1)
            m.submodules[f"link{fold.index}"] = gear
            wiring.connect(m, upstream, gear.i)
            upstream = gear.o

        # ---------------------------------------------------------------- class choice
        last = plan.layers[-1]
        am = ArgMax(plan.num_classes, last.PE, plan.score_bits)
        m.submodules.argmax = am
        wiring.connect(m, upstream, am.i)
        wiring.connect(m, am.o, wiring.flipped(self.result))
        return m
