"""Tuning probe for the tensor-core kernels (a diagnostic, not the benchmark of record: that is gpu_throughput.py).

On a CUDA GPU it measures, in one short run:
- the binary and 8-bit mma.sync ceilings (cuda_ref/peak.cu) at 4, 8, 16 and 32 resident warps per SM: how many warps
  a kernel needs before the tensor cores, not latency, bound it;
- every tensor-core tile (or those named with --tiles) in both block orders on three shapes: the 8192^3 matmul
  (int32 accumulators out), the paper MLP's 4096 x 4096 bits layer and its 784 x 4096 pixel layer at batch 65,536
  (threshold fused, bits out); each result is compared with the tiled CUDA-core kernel's, bit for bit;
- whether Nsight Compute (ncu) is installed. `--once TILE` instead launches TILE once (no warm-up launch) on the
  4096 x 4096 layer at batch 65,536 (bits out) and once on 8192^3 (int32 accumulators out), for a profiler (an 8-bit
  `imma*` tile: once on the 784 x 4096 pixel layer at batch 65,536); the tiled CUDA-core reference runs too:

    python benchmarks/gpu_probe.py [--tiles bmma,bmma_v3] [--repeats 10] [-o runs/probe.json]
    ncu -k regex:'^bmma_gemm$' -c 2 --section SpeedOfLight --section WarpStateStats \
        python benchmarks/gpu_probe.py --once bmma
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bnn_hw.cuda_ref import available  # noqa: E402


def probe_peaks(sms: int, repeats: int) -> dict:
    """mma.sync ceilings with 4, 8, 16 and 32 resident warps per SM (blocks of 4 warps, 8 chains per warp)."""
    import cupy as cp
    from bnn_hw.cuda_ref._device import kernel
    from bnn_hw.cuda_ref.bench_gpu import cuda_time

    iters, threads, out = 16384, 128, {}
    for warps in (4, 8, 16, 32):
        blocks = sms * warps // 4
        sink = cp.zeros(blocks * threads, dtype=cp.int32)
        row = {}
        for name, macs in (("bmma_peak", 16 * 8 * 256), ("imma_peak", 16 * 8 * 32)):
            fn = kernel("peak", name)
            args = (np.int32(iters), np.uint32(0x9E3779B9), sink)
            t = cuda_time(lambda fn=fn, grid=(blocks,), args=args: fn(grid, (threads,), args), repeats)
            row[name] = blocks * threads // 32 * iters * 8 * macs / t
        out[warps] = row
        print(
            f"{warps:2d} warps/SM: bmma {row['bmma_peak'] / 1e12:7.0f} T bit-MAC/s, "
            f"imma {row['imma_peak'] / 1e12:6.0f} T MAC/s",
            flush=True,
        )
    return out


def probe_shape(
    m: int,
    n: int,
    k: int,
    pixels: bool,
    acc: bool,
    tiles: list[str],
    repeats: int,
    rng: np.random.Generator,
    orders: tuple[str, ...] = ("n", "m"),
    warmup: int = 2,
) -> dict:
    """Every tile in both block orders on one shape; outputs compared with the tiled CUDA-core kernel's."""
    import cupy as cp
    from bnn_hw.cuda_ref import kernels as K
    from bnn_hw.cuda_ref.bench_gpu import _random_words, cuda_time

    ld = K.row_words(k)
    w = cp.asarray(_random_words(rng, n, k, ld))
    a8 = w8 = None
    if pixels:
        img = cp.asarray(rng.integers(0, 256, size=(m, k), dtype=np.uint8))
        a = K.pack_planes(img, ld)
        a8 = K.gather_bytes(img.reshape(m, 1, k, 1), kernel_hw=(1, k))
        w8 = K.upload_signs_i8(cp.asnumpy(w), k)
    else:
        a = cp.asarray(_random_words(rng, m, k, ld))
    planes = K.PIXEL_PLANES if pixels else 1
    thr = cp.asarray(rng.integers(-k // 4, k // 2 + 1, size=n).astype(np.int32))
    ldo = K.row_words(n)
    outputs = {"acc_out": None, "bits_out": None}

    def run(name: str, order: str, out) -> None:
        outputs["acc_out" if acc else "bits_out"] = out
        if name in K.INT8_TENSOR_CORE:
            K.gemm(
                a8,
                w8,
                m=m,
                n=n,
                ld=K.byte_words(k),
                planes=1,
                kernel_name=name,
                thr=thr,
                ldo=ldo,
                order=order,
                **outputs,
            )
            return
        colc, roww = K.corrections(a, w, k, ld, planes, name)
        K.gemm(
            a,
            w,
            m=m,
            n=n,
            ld=ld,
            planes=planes,
            kernel_name=name,
            colc=colc,
            roww=roww,
            thr=thr,
            ldo=ldo,
            order=order,
            **outputs,
        )

    def fresh():
        return cp.zeros((m, n), dtype=cp.int32) if acc else cp.zeros((m, ldo), dtype=cp.uint32)

    ref = fresh()
    run("tiled", "n", ref)
    results = {}
    for name in tiles:
        if name in K.INT8_TENSOR_CORE and not pixels:
            continue
        for order in orders:
            out = fresh()
            seconds = cuda_time(lambda name=name, order=order, out=out: run(name, order, out), repeats, warmup)
            results[f"{name}@{order}"] = {
                "seconds": seconds,
                "macs_per_s": m * n * k / seconds,
                "equals_tiled": bool(cp.array_equal(out, ref)),
            }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", default="", help="comma-separated tensor-core tiles (default: all)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("-o", "--output", default="runs/probe.json")
    parser.add_argument("--once", metavar="TILE", help="launch TILE once per shape (for a profiler) and stop")
    args = parser.parse_args(argv)
    status = available()
    if not status:
        print(f"gpu_probe: nothing measured: {status.reason}")
        return 1
    import cupy as cp
    from bnn_hw.cuda_ref import kernels as K
    from bnn_hw.cuda_ref.bench_gpu import device_info

    tiles = [args.once] if args.once else [t for t in args.tiles.split(",") if t] or list(K.TENSOR_CORE_TILES)
    unknown = [t for t in tiles if t not in K.TENSOR_CORE_TILES]
    if unknown:
        print(f"gpu_probe: unknown tile {', '.join(unknown)}; choose from {', '.join(K.TENSOR_CORE_TILES)}")
        return 2
    if args.once:
        rng = np.random.default_rng(0)
        if args.once in K.INT8_TENSOR_CORE:  # pixel rows only
            probe_shape(65536, 4096, 784, True, False, tiles, 1, rng, orders=("n",), warmup=0)
        else:
            probe_shape(65536, 4096, 4096, False, False, tiles, 1, rng, orders=("n",), warmup=0)
            probe_shape(8192, 8192, 8192, False, True, tiles, 1, rng, orders=("n",), warmup=0)
        return 0

    dev = device_info()
    record: dict = {"device": dev, "ceilings_by_warps_per_sm": probe_peaks(dev["sms"], args.repeats), "tiles": {}}
    rng = np.random.default_rng(0)
    shapes = {
        "matmul 8192^3 (acc out)": (8192, 8192, 8192, False, True),
        "bits 4096->4096 @65536": (65536, 4096, 4096, False, False),
        "pixels 784->4096 @65536": (65536, 4096, 784, True, False),
    }
    for label, shape in shapes.items():
        results = probe_shape(*shape, tiles, args.repeats, rng)
        record["tiles"][label] = results
        best = sorted(results.items(), key=lambda kv: kv[1]["seconds"])
        print(
            f"{label}: "
            + ", ".join(
                f"{key} {r['macs_per_s'] / 1e12:.0f}T{'' if r['equals_tiled'] else ' WRONG'}" for key, r in best
            ),
            flush=True,
        )
        cp.get_default_memory_pool().free_all_blocks()
    record["ncu"] = shutil.which("ncu")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(record, indent=1))
    print(f"ncu: {record['ncu']}; record: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
