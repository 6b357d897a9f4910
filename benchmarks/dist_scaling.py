"""Benchmark: scaling past one process on this machine: simulation with 1 and 2 shards, sweep with 1 and 2 workers.

    .venv/bin/python benchmarks/dist_scaling.py sim --images 10000 --repeat 3
    .venv/bin/python benchmarks/dist_scaling.py sweep

`sim`: a 784-256-256-10 binarized-input model (seeded random weights, thresholds at the median of real
Fashion-MNIST accumulators) generated at PE=8, SIMD=32, simulated on Verilator over N real test images as one
simulator process and as 2 shards (`run_sharded`: two threads, each with its own simulator process), alternately,
`--repeat` times each; `--dask` adds a 2-shard run on a Dask LocalCluster of 2 workers started beforehand (the
`--scheduler` path, cluster start not timed). The build is made once beforehand (shared, not timed in any run).
Every sharded result must equal the single run's, image for image. `sweep`: the same 4-point sweep of a small MLP
run with 1 and with 2 Dask workers. Prints one JSON line per part and appends it to --out when given; each timed run
records the 1-minute load average at its end (the machine is shared).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import statistics
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


def bench_sim(images_n: int, work: Path, repeat: int = 1, dask: bool = False) -> dict:
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
    runs: list[dict] = []
    words = None

    def cpu() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    def timed(what: str, call) -> dict:
        t, c = time.perf_counter(), cpu()
        out = call()
        seconds, cpu_s = time.perf_counter() - t, cpu() - c
        stream = next(p for p in out["phases"] if p["name"] == "stream")
        nonlocal words
        words = stream["result_words"] if words is None else words
        assert stream["result_words"] == words and stream["matched"] == images_n, f"{what} differs"
        assert stream["mismatch_count"] == 0
        run = {"run": what, "s": round(seconds, 1), "load_1min": round(os.getloadavg()[0], 2)}
        if what != "two_dask":  # the LocalCluster's workers are not this process's reaped children
            run["cpu_s"] = round(cpu_s, 1)  # this process and its simulator processes, user + system
        if "shards" in out:
            run["shard_s"] = [round(x["seconds"], 1) for x in out["shards"]]
        runs.append(run)
        return out

    cluster = None
    if dask:
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, host="127.0.0.1")
    try:
        for _ in range(repeat):
            timed(
                "one", lambda: run_network(design, images, ref.classes, ref.scores, sim, work / "sim" / "one", phases,
                                           build_dir=shared),
            )  # fmt: skip
            timed("two", lambda: run_sharded(design, images, ref.classes, ref.scores, sim, work / "sim", phases, 2))
            if cluster is not None:
                timed(
                    "two_dask", lambda: run_sharded(design, images, ref.classes, ref.scores, sim, work / "sim", phases,
                                                    2, scheduler=cluster.scheduler_address),
                )  # fmt: skip
    finally:
        if cluster is not None:
            cluster.close()
    one = [r["s"] for r in runs if r["run"] == "one"]
    two = [r["s"] for r in runs if r["run"] == "two"]
    result = {
        "part": "sim",
        "images": images_n,
        "simulator": sim.version,
        "build_s": round(build_s, 1),
        "runs": runs,
        "one_process_s": one,
        "two_shards_s": two,
        "speedup_each": [round(a / b, 3) for a, b in zip(one, two, strict=True)],
        "speedup_median": round(statistics.median(one) / statistics.median(two), 3),
        "bit_exact": True,
    }
    if cluster is not None:
        dask_two = [r["s"] for r in runs if r["run"] == "two_dask"]
        result["two_shards_dask_s"] = dask_two
        result["speedup_dask_median"] = round(statistics.median(one) / statistics.median(dask_two), 3)
    return result


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
    ap.add_argument("--repeat", type=int, default=1, help="sim: timed runs of each kind, alternating")
    ap.add_argument("--dask", action="store_true", help="sim: also time 2 shards on a Dask LocalCluster")
    ap.add_argument("--out", type=Path, default=None, help="append the JSON line here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bnn-scaling-") as tmp:
        if args.part == "sim":
            result = bench_sim(args.images, Path(tmp), args.repeat, args.dask)
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
