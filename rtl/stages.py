"""The hardware stages of a network top, one object per block: its instance name, the component it builds, its
cycle model, its stream widths and (for the engines) its estimated cost.

`network_stages(plan)` is the one description of the chain

    width converter -> [window] engine [pool] -> width converter -> ... -> engine (scores) -> argmax

`rtl.top.BnnTop` instantiates exactly these stages in this order and `rtl.timing.simulate_control` steps exactly
their cycle models, so the hardware and its prediction cannot describe different chains. Everything about one
block that the rest of the generator needs is asked of its stage (FINN's custom ops are the model for this).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from amaranth.lib import wiring
from bnn_hw.rtl.argmax import ArgMax
from bnn_hw.rtl.autofold import estimate_fold_luts
from bnn_hw.rtl.engine import LayerEngine
from bnn_hw.rtl.folding import LayerFold, Plan
from bnn_hw.rtl.pool import OrPool
from bnn_hw.rtl.timing import (
    ControlModel,
    _ArgMax,
    _Converter,
    _Engine,
    _Pool,
    _Window,
    argmax_delay,
    argmax_result_depth,
)
from bnn_hw.rtl.width_converter import WidthConverter
from bnn_hw.rtl.window import SlidingWindow

from bnn_hw.model import BnnModel


@dataclass(frozen=True)
class Stage(ABC):
    """One block of the top's chain; `name` is its instance name in the generated Verilog (`layer0`, `link0`)."""

    name: str

    @property
    @abstractmethod
    def in_bits(self) -> int:
        """Payload width of the stream it accepts."""

    @property
    @abstractmethod
    def out_bits(self) -> int:
        """Payload width of the stream it offers."""

    @abstractmethod
    def build(self, model: BnnModel, *, verilog_heaps: bool = False) -> wiring.Component:
        """The Amaranth component (with `i` and `o` stream members) for `model`."""

    @abstractmethod
    def control(self) -> ControlModel:
        """A fresh cycle model of the block's handshakes (rtl/timing.py), stepped once per clock."""

    def estimated_luts(self) -> float | None:
        """The autofold cost model's LUT estimate, where the block has one (the engines)."""
        return None


@dataclass(frozen=True)
class ConverterStage(Stage):
    """Regroups `total` elements of `elem_bits` from beats of `in_elems` to words of `out_elems`."""

    in_elems: int
    out_elems: int
    total: int
    elem_bits: int

    @property
    def in_bits(self) -> int:
        return self.in_elems * self.elem_bits

    @property
    def out_bits(self) -> int:
        return self.out_elems * self.elem_bits

    def build(self, model: BnnModel, *, verilog_heaps: bool = False) -> wiring.Component:
        return WidthConverter(self.in_elems, self.out_elems, self.total, elem_bits=self.elem_bits)

    def control(self) -> ControlModel:
        return _Converter(self.in_elems, self.out_elems, self.total)


@dataclass(frozen=True)
class WindowStage(Stage):
    """The sliding-window generator in front of convolution `fold`."""

    fold: LayerFold

    @property
    def in_bits(self) -> int:
        return self.fold.SIMD * self.fold.elem_bits

    out_bits = in_bits

    def build(self, model: BnnModel, *, verilog_heaps: bool = False) -> wiring.Component:
        layer, f = model.layers[self.fold.index], self.fold
        h, w, c = layer.in_shape
        if f.elem_bits == 8:
            pad_word = sum(layer.pad_value << (8 * j) for j in range(f.SIMD))
        else:
            pad_word = (1 << f.SIMD) - 1 if layer.pad_value > 0 else 0
        return SlidingWindow(
            h,
            w,
            c // f.SIMD,
            layer.kernel,
            layer.stride,
            layer.padding,
            f.SIMD * f.elem_bits,
            pad_word if layer.padding else 0,
        )

    def control(self) -> ControlModel:
        h, w, c = self.fold.in_shape
        return _Window(h * w * (c // self.fold.SIMD), self.fold.SF, self.fold.input_vectors)


@dataclass(frozen=True)
class EngineStage(Stage):
    """The PE x SIMD matrix-vector-threshold engine of layer `fold`."""

    fold: LayerFold

    @property
    def in_bits(self) -> int:
        return self.fold.SIMD * self.fold.elem_bits

    @property
    def out_bits(self) -> int:
        return self.fold.PE * (self.fold.acc_bits if self.fold.output == "scores" else 1)

    def build(self, model: BnnModel, *, verilog_heaps: bool = False) -> wiring.Component:
        return LayerEngine(model.layers[self.fold.index], self.fold, verilog_heaps=verilog_heaps)

    def control(self) -> ControlModel:
        return _Engine(self.fold)

    def estimated_luts(self) -> float | None:
        return estimate_fold_luts(self.fold)


@dataclass(frozen=True)
class PoolStage(Stage):
    """The OR max-pool after convolution `fold` (max of +-1 values = OR of their bits)."""

    fold: LayerFold

    @property
    def in_bits(self) -> int:
        return self.fold.PE

    out_bits = in_bits

    def build(self, model: BnnModel, *, verilog_heaps: bool = False) -> wiring.Component:
        oh, ow = self.fold.conv_shape
        return OrPool(oh, ow, self.fold.pool, self.fold.NF, self.fold.PE)

    def control(self) -> ControlModel:
        oh, ow = self.fold.conv_shape
        return _Pool(oh, ow, self.fold.pool, self.fold.NF)


@dataclass(frozen=True)
class ArgMaxStage(Stage):
    """The class choice over the scores layer's NF beats of PE scores; its output is the top's result stream."""

    classes: int
    pe: int
    beats: int
    score_bits: int
    class_bits: int

    @property
    def in_bits(self) -> int:
        return self.pe * self.score_bits

    @property
    def out_bits(self) -> int:
        return self.class_bits + self.classes * self.score_bits

    def build(self, model: BnnModel, *, verilog_heaps: bool = False) -> wiring.Component:
        return ArgMax(self.classes, self.pe, self.score_bits)

    def control(self) -> ControlModel:
        return _ArgMax(self.beats, argmax_delay(self.pe), argmax_result_depth(self.pe, self.beats))


def network_stages(plan: Plan) -> list[Stage]:
    """The top's blocks from the pixel input to the result, in order; the last one is the ArgMax."""
    first = plan.layers[0]
    elem_bits = first.elem_bits
    stages: list[Stage] = [ConverterStage("in_conv", plan.pixels_per_beat, first.SIMD, plan.input_elements, elem_bits)]
    for f in plan.layers:
        if f.kind == "conv":
            stages.append(WindowStage(f"window{f.index}", f))
        stages.append(EngineStage(f"layer{f.index}", f))
        if f.output == "scores":
            break
        if f.kind == "conv" and f.pool:
            stages.append(PoolStage(f"pool{f.index}", f))
        nxt = plan.layers[f.index + 1]
        stages.append(ConverterStage(f"link{f.index}", f.PE, nxt.SIMD, f.out_elements, 1))
    last = plan.layers[-1]
    stages.append(ArgMaxStage("argmax", plan.num_classes, last.PE, last.NF, plan.score_bits, plan.class_bits))
    return stages
