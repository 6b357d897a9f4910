"""Every CUDA source compiles for sm_80 and sm_90 (A100, H100/H200) with nvcc, warnings and register spills as
errors, and emits the kernels the Python side launches. Runs without a GPU; skips when nvcc is missing."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from bnn_hw.cuda_ref._device import KERNELS, NVCC_OPTIONS, source_path

NVCC = shutil.which("nvcc")
PTXAS = shutil.which("ptxas")
ARCHS = ("sm_80", "sm_90")
needs_nvcc = pytest.mark.skipif(
    NVCC is None or PTXAS is None, reason="nvcc/ptxas not on PATH (install the CUDA toolkit to compile the kernels)"
)


def test_every_source_is_listed() -> None:
    on_disk = {p.stem for p in Path(source_path("pack")).parent.glob("*.cu")}
    assert on_disk == set(KERNELS), "cuda_ref/_device.py KERNELS must list every .cu file"


def _compile(name: str, arch: str, out: Path) -> tuple[str, str]:
    """nvcc to PTX, then ptxas to a cubin: (error text or "", PTX text)."""
    ptx = out / f"{name}_{arch}.ptx"
    front = subprocess.run(
        [
            NVCC,
            *NVCC_OPTIONS,
            f"-arch={arch}",
            "-ptx",
            "-Werror",
            "all-warnings",
            "-o",
            str(ptx),
            str(source_path(name)),
        ],
        capture_output=True,
        text=True,
    )
    if front.returncode:
        return f"nvcc failed on {name}.cu for {arch}:\n{front.stderr}", ""
    back = subprocess.run(
        [
            PTXAS,
            f"-arch={arch}",
            "-v",
            "--warn-on-spills",
            "--warning-as-error",
            "-o",
            str(out / f"{name}_{arch}.cubin"),
            str(ptx),
        ],
        capture_output=True,
        text=True,
    )
    if back.returncode:
        return f"ptxas failed on {name}.cu for {arch}:\n{back.stderr}", ""
    return "", ptx.read_text()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[tuple[str, str], tuple[str, str]]:
    """Every (source, arch) compiled once, two at a time (the compiles are independent)."""
    out = tmp_path_factory.mktemp("cuda")
    jobs = [(name, arch) for name in sorted(KERNELS) for arch in ARCHS]
    with ThreadPoolExecutor(max_workers=max(2, (os.cpu_count() or 2) // 2)) as pool:
        results = pool.map(lambda job: _compile(*job, out), jobs)
        return dict(zip(jobs, results, strict=True))


@needs_nvcc
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_compiles(compiled, name: str, arch: str) -> None:
    error, text = compiled[(name, arch)]
    assert not error, error
    entries = set(re.findall(r"\.entry\s+(\w+)\s*\(", text))
    assert set(KERNELS[name]) <= entries, f"{name}.cu lacks kernels {set(KERNELS[name]) - entries}"
    if name == "bmma_gemm":
        # AND, not XOR: sm_90 emulates .xor.popc with two BMMAs (shared/REFERENCE.md)
        assert "mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc" in text
        assert ".xor.popc" not in text


def _nvrtc() -> ctypes.CDLL | None:
    """libnvrtc as CuPy would use it (from the nvidia-*-cu13 wheels), or None."""
    try:
        import nvidia.cu13 as cu13  # noqa: F401  (the wheel that ships libnvrtc next to torch/cupy)
    except ImportError:
        return None
    lib_dir = Path(next(iter(cu13.__path__))) / "lib"
    builtins = sorted(lib_dir.glob("libnvrtc-builtins.so.*"))
    main = sorted(lib_dir.glob("libnvrtc.so.*"))
    if not builtins or not main:
        return None
    ctypes.CDLL(str(builtins[0]), mode=ctypes.RTLD_GLOBAL)  # nvrtc dlopens it by name
    return ctypes.CDLL(str(main[0]))


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_nvrtc_compiles(name: str) -> None:
    """CuPy's RawModule compiles with NVRTC, not nvcc: the sources must compile there too (to PTX; the nvcc test
    above already ran ptxas on the same code)."""
    lib = _nvrtc()
    if lib is None:
        pytest.skip("libnvrtc (nvidia-cuda-nvrtc wheel) not found")
    for arch in ("compute_80",):
        prog = ctypes.c_void_p()
        assert (
            lib.nvrtcCreateProgram(ctypes.byref(prog), source_path(name).read_bytes(), name.encode(), 0, None, None)
            == 0
        )
        opts = [f"--gpu-architecture={arch}".encode(), *(o.encode() for o in NVCC_OPTIONS)]
        rc = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
        assert rc == 0, f"NVRTC failed on {name}.cu for {arch}:\n{log.value.decode()}"
