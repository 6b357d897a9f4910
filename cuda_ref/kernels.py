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
from bnn_hw.cuda_ref._device import kernel, require

from bnn_hw.errors import BnnError
from bnn_hw.packing import bits_to_signs, unpack_bits, words_for

GemmKernel = Literal[
    "naive",
    "tiled",
    "bmma",
    "bmma256",
    "bmma_v",
    "bmma256_v",
    "bmma_v3",
    "imma",
    "imma256",
    "imma_v",
    "imma256_v",
    "imma_v3",
]
THREADS = 256
TILE = 128  # output tile of both fused kernels (rows and columns)
FLAG_ACC, FLAG_BITS, FLAG_SCORES, FLAG_N_FAST = 1, 2, 4, 8
BlockOrder = Literal["n", "m"]
# Tensor-core kernels of bmma_gemm.cu: name -> (function, block rows, block columns, threads); keep in step with
# its BT_KERNEL instances. bmma*: binary (bits or 8 bit planes); imma*: 8-bit pixels times int8 +-1 weights;
# *_v: the same tiles with 128-bit fragment reads; *_v3: 128 x 128 with those and a three-stage pipeline.
TENSOR_CORE_TILES = {
    "bmma": ("bmma_gemm", 128, 128, 128),
    "bmma256": ("bmma_gemm_256", 256, 128, 256),
    "bmma_v": ("bmma_gemm_v", 128, 128, 128),
    "bmma256_v": ("bmma_gemm_256v", 256, 128, 256),
    "bmma_v3": ("bmma_gemm_v3", 128, 128, 128),
    "imma": ("imma_gemm", 128, 128, 128),
    "imma256": ("imma_gemm_256", 256, 128, 256),
    "imma_v": ("imma_gemm_v", 128, 128, 128),
    "imma256_v": ("imma_gemm_256v", 256, 128, 256),
    "imma_v3": ("imma_gemm_v3", 128, 128, 128),
}
BINARY_TENSOR_CORE = tuple(name for name in TENSOR_CORE_TILES if name.startswith("bmma"))
INT8_TENSOR_CORE = tuple(name for name in TENSOR_CORE_TILES if name.startswith("imma"))


def int8_partner(name: str) -> str:
    """The 8-bit tensor-core kernel with the same tile as binary kernel `name` (bmma256_v -> imma256_v)."""
    return "imma" + name[len("bmma") :]


PIXEL_PLANES = 8
_I32 = np.int32
_I64 = np.int64


def words32(k: int) -> int:
    """32-bit words holding k bits."""
    return (k + 31) // 32


def row_words(k: int) -> int:
    """Row stride in words of a packed operand with k bits per row: ceil(k / 32) rounded up to a multiple of 4."""
    return (words32(k) + 3) // 4 * 4


def byte_words(k: int) -> int:
    """Row stride in words of k bytes (the 8-bit kernels' operands): ceil(k / 4) rounded up to a multiple of 4."""
    return row_words(8 * k)


def _grid(total: int, threads: int = THREADS) -> tuple[int]:
    return (max(1, (total + threads - 1) // threads),)


def _address(x: cp.ndarray) -> int:
    """Device address of an array's first element (a host address for the numpy arrays of the CPU emulation)."""
    ptr = getattr(x.data, "ptr", None)  # cupy's MemoryPointer; numpy's .data is a memoryview
    return x.ctypes.data if ptr is None else ptr


def _check_outputs(
    m: int,
    n: int,
    ldo: int,
    kernel_name: str,
    acc_out: cp.ndarray | None,
    bits_out: cp.ndarray | None,
    scores_out: cp.ndarray | None,
) -> None:
    """The output buffers a fused matmul writes: C-contiguous, of the right type and size, and (tensor-core
    kernels, even N) 8-byte aligned, since those store two adjacent int32 values as one 8-byte word."""
    for what, x in (("acc_out", acc_out), ("scores_out", scores_out)):
        if x is None:
            continue
        if x.dtype != cp.int32 or not x.flags.c_contiguous or x.size < m * n:
            raise BnnError(
                f"{what} must be a C-contiguous int32 array of at least m * n = {m * n} values, got {x.dtype} {x.shape}"
            )
        if kernel_name in TENSOR_CORE_TILES and n % 2 == 0 and _address(x) % 8:
            raise BnnError(
                f"{what} must be 8-byte aligned for the tensor-core kernels with an even n={n} (they "
                "store int32 pairs as one 8-byte word); pass a freshly allocated array"
            )
    if bits_out is not None:
        if ldo < words32(n):
            raise BnnError(f"ldo={ldo} words cannot hold n={n} output bits per row (at least {words32(n)})")
        if bits_out.dtype != cp.uint32 or not bits_out.flags.c_contiguous or bits_out.size < m * ldo:
            raise BnnError(
                f"bits_out must be a C-contiguous uint32 array of at least m * ldo = {m * ldo} words, "
                f"got {bits_out.dtype} {bits_out.shape}"
            )


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


def upload_signs_i8(words: np.ndarray, k: int, ld: int | None = None) -> cp.ndarray:
    """Packed weight rows (bnn_hw.packing's uint64, or the kernels' uint32) -> int8 +-1 (0 past k), (rows, 4 * ld)
    bytes seen as uint32 (rows, ld): the weight operand of the 8-bit tensor-core kernels."""
    ld = byte_words(k) if ld is None else ld
    host = np.zeros((words.shape[0], 4 * ld), dtype=np.int8)
    host[:, :k] = bits_to_signs(unpack_bits(words, k))
    return cp.asarray(host.view(np.uint32))


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
    kernel("pack", "pack_signs_i8")(
        _grid(rows * ld * 32), (THREADS,), (signs, _I64(rows), _I32(k), _I64(k), out, _I32(ld))
    )
    return out


def gather_u8(
    images: cp.ndarray,
    *,
    kernel_hw: tuple[int, int],
    stride: int = 1,
    padding: int = 0,
    out_hw: tuple[int, int] = (1, 1),
    planes: int = PIXEL_PLANES,
    pad_pixel: int = 0,
    thresh: int = 0,
    pad_bit: int = 0,
    ld: int | None = None,
) -> cp.ndarray:
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
        _grid(rows * ld),
        (THREADS,),
        (
            images,
            _I32(b),
            _I32(h),
            _I32(w),
            _I32(c),
            _I32(kh),
            _I32(kw),
            _I32(stride),
            _I32(padding),
            _I32(oh),
            _I32(ow),
            _I32(planes),
            _I32(pad_pixel),
            _I32(thresh),
            _I32(pad_bit),
            _I32(k),
            out,
            _I32(ld),
        ),
    )
    return out


def pack_planes(pixels: cp.ndarray, ld: int | None = None) -> cp.ndarray:
    """uint8 rows (M, K) -> their 8 bit planes, packed (M, 8 * ld): the pixel operand of a dense layer."""
    if pixels.ndim != 2:
        raise BnnError(f"pack_planes needs (M, K) uint8 rows, got shape {pixels.shape}")
    m, k = pixels.shape
    return gather_u8(pixels.reshape(m, 1, k, 1), kernel_hw=(1, k), ld=ld)


def _window_index(
    hp: int, wp: int, c: int, kernel_hw: tuple[int, int], stride: int, out_hw: tuple[int, int]
) -> np.ndarray:
    """int64 (OH * OW, KH * KW * C): where each window element sits in a padded (HP, WP, C) image, (ky, kx, c) order."""
    kh, kw = kernel_hw
    oh, ow = out_hw
    oy, ox = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")
    ky, kx, ci = np.meshgrid(np.arange(kh), np.arange(kw), np.arange(c), indexing="ij")
    y = oy.reshape(-1, 1) * stride + ky.reshape(1, -1)
    x = ox.reshape(-1, 1) * stride + kx.reshape(1, -1)
    return ((y * wp + x) * c + ci.reshape(1, -1)).astype(np.int64)


def gather_bytes(
    images: cp.ndarray,
    *,
    kernel_hw: tuple[int, int],
    stride: int = 1,
    padding: int = 0,
    out_hw: tuple[int, int] = (1, 1),
    pad_pixel: int = 0,
    ld: int | None = None,
) -> cp.ndarray:
    """uint8 images (B, H, W, C) -> pixel window rows (B * OH * OW, 4 * ld) bytes, 0 past the fan-in, seen as uint32
    (B * OH * OW, ld): the activation operand of the 8-bit kernels. A dense layer is `kernel_hw=(H, W)`."""
    if images.dtype != cp.uint8 or images.ndim != 4:
        raise BnnError(f"gather_bytes needs uint8 images (B, H, W, C), got {images.dtype} {images.shape}")
    b, h, w, c = images.shape
    kh, kw = kernel_hw
    oh, ow = out_hw
    k = kh * kw * c
    ld = byte_words(k) if ld is None else ld
    out = cp.zeros((b * oh * ow, 4 * ld), dtype=cp.uint8)
    if (kh, kw, oh, ow, padding) == (h, w, 1, 1, 0):  # dense: the image itself
        out[:, :k] = images.reshape(b, k)
    else:
        if padding:
            images = cp.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)), constant_values=pad_pixel)
        hp, wp = h + 2 * padding, w + 2 * padding
        index = cp.asarray(_window_index(hp, wp, c, kernel_hw, stride, out_hw))
        out[:, :k] = images.reshape(b, hp * wp * c)[:, index].reshape(b * oh * ow, k)
    return out.view(cp.uint32)


def gather_bits(
    fmap: cp.ndarray,
    *,
    channels: int,
    kernel_hw: tuple[int, int],
    stride: int = 1,
    padding: int = 0,
    out_hw: tuple[int, int] = (1, 1),
    pad_bit: int = 0,
    ld: int | None = None,
) -> cp.ndarray:
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
        _grid(rows * ld),
        (THREADS,),
        (
            fmap,
            _I32(b),
            _I32(h),
            _I32(w),
            _I32(channels),
            _I32(ldp),
            _I32(kh),
            _I32(kw),
            _I32(stride),
            _I32(padding),
            _I32(oh),
            _I32(ow),
            _I32(pad_bit),
            _I32(k),
            out,
            _I32(ld),
        ),
    )
    return out


def or_pool(fmap: cp.ndarray, pool: int) -> cp.ndarray:
    """Max-pooling of +-1 values on a packed map (B, H, W, ldp): OR of pool x pool windows, floor mode."""
    require()
    fmap = cp.ascontiguousarray(fmap)
    b, h, w, ldp = fmap.shape
    ph, pw = h // pool, w // pool
    out = cp.empty((b, ph, pw, ldp), dtype=cp.uint32)
    kernel("pack", "or_pool")(
        _grid(out.size), (THREADS,), (fmap, _I32(b), _I32(h), _I32(w), _I32(ldp), _I32(pool), _I32(ph), _I32(pw), out)
    )
    return out


def row_weights(a: cp.ndarray, ld: int, planes: int = 1) -> cp.ndarray:
    """int32 per row: sum_p 2^p * popcount(plane p) (bits: the number of +1; pixel planes: the pixel sum)."""
    require()
    rows = a.shape[0]
    out = cp.empty(rows, dtype=cp.int32)
    kernel("pack", "row_weights")(
        _grid(rows * 32), (THREADS,), (cp.ascontiguousarray(a), _I64(rows), _I32(ld), _I32(planes), out)
    )
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


def gemm(
    a: cp.ndarray,
    b: cp.ndarray,
    *,
    m: int,
    n: int,
    ld: int,
    planes: int,
    kernel_name: GemmKernel,
    colc: cp.ndarray | None = None,
    roww: cp.ndarray | None = None,
    acc_out: cp.ndarray | None = None,
    thr: cp.ndarray | None = None,
    bits_out: cp.ndarray | None = None,
    ldo: int = 0,
    score_scale: int = 1,
    score_off: cp.ndarray | None = None,
    scores_out: cp.ndarray | None = None,
    order: BlockOrder = "n",
) -> None:
    """Launch a fused matmul (`tiled` on CUDA cores, `bmma*` on binary tensor cores, `imma*` on
    8-bit tensor cores for pixel rows); outputs are written into the given arrays. `colc`/`roww` are the binary
    kernels' correction terms (see xnor_gemm.cu and bmma_gemm.cu); the 8-bit kernels need none (planes = 1, the
    operands from gather_bytes and upload_signs_i8). `order` (tensor-core kernels): "n" launches the column tiles of
    a row tile together (one-dimensional grid, bmma_gemm.cu's "Block order"), "m" the row tiles (two-dimensional)."""
    if ld % 4:
        raise BnnError(f"packed rows must be a multiple of 4 words, got ld={ld}")
    if a.shape[1] != planes * ld or b.shape[1] != ld or a.shape[0] < m or b.shape[0] < n:
        raise BnnError(f"operand shapes {a.shape} x {b.shape} do not match m={m} n={n} ld={ld} planes={planes}")
    _check_outputs(m, n, ldo, kernel_name, acc_out, bits_out, scores_out)
    flags = (
        (FLAG_ACC if acc_out is not None else 0)
        | (FLAG_BITS if bits_out is not None else 0)
        | (FLAG_SCORES if scores_out is not None else 0)
    )
    dummy = _dummy()
    rows_per_block, cols_per_block = (
        TENSOR_CORE_TILES[kernel_name][1:3] if kernel_name in TENSOR_CORE_TILES else (TILE, TILE)
    )
    grid = ((m + rows_per_block - 1) // rows_per_block, (n + cols_per_block - 1) // cols_per_block)
    if order not in ("n", "m"):
        raise BnnError(f"block order must be 'n' or 'm', got {order!r}")
    if kernel_name in TENSOR_CORE_TILES and order == "n":
        flags |= FLAG_N_FAST
        grid = (grid[0] * grid[1],)
    if grid[0] > 2**31 - 1 or grid[1:] > (65535,):  # CUDA's grid limits (x, y)
        raise BnnError(
            f"m={m} x n={n} needs a grid of {grid} blocks, past CUDA's limits (2^31 - 1 along x, 65,535 "
            "along y): split the matmul"
            + (" or use order='n'" if kernel_name in TENSOR_CORE_TILES and len(grid) == 2 else "")
        )
    tail = (
        _I32(flags),
        dummy if acc_out is None else acc_out,
        dummy if thr is None else thr,
        dummy if bits_out is None else bits_out,
        _I32(ldo),
        _I32(score_scale),
        dummy if score_off is None else score_off,
        dummy if scores_out is None else scores_out,
    )
    if kernel_name == "tiled":
        require()
        if colc is None:
            raise BnnError("the CUDA-core kernel needs its column corrections")
        module, function, threads, head = "xnor_gemm", "xnor_gemm_tiled", 256, (colc,)
    elif kernel_name in TENSOR_CORE_TILES:
        require(tensor_cores=True)
        function, _, _, threads = TENSOR_CORE_TILES[kernel_name]
        if kernel_name in BINARY_TENSOR_CORE and (roww is None or colc is None):
            raise BnnError("the binary tensor-core kernels need the row weights and column corrections")
        if kernel_name in INT8_TENSOR_CORE and planes != 1:
            raise BnnError("the 8-bit tensor-core kernels take pixel bytes (planes=1), not bit planes")
        module, head = "bmma_gemm", (dummy if roww is None else roww, dummy if colc is None else colc)
    else:
        raise BnnError(f"unknown fused kernel {kernel_name!r}; choose tiled, {', '.join(TENSOR_CORE_TILES)}")
    if m == 0 or n == 0:  # nothing to compute; an empty grid would be a CUDA launch error
        return
    kernel(module, function)(grid, (threads,), (a, b, _I32(m), _I32(n), _I32(ld), _I32(planes), *head) + tail)


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


def float_naive_matmul(a: cp.ndarray, b: cp.ndarray) -> cp.ndarray:
    """The paper's baseline: an unoptimized float matmul, one thread per output, of float32 rows a (M, K), b (N, K)."""
    require()
    m, k = a.shape
    n = b.shape[0]
    out = cp.empty((m, n), dtype=cp.float32)
    grid = ((n + 15) // 16, (m + 15) // 16)
    kernel("xnor_gemm", "float_gemm_naive")(
        grid, (16, 16), (cp.ascontiguousarray(a), cp.ascontiguousarray(b), _I32(m), _I32(n), _I32(k), out)
    )
    return out


def corrections(
    a: cp.ndarray, b: cp.ndarray, k: int, ld: int, planes: int, kernel_name: GemmKernel
) -> tuple[cp.ndarray, cp.ndarray | None]:
    """(colc, roww) turning a kernel's raw counts into the golden accumulator (XNOR popcount or pixel dot)."""
    n = b.shape[0]
    pw = row_weights(b, ld)  # popcount of each weight row
    if kernel_name == "tiled":  # acc = colc - mismatches
        colc = cp.full(n, k, dtype=cp.int32) if planes == 1 else (255 * pw).astype(cp.int32)
        return colc, None
    roww = row_weights(a, ld, planes)  # acc = 2 * and - roww + colc
    colc = (k - pw).astype(cp.int32) if planes == 1 else cp.zeros(n, dtype=cp.int32)
    return colc, roww


def xnor_matmul(
    a: cp.ndarray, b: cp.ndarray, k: int, *, planes: int = 1, kernel_name: GemmKernel = "tiled", order: BlockOrder = "n"
) -> cp.ndarray:
    """The golden accumulator as int32 (M, N): XNOR popcount of bits rows (planes=1), or the dot product of pixel
    rows with +-1 weights (planes=8). a: (M, planes * ld), b: (N, ld) packed."""
    m, n = a.shape[0], b.shape[0]
    ld = b.shape[1]
    out = cp.empty((m, n), dtype=cp.int32)
    if kernel_name == "naive":
        if planes != 1:
            raise BnnError("the naive kernel handles bits operands only")
        return naive_matmul(a, b, k)
    if kernel_name in INT8_TENSOR_CORE:
        raise BnnError("the 8-bit kernels take pixel bytes: use int8_matmul")
    colc, roww = corrections(a, b, k, ld, planes, kernel_name)
    gemm(a, b, m=m, n=n, ld=ld, planes=planes, kernel_name=kernel_name, colc=colc, roww=roww, acc_out=out, order=order)
    return out


def int8_matmul(
    a: cp.ndarray, b: cp.ndarray, *, kernel_name: GemmKernel = "imma", order: BlockOrder = "n"
) -> cp.ndarray:
    """Dot products int32 (M, N) of pixel rows (gather_bytes) with int8 +-1 weight rows (upload_signs_i8) on the
    8-bit tensor cores: the golden accumulator of a pixel layer."""
    if kernel_name not in INT8_TENSOR_CORE:
        raise BnnError(f"int8_matmul runs {', '.join(INT8_TENSOR_CORE)}, not {kernel_name!r}")
    m, n = a.shape[0], b.shape[0]
    out = cp.empty((m, n), dtype=cp.int32)
    gemm(a, b, m=m, n=n, ld=b.shape[1], planes=1, kernel_name=kernel_name, acc_out=out, order=order)
    return out
