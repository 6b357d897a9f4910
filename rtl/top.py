"""The network top `bnn_top`: pixel stream in, (class, scores) stream out, layer engines chained in between.

    pixels -> [binarize] -> width converter -> [window] engine 0 [pool] -> width converter -> ... -> argmax

The blocks and their order are rtl.stages.network_stages(plan), the same list the cycle model steps. Every link is a
valid/ready stream with backpressure; results leave in the order images entered. The port layout is the contract
with the simulation benches (see docs/rtl.md and manifest.json).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from bnn_hw.rtl.errors import reject
from bnn_hw.rtl.folding import Plan
from bnn_hw.rtl.stages import EngineStage, network_stages

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

        # ---------------------------------------------------------------- the chain (rtl/stages.py), in order
        stages = network_stages(plan)
        blocks: list[wiring.Component] = []
        for stage in stages:
            block = stage.build(model, verilog_heaps=self.verilog_heaps)
            m.submodules[stage.name] = block
            if blocks:
                wiring.connect(m, blocks[-1].o, block.i)
            blocks.append(block)
            if self.debug_taps and isinstance(stage, EngineStage) and stage.fold.output != "scores":
                m.d.comb += [
                    getattr(self, f"tap{stage.fold.index}_valid").eq(block.o.valid & block.o.ready),
                    getattr(self, f"tap{stage.fold.index}_payload").eq(block.o.payload),
                ]

        # ---------------------------------------------------------------- input: pixels (or bits >= t) -> stage 0
        first = blocks[0]
        if model.binarize_at is None:
            wiring.connect(m, wiring.flipped(self.pixels), first.i)
        else:
            ppb = plan.pixels_per_beat
            bits = Signal(ppb)
            m.d.comb += [
                bits.eq(Cat(*[self.pixels.payload[8 * j : 8 * j + 8] >= model.binarize_at for j in range(ppb)])),
                first.i.payload.eq(bits),
                first.i.valid.eq(self.pixels.valid),
                self.pixels.ready.eq(first.i.ready),
            ]
        wiring.connect(m, blocks[-1].o, wiring.flipped(self.result))
        return m
