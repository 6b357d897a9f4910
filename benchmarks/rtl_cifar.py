"""BinaryNet's CIFAR-10 ConvNet (paper-cifar10 preset shapes) in hardware: folding, prediction, generation, synthesis.

Usage: .venv/bin/python benchmarks/rtl_cifar.py [--target-cycles 147456] [--synth] [--out build/cifar]
The network is 2x128C3-MP2-2x256C3-MP2-2x512C3-MP2-1024FC-1024FC-10 on 32x32x3 pixels (padding 1), with random
weights and thresholds (hardware cost and timing do not depend on the values). For several cycle targets it prints
the balanced automatic folding (`bnn-hw rtl --auto --target-cycles`) and the predicted images/s at 200 MHz, then
generates the RTL for the chosen target and optionally synthesizes it with Yosys synth_xilinx (per-layer numbers).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bnn_hw.model import PIXEL_MAX, BnnModel, Layer  # noqa: E402
from bnn_hw.packing import pack_bits  # noqa: E402

FINN_CNV_IMAGES_PER_S = 21906  # FINN paper, CNV on ZC706 at 200 MHz


def cifar_model(seed: int = 0) -> BnnModel:
    rng = np.random.default_rng(seed)
    layers = []
    shape: tuple[int, ...] = (32, 32, 3)
    for i, (n, pool) in enumerate([(128, 0), (128, 2), (256, 0), (256, 2), (512, 0), (512, 2)]):
        layer = Layer(kind="conv", input="pixels" if i == 0 else "bits", output="bits", in_shape=shape,
                      out_features=n, weights=np.zeros((n, 1), np.uint64), kernel=3, stride=1, padding=1,
                      pad_value=0 if i == 0 else -1, pool=pool)
        layers.append(layer)
        shape = layer.out_shape
    k = int(np.prod(shape))
    for n, out in [(1024, "bits"), (1024, "bits"), (10, "scores")]:
        layers.append(Layer(kind="dense", input="bits", output=out, in_shape=(k,), out_features=n,
                            weights=np.zeros((n, 1), np.uint64)))
        k = n
    for layer in layers:
        n, kin = layer.out_features, layer.fan_in
        layer.weights = pack_bits(rng.random((n, kin)) < 0.5)
        if layer.output == "bits":
            half = kin // 2 if layer.input == "bits" else 0
            spread = int(np.sqrt(kin)) * (1 if layer.input == "bits" else PIXEL_MAX)
            layer.thresholds = rng.integers(half - spread, half + spread + 1, n).astype(np.int64)
        else:
            layer.bias = rng.integers(-3, 4, n).astype(np.int64)
    model = BnnModel(layers=layers, input_shape=(32, 32, 3), classes=[f"class{i}" for i in range(10)],
                     name="paper-cifar10-random")
    model.validate()
    return model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--target-cycles", type=int, default=147456)
    ap.add_argument("--synth", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("build/cifar"))
    args = ap.parse_args()

    from rtl.autofold import auto_fold
    from rtl.folding import make_plan
    from rtl.generate import generate

    model = cifar_model()
    print("| target cycles | cycles/image | lanes | images/s @ 200 MHz | vs FINN CNV | PE x SIMD per layer |")
    print("|---|---|---|---|---|---|")
    for t in (9216, 18432, 36864, 73728, 147456):
        pe, simd = auto_fold(model, target_cycles=t)
        plan = make_plan(model, pe, simd)
        ips = 200e6 / plan.cycles_per_image
        print(f"| {t} | {plan.cycles_per_image} | {sum(f.lanes for f in plan.layers)} | {ips:,.0f} | "
              f"{ips / FINN_CNV_IMAGES_PER_S:.2f}x | {' '.join(f'{f.PE}x{f.SIMD}' for f in plan.layers)} |")
    pe, simd = auto_fold(model, target_cycles=args.target_cycles)
    plan = make_plan(model, pe, simd)
    t0 = time.perf_counter()
    man = generate(model, plan, args.out, {"benchmark": "rtl_cifar", "target_cycles": args.target_cycles,
                                           "pe": pe, "simd": simd})
    conv_s = time.perf_counter() - t0
    print(f"\ngenerated {args.out}/bnn_top.v in {conv_s:.1f} s: {man['predicted']['cycles_per_image']} cycles/image "
          f"({200e6 / man['predicted']['cycles_per_image']:,.0f} images/s at 200 MHz), latency "
          f"{man['predicted']['latency_cycles']} cycles, memory {man['memory_bits']['total']:,} bits")
    if args.synth:
        from rtl.synthesis import run_yosys

        t0 = time.perf_counter()
        rep = run_yosys([args.out / "bnn_top.v"], "bnn_top", "xilinx", args.out,
                        keep=[f"bnn_top.layer{i}" for i in range(len(model.layers))])
        print(f"synth_xilinx in {time.perf_counter() - t0:.0f} s; check -assert clean")
        print(json.dumps({"total": rep["total"], **{k: v for k, v in rep["modules"].items() if "layer" in k}},
                         indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
