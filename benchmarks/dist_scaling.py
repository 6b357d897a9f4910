"""Benchmark: scaling past one process on this machine: simulation with 1 and 2 shards, sweep with 1 and 2 workers.

    .venv/bin/python benchmarks/dist_scaling.py sim --images 10000
    .venv/bin/python benchmarks/dist_scaling.py sweep

`sim`: a 784-256-256-10 binarized-input model (seeded random weights, thresholds at the median of real
Fashion-MNIST accumulators) generated at PE=8, SIMD=32, simulated on Verilator over N real test images, first as one
simulator process, then as 2 shards on a Dask LocalCluster of 2 workers; the build is made once beforehand (shared,
not timed in either). `sweep`: the same 4-point sweep of a small MLP run with 1 and with 2 Dask workers.
Both times of a pair are measured in one run, one after the other; the ratio is what RESULTS.md records.
Prints one JSON line per part and appends it to --out when given.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _model(train_images: np.ndarray):
    from bnn_hw import golden
    from bnn_hw.model import BnnModel, Layer
    from bnn_hw.packing import pack_bits

    rng = np.random.default_rng(7)
    x = train_images.reshape(len(train_images), -1) >= 128
    layers, k = [], x.shape[1]
    for i, n in enumerate([256, 256, 10]):
        layer = Layer(
            kind="dense",
            input="bits",
            output="scores" if i == 2 else "bits",
            in_shape=(k,),
            out_features=n,
            weights=pack_bits(rng.random((n, k)) < 0.5),
        )
        acc = golden.layer_accumulators(layer, x)
        if i == 2:
            layer = dataclasses.replace(layer, bias=np.zeros(n, dtype=np.int64))
        else:
            layer = dataclasses.replace(layer, thresholds=np.median(acc, axis=0).astype(np.int64))
            x = acc >= layer.thresholds
        layers.append(layer)
        k = n
    model = BnnModel(
        layers=layers, input_shape=(28, 28, 1), classes=[str(c) for c in range(10)], binarize_at=128, name="scaling"
    )
    model.validate()
    return model


def bench_sim(images_n: int, work: Path) -> dict:
    from bnn_hw.sim.manifest import load_design
    from bnn_hw.sim.network import harness_bench, plan_phases, run_network
    from bnn_hw.sim.shards import run_sharded
    from bnn_hw.sim.tools import find_simulator

    from bnn_hw import golden
    from bnn_hw.datasets import load_dataset
    from bnn_hw.model import save_model

    train, test = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    model = _model(train.images[:2000])
    save_model(model, work / "model.bnn")
    from bnn_hw.cli import main

    assert main(["rtl", str(work / "model.bnn"), "--pe", "8", "--simd", "32", "-o", str(work / "build"), "-q"]) == 0
    design = load_design(work / "build")
    images = np.ascontiguousarray(test.images[:images_n])
    ref = golden.run(model, images)
    sim = find_simulator("verilator")
    phases = plan_phases(
        images_n, seed=1, gap=0.2, stall=0.2, reset_check=True, measure=True,
        beats_per_image=design.pixels.beats_per_image, cycles_per_image=design.cycles_per_image,
        latency=design.latency,
    )  # fmt: skip
    shared = work / "sim" / f"build_{sim.name}"
    t0 = time.perf_counter()
    harness_bench(design, images_n, sim, shared).build()
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    one = run_network(design, images, ref.classes, ref.scores, sim, work / "sim" / "one", phases, build_dir=shared)
    one_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    two = run_sharded(design, images, ref.classes, ref.scores, sim, work / "sim", phases, 2, workers=2)
    two_s = time.perf_counter() - t2
    s1 = next(p for p in one["phases"] if p["name"] == "stream")
    s2 = next(p for p in two["phases"] if p["name"] == "stream")
    assert s1["result_words"] == s2["result_words"] and s2["matched"] == images_n, "sharded run differs"
    return {
        "part": "sim",
        "images": images_n,
        "simulator": sim.version,
        "build_s": round(build_s, 1),
        "one_process_s": round(one_s, 1),
        "two_shards_s": round(two_s, 1),
        "speedup": round(one_s / two_s, 3),
        "bit_exact": s2["mismatch_count"] == 0,
    }


def bench_sweep(work: Path) -> dict:
    """The same 4-point ice40 sweep (fast flow) of a 784-64-10 model with 1, then 2 Dask workers."""
    from bnn_hw.rtl.synthesis import yosys_version
    from bnn_hw.rtl.testing import random_dense_model

    from bnn_hw.flow import run_sweep
    from bnn_hw.model import save_model

    save_model(random_dense_model([64, 10], (28, 28, 1), seed=3, binarize_at=128, name="scaling"), work / "m.bnn")
    times = {}
    for jobs in (1, 2):
        t0 = time.perf_counter()
        summary = run_sweep(work / "m.bnn", work / f"sweep{jobs}", pe=[2, 4], simd=[16, 32], target="ice40", jobs=jobs)
        times[jobs] = time.perf_counter() - t0
        assert not summary["failures"] and len(summary["points"]) == 4
        workers = {p["worker"] for p in summary["points"]}
        assert len(workers) == jobs, workers
    return {
        "part": "sweep",
        "points": 4,
        "target": "ice40 (fast flow)",
        "yosys": yosys_version(),
        "one_worker_s": round(times[1], 1),
        "two_workers_s": round(times[2], 1),
        "speedup": round(times[1] / times[2], 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=("sim", "sweep"))
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--out", type=Path, default=None, help="append the JSON line here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bnn-scaling-") as tmp:
        if args.part == "sim":
            result = bench_sim(args.images, Path(tmp))
        else:
            result = bench_sweep(Path(tmp))
    result.update(
        {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.node()} ({os.cpu_count()} cores, {platform.machine()})",
            "load_avg_1min_at_end": round(os.getloadavg()[0], 2),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
        }
    )
    line = json.dumps(result)
    print(line)
    if args.out:
        with args.out.open("a") as fh:
            fh.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
