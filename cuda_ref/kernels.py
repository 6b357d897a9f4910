"""Python launchers of the CUDA kernels: one function per kernel, on CuPy arrays.

Packed operands are uint32 matrices of `ld` words per row (`row_words(k)`: a multiple of 4, zero past the fan-in),
the bit order of docs/format.md: a uint64 row of `bnn_hw.packing` is the same memory as two uint32 words. Pixel
operands hold 8 bit planes per row (8 * ld words, plane p = bit p of every pixel value).

Scalars are passed as explicit numpy int32/int64 so they match the C parameter types (a Python int would be
passed as 64 bits). Importing this module imports CuPy: import it only after `cuda_ref.available()` said yes.
"""

from __future__ import annotations

from typing import Literal

import cupy as cp
import numpy as np

from bnn_hw.errors import BnnError
from bnn_hw.packing import unpack_bits, words_for
from cuda_ref._device import kernel, require

GemmKernel = Literal["naive", "tiled", "bmma"]
THREADS = 256
TILE = 128  # output tile of both fused kernels (rows and columns)
FLAG_ACC, FLAG_BITS, FLAG_SCORES = 1, 2, 4
PIXEL_PLANES = 8
_I32 = np.int32
_I64 = np.int64


def words32(k: int) -> int:
    """32-bit words holding k bits."""
    return (k + 31) // 32


def row_words(k: int) -> int:
    """Row stride in words of a packed operand with k bits per row: ceil(k / 32) rounded up to a multiple of 4."""
    return (words32(k) + 3) // 4 * 4


def _grid(total: int, threads: int = THREADS) -> tuple[int]:
    return (max(1, (total + threads - 1) // threads),)


def _dummy() -> cp.ndarray:
    """A valid 1-element buffer for kernel pointer arguments the chosen flags never touch."""
    return cp.zeros(1, dtype=cp.int32)


# ------------------------------------------------------------------------------------------------ host <-> device


def upload_bits(words_u64: np.ndarray, k: int, ld: int | None = None) -> cp.ndarray:
    """bnn_hw.packing words (uint64, rows x ceil(k/64)) -> device uint32 (rows, ld), zero-padded."""
    ld = row_words(k) if ld is None else ld
    words = np.ascontiguousarray(np.asarray(words_u64, dtype=np.uint64)).astype("<u8", copy=False)
    as32 = words.view("<u4").reshape(words.shape[0], -1)
    host = np.zeros((words.shape[0], ld), dtype=np.uint32)
    cols = min(ld, as32.shape[1])
    host[:, :cols] = as32[:, :cols]
    return cp.asarray(host)


def download_bits(words: cp.ndarray, k: int) -> np.ndarray:
    """Device packed rows (uint32, rows x ld) -> host bool (rows, k), through bnn_hw.packing.unpack_bits."""
    host = cp.asnumpy(words).astype("<u4", copy=False)
    host = host.reshape(host.shape[0], -1)
    n32 = 2 * words_for(k)  # uint32 words of the uint64 rows unpack_bits reads
    buf = np.zeros((host.shape[0], n32), dtype="<u4")
    cols = min(n32, host.shape[1])
    buf[:, :cols] = host[:, :cols]
    return unpack_bits(buf.view("<u8"), k)


# ------------------------------------------------------------------------------------------------------- packing


def pack_signs(signs: cp.ndarray, ld: int | None = None) -> cp.ndarray:
    """int8 signs (rows, k), any value >= 0 meaning +1 -> packed bits (rows, ld)."""
    require()
    if signs.dtype != cp.int8 or signs.ndim != 2:
        raise BnnError(f"pack_signs needs a 2-D int8 array, got {signs.dtype} {signs.shape}")
    signs = cp.ascontiguousarray(signs)
    rows, k = signs.shape
    ld = row_words(k) if ld is None else ld
    out = cp.empty((rows, ld), dtype=cp.uint32)
    kernel("pack", "pack_signs_i8")(_grid(rows * ld * 32), (THREADS,),
                                    (signs, _I64(rows), _I32(k), _I64(k), out, _I32(ld)))
    return out


def gather_u8(images: cp.ndarray, *, kernel_hw: tuple[int, int], stride: int = 1, padding: int = 0,
              out_hw: tuple[int, int] = (1, 1), planes: int = PIXEL_PLANES, pad_pixel: int = 0, thresh: int = 0,
              pad_bit: int = 0, ld: int | None = None) -> cp.ndarray:
    """uint8 images (B, H, W, C) -> packed window rows (B * OH * OW, planes * ld).

    planes=8: bit planes of the pixel values (pixel layers); planes=1: bits pixel >= thresh (binarize_at).
    A dense layer is `kernel_hw=(H, W)` with one output position."""
    require()
    if images.dtype != cp.uint8 or images.ndim != 4:
        raise BnnError(f"gather_u8 needs uint8 images (B, H, W, C), got {images.dtype} {images.shape}")
    if planes not in (1, PIXEL_PLANES):
        raise BnnError(f"planes must be 1 or 8, got {planes}")
    images = cp.ascontiguousarray(images)
    b, h, w, c = images.shape
    kh, kw = kernel_hw
    oh, ow = out_hw
    k = kh * kw * c
    ld = row_words(k) if ld is None else ld
    rows = b * oh * ow
    out = cp.empty((rows, planes * ld), dtype=cp.uint32)
    kernel("pack", "gather_u8")(
        _grid(rows * ld), (THREADS,),
        (images, _I32(b), _I32(h), _I32(w), _I32(c), _I32(kh), _I32(kw), _I32(stride), _I32(padding), _I32(oh),
         _I32(ow), _I32(planes), _I32(pad_pixel), _I32(thresh), _I32(pad_bit), _I32(k), out, _I32(ld)))
    return out


def pack_planes(pixels: cp.ndarray, ld: int | None = None) -> cp.ndarray:
    """uint8 rows (M, K) -> their 8 bit planes, packed (M, 8 * ld): the pixel operand of a dense layer."""
    if pixels.ndim != 2:
        raise BnnError(f"pack_planes needs (M, K) uint8 rows, got shape {pixels.shape}")
    m, k = pixels.shape
    return gather_u8(pixels.reshape(m, 1, k, 1), kernel_hw=(1, k), ld=ld)


def gather_bits(fmap: cp.ndarray, *, channels: int, kernel_hw: tuple[int, int], stride: int = 1, padding: int = 0,
                out_hw: tuple[int, int] = (1, 1), pad_bit: int = 0, ld: int | None = None) -> cp.ndarray:
    """Packed feature map (B, H, W, ldp) holding `channels` bits per pixel -> packed window rows
    (B * OH * OW, ld) in (ky, kx, c) order; the flattening before a dense layer is `kernel_hw=(H, W)`."""
    require()
    if fmap.dtype != cp.uint32 or fmap.ndim != 4:
        raise BnnError(f"gather_bits needs a uint32 map (B, H, W, words), got {fmap.dtype} {fmap.shape}")
    fmap = cp.ascontiguousarray(fmap)
    b, h, w, ldp = fmap.shape
    kh, kw = kernel_hw
    oh, ow = out_hw
    k = kh * kw * channels
    ld = row_words(k) if ld is None else ld
    rows = b * oh * ow
    out = cp.empty((rows, ld), dtype=cp.uint32)
    kernel("pack", "gather_bits")(
        _grid(rows * ld), (THREADS,),
        (fmap, _I32(b), _I32(h), _I32(w), _I32(channels), _I32(ldp), _I32(kh), _I32(kw), _I32(stride),
         _I32(padding), _I32(oh), _I32(ow), _I32(pad_bit), _I32(k), out, _I32(ld)))
    return out


def or_pool(fmap: cp.ndarray, pool: int) -> cp.ndarray:
    """Max-pooling of +-1 values on a packed map (B, H, W, ldp): OR of pool x pool windows, floor mode."""
    require()
    fmap = cp.ascontiguousarray(fmap)
    b, h, w, ldp = fmap.shape
    ph, pw = h // pool, w // pool
    out = cp.empty((b, ph, pw, ldp), dtype=cp.uint32)
    kernel("pack", "or_pool")(_grid(out.size), (THREADS,),
                              (fmap, _I32(b), _I32(h), _I32(w), _I32(ldp), _I32(pool), _I32(ph), _I32(pw), out))
    return out


def row_weights(a: cp.ndarray, ld: int, planes: int = 1) -> cp.ndarray:
    """int32 per row: sum_p 2^p * popcount(plane p) (bits: the number of +1; pixel planes: the pixel sum)."""
    require()
    rows = a.shape[0]
    out = cp.empty(rows, dtype=cp.int32)
    kernel("pack", "row_weights")(_grid(rows * 32), (THREADS,),
                                  (cp.ascontiguousarray(a), _I64(rows), _I32(ld), _I32(planes), out))
    return out


def argmax_rows(scores: cp.ndarray) -> cp.ndarray:
    """int64 class per row of int32 scores: the first index of the maximum."""
    require()
    scores = cp.ascontiguousarray(scores, dtype=cp.int32)
    rows, n = scores.shape
    out = cp.empty(rows, dtype=cp.int64)
    kernel("pack", "argmax_rows")(_grid(rows), (THREADS,), (scores, _I64(rows), _I32(n), out))
    return out


# ---------------------------------------------------------------------------------------------------- matmuls


def gemm(a: cp.ndarray, b: cp.ndarray, *, m: int, n: int, ld: int, planes: int, kernel_name: GemmKernel,
         colc: cp.ndarray, roww: cp.ndarray | None = None, acc_out: cp.ndarray | None = None,
         thr: cp.ndarray | None = None, bits_out: cp.ndarray | None = None, ldo: int = 0, score_scale: int = 1,
         score_off: cp.ndarray | None = None, scores_out: cp.ndarray | None = None) -> None:
    """Launch a fused XNOR matmul (`tiled` on CUDA cores or `bmma` on tensor cores); outputs are written into the
    given arrays. `colc`/`roww` are the kernel's correction terms (see xnor_gemm.cu and bmma_gemm.cu)."""
    if ld % 4:
        raise BnnError(f"packed rows must be a multiple of 4 words, got ld={ld}")
    if a.shape[1] != planes * ld or b.shape[1] != ld or a.shape[0] < m or b.shape[0] < n:
        raise BnnError(f"operand shapes {a.shape} x {b.shape} do not match m={m} n={n} ld={ld} planes={planes}")
    flags = (FLAG_ACC if acc_out is not None else 0) | (FLAG_BITS if bits_out is not None else 0) | \
            (FLAG_SCORES if scores_out is not None else 0)
    dummy = _dummy()
    grid = ((m + TILE - 1) // TILE, (n + TILE - 1) // TILE)
    tail = (_I32(flags), dummy if acc_out is None else acc_out, dummy if thr is None else thr,
            dummy if bits_out is None else bits_out, _I32(ldo), _I32(score_scale),
            dummy if score_off is None else score_off, dummy if scores_out is None else scores_out)
    if kernel_name == "tiled":
        require()
        kernel("xnor_gemm", "xnor_gemm_tiled")(grid, (256,), (a, b, _I32(m), _I32(n), _I32(ld), _I32(planes), colc)
                                               + tail)
    elif kernel_name == "bmma":
        require(tensor_cores=True)
        if roww is None:
            raise BnnError("the tensor-core kernel needs the row weights of its activations")
        kernel("bmma_gemm", "bmma_gemm")(grid, (128,), (a, b, _I32(m), _I32(n), _I32(ld), _I32(planes), roww, colc)
                                         + tail)
    else:
        raise BnnError(f"unknown fused kernel {kernel_name!r}; choose tiled or bmma")


def naive_matmul(a: cp.ndarray, b: cp.ndarray, k: int) -> cp.ndarray:
    """The unoptimized baseline: one thread per output, XNOR popcount (int32, M x N) of bits rows."""
    require()
    m, ld = a.shape
    n = b.shape[0]
    out = cp.empty((m, n), dtype=cp.int32)
    block = (16, 16)
    grid = ((n + 15) // 16, (m + 15) // 16)
    kernel("xnor_gemm", "xnor_gemm_naive")(grid, block, (a, b, _I32(m), _I32(n), _I32(ld), _I32(k), out))
    return out


def corrections(a: cp.ndarray, b: cp.ndarray, k: int, ld: int, planes: int,
                kernel_name: GemmKernel) -> tuple[cp.ndarray, cp.ndarray | None]:
    """(colc, roww) turning a kernel's raw counts into the golden accumulator (XNOR popcount or pixel dot)."""
    n = b.shape[0]
    pw = row_weights(b, ld)  # popcount of each weight row
    if kernel_name == "tiled":  # acc = colc - mismatches
        colc = cp.full(n, k, dtype=cp.int32) if planes == 1 else (255 * pw).astype(cp.int32)
        return colc, None
    roww = row_weights(a, ld, planes)  # acc = 2 * and - roww + colc
    colc = (k - pw).astype(cp.int32) if planes == 1 else cp.zeros(n, dtype=cp.int32)
    return colc, roww


def xnor_matmul(a: cp.ndarray, b: cp.ndarray, k: int, *, planes: int = 1,
                kernel_name: GemmKernel = "tiled") -> cp.ndarray:
    """The golden accumulator as int32 (M, N): XNOR popcount of bits rows (planes=1), or the dot product of pixel
    rows with +-1 weights (planes=8). a: (M, planes * ld), b: (N, ld) packed."""
    m, n = a.shape[0], b.shape[0]
    ld = b.shape[1]
    out = cp.empty((m, n), dtype=cp.int32)
    if kernel_name == "naive":
        if planes != 1:
            raise BnnError("the naive kernel handles bits operands only")
        return naive_matmul(a, b, k)
    colc, roww = corrections(a, b, k, ld, planes, kernel_name)
    gemm(a, b, m=m, n=n, ld=ld, planes=planes, kernel_name=kernel_name, colc=colc, roww=roww, acc_out=out)
    return out
