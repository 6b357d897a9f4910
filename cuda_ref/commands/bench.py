"""`bnn-hw bench cpu|gpu`: throughput of the golden model, the GPU reference and PyTorch, recorded as JSON.

`bench cpu` runs anywhere. `bench gpu` needs CuPy, a CUDA GPU and a CUDA build of PyTorch; without them it measures
nothing and says so in one line (exit status 1, or 0 with --if-available). Heavy imports happen in `run`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bnn_hw.argtypes import nonneg_int
from bnn_hw.errors import BnnError, UsageError

DEFAULT_OUT = {"cpu": "runs/bench/cpu.json", "gpu": "runs/bench/gpu.json"}
# Options of one target only: given with the other target they are refused (exit 2), not ignored.
CPU_ONLY = {"batch_size": "--batch-size", "threads": "--threads"}
GPU_ONLY = {
    "mlp": "--mlp",
    "matmul_size": "--matmul-size",
    "batches": "--batches",
    "network_batches": "--network-batches",
    "if_available": "--if-available",
}
CPU_BATCH = 2048


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be >= 1")
    return value


def _batches(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of batch sizes") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be >= 1, got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        choices=("cpu", "gpu"),
        help="cpu: golden (numpy) vs PyTorch float on the CPU; gpu: kernels and networks on the GPU",
    )
    parser.add_argument(
        "--model",
        metavar="FILE.bnn",
        help="model to run (default: a seeded random 784-256-256-10 MLP, said so in the output)",
    )
    parser.add_argument(
        "--images",
        type=_positive,
        default=10_000,
        metavar="N",
        help="test images per timed run: the first N Fashion-MNIST test images, repeated past 10000 (default: 10000)",
    )
    parser.add_argument("--data-dir", help="directory with the data set files (default: the usual places)")
    parser.add_argument(
        "--repeats",
        type=_positive,
        default=None,
        help="timed runs per measurement, median reported (default: cpu 3, gpu 10)",
    )
    parser.add_argument(
        "--seed", type=nonneg_int, default=0, help="seed of the random model, images and operands (default: 0)"
    )
    parser.add_argument(
        "-o",
        "--out",
        type=Path,
        help="JSON record to write (default: bench/TARGET.json in the --model's run folder, else "
        "runs/bench/TARGET.json)",
    )
    parser.add_argument("--output", dest="out", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    cpu = parser.add_argument_group("cpu only")
    cpu.add_argument(
        "--batch-size", type=_positive, default=None, help=f"images per golden/PyTorch call (default: {CPU_BATCH})"
    )
    cpu.add_argument("--threads", type=_positive, help="PyTorch CPU threads (default: PyTorch's choice)")
    gpu = parser.add_argument_group("gpu only")
    gpu.add_argument(
        "--mlp",
        action="append",
        metavar="SIZES",
        help="extra random MLP shapes for the layer and network parts, e.g. 784-4096-4096-4096-10 "
        "(repeatable; default: 784-256-256-10 and the paper's 784-4096-4096-4096-10)",
    )
    gpu.add_argument(
        "--matmul-size", type=_positive, default=None, help="M = N = K of the square matmul (default: 8192)"
    )
    gpu.add_argument("--batches", type=_batches, help="layer batch sizes (default: 1,4,16,...,65536)")
    gpu.add_argument("--network-batches", type=_batches, help="whole-network batch sizes (default: 256,4096,65536)")
    gpu.add_argument(
        "--if-available",
        action="store_true",
        default=None,
        help="without a usable GPU, print the one-line reason and exit 0 instead of 1",
    )


def run(args: argparse.Namespace) -> int:
    from bnn_hw.cuda_ref.bench_common import DEFAULT_MLP, load_workload, parse_mlp

    from bnn_hw import fileio
    from bnn_hw.artifacts import BenchCpu, BenchGpu

    other = GPU_ONLY if args.target == "cpu" else CPU_ONLY
    given = [flag for key, flag in other.items() if getattr(args, key, None) is not None]
    if given:
        raise UsageError(f"{', '.join(given)} only apply to `bench {'gpu' if args.target == 'cpu' else 'cpu'}`")
    out = args.out or default_out(args.target, args.model)
    fileio.writable_file(out)
    if args.target == "gpu":
        from bnn_hw import cuda_ref

        status = cuda_ref.available()
        if not status:
            message = f"bench gpu: not measured: {status.reason}"
            if args.if_available:
                print(message)
                return 0
            raise BnnError(
                f"not measured: {status.reason}; run `bnn-hw bench gpu` on a machine with a CUDA GPU "
                "(an H100/H200 for the recorded numbers)"
            )
    work = load_workload(args.model, args.images, seed=args.seed, data_dir=args.data_dir)
    if args.target == "cpu":
        from bnn_hw.cuda_ref.bench_cpu import bench_cpu, summary

        record = bench_cpu(
            work,
            repeats=args.repeats or 3,
            batch_size=args.batch_size or CPU_BATCH,
            threads=args.threads,
            progress=not args.quiet,
        )
    else:
        from bnn_hw.cuda_ref.bench_gpu import BATCHES, NETWORK_BATCHES, PAPER_MLP, bench_gpu, summary

        mlps = [parse_mlp(m) for m in args.mlp] if args.mlp else [DEFAULT_MLP, PAPER_MLP]
        record = bench_gpu(
            work,
            mlps=mlps,
            matmul_size=args.matmul_size or 8192,
            batches=args.batches or BATCHES,
            network_batches=args.network_batches or NETWORK_BATCHES,
            repeats=args.repeats or 10,
            seed=args.seed,
            progress=not args.quiet,
        )
    record["arguments"] = {
        key: str(value) if isinstance(value, Path) else value
        for key, value in vars(args).items()
        if not callable(value)
    }
    for line in summary(record):
        print(line)
    kind = BenchCpu if args.target == "cpu" else BenchGpu
    print(f"record: {kind.of(record).write(out)}")
    return 0


def default_out(target: str, model: str | None) -> Path:
    """Inside the model's run folder when the model lies in one (what `bnn-hw report RUN` reads), else runs/bench."""
    if model:
        folder = Path(model).resolve().parent
        if any((folder / marker).exists() for marker in ("train", "rtl", "manifest.json", "checkpoint.pt")):
            return Path(model).parent / "bench" / f"{target}.json"
    return Path(DEFAULT_OUT[target])
