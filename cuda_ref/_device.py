"""Whether the GPU reference can run here, and the compiled CUDA modules (imported lazily: no CuPy at import)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bnn_hw.errors import BnnError

# CUDA 13 (cupy-cuda13x) supports compute capability 7.5 and newer; binary mma with .and.popc needs 8.0.
MIN_COMPUTE_CAPABILITY = (7, 5)
TENSOR_CORE_COMPUTE_CAPABILITY = (8, 0)

# Every .cu source and the kernels the Python side takes from it; the nvcc test checks each name is emitted.
KERNELS: dict[str, tuple[str, ...]] = {
    "pack": ("pack_signs_i8", "gather_u8", "gather_bits", "or_pool", "row_weights", "argmax_rows"),
    "xnor_gemm": ("xnor_gemm_naive", "float_gemm_naive", "xnor_gemm_tiled"),
    "bmma_gemm": (
        "bmma_gemm",
        "bmma_gemm_256",
        "imma_gemm",
        "imma_gemm_256",
        "bmma_gemm_v",
        "bmma_gemm_256v",
        "imma_gemm_v",
        "imma_gemm_256v",
        "bmma_gemm_v3",
        "imma_gemm_v3",
    ),
    "peak": ("popc_peak", "bmma_peak", "imma_peak", "spin_cycles"),
}
# Sources that only compile for sm_80 and newer.
TENSOR_CORE_SOURCES = ("bmma_gemm",)
NVCC_OPTIONS = ("-std=c++17",)


def source_path(name: str) -> Path:
    """The .cu file of a kernel module."""
    return Path(__file__).with_name(f"{name}.cu")


@dataclass(frozen=True)
class Availability:
    """Truthy when the GPU reference can run; `reason` says why not (or which device will be used)."""

    ok: bool
    reason: str
    device: str = ""
    compute_capability: tuple[int, int] | None = None
    tensor_cores: bool = False  # binary tensor cores usable (sm_80+)

    def __bool__(self) -> bool:
        return self.ok


@functools.cache
def available() -> Availability:
    """Probe CuPy and the CUDA device once; never raises."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA install raising something else at import
        return Availability(
            False,
            f"CuPy is not installed or failed to import ({type(exc).__name__}: {exc}); "
            "install it with `pip install cupy-cuda13x` (the 'gpu' extra)",
        )
    try:
        if not cupy.is_available():
            return Availability(
                False,
                "CuPy is installed but found no usable CUDA device "
                "(cupy.is_available() is False: no GPU or no driver on this machine)",
            )
        dev = cupy.cuda.Device()
        cc_text = str(dev.compute_capability)
        cc = (int(cc_text[:-1]), int(cc_text[-1]))
        props = cupy.cuda.runtime.getDeviceProperties(dev.id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    except Exception as exc:
        return Availability(False, f"the CUDA device is not usable ({type(exc).__name__}: {exc})")
    if cc < MIN_COMPUTE_CAPABILITY:
        return Availability(
            False,
            f"{name} has compute capability {cc[0]}.{cc[1]}; the kernels need "
            f"{MIN_COMPUTE_CAPABILITY[0]}.{MIN_COMPUTE_CAPABILITY[1]} or newer",
            device=name,
            compute_capability=cc,
        )
    tensor_cores = cc >= TENSOR_CORE_COMPUTE_CAPABILITY
    note = "" if tensor_cores else " (no binary tensor cores: those need compute capability 8.0)"
    return Availability(
        True,
        f"{name}, compute capability {cc[0]}.{cc[1]}{note}",
        device=name,
        compute_capability=cc,
        tensor_cores=tensor_cores,
    )


def require(tensor_cores: bool = False) -> Availability:
    """The availability, or a BnnError saying why the GPU path cannot run."""
    status = available()
    if not status:
        raise BnnError(f"the GPU reference cannot run here: {status.reason}")
    if tensor_cores and not status.tensor_cores:
        raise BnnError(f"the binary tensor-core kernel needs compute capability 8.0 or newer; {status.reason}")
    return status


@functools.cache
def module(name: str) -> Any:
    """The compiled cupy.RawModule of cuda_ref/<name>.cu (compiled by NVRTC for this device, cached by CuPy)."""
    require(tensor_cores=name in TENSOR_CORE_SOURCES)
    import cupy

    return cupy.RawModule(code=source_path(name).read_text(), options=NVCC_OPTIONS)


def kernel(module_name: str, function: str) -> Any:
    """One kernel function of a module."""
    if function not in KERNELS.get(module_name, ()):
        raise KeyError(f"{function} is not a kernel of {module_name}.cu")
    return module(module_name).get_function(function)
