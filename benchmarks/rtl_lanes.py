"""LUTs per binary MAC lane with Yosys synth_xilinx: the PE array alone, one PE's XOR + popcount, whole engines.

Usage: .venv/bin/python benchmarks/rtl_lanes.py [--arrays 8x8,16x16,...] [--popcounts 32,64] [--configs 8x8,...]
       [--target xilinx] [--out results.json]
- arrays: rtl.pe_array.PEArray (PE x SIMD lanes: XOR, popcount bit heap, per-PE accumulator whose sign is the
  threshold compare) for a bits->bits layer with MW = 16*SIMD (accumulator width as the engine would choose); its
  inputs are top-level ports (in an engine they are memory outputs), the outputs are the PE sign bits.
- popcounts: registered activation and weight words, XOR, Popcount(first_group=3) -- one PE's lanes, no accumulator.
- configs: a whole layer engine (array + sequencer, input double buffer, output FIFO, weight/threshold memories), a
  dense bits->bits layer with MW = 16*SIMD and MH = 16*PE (weight memory 256 words deep, so block RAM).
Every synthesis is flattened and `check -assert` clean. Reported: logic LUTs (LUTRAM separately), FFs, block RAM,
carry cells, LUTs per lane.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bnn_hw.rtl.synthesis import run_yosys  # noqa: E402


def engine_verilog(pe: int, simd: int, folds: int, path: Path) -> None:
    from amaranth.back import verilog
    from bnn_hw.rtl.engine import LayerEngine
    from bnn_hw.rtl.folding import fold_layer
    from bnn_hw.rtl.testing import random_dense_model

    mw, mh = folds * simd, folds * pe
    model = random_dense_model([mh, 10], (1, 1, mw), seed=1, binarize_at=128)
    layer = model.layers[0]
    eng = LayerEngine(layer, fold_layer(0, layer, pe, simd))
    path.write_text(verilog.convert(eng, name="engine", emit_src=False))


def array_verilog(pe: int, simd: int, folds: int, path: Path) -> int:
    """The PE array alone (rtl.pe_array.StandaloneArray); returns its accumulator width."""
    from amaranth.back import verilog
    from bnn_hw.rtl.folding import fold_layer
    from bnn_hw.rtl.pe_array import StandaloneArray
    from bnn_hw.rtl.testing import random_dense_model

    model = random_dense_model([folds * pe, 10], (1, 1, folds * simd), seed=1, binarize_at=128)
    aw = fold_layer(0, model.layers[0], pe, simd).acc_bits
    path.write_text(verilog.convert(StandaloneArray(pe, simd, aw), name="pe_array", emit_src=False))
    return aw


def xor_popcount_verilog(width: int, path: Path) -> None:
    """The array alone: registered activation and weight words, XOR, Popcount(first_group=3) -- one PE's lanes."""
    from amaranth.back import verilog
    from amaranth.hdl import Module, Signal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out
    from bnn_hw.rtl.popcount import Popcount

    class XorPopcount(wiring.Component):
        def __init__(self):
            super().__init__({"a": In(width), "b": In(width), "count": Out(range(width + 1))})

        def elaborate(self, platform):
            m = Module()
            ra, rb, x = Signal(width), Signal(width), Signal(width)
            m.d.sync += [ra.eq(self.a), rb.eq(self.b)]
            m.d.comb += x.eq(ra ^ rb)
            m.submodules.pc = pc = Popcount(width, first_group=3)
            m.d.comb += [pc.bits.eq(x), self.count.eq(pc.count)]
            return m

    path.write_text(verilog.convert(XorPopcount(), name="xor_popcount", emit_src=False))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--arrays", default="8x8,16x16,32x32,32x64,64x64", help="PE array sizes ('' to skip)")
    ap.add_argument("--configs", default="", help="whole-engine sizes, e.g. 8x8,32x32 ('' to skip)")
    ap.add_argument("--folds", type=int, default=16)
    ap.add_argument("--target", default="xilinx")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--popcounts", default="", help="XOR + popcount widths, e.g. 32,64 ('' to skip)")
    args = ap.parse_args()
    pc_rows = []
    for width in [int(v) for v in args.popcounts.split(",") if v]:
        with tempfile.TemporaryDirectory() as tmp:
            v = Path(tmp) / "pc.v"
            xor_popcount_verilog(width, v)
            rep = run_yosys([v], "xor_popcount", args.target, Path(tmp), keep=[])
        tot = rep["total"]
        pc_rows.append({"width": width, **tot, "luts_per_lane": round(tot["luts"] / width, 3)})
        print(json.dumps(pc_rows[-1]), flush=True)
    if pc_rows:
        print("\n| XOR + popcount width | LUTs | LUTs/lane | FFs | carry |")
        print("|---|---|---|---|---|")
        for r in pc_rows:
            print(f"| {r['width']} | {r['luts']} | {r['luts_per_lane']} | {r['ffs']} | {r['carry']} |")
    arr_rows = []
    for cfg in [c for c in args.arrays.split(",") if c]:
        pe, simd = (int(v) for v in cfg.split("x"))
        with tempfile.TemporaryDirectory() as tmp:
            v = Path(tmp) / "array.v"
            t0 = time.perf_counter()
            aw = array_verilog(pe, simd, args.folds, v)
            t1 = time.perf_counter()
            rep = run_yosys([v], "pe_array", args.target, Path(tmp), keep=[])
            t2 = time.perf_counter()
        tot = rep["total"]
        lanes = pe * simd
        arr_rows.append(
            {
                "pe": pe,
                "simd": simd,
                "lanes": lanes,
                "acc_bits": aw,
                **tot,
                "luts_per_lane": round(tot["luts"] / lanes, 3),
                "convert_s": round(t1 - t0, 1),
                "synth_s": round(t2 - t1, 1),
            }
        )
        print(json.dumps(arr_rows[-1]), flush=True)
    if arr_rows:
        print("\n| PE x SIMD | lanes | acc bits | LUTs | LUTs/lane | FFs | carry | synth time |")
        print("|---|---|---|---|---|---|---|---|")
        for r in arr_rows:
            print(
                f"| {r['pe']}x{r['simd']} | {r['lanes']} | {r['acc_bits']} | {r['luts']} | {r['luts_per_lane']} | "
                f"{r['ffs']} | {r['carry']} | {r['synth_s']:.0f} s |"
            )
    rows = []
    for cfg in [c for c in args.configs.split(",") if c]:
        pe, simd = (int(v) for v in cfg.split("x"))
        with tempfile.TemporaryDirectory() as tmp:
            v = Path(tmp) / "engine.v"
            t0 = time.perf_counter()
            engine_verilog(pe, simd, args.folds, v)
            t1 = time.perf_counter()
            rep = run_yosys([v], "engine", args.target, Path(tmp), keep=["engine.array"])  # as `bnn-hw synth`
            t2 = time.perf_counter()
        tot = rep["total"]
        lanes = pe * simd
        row = {
            "pe": pe,
            "simd": simd,
            "lanes": lanes,
            **tot,
            "luts_per_lane": round(tot["luts"] / lanes, 3),
            "convert_s": round(t1 - t0, 1),
            "synth_s": round(t2 - t1, 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    if rows:
        print("\n| PE x SIMD | lanes | LUTs | LUTs/lane | LUTRAM | FFs | BRAM36 | carry |")
        print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['pe']}x{r['simd']} | {r['lanes']} | {r['luts']} | {r['luts_per_lane']} | {r['lutram']} | "
            f"{r['ffs']} | {r['bram36']} | {r['carry']} |"
        )
    if args.out:
        args.out.write_text(
            json.dumps(
                {"machine": platform.platform(), "arrays": arr_rows, "popcounts": pc_rows, "engines": rows}, indent=1
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
