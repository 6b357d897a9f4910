"""Every CUDA kernel against bnn_hw.packing / bnn_hw.golden, bit for bit, on random odd sizes.

Two back ends run the same tests: `gpu` (CuPy on a CUDA GPU, @pytest.mark.gpu, skipped with the reason without
one) and `emulated` (the unchanged kernels compiled for the CPU by cuda_ref.emulator, skipped without g++), so the
kernels' index arithmetic, tiling and epilogues are checked on every machine."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from bnn_hw.cuda_ref import emulator

from bnn_hw import cuda_ref, golden
from bnn_hw.model import Layer
from bnn_hw.packing import pack_bits

STATUS = cuda_ref.available()
BACKENDS = [
    pytest.param(
        "gpu",
        marks=[pytest.mark.gpu, pytest.mark.skipif(not STATUS, reason=f"GPU reference unavailable: {STATUS.reason}")],
    ),
    pytest.param(
        "emulated",
        marks=pytest.mark.skipif(emulator.compiler() is None, reason="no g++ for the CPU emulation of the kernels"),
    ),
]
SHAPES = [(1, 1, 1), (3, 5, 33), (7, 9, 64), (129, 130, 300), (200, 257, 1000), (17, 300, 4097), (256, 128, 2048)]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request) -> SimpleNamespace:
    """cp (cupy or its numpy stand-in), K (the launchers), tensor_cores."""
    if request.param == "gpu":
        import cupy
        from bnn_hw.cuda_ref import kernels

        return SimpleNamespace(name="gpu", cp=cupy, K=kernels, tensor_cores=STATUS.tensor_cores)
    cp, kernels, _ = emulator.load()
    return SimpleNamespace(name="emulated", cp=cp, K=kernels, tensor_cores=True)


@pytest.fixture
def K(backend):
    return backend.K


# Every tensor-core tile of cuda_ref.kernels.TENSOR_CORE_TILES (checked below), listed here for parametrize.
BINARY_TILES = ["bmma", "bmma256", "bmma_v", "bmma256_v", "bmma_v3"]
INT8_TILES = ["imma", "imma256", "imma_v", "imma256_v", "imma_v3"]


def fused(backend) -> list[str]:
    return ["tiled"] + (BINARY_TILES if backend.tensor_cores else [])


def int8_kernels(backend) -> list[str]:
    return INT8_TILES if backend.tensor_cores else []


def test_every_tile_is_tested(K) -> None:
    assert list(K.BINARY_TENSOR_CORE) == BINARY_TILES and list(K.INT8_TENSOR_CORE) == INT8_TILES
    assert [K.int8_partner(name) for name in BINARY_TILES] == INT8_TILES


def test_tile_table_matches_the_kernel_instances(K) -> None:
    """kernels.TENSOR_CORE_TILES (block rows, columns and threads: the launch grid) against bmma_gemm.cu's BT_KERNEL
    instances (WM x WN warps of MI x NI mma tiles of 16 x 8): a grid computed for another tile would launch idle
    blocks or leave outputs unwritten."""
    import re

    from bnn_hw.cuda_ref._device import KERNELS, source_path

    text = source_path("bmma_gemm").read_text()
    found = {}
    for args in re.findall(r"^BT_KERNEL\(([^)]*)\)", text, flags=re.MULTILINE):
        name, _, wm, wn, mi, ni, *_ = [x.strip() for x in args.split(",")]
        wm, wn, mi, ni = map(int, (wm, wn, mi, ni))
        found[name] = (wm * mi * 16, wn * ni * 8, wm * wn * 32)
    assert {fn: rest for fn, *rest in K.TENSOR_CORE_TILES.values()} == {fn: list(t) for fn, t in found.items()}
    assert set(found) == set(KERNELS["bmma_gemm"])


def _bits(rng: np.random.Generator, rows: int, k: int) -> np.ndarray:
    return rng.random((rows, k)) < 0.5


def test_pack_signs_matches_packing(backend, K) -> None:
    cp = backend.cp
    rng = np.random.default_rng(1)
    for rows, k in [(1, 1), (3, 31), (5, 32), (7, 33), (11, 200), (4, 4097)]:
        signs = rng.integers(-3, 4, (rows, k)).astype(np.int8)  # 0 counts as +1
        got = K.pack_signs(cp.asarray(signs))
        want = K.upload_bits(pack_bits(signs >= 0), k)
        assert cp.array_equal(got, want), (rows, k)
        assert np.array_equal(K.download_bits(got, k), signs >= 0)


def test_pack_planes_matches_packing(backend, K) -> None:
    cp = backend.cp
    rng = np.random.default_rng(2)
    for rows, k in [(1, 1), (3, 33), (9, 784), (2, 1000)]:
        pixels = rng.integers(0, 256, (rows, k), dtype=np.uint8)
        ld = K.row_words(k)
        got = cp.asnumpy(K.pack_planes(cp.asarray(pixels))).reshape(rows, 8, ld)
        for p in range(8):
            want = cp.asnumpy(K.upload_bits(pack_bits((pixels >> p) & 1), k, ld))
            assert np.array_equal(got[:, p], want), (rows, k, p)


@pytest.mark.parametrize("kernel_hw,stride,padding,pad", [((3, 3), 1, 1, 7), ((2, 2), 2, 0, 0), ((3, 3), 2, 2, 255)])
def test_gather_u8_is_golden_im2col(backend, K, kernel_hw, stride, padding, pad) -> None:
    cp = backend.cp
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (3, 9, 11, 3), dtype=np.uint8)
    k = kernel_hw[0]
    layer = Layer(
        "conv",
        "pixels",
        "bits",
        (9, 11, 3),
        5,
        np.zeros((5, 1), np.uint64),
        kernel=k,
        stride=stride,
        padding=padding,
        pad_value=pad,
    )
    win = golden.im2col(img, layer, pad).reshape(-1, layer.fan_in)
    ld = K.row_words(layer.fan_in)
    got = K.gather_u8(
        cp.asarray(img), kernel_hw=kernel_hw, stride=stride, padding=padding, out_hw=layer.conv_shape, pad_pixel=pad
    )
    got = cp.asnumpy(got).reshape(len(win), 8, ld)
    for p in range(8):
        assert np.array_equal(got[:, p], cp.asnumpy(K.upload_bits(pack_bits((win >> p) & 1), layer.fan_in, ld)))
    # one plane of thresholded bits (binarize_at), padding with a bit
    got1 = K.gather_u8(
        cp.asarray(img),
        kernel_hw=kernel_hw,
        stride=stride,
        padding=padding,
        out_hw=layer.conv_shape,
        planes=1,
        thresh=100,
        pad_bit=1,
    )
    padded_bits = golden.im2col(img >= 100, layer, True).reshape(-1, layer.fan_in)
    assert cp.array_equal(got1, K.upload_bits(pack_bits(padded_bits), layer.fan_in))


@pytest.mark.parametrize("channels", [1, 5, 32, 64, 70])
@pytest.mark.parametrize("pad_value", [-1, 1])
def test_gather_bits_is_golden_im2col(backend, K, channels, pad_value) -> None:
    cp = backend.cp
    rng = np.random.default_rng(4 + channels)
    fmap = rng.random((2, 6, 7, channels)) < 0.5
    layer = Layer(
        "conv",
        "bits",
        "bits",
        (6, 7, channels),
        4,
        np.zeros((4, 1), np.uint64),
        kernel=3,
        stride=2,
        padding=1,
        pad_value=pad_value,
    )
    packed = K.upload_bits(pack_bits(fmap.reshape(-1, channels)), channels, K.words32(channels))
    packed = packed.reshape(2, 6, 7, -1)
    got = K.gather_bits(
        packed,
        channels=channels,
        kernel_hw=(3, 3),
        stride=2,
        padding=1,
        out_hw=layer.conv_shape,
        pad_bit=int(pad_value > 0),
    )
    win = golden.im2col(fmap, layer, pad_value > 0).reshape(-1, layer.fan_in)
    assert cp.array_equal(got, K.upload_bits(pack_bits(win), layer.fan_in))
    flat = K.gather_bits(packed, channels=channels, kernel_hw=(6, 7))  # HWC flattening
    assert cp.array_equal(flat, K.upload_bits(pack_bits(fmap.reshape(2, -1)), 6 * 7 * channels))


def test_or_pool_is_golden(backend, K) -> None:
    rng = np.random.default_rng(5)
    bits = rng.random((3, 7, 9, 40)) < 0.3
    packed = K.upload_bits(pack_bits(bits.reshape(-1, 40)), 40, 2).reshape(3, 7, 9, 2)
    for pool in (2, 3):
        got = K.or_pool(packed, pool)
        want = golden.or_pool(bits, pool)
        assert np.array_equal(K.download_bits(got.reshape(-1, 2), 40).reshape(want.shape), want)


def test_row_weights_and_argmax(backend, K) -> None:
    cp = backend.cp
    rng = np.random.default_rng(6)
    bits = _bits(rng, 50, 1000)
    assert np.array_equal(
        cp.asnumpy(K.row_weights(K.upload_bits(pack_bits(bits), 1000), K.row_words(1000))), bits.sum(axis=1)
    )
    pixels = rng.integers(0, 256, (20, 300), dtype=np.uint8)
    planes = K.pack_planes(cp.asarray(pixels))
    assert np.array_equal(cp.asnumpy(K.row_weights(planes, K.row_words(300), 8)), pixels.astype(np.int64).sum(1))
    scores = rng.integers(-3, 3, (500, 10)).astype(np.int32)  # many ties: the first maximum wins
    assert np.array_equal(cp.asnumpy(K.argmax_rows(cp.asarray(scores))), np.argmax(scores, axis=1))


@pytest.mark.parametrize("m,n,k", SHAPES)
@pytest.mark.parametrize("kernel_name", ["naive", "tiled", *BINARY_TILES])
def test_xnor_matmul_is_golden(backend, K, m, n, k, kernel_name) -> None:
    if kernel_name.startswith("bmma") and not backend.tensor_cores:
        pytest.skip(f"no binary tensor cores: {STATUS.reason}")
    cp = backend.cp
    rng = np.random.default_rng(m * 7 + n * 13 + k)
    x, w = pack_bits(_bits(rng, m, k)), pack_bits(_bits(rng, n, k))
    got = K.xnor_matmul(K.upload_bits(x, k), K.upload_bits(w, k), k, kernel_name=kernel_name)
    assert np.array_equal(cp.asnumpy(got), golden.xnor_popcount(x, w, k))


@pytest.mark.parametrize("m,n,k", [(1, 3, 1), (5, 7, 33), (130, 129, 784), (64, 300, 2000)])
@pytest.mark.parametrize("kernel_name", ["tiled", *BINARY_TILES])
def test_pixel_matmul_is_golden(backend, K, m, n, k, kernel_name) -> None:
    cp = backend.cp
    rng = np.random.default_rng(m + n + k)
    if kernel_name not in fused(backend):
        pytest.skip(f"no binary tensor cores: {STATUS.reason}")
    pixels = rng.integers(0, 256, (m, k), dtype=np.uint8)
    pixels[0, :] = 255
    w = pack_bits(_bits(rng, n, k))
    layer = Layer("dense", "pixels", "bits", (k,), n, w, thresholds=np.zeros(n, np.int64))
    got = K.xnor_matmul(K.pack_planes(cp.asarray(pixels)), K.upload_bits(w, k), k, planes=8, kernel_name=kernel_name)
    assert np.array_equal(cp.asnumpy(got), golden.layer_accumulators(layer, pixels))


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (77, 33, 100), (300, 200, 513)])
@pytest.mark.parametrize(
    "kernel_name,order", [("tiled", "n"), *((name, "n") for name in BINARY_TILES), ("bmma", "m"), ("bmma_v3", "m")]
)
def test_fused_threshold_and_scores(backend, K, m, n, k, kernel_name, order) -> None:
    """The epilogue: packed output bits (acc >= t, zero past N) and dot + bias scores, with the accumulators
    (odd N: one 4-byte store per value; even N: 8-byte pairs), in both block orders."""
    cp = backend.cp
    rng = np.random.default_rng(k)
    if kernel_name not in fused(backend):
        pytest.skip(f"no binary tensor cores: {STATUS.reason}")
    x, w = pack_bits(_bits(rng, m, k)), pack_bits(_bits(rng, n, k))
    acc = golden.xnor_popcount(x, w, k)
    thr = rng.integers(0, k + 2, n)
    bias = rng.integers(-50, 50, n)
    a, b = K.upload_bits(x, k), K.upload_bits(w, k)
    ld = K.row_words(k)
    colc, roww = K.corrections(a, b, k, ld, 1, kernel_name)
    ldo = K.row_words(n)
    bits = cp.full((m, ldo), 0xFFFFFFFF, dtype=cp.uint32)  # words must be overwritten, padding bits cleared
    acc_out = cp.empty((m, n), dtype=cp.int32)
    K.gemm(
        a,
        b,
        m=m,
        n=n,
        ld=ld,
        planes=1,
        kernel_name=kernel_name,
        colc=colc,
        roww=roww,
        acc_out=acc_out,
        thr=cp.asarray(thr.astype(np.int32)),
        bits_out=bits,
        ldo=ldo,
        order=order,
    )
    assert np.array_equal(cp.asnumpy(acc_out), acc)
    assert cp.array_equal(bits, K.upload_bits(pack_bits(acc >= thr), n, ldo))
    scores = cp.empty((m, n), dtype=cp.int32)
    K.gemm(
        a,
        b,
        m=m,
        n=n,
        ld=ld,
        planes=1,
        kernel_name=kernel_name,
        colc=colc,
        roww=roww,
        score_scale=2,
        score_off=cp.asarray((bias - k).astype(np.int32)),
        scores_out=scores,
        order=order,
    )
    assert np.array_equal(cp.asnumpy(scores), 2 * acc - k + bias)


@pytest.mark.parametrize("kernel_hw,stride,padding,pad", [((3, 3), 1, 1, 7), ((2, 2), 2, 0, 0), ((3, 3), 2, 2, 255)])
def test_gather_bytes_is_golden_im2col(backend, K, kernel_hw, stride, padding, pad) -> None:
    cp = backend.cp
    img = np.random.default_rng(8).integers(0, 256, (3, 9, 11, 3), dtype=np.uint8)
    layer = Layer(
        "conv",
        "pixels",
        "bits",
        (9, 11, 3),
        5,
        np.zeros((5, 1), np.uint64),
        kernel=kernel_hw[0],
        stride=stride,
        padding=padding,
        pad_value=pad,
    )
    win = golden.im2col(img, layer, pad).reshape(-1, layer.fan_in)
    ld = K.byte_words(layer.fan_in)
    got = cp.asnumpy(
        K.gather_bytes(
            cp.asarray(img), kernel_hw=kernel_hw, stride=stride, padding=padding, out_hw=layer.conv_shape, pad_pixel=pad
        )
    ).view(np.uint8)
    assert got.shape == (len(win), 4 * ld) and ld % 4 == 0
    assert np.array_equal(got[:, : layer.fan_in], win) and not got[:, layer.fan_in :].any()
    dense = cp.asnumpy(K.gather_bytes(cp.asarray(img), kernel_hw=(9, 11))).view(np.uint8)
    assert np.array_equal(dense[:, : 9 * 11 * 3], img.reshape(3, -1)) and not dense[:, 9 * 11 * 3 :].any()


def test_signs_i8_follow_the_format(backend, K) -> None:
    rng = np.random.default_rng(9)
    for n, k in [(1, 1), (3, 33), (5, 784)]:
        bits = _bits(rng, n, k)
        got = backend.cp.asnumpy(K.upload_signs_i8(pack_bits(bits), k)).view(np.int8)
        assert got.shape == (n, 4 * K.byte_words(k))
        assert np.array_equal(got[:, :k], np.where(bits, 1, -1)) and not got[:, k:].any()


@pytest.mark.parametrize("m,n,k", [(1, 3, 1), (5, 7, 33), (130, 129, 784), (300, 257, 2000)])
def test_int8_matmul_is_golden(backend, K, m, n, k) -> None:
    """Pixel layers on the 8-bit tensor cores: dot products of raw pixels and +-1 weights, every value of a byte."""
    cp = backend.cp
    rng = np.random.default_rng(m + 2 * n + k)
    pixels = rng.integers(0, 256, (m, k), dtype=np.uint8)
    pixels[0, :] = 255  # the largest sums
    w = pack_bits(_bits(rng, n, k))
    w[0] = 0  # an all -1 weight row
    layer = Layer("dense", "pixels", "bits", (k,), n, w, thresholds=np.zeros(n, np.int64))
    want = golden.layer_accumulators(layer, pixels)
    a = K.gather_bytes(cp.asarray(pixels.reshape(m, 1, k, 1)), kernel_hw=(1, k))
    b = K.upload_signs_i8(w, k)
    for name in int8_kernels(backend) or pytest.skip(f"no tensor cores: {STATUS.reason}"):
        assert np.array_equal(cp.asnumpy(K.int8_matmul(a, b, kernel_name=name)), want), name


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (77, 33, 100), (300, 200, 513)])
@pytest.mark.parametrize("order", ["n", "m"])
def test_int8_fused_threshold_and_scores(backend, K, m, n, k, order) -> None:
    cp = backend.cp
    rng = np.random.default_rng(k + 1)
    pixels = rng.integers(0, 256, (m, k), dtype=np.uint8)
    w = pack_bits(_bits(rng, n, k))
    layer = Layer("dense", "pixels", "bits", (k,), n, w, thresholds=np.zeros(n, np.int64))
    acc = golden.layer_accumulators(layer, pixels)
    thr = rng.integers(-128 * k, 128 * k + 1, n)
    thr[: n // 2] = np.median(acc, axis=0)[: n // 2]  # thresholds where the bits are balanced
    bias = rng.integers(-50, 50, n)
    a = K.gather_bytes(cp.asarray(pixels.reshape(m, 1, k, 1)), kernel_hw=(1, k))
    b = K.upload_signs_i8(w, k)
    ld, ldo = K.byte_words(k), K.row_words(n)
    for name in int8_kernels(backend) or pytest.skip(f"no tensor cores: {STATUS.reason}"):
        bits = cp.full((m, ldo), 0xFFFFFFFF, dtype=cp.uint32)
        acc_out = cp.empty((m, n), dtype=cp.int32)
        K.gemm(
            a,
            b,
            m=m,
            n=n,
            ld=ld,
            planes=1,
            kernel_name=name,
            acc_out=acc_out,
            thr=cp.asarray(thr.astype(np.int32)),
            bits_out=bits,
            ldo=ldo,
            order=order,
        )
        assert np.array_equal(cp.asnumpy(acc_out), acc), name
        assert cp.array_equal(bits, K.upload_bits(pack_bits(acc >= thr), n, ldo)), name
        scores = cp.empty((m, n), dtype=cp.int32)
        K.gemm(
            a,
            b,
            m=m,
            n=n,
            ld=ld,
            planes=1,
            kernel_name=name,
            score_off=cp.asarray(bias.astype(np.int32)),
            scores_out=scores,
            order=order,
        )
        assert np.array_equal(cp.asnumpy(scores), acc + bias), name


def test_int8_kernels_refuse_bit_planes(backend, K) -> None:
    from bnn_hw.errors import BnnError

    if not backend.tensor_cores:
        pytest.skip(f"no tensor cores: {STATUS.reason}")
    a = backend.cp.zeros((4, 8 * 4), dtype=backend.cp.uint32)
    b = backend.cp.zeros((4, 4), dtype=backend.cp.uint32)
    with pytest.raises(BnnError, match="planes=1"):
        K.gemm(a, b, m=4, n=4, ld=4, planes=8, kernel_name="imma", acc_out=backend.cp.empty((4, 4), backend.cp.int32))
    with pytest.raises(BnnError, match="int8_matmul"):
        K.xnor_matmul(b, b, 100, kernel_name="imma")


def test_float_naive_baseline(backend, K) -> None:
    """The paper's float baseline kernel computes the same dot products of +-1 values."""
    cp = backend.cp
    rng = np.random.default_rng(10)
    for m, n, k in [(1, 1, 1), (17, 33, 65), (40, 20, 1000)]:
        a = rng.choice([-1.0, 1.0], (m, k)).astype(np.float32)
        b = rng.choice([-1.0, 1.0], (n, k)).astype(np.float32)
        got = cp.asnumpy(K.float_naive_matmul(cp.asarray(a), cp.asarray(b)))
        assert np.array_equal(got, a @ b.T), (m, n, k)


@pytest.mark.parametrize("kernel_name", BINARY_TILES)
def test_block_orders_agree_with_golden(backend, K, kernel_name) -> None:
    """Both block orders on shapes where neither m nor n is a multiple of the tile: bits rows, and 8 pixel bit planes
    with K not a multiple of the stage width (784 bits = 25 words in rows of 28: a half-empty last stage per plane)."""
    if not backend.tensor_cores:
        pytest.skip(f"no binary tensor cores: {STATUS.reason}")
    cp = backend.cp
    rng = np.random.default_rng(11)
    m, n = 263, 130
    for k, planes in ((1000, 1), (784, 8)):
        w = pack_bits(_bits(rng, n, k))
        if planes == 1:
            x = pack_bits(_bits(rng, m, k))
            a, want = K.upload_bits(x, k), golden.xnor_popcount(x, w, k)
        else:
            pixels = rng.integers(0, 256, (m, k), dtype=np.uint8)
            layer = Layer("dense", "pixels", "bits", (k,), n, w, thresholds=np.zeros(n, np.int64))
            a, want = K.pack_planes(cp.asarray(pixels)), golden.layer_accumulators(layer, pixels)
        for order in ("n", "m"):
            got = K.xnor_matmul(a, K.upload_bits(w, k), k, planes=planes, kernel_name=kernel_name, order=order)
            assert np.array_equal(cp.asnumpy(got), want), (k, planes, order)
    pixels = rng.integers(0, 256, (m, 784), dtype=np.uint8)
    w = pack_bits(_bits(rng, n, 784))
    layer = Layer("dense", "pixels", "bits", (784,), n, w, thresholds=np.zeros(n, np.int64))
    a8 = K.gather_bytes(cp.asarray(pixels.reshape(m, 1, 784, 1)), kernel_hw=(1, 784))
    got = K.int8_matmul(a8, K.upload_signs_i8(w, 784), kernel_name=K.int8_partner(kernel_name), order="m")
    assert np.array_equal(cp.asnumpy(got), golden.layer_accumulators(layer, pixels))


@pytest.mark.parametrize("n", [6, 7])
def test_misaligned_outputs(backend, K, n) -> None:
    """The tensor-core epilogue stores int32 pairs as 8-byte words when n is even: an output 4 bytes off an 8-byte
    boundary would fault on the GPU, so gemm refuses it in one line; odd n (4-byte stores) works from any int32
    address. Outputs too small, of the wrong type or with too few words per row are refused too."""
    from bnn_hw.errors import BnnError

    if not backend.tensor_cores:
        pytest.skip(f"no binary tensor cores: {STATUS.reason}")
    cp = backend.cp
    m, k = 5, 100
    rng = np.random.default_rng(n)
    x, w = pack_bits(_bits(rng, m, k)), pack_bits(_bits(rng, n, k))
    a, b = K.upload_bits(x, k), K.upload_bits(w, k)
    ld = K.row_words(k)
    colc, roww = K.corrections(a, b, k, ld, 1, "bmma")
    args = dict(m=m, n=n, ld=ld, planes=1, kernel_name="bmma", colc=colc, roww=roww)
    buf = cp.zeros(m * n + 2, dtype=cp.int32)
    off = 1 if K._address(buf) % 8 == 0 else 0  # an int32 array whose first value is 4 bytes off 8-byte alignment
    out = buf[off : off + m * n].reshape(m, n)
    assert K._address(out) % 8 == 4
    for what in ("acc_out", "scores_out"):
        extra = {"score_off": cp.zeros(n, dtype=cp.int32)} if what == "scores_out" else {}
        if n % 2 == 0:
            with pytest.raises(BnnError, match=f"{what} must be 8-byte aligned"):
                K.gemm(a, b, **args, **{what: out}, **extra)
        else:
            out[...] = -1
            K.gemm(a, b, **args, **{what: out}, **extra)
            assert np.array_equal(cp.asnumpy(out), golden.xnor_popcount(x, w, k)), what  # scores: scale 1, off 0
    with pytest.raises(BnnError, match="acc_out must be a C-contiguous int32"):
        K.gemm(a, b, **args, acc_out=cp.zeros((m, n - 1), dtype=cp.int32))
    with pytest.raises(BnnError, match="acc_out must be a C-contiguous int32"):
        K.gemm(a, b, **args, acc_out=cp.zeros((m, n), dtype=cp.int64))
    thr = cp.zeros(n, dtype=cp.int32)
    with pytest.raises(BnnError, match="cannot hold"):
        K.gemm(a, b, **args, thr=thr, bits_out=cp.zeros((m, 4), dtype=cp.uint32), ldo=0)
    with pytest.raises(BnnError, match="bits_out must be"):
        K.gemm(a, b, **args, thr=thr, bits_out=cp.zeros((m - 1, 4), dtype=cp.uint32), ldo=4)


def test_grid_limits_are_refused_in_one_line(backend, K) -> None:
    """Order "m" puts the column tiles on gridDim.y (at most 65,535): n past 65,535 * 128 cannot launch; order "n"
    (one-dimensional grid) can."""
    from bnn_hw.errors import BnnError

    if not backend.tensor_cores:
        pytest.skip(f"no binary tensor cores: {STATUS.reason}")
    cp = backend.cp
    n = 65536 * 128
    b = getattr(cp, "broadcast_to", np.broadcast_to)(cp.zeros((1, 4), dtype=cp.uint32), (n, 4))  # no memory
    a, small = cp.zeros((1, 4), dtype=cp.uint32), cp.zeros(1, dtype=cp.int32)
    with pytest.raises(BnnError, match="past CUDA's limits .* or use order='n'"):
        K.gemm(a, b, m=1, n=n, ld=4, planes=1, kernel_name="bmma", colc=small, roww=small, order="m")


CP_ASYNC_PROBE = r"""
extern "C" __global__ void cp_async_probe(const unsigned* src, unsigned* out)
{
    __shared__ __align__(16) unsigned s[2][4];
    cp_async16(s[0], src, true);
    cp_async_commit();
    cp_async16(s[1], src + 4, false);  // zero fill
    cp_async_commit();
    out[0] = s[0][0];  // in flight: not yet the data
    cp_async_wait<1>();
    out[1] = s[0][0];  // group 0 landed
    out[2] = s[1][0];  // group 1 still in flight
    cp_async_wait<0>();
    out[3] = s[1][0];
}
EMU_EXPORT(cp_async_probe)
"""


def test_emulated_cp_async_lands_at_its_wait(tmp_path) -> None:
    """The CPU emulation's cp.async is adversarial: the destination holds poison from the copy until the issuing
    thread's wait_group retires its group, so a kernel that reads a stage too early fails its golden test here."""
    import ctypes
    import subprocess

    cxx = emulator.compiler()
    if cxx is None:
        pytest.skip("no g++ for the CPU emulation of the kernels")
    src = tmp_path / "probe.cpp"
    src.write_text(f'#include "{emulator.HEADER}"\n' + CP_ASYNC_PROBE)
    lib = tmp_path / "probe.so"
    subprocess.run(
        [
            cxx,
            "-std=c++20",
            "-O1",
            "-U_FORTIFY_SOURCE",
            "-shared",
            "-fPIC",
            "-DBNN_HOST_EMULATION",
            "-o",
            str(lib),
            str(src),
        ],
        check=True,
    )
    fn = emulator.EmulatedKernel(ctypes.CDLL(str(lib)).emu_cp_async_probe, "cp_async_probe")
    data = np.arange(7, 15, dtype=np.uint32)
    out = np.zeros(4, dtype=np.uint32)
    fn((1,), (32,), (data, out))
    poison = 0xA5C3E10F
    assert out.tolist() == [poison, 7, poison, 0]


def test_emulation_catches_a_pipeline_that_waits_too_little(tmp_path) -> None:
    """A three-stage pipeline that waits for one group too few reads stages before they land: the emulated kernel
    must then disagree with the golden model (so the passing tests above do check the pipeline's waits)."""
    if emulator.compiler() is None:
        pytest.skip("no g++ for the CPU emulation of the kernels")
    from bnn_hw.cuda_ref._device import source_path

    text = source_path("bmma_gemm").read_text()
    broken = text.replace("cp_async_wait<STAGES - 2>();", "cp_async_wait<STAGES - 1>();")
    assert broken != text
    path = tmp_path / "bmma_gemm.cu"
    path.write_text(broken)
    _, K, _ = emulator.load(tmp_path / "lib", sources={"bmma_gemm": path})
    rng = np.random.default_rng(12)
    m, n, k = 40, 24, 2000
    x, w = pack_bits(_bits(rng, m, k)), pack_bits(_bits(rng, n, k))
    want = golden.xnor_popcount(x, w, k)
    assert np.array_equal(K.xnor_matmul(K.upload_bits(x, k), K.upload_bits(w, k), k, kernel_name="bmma"), want)
    got = K.xnor_matmul(K.upload_bits(x, k), K.upload_bits(w, k), k, kernel_name="bmma_v3")
    assert not np.array_equal(got, want)


@pytest.mark.parametrize("kernel_name", ["tiled", "bmma", "imma"])
def test_empty_batch_launches_nothing(backend, K, kernel_name) -> None:
    """m = 0 rows (an empty batch) is a no-op, not a CUDA launch error of an empty grid."""
    cp = backend.cp
    if kernel_name != "tiled" and not backend.tensor_cores:
        pytest.skip(f"no tensor cores: {STATUS.reason}")
    a = cp.zeros((0, 4), dtype=cp.uint32)
    b = cp.zeros((5, 4), dtype=cp.uint32)
    acc = cp.zeros((0, 5), dtype=cp.int32)
    colc = cp.zeros(5, dtype=cp.int32)
    roww = cp.zeros(0, dtype=cp.int32)
    K.gemm(a, b, m=0, n=5, ld=4, planes=1, kernel_name=kernel_name, colc=colc, roww=roww, acc_out=acc)
    assert acc.shape == (0, 5)
