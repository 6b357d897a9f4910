"""One interface for "the reference": the CuPy GPU kernels when a GPU is usable, else the numpy golden model.

Both return a `bnn_hw.golden.GoldenResult`; callers record which one answered. cuda_ref is imported only here, at
call time, so the hub never loads it at import.
"""

from __future__ import annotations

import numpy as np

from bnn_hw import golden
from bnn_hw.errors import BnnError
from bnn_hw.model import BnnModel

CHOICES = ("auto", "golden", "gpu")


def gpu_status() -> tuple[bool, str]:
    """Whether the CuPy reference can run here, and why not."""
    try:
        from bnn_hw import cuda_ref
    except ImportError as exc:  # the spoke is part of the distribution; a broken install says so
        return False, f"cuda_ref could not be imported ({exc})"
    status = cuda_ref.available()
    return bool(status), getattr(status, "reason", "")


def reference_run(model: BnnModel, images: np.ndarray, prefer: str = "auto") -> tuple[golden.GoldenResult, str]:
    """Run the reference; returns the result and the name of the reference used ("cupy-gpu" or "numpy-golden")."""
    if prefer not in CHOICES:
        raise BnnError(f"unknown reference {prefer!r}; choose from {', '.join(CHOICES)}")
    if prefer != "golden":
        ok, why = gpu_status()
        if ok:
            from bnn_hw import cuda_ref

            return cuda_ref.run(model, images), "cupy-gpu"
        if prefer == "gpu":
            raise BnnError(f"the GPU reference is not available: {why}")
    return golden.run(model, images), "numpy-golden"
