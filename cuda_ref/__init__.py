"""cuda_ref: the CuPy GPU reference of the bnn-hw model, and the GPU/CPU throughput benchmarks.

CUDA C++ kernels (``cuda_ref/*.cu``, loaded with ``cupy.RawModule``) compute exactly what ``bnn_hw.golden`` computes:
bit packing, XNOR-popcount matrix multiplies on CUDA cores and on binary tensor cores, thresholds fused so that a
layer's output leaves packed for the next layer, the first layer on 8-bit pixels (bit planes), scores and classes.
``cuda_ref.run(model, images)`` has the interface and the results of ``bnn_hw.golden.run``.

Importing this package needs numpy alone: CuPy is imported only when a kernel is first used, so
``cuda_ref.available()`` can say why the GPU path cannot run (no CuPy, no device, too old a device).
``cuda_ref.bench("cpu" | "gpu", ...)`` is the call `bnn-hw bench` makes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bnn_hw.cuda_ref._device import Availability, available

if TYPE_CHECKING:
    import numpy as np

    from bnn_hw.artifacts import BenchCpu, BenchGpu
    from bnn_hw.golden import GoldenResult
    from bnn_hw.model import BnnModel

__all__ = ["Availability", "available", "bench", "run", "predict"]


def run(model: BnnModel, images: np.ndarray, **options: Any) -> GoldenResult:
    """Run the model on the GPU; same arguments and results as `bnn_hw.golden.run` (see `cuda_ref.network.run`)."""
    from bnn_hw.cuda_ref._device import require

    require()  # a one-line BnnError saying why, before CuPy is imported
    from bnn_hw.cuda_ref.network import run as _run

    return _run(model, images, **options)


def predict(model: BnnModel, images: np.ndarray, **options: Any) -> np.ndarray:
    """Predicted classes only (int64), computed on the GPU without keeping per-layer traces."""
    from bnn_hw.cuda_ref._device import require

    require()
    from bnn_hw.cuda_ref.network import predict as _predict

    return _predict(model, images, **options)


def bench(target: str = "cpu", **options: Any) -> BenchCpu | BenchGpu:
    """Measure throughput (`bnn-hw bench cpu|gpu`) and return the record it writes (to `out`, default
    runs/bench/TARGET.json). `options` are `bnn-hw bench`'s: model, images, repeats, seed, batch_size, quiet, ..."""
    from bnn_hw.cuda_ref.commands.bench import DEFAULT_OUT

    from bnn_hw.artifacts import BenchCpu, BenchGpu
    from bnn_hw.options import run_command

    out = options.pop("out", None) or options.pop("output", None) or DEFAULT_OUT.get(target, "")
    run_command("bnn_hw.cuda_ref.commands.bench", "bench", target=target, out=str(out), **options)
    return (BenchCpu if target == "cpu" else BenchGpu).read(out)
