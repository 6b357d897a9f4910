"""One interface for "the reference": the GPU kernels when a GPU is usable, else the numpy golden model.

Both return a `bnn_hw.golden.GoldenResult`; callers record which one answered. The core knows no spoke: the GPU
backend is found at call time through the `bnn_hw.references` entry point (pyproject.toml names bnn_hw.cuda_ref), an
object with `available()` (truthy, or falsy with a `.reason`) and `run(model, images)`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bnn_hw import golden
from bnn_hw.errors import BnnError
from bnn_hw.model import BnnModel
from bnn_hw.plugins import entry_points

CHOICES = ("auto", "golden", "gpu")
ENTRY_POINTS = "bnn_hw.references"


def _backend(name: str) -> Any:
    """The registered reference backend `name`; ImportError saying why when there is none or it cannot load."""
    found = entry_points(ENTRY_POINTS).get(name)
    if found is None:
        raise ImportError(f"no {name!r} backend registered under the {ENTRY_POINTS!r} entry points (reinstall bnn-hw)")
    return found.load()


def gpu_status() -> tuple[bool, str]:
    """Whether the GPU reference can run here, and why not."""
    try:
        backend = _backend("gpu")
    except ImportError as exc:  # the spoke is part of the distribution; a broken install says so
        return False, f"the GPU reference could not be loaded ({exc})"
    status = backend.available()
    return bool(status), getattr(status, "reason", "")


def reference_run(model: BnnModel, images: np.ndarray, prefer: str = "auto") -> tuple[golden.GoldenResult, str]:
    """Run the reference; returns the result and the name of the reference used ("cupy-gpu" or "numpy-golden")."""
    if prefer not in CHOICES:
        raise BnnError(f"unknown reference {prefer!r}; choose from {', '.join(CHOICES)}")
    if prefer != "golden":
        ok, why = gpu_status()
        if ok:
            return _backend("gpu").run(model, images), "cupy-gpu"
        if prefer == "gpu":
            raise BnnError(f"the GPU reference is not available: {why}")
    return golden.run(model, images), "numpy-golden"
