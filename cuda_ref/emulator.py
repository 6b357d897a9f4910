"""Run the unchanged CUDA kernels on the CPU, for tests on machines without a GPU (never for speed).

`load()` compiles pack.cu, xnor_gemm.cu and bmma_gemm.cu with g++ against host_emulation.cuh (the threads of a block
are fibers that meet at real barriers, shared memory is shared, warp collectives and the binary mma are emulated per
the PTX ISA, a cp.async poisons its destination at issue and lands only at its wait_group, and misaligned vector
accesses abort) and returns copies of `cuda_ref.kernels` and `cuda_ref.network` whose "device arrays" are numpy
arrays and whose kernels are the emulated ones. The launchers, the network code and the kernels' index arithmetic
are thus exactly the code that runs on a GPU; only the hardware is replaced. Things the emulation cannot check: the
real mma fragment layout (it implements the documented one), timing, and memory-model subtleties beyond the barriers
and the cp.async groups.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import numpy as np
from bnn_hw.cuda_ref._device import KERNELS, Availability, source_path

from bnn_hw.errors import BnnError

EMULATED_SOURCES = ("pack", "xnor_gemm", "bmma_gemm")
HEADER = Path(__file__).with_name("host_emulation.cuh")
STATUS = Availability(
    True,
    "host emulation of the CUDA kernels (CPU threads; correctness only)",
    device="host emulation",
    compute_capability=(8, 0),
    tensor_cores=True,
)

_SCALARS = {
    np.dtype(np.int32): ctypes.c_int32,
    np.dtype(np.int64): ctypes.c_int64,
    np.dtype(np.uint32): ctypes.c_uint32,
    np.dtype(np.uint64): ctypes.c_uint64,
}


def compiler() -> str | None:
    return shutil.which(os.environ.get("CXX", "g++"))


def build(out_dir: str | Path | None = None, sources: dict[str, Path] | None = None) -> Path:
    """Compile the emulation library (cached by the hash of the sources); returns the .so path. `sources` replaces
    some of the .cu files by name (e.g. {"bmma_gemm": a modified copy}: how the tests show that the emulation
    catches a broken kernel)."""
    cxx = compiler()
    if cxx is None:
        raise BnnError("no C++ compiler (g++) found; the CPU emulation of the CUDA kernels needs one")
    sources = [Path((sources or {}).get(name) or source_path(name)) for name in EMULATED_SOURCES]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in [HEADER, *sources])).hexdigest()[:16]
    out_dir = Path(out_dir) if out_dir else Path(tempfile.gettempdir()) / "bnn-hw-cuda-emulation"
    out_dir.mkdir(parents=True, exist_ok=True)
    lib = out_dir / f"libcuda_ref_emu_{digest}.so"
    if lib.exists():
        return lib
    unit = [f'#include "{HEADER}"']
    unit += [f'#include "{p}"' for p in sources]
    unit += [f"EMU_EXPORT({fn})" for name in EMULATED_SOURCES for fn in KERNELS[name]]
    cpp = out_dir / f"emu_{digest}.cpp"
    cpp.write_text("\n".join(unit) + "\n")
    tmp = lib.with_suffix(f".{os.getpid()}.tmp")
    # -U_FORTIFY_SOURCE: fortified longjmp rejects the fiber switches between stacks (Ubuntu enables it by default)
    cmd = [
        cxx,
        "-std=c++20",
        "-O1",
        "-U_FORTIFY_SOURCE",
        "-pthread",
        "-shared",
        "-fPIC",
        "-DBNN_HOST_EMULATION",
        "-Wno-unknown-pragmas",
        "-o",
        str(tmp),
        str(cpp),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise BnnError(f"compiling the CUDA emulation failed: {done.stderr.strip()[:2000]}")
    tmp.replace(lib)
    return lib


class EmulatedKernel:
    """Called like a cupy RawKernel: kernel(grid, block, args). Arrays must be C-contiguous numpy arrays (a
    strided array would be read wrongly on the GPU too); scalars must be numpy scalars of the C parameter's type."""

    def __init__(self, fn: Any, name: str) -> None:
        self.fn, self.name = fn, name

    def __call__(self, grid: tuple[int, ...], block: tuple[int, ...], args: tuple[Any, ...]) -> None:
        if min(grid) < 1 or min(block) < 1:  # CUDA refuses such a launch (cudaErrorInvalidConfiguration)
            raise AssertionError(f"{self.name}: invalid launch configuration grid={grid} block={block}")
        keep: list[Any] = []
        ptrs = (ctypes.c_void_p * len(args))()
        for i, arg in enumerate(args):
            if isinstance(arg, np.ndarray):
                if not arg.flags.c_contiguous:
                    raise AssertionError(f"{self.name}: argument {i} is not C-contiguous")
                value = ctypes.c_void_p(arg.ctypes.data)
            elif isinstance(arg, np.generic) and arg.dtype in _SCALARS:
                value = _SCALARS[arg.dtype](arg.item())
            else:
                raise AssertionError(
                    f"{self.name}: argument {i} has type {type(arg).__name__}; pass numpy arrays "
                    "and numpy int32/int64/uint32 scalars (as cupy needs)"
                )
            keep.append(value)
            ptrs[i] = ctypes.cast(ctypes.pointer(value), ctypes.c_void_p)
        g = tuple(grid) + (1,) * (3 - len(grid))
        b = tuple(block) + (1,) * (3 - len(block))
        self.fn(*(ctypes.c_uint(v) for v in g + b), ptrs)


def fake_cupy() -> types.ModuleType:
    """A `cupy` stand-in backed by numpy: the subset cuda_ref.kernels and cuda_ref.network use."""
    cp = types.ModuleType("cupy")
    for name in (
        "ndarray",
        "zeros",
        "empty",
        "full",
        "asarray",
        "ascontiguousarray",
        "array_equal",
        "int8",
        "uint8",
        "int32",
        "uint32",
        "int64",
        "uint64",
        "float32",
        "concatenate",
        "pad",
    ):
        setattr(cp, name, getattr(np, name))
    cp.asnumpy = np.asarray
    return cp


def load(
    out_dir: str | Path | None = None, sources: dict[str, Path] | None = None
) -> tuple[types.ModuleType, types.ModuleType, types.ModuleType]:
    """(fake cupy, kernels module, network module) running on the emulated kernels (`sources`: as for build)."""
    lib = ctypes.CDLL(str(build(out_dir, sources)))
    table = {}
    for name in EMULATED_SOURCES:
        for fn in KERNELS[name]:
            c_fn = getattr(lib, f"emu_{fn}")
            c_fn.restype = None
            table[(name, fn)] = EmulatedKernel(c_fn, fn)

    def kernel(module_name: str, function: str) -> EmulatedKernel:
        return table[(module_name, function)]

    def require(tensor_cores: bool = False) -> Availability:
        return STATUS

    from bnn_hw import cuda_ref

    cp = fake_cupy()
    saved = {key: sys.modules.get(key) for key in ("cupy", "bnn_hw.cuda_ref.kernels", "bnn_hw.cuda_ref.network")}
    saved_attrs = {key: getattr(cuda_ref, key, None) for key in ("kernels", "network")}
    try:
        sys.modules["cupy"] = cp
        for key in ("bnn_hw.cuda_ref.kernels", "bnn_hw.cuda_ref.network"):
            sys.modules.pop(key, None)
        kernels = importlib.import_module("bnn_hw.cuda_ref.kernels")
        kernels.kernel, kernels.require = kernel, require
        network = importlib.import_module("bnn_hw.cuda_ref.network")
        network.require = require
    finally:
        for key, module in saved.items():
            if module is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = module
        for key, module in saved_attrs.items():  # `from cuda_ref import kernels` must find the real one again
            if module is None:
                if hasattr(cuda_ref, key):
                    delattr(cuda_ref, key)
            else:
                setattr(cuda_ref, key, module)
    return cp, kernels, network
