"""The network top `bnn_top`: pixel stream in, (class, scores) stream out, layer engines chained in between.

    pixels -> [binarize] -> width converter -> engine 0 -> width converter -> engine 1 -> ... -> argmax -> result

Every link is a valid/ready stream with backpressure; results leave in the order images entered. The port layout is
the contract with the simulation benches (see docs/rtl.md and manifest.json).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bnn_hw.model import BnnModel
from rtl.argmax import ArgMax
from rtl.engine import LayerEngine
from rtl.errors import reject
from rtl.folding import Plan
from rtl.width_converter import WidthConverter


class BnnTop(wiring.Component):
    """The whole accelerator for `model` folded as `plan`.

    Attributes
    ----------
    pixels : In(stream.Signature(8 * pixels_per_beat))
        An image in HWC order, pixels_per_beat uint8 pixels per beat (pixel j in bits [8j+7:8j]), beats_per_image
        beats per image; spare slots of an image's last beat are don't-care. Image boundaries are by count.
    result : Out(stream.Signature(class_bits + num_classes * score_bits))
        Class index in bits [0, class_bits), then score n (two's complement) at [class_bits + n*score_bits, ...).
    taps : Out(...)  (only with debug_taps)
        Per bits-output layer l: `l<l>__valid` (1 when the layer's output FIFO hands a beat downstream) and
        `l<l>__payload` (that beat: PE output bits, neuron nf*PE + p in bit p, beats in nf order).
    """

    def __init__(self, model: BnnModel, plan: Plan, *, debug_taps: bool = False):
        if len(plan.layers) != len(model.layers):
            reject(self, "plan and model have different layer counts")
        self.model, self.plan, self.debug_taps = model, plan, debug_taps
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
        if model.binarize_at is None:
            conv = WidthConverter(ppb, first.SIMD, n_pixels, elem_bits=8)
            m.submodules.in_conv = conv
            wiring.connect(m, wiring.flipped(self.pixels), conv.i)
        else:
            conv = WidthConverter(ppb, first.SIMD, n_pixels, elem_bits=1)
            m.submodules.in_conv = conv
            bits = Signal(ppb)
            m.d.comb += [
                bits.eq(Cat(*[self.pixels.payload[8 * j:8 * j + 8] >= model.binarize_at for j in range(ppb)])),
                conv.i.payload.eq(bits),
                conv.i.valid.eq(self.pixels.valid),
                self.pixels.ready.eq(conv.i.ready),
            ]
        upstream = conv.o

        # ---------------------------------------------------------------- layer chain
        for layer, fold in zip(model.layers, plan.layers, strict=True):
            eng = LayerEngine(layer, fold)
            m.submodules[f"layer{fold.index}"] = eng
            wiring.connect(m, upstream, eng.i)
            if fold.output == "scores":
                upstream = eng.o
                break
            nxt = plan.layers[fold.index + 1]
            gear = WidthConverter(fold.PE, nxt.SIMD, fold.MH, elem_bits=1)
            m.submodules[f"link{fold.index}"] = gear
            wiring.connect(m, eng.o, gear.i)
            if self.debug_taps:
                m.d.comb += [getattr(self, f"tap{fold.index}_valid").eq(eng.o.valid & eng.o.ready),
                             getattr(self, f"tap{fold.index}_payload").eq(eng.o.payload)]
            upstream = gear.o

        # ---------------------------------------------------------------- class choice
        last = plan.layers[-1]
        am = ArgMax(plan.num_classes, last.PE, plan.score_bits)
        m.submodules.argmax = am
        wiring.connect(m, upstream, am.i)
        wiring.connect(m, am.o, wiring.flipped(self.result))
        return m
