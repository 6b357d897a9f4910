"""Post-route Fmax of generated designs on ECP5, and how long place and route takes.

Usage: .venv/bin/python benchmarks/pnr_fmax.py [--design mlp] [--pe 32] [--simd 32] [--model runs/demo/model.bnn]
                                              [--device 85k] [--speed 8] [--freq 150] [--flow fast]

Generates the design (`bnn_hw.rtl.generate_rtl`; without a model file a random model of the default MLP's shape,
784-512-512-10 with pixel input, or of the default ConvNet preset's for `--design cnn`), then runs
`bnn_hw.rtl.pnr.place_and_route` (synth_ecp5, the pin wrapper, nextpnr-ecp5 with router2): Fmax, critical path by
component, images/s at that Fmax. Records wall and CPU seconds of synthesis and of place and route separately (the
machine is shared: CPU seconds are the fairer number), tool versions, machine and date in benchmarks/pnr_fmax.json.
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


def child_cpu() -> float:
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--design", default="mlp", choices=["mlp", "cnn"])
    ap.add_argument("--pe", default="32")
    ap.add_argument("--simd", default="32")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--device", default="85k")
    ap.add_argument("--speed", type=int, default=8)
    ap.add_argument("--freq", type=float, default=150.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--flow", default="fast", choices=["fast", "full"])
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--results", type=Path, default=Path(__file__).with_name("pnr_fmax.json"))
    args = ap.parse_args()

    from bnn_hw.rtl import generate_rtl
    from bnn_hw.rtl.pnr import place_and_route
    from bnn_hw.rtl.synthesis import yosys_version
    from bnn_hw.rtl.testing import random_dense_model

    from bnn_hw import save_model
    from bnn_hw.model import load_model

    out = args.out or Path("build") / f"pnr_{args.design}_{args.pe}x{args.simd}".replace(",", "-")
    model_path = args.model
    if model_path is None:
        model_path = out.with_suffix(".bnn")
        model_path.parent.mkdir(parents=True, exist_ok=True)
        if args.design == "mlp":
            save_model(random_dense_model([512, 512, 10], (28, 28, 1), seed=0, name="mlp-random"), model_path)
        else:  # the cnn preset's shape: 32C3-MP2-64C3-MP2-128C3-MP2-512FC-10, padding 1, pixel input
            from bnn_hw.synthetic import ConvSpec, random_model

            convs = [ConvSpec(c, padding=1, pool=2) for c in (32, 64, 128)]
            save_model(random_model((28, 28, 1), [*convs, 512], 10, seed=0, name="cnn-random"), model_path)
    model = load_model(model_path)
    t0 = time.perf_counter()
    man = generate_rtl(model_path, out, pe=args.pe, simd=args.simd, quiet=True)
    rtl_s = time.perf_counter() - t0
    c0 = child_cpu()
    t0 = time.perf_counter()
    rep = place_and_route(
        out,
        "ecp5",
        device_name=args.device,
        speed=args.speed,
        freq_mhz=args.freq,
        seed=args.seed,
        flow=args.flow,
        synth_timeout=args.timeout,
        timeout=args.timeout,
    )
    wall = time.perf_counter() - t0
    cpu = child_cpu() - c0
    (out / "synth_ecp5.json").write_text(json.dumps(rep, indent=2) + "\n")
    pnr = rep["pnr"]
    record = {
        "design": args.design,
        "model": str(model_path),
        "model_hash": model.hash,
        "folding": [f"{d['PE']}x{d['SIMD']}" for d in man.layers],
        "cycles_per_image": man.predicted.cycles_per_image,
        "latency_cycles": man.predicted.latency_cycles,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, shared with other jobs",
        "yosys": yosys_version(),
        "nextpnr": pnr.get("tool"),
        "command": pnr.get("command"),
        "device": pnr.get("device"),
        "package": pnr.get("package"),
        "speed_grade": pnr.get("speed_grade"),
        "io": pnr.get("io"),
        "flow": rep["flow"],
        "luts": rep["total"]["luts"],
        "carry": rep["total"]["carry"],
        "ffs": rep["total"]["ffs"],
        "dp16kd": rep["total"]["bram_cells"],
        "fraction_of_device": pnr.get("fraction_of_device"),
        "fmax_mhz": pnr.get("fmax_mhz"),
        "target_mhz": args.freq,
        "status": pnr.get("status"),
        "images_per_s": pnr.get("images_per_s"),
        "critical_path": pnr.get("critical_path"),
        "seconds": {
            "rtl": round(rtl_s, 1),
            "synth_and_pnr_wall": round(wall, 1),
            "pnr_wall": pnr.get("seconds"),
            "pnr_cpu": pnr.get("cpu_seconds"),
            "synth_and_pnr_cpu": round(cpu, 1),
        },
    }
    old = json.loads(args.results.read_text()) if args.results.exists() else []
    args.results.write_text(json.dumps([*old, record], indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0 if pnr.get("fmax_mhz") else 1


if __name__ == "__main__":
    raise SystemExit(main())
