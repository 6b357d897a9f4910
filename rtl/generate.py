"""Verilog and manifest generation for a folded model (what `bnn-hw rtl` runs)."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from bnn_hw.rtl.folding import Plan

from bnn_hw import __version__, fileio
from bnn_hw.artifacts import Generator, Manifest, MemoryBits, Predicted
from bnn_hw.errors import BnnError
from bnn_hw.model import BnnModel

TOP_NAME = "bnn_top"
GENERATOR = "bnn-hw rtl"
INTERFACES = ("bare", "axis")


def manifest_for(
    model: BnnModel,
    plan: Plan,
    args: dict[str, Any],
    *,
    debug_taps: bool = False,
    latency: int | None = None,
    axis: Any = None,
) -> Manifest:
    """Everything a bench, a synthesis run or a person needs to know about the generated top."""
    h, w, c = model.input_shape
    result_bits = plan.class_bits + plan.num_classes * plan.score_bits
    ports = {
        "clk": {"dir": "in", "width": 1},
        "rst": {"dir": "in", "width": 1, "note": "synchronous, active high; clears all in-flight state"},
        "pixels__valid": {"dir": "in", "width": 1},
        "pixels__ready": {"dir": "out", "width": 1},
        "pixels__payload": {"dir": "in", "width": 8 * plan.pixels_per_beat},
        "result__valid": {"dir": "out", "width": 1},
        "result__ready": {"dir": "in", "width": 1},
        "result__payload": {"dir": "out", "width": result_bits},
    }
    taps = []
    if debug_taps:
        for f in plan.layers[:-1]:
            ports[f"tap{f.index}_valid"] = {"dir": "out", "width": 1}
            ports[f"tap{f.index}_payload"] = {"dir": "out", "width": f.PE}
            taps.append(
                {
                    "layer": f.index,
                    "valid": f"tap{f.index}_valid",
                    "payload": f"tap{f.index}_payload",
                    "beats_per_image": f.NF * f.input_vectors,
                    "bits_per_beat": f.PE,
                    "meaning": "one pulse per output beat of the layer as it leaves the engine (handshake); "
                    "beat nf holds neurons nf*PE .. nf*PE+PE-1 in bits 0..PE-1 (bits past the "
                    "layer's width are don't-care); convolutions: one group of NF beats per "
                    "output pixel in raster order, before pooling",
                }
            )
    layers = []
    for f in plan.layers:
        d = f.to_json()
        d["lanes"] = f.lanes
        layers.append(d)
    stage_cycles = plan.stage_cycles()
    man = Manifest(
        model_hash=model.hash,
        model_name=model.name,
        generator=Generator(name=GENERATOR, version=__version__, args=args),
        top=TOP_NAME,
        verilog=[f"{TOP_NAME}.v"],
        clock={"port": "clk", "edge": "rising"},
        reset={"port": "rst", "sync": True, "active": "high"},
        ports=ports,
        input={"shape_hwc": [h, w, c], "order": "HWC flattened", "binarize_at": model.binarize_at},
        pixels_per_beat=plan.pixels_per_beat,
        beats_per_image=plan.beats_per_image,
        num_classes=plan.num_classes,
        class_bits=plan.class_bits,
        score_bits=plan.score_bits,
        result_bits=result_bits,
        result_layout="bits [0, class_bits) = class index (first index of the maximum score); then score n "
        "(two's complement) at [class_bits + n*score_bits, class_bits + (n+1)*score_bits)",
        layers=layers,
        debug_taps=taps,
        predicted=Predicted(
            cycles_per_image=plan.cycles_per_image,
            limited_by=plan.bottleneck,
            stage_cycles_per_image=stage_cycles,
            latency_cycles=latency,
            latency_definition="cycles from the handshake of an image's first input beat to the handshake of "
            "its result, pipeline empty, input valid and result ready every cycle",
        ),
        memory_bits=MemoryBits(
            weights=sum(f.weight_memory_bits for f in plan.layers),
            thresholds=sum(f.threshold_memory_bits for f in plan.layers),
            windows=sum(f.window_memory_bits for f in plan.layers),
            total=sum(f.weight_memory_bits + f.threshold_memory_bits + f.window_memory_bits for f in plan.layers),
        ),
        lanes_total=sum(f.lanes for f in plan.layers),
        interface="bare",
    )
    if axis is not None:
        man = dataclasses.replace(man, **axis.manifest_fields())
    return man


_KEPT_REG = re.compile(r"\(\* keep = 32'd1 \*\)\n\s*reg (?:\[\d+:0\] )?(\\?\S+) ", re.M)


def keep_registers(text: str) -> str:
    """Mark the always block of every register the generators declared `keep` (replicated high-fanout registers: the
    engines' input word, address and bank select copies, the ArgMax's last-stage copies, the logic weights' address
    copies) `(* keep *)`. A keep attribute on the reg reaches only the wire, and synthesis (Yosys's opt_merge) would
    merge the identical flip-flops back into one net; on the always block it reaches the flip-flop, in any tool."""
    modules = re.split(r"(?<=\bendmodule\n)", text)
    for i, module in enumerate(modules):
        for name in sorted(set(_KEPT_REG.findall(module))):
            block = re.compile(r"^(\s*)always @\(posedge clk\)\n(\s*" + re.escape(name) + r"\s*<=)", re.M)
            module, n = block.subn(r"\1(* keep *) always @(posedge clk)\n\2", module)
            if n != 1:
                raise AssertionError(f"kept register {name}: {n} always blocks, expected 1 (Verilog form changed?)")
        modules[i] = module
    return "".join(modules)


def heap_modules(plan: Plan) -> str:
    """Verilog of every distinct popcount / adder-tree module the engines instantiate (rtl/heap_verilog.py)."""
    from bnn_hw.rtl.heap_verilog import adder_tree_verilog, popcount_verilog

    texts: dict[tuple, str] = {}
    for f in plan.layers:
        if f.input == "pixels":
            texts.setdefault(("at", f.SIMD), adder_tree_verilog(f.SIMD, 8, 3))
        else:
            texts.setdefault(("pc", f.SIMD), popcount_verilog(f.SIMD, 3))
    return "\n" + "\n".join(texts[k] for k in sorted(texts))


def generate(
    model: BnnModel,
    plan: Plan,
    out_dir: str | Path,
    args: dict[str, Any],
    *,
    debug_taps: bool = False,
    progress: bool = False,
    interface: str = "bare",
    axi_lite: bool = False,
    frame_images: int = 0,
    result_framing: str = "image",
) -> Manifest:
    """Write `<out>/bnn_top.v` and `<out>/manifest.json` (and, for the AXI4-Stream interface, the FuseSoC core and
    IP-XACT description next to them); returns the manifest."""
    from amaranth.back import verilog
    from bnn_hw.rtl.timing import predict_latency
    from bnn_hw.rtl.top import BnnTop
    from tqdm import tqdm

    out = fileio.writable_dir(out_dir)
    steps = tqdm(total=4, desc="rtl", unit="step", disable=not (progress and sys.stderr.isatty()), leave=False)
    t0 = time.perf_counter()
    steps.set_postfix_str("timing model")
    latency = predict_latency(plan)
    steps.update()
    steps.set_postfix_str("elaborate")
    if interface not in INTERFACES:
        raise BnnError(f"unknown interface {interface!r}: choose one of {', '.join(INTERFACES)}")
    if interface == "axis" and debug_taps:
        raise BnnError("--debug-taps needs --interface bare (the AXI4-Stream top has no tap ports)")
    if interface == "bare" and (axi_lite or frame_images or result_framing != "image"):
        raise BnnError("--axi-lite, --frame-images and --result-framing need --interface axis")
    axis = None
    if interface == "axis":
        from bnn_hw.rtl.axis_top import AxisTop

        top = axis = AxisTop(
            model,
            plan,
            axi_lite=axi_lite,
            frame_images=frame_images,
            result_framing=result_framing,
            verilog_heaps=True,
            latency=latency,
        )
    else:
        top = BnnTop(model, plan, debug_taps=debug_taps, verilog_heaps=True)
    steps.update()
    steps.set_postfix_str("convert to Verilog")
    text = keep_registers(verilog.convert(top, name=TOP_NAME, emit_src=False)) + heap_modules(plan)
    steps.update()
    steps.set_postfix_str("write")
    header = (
        f"// Generated by {GENERATOR} {__version__} -- do not edit.\n"
        f"// model {model.name} sha256 {model.hash}\n"
        f"// args {json.dumps(args, sort_keys=True)}\n"
    )
    fileio.write_text(out / f"{TOP_NAME}.v", header + text)
    manifest = manifest_for(model, plan, args, debug_taps=debug_taps, latency=latency, axis=axis)
    if axis is not None:
        from bnn_hw.rtl.packaging import write_packages

        manifest.packages = write_packages(out, manifest.to_json(), model)
    manifest.generation_seconds = round(time.perf_counter() - t0, 2)
    manifest.write(out / Manifest.FILE)
    steps.update()
    steps.close()
    return manifest
