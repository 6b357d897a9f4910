"""BinaryNet's CIFAR-10 ConvNet (the `paper-cifar10` preset) in hardware: folding, prediction, generation, synthesis.

Usage:
    .venv/bin/python benchmarks/rtl_cifar.py [--target-cycles 147456] [--out build/cifar] \\
        [--synth-layers 0,1,...|all] [--target ice40|xilinx|ecp5] [--timeout 1800] [--json build/cifar/cifar.json]

The network is 2x128C3-MP2-2x256C3-MP2-2x512C3-MP2-1024FC-1024FC-10 on 32x32x3 raw pixels (padding 1: a zero pixel
on the first layer, -1 on binary layers), the shapes `train.models.make_config("paper-cifar10", ...)` builds, with
seeded random weights and thresholds (`bnn_hw.synthetic.random_model`: hardware cost and timing do not depend on the
values). The script
1. prints the balanced automatic folding (`rtl.autofold.auto_fold`) for several cycles-per-image targets with the
   predicted images/s at an assumed 200 MHz, next to FINN's published 21,906 images/s for its CNV network (FINN's
   number, for a smaller network: 64-64-128-128-256-256-512-512-10 on a ZC706 at 200 MHz);
2. writes the model to OUT/model.bnn and runs `bnn-hw rtl OUT/model.bnn --auto --target-cycles T -o OUT/rtl` (timed);
3. optionally synthesizes layer engines one at a time with Yosys (each `bnn_top.layerN` module as its own top, so a
   layer's numbers do not wait for the whole design), each under a timeout, and records what finished.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bnn_hw.artifacts import Manifest  # noqa: E402
from bnn_hw.errors import BnnError  # noqa: E402
from bnn_hw.model import BnnModel, save_model  # noqa: E402
from bnn_hw.synthetic import ConvSpec, random_model  # noqa: E402

FINN_CNV_IMAGES_PER_S = 21906  # FINN (Umuroglu et al., FPGA 2017), CNV on a ZC706 at 200 MHz: their figure
CLOCK_HZ = 200e6  # assumed: no Xilinx place and route here
ROOT = Path(__file__).resolve().parents[1]


def cifar_model(seed: int = 0) -> BnnModel:
    """paper-cifar10's layer shapes (checked against train.models when torch is importable), random contents."""
    hidden: list = [
        ConvSpec(128, 3, 1, 1, 0, 0),
        ConvSpec(128, 3, 1, 1, -1, 2),
        ConvSpec(256, 3, 1, 1, -1, 0),
        ConvSpec(256, 3, 1, 1, -1, 2),
        ConvSpec(512, 3, 1, 1, -1, 0),
        ConvSpec(512, 3, 1, 1, -1, 2),
        1024,
        1024,
    ]
    try:
        from bnn_hw.train.models import make_config
    except ImportError:
        pass
    else:
        cfg = make_config("paper-cifar10", (32, 32, 3), 10)
        want = [(s.out_channels, s.pool) for s in hidden if isinstance(s, ConvSpec)]
        assert [tuple(c) for c in cfg.conv] == want and list(cfg.hidden) == [1024, 1024], (cfg.conv, cfg.hidden)
    return random_model((32, 32, 3), hidden, 10, seed=seed, name="paper-cifar10-random")


def folding_table(model: BnnModel) -> list[dict]:
    from bnn_hw.rtl.autofold import auto_fold
    from bnn_hw.rtl.folding import make_plan

    rows = []
    for t in (9216, 18432, 36864, 73728, 147456):
        pe, simd = auto_fold(model, target_cycles=t)
        plan = make_plan(model, pe, simd)
        ips = CLOCK_HZ / plan.cycles_per_image
        rows.append(
            {
                "target_cycles": t,
                "cycles_per_image": plan.cycles_per_image,
                "lanes": sum(f.lanes for f in plan.layers),
                "images_per_s_200mhz": ips,
                "vs_finn_cnv": ips / FINN_CNV_IMAGES_PER_S,
                "folding": [f"{f.PE}x{f.SIMD}" for f in plan.layers],
            }
        )
    return rows


def layer_verilog(top_v: Path, index: int, out: Path) -> Path:
    """The modules layer `index`'s engine needs, cut out of the generated Verilog: `bnn_top.layerN` and its children
    plus the shared heap modules. Yosys then parses a few hundred kB instead of the whole design (11 MB, most of it
    other layers' weight initialisers)."""
    prefix = f"\\bnn_top.layer{index}"
    keep, take = [], False
    for line in top_v.read_text().splitlines(keepends=True):
        if line.startswith("module "):
            name = line.split()[1].split("(")[0]
            take = name == prefix or name.startswith(prefix + ".") or not name.startswith(("\\bnn_top", "bnn_top"))
        if take:
            keep.append(line)
        if line.startswith("endmodule"):
            take = False
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(keep))
    return out


def synth_layer(build: Path, index: int, target: str, timeout: float) -> dict:
    from bnn_hw.rtl.synthesis import readmem_verilog, run_yosys

    work = build / f"synth_layer{index}_{target}"
    t0 = time.perf_counter()
    try:
        src = layer_verilog(build / "bnn_top.v", index, work / f"layer{index}.v")
        # Memory initialisers as $readmemh (the sweep's fast-flow step; the same contents): Yosys 0.23 needs longer
        # than any timeout here to parse the 131,072 `wmem[i] = ...` lines of a large dense layer.
        text, _ = readmem_verilog(src.read_text(), work, prefix=f"l{index}_mem")
        src.write_text(text)
        rep = run_yosys([src], f"\\bnn_top.layer{index}", target, work, keep=[], timeout=timeout)
    except BnnError as exc:
        return {"layer": index, "finished": False, "seconds": round(time.perf_counter() - t0), "error": str(exc)}
    return {
        "layer": index,
        "finished": True,
        "seconds": round(time.perf_counter() - t0),
        **rep["total"],
        "log": rep["log"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target-cycles", type=int, default=147456)
    ap.add_argument("--out", type=Path, default=Path("build/cifar"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--synth-layers", default="", help="layer indices to synthesize one by one, or 'all'")
    ap.add_argument("--target", default="ice40", help="Yosys target for --synth-layers (default ice40)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per layer synthesis")
    ap.add_argument("--skip-rtl", action="store_true", help="reuse OUT/rtl from an earlier run")
    ap.add_argument("--json", type=Path, default=None, help="write the results here too")
    args = ap.parse_args()

    model = cifar_model(args.seed)
    result: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "model_hash": model.hash[:16],
        "finn_cnv_images_per_s": FINN_CNV_IMAGES_PER_S,
        "clock_hz_assumed": CLOCK_HZ,
    }
    rows = folding_table(model)
    result["folding_table"] = rows
    print("| target cycles | cycles/image | lanes | images/s @ 200 MHz | vs FINN CNV | PE x SIMD per layer |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['target_cycles']} | {r['cycles_per_image']} | {r['lanes']} | {r['images_per_s_200mhz']:,.0f} | "
            f"{r['vs_finn_cnv']:.2f}x | {' '.join(r['folding'])} |"
        )

    args.out.mkdir(parents=True, exist_ok=True)
    model_path = args.out / "model.bnn"
    save_model(model, model_path)
    rtl_dir = args.out / "rtl"
    if not args.skip_rtl:
        t0 = time.perf_counter()
        cmd = [
            sys.executable,
            "-m",
            "bnn_hw",
            "rtl",
            str(model_path),
            "--auto",
            "--target-cycles",
            str(args.target_cycles),
            "-o",
            str(rtl_dir),
            "-q",
        ]
        subprocess.run(cmd, check=True, cwd=ROOT)
        result["rtl_seconds"] = round(time.perf_counter() - t0, 1)
        result["rtl_command"] = " ".join(["bnn-hw", *cmd[3:]])
    man = Manifest.read(rtl_dir / "manifest.json").to_json()
    pred = man["predicted"]
    cpi = pred["cycles_per_image"]
    result.update(
        {
            "cycles_per_image": cpi,
            "latency_cycles": pred["latency_cycles"],
            "images_per_s_200mhz": CLOCK_HZ / cpi,
            "vs_finn_cnv": CLOCK_HZ / cpi / FINN_CNV_IMAGES_PER_S,
            "memory_bits": man["memory_bits"]["total"],
            "verilog_bytes": os.path.getsize(rtl_dir / "bnn_top.v"),
            "layers": [
                {
                    k: ly[k]
                    for k in (
                        "index",
                        "kind",
                        "MW",
                        "MH",
                        "PE",
                        "SIMD",
                        "NF",
                        "SF",
                        "input_vectors",
                        "cycles_per_image",
                        "lanes",
                    )
                }
                for ly in man["layers"]
            ],
        }
    )
    print(
        f"\n{rtl_dir}/bnn_top.v ({result['verilog_bytes'] / 1e6:.1f} MB"
        + (f", generated in {result['rtl_seconds']} s" if "rtl_seconds" in result else "")
        + f"): {cpi} cycles/image = {CLOCK_HZ / cpi:,.0f} images/s at an assumed 200 MHz "
        f"({result['vs_finn_cnv']:.2f}x FINN's published {FINN_CNV_IMAGES_PER_S:,} for CNV), latency "
        f"{pred['latency_cycles']} cycles, memory {result['memory_bits']:,} bits"
    )
    for ly in result["layers"]:
        print(
            f"  layer {ly['index']} {ly['kind']:5} MW {ly['MW']:5} MH {ly['MH']:5}  {ly['PE']:3} x {ly['SIMD']:3}"
            f"  NF {ly['NF']:4} SF {ly['SF']:3} vectors {ly['input_vectors']:5} -> {ly['cycles_per_image']} cycles"
        )

    if args.synth_layers:
        idx = (
            range(len(man["layers"])) if args.synth_layers == "all" else [int(x) for x in args.synth_layers.split(",")]
        )
        result["synth_target"] = args.target
        result["synth"] = []
        for i in idx:
            print(f"synthesizing layer {i} ({args.target}, timeout {args.timeout:.0f} s)...", flush=True)
            r = synth_layer(rtl_dir, i, args.target, args.timeout)
            result["synth"].append(r)
            print("  " + json.dumps(r), flush=True)
            if args.json:  # keep partial results when a later layer runs out of time
                args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
