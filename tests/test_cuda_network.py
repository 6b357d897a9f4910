"""cuda_ref.run against bnn_hw.golden.run: every layer's accumulators and outputs, scores and classes, on random
models (dense, conv with padding/stride/pooling, binarized input) with odd batch sizes and on real images.

Back ends as in test_cuda_kernels.py: `gpu` (skipped without a CUDA GPU, with the reason) and `emulated` (the same
kernels and network code on the CPU emulation, smaller batches)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from bnn_hw.cuda_ref import emulator

from bnn_hw import cuda_ref, golden
from bnn_hw.synthetic import ConvSpec, random_images, random_model

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
MODELS = {
    "mlp": dict(input_shape=(28, 28, 1), hidden=[256, 256]),
    "odd-mlp": dict(input_shape=(5, 7, 3), hidden=[33, 130, 65], num_classes=7),
    "binarized-mlp": dict(input_shape=(28, 28, 1), hidden=[100], binarize_at=128),
    "single-layer": dict(input_shape=(3, 3, 2), hidden=[], num_classes=4),
    "conv": dict(
        input_shape=(12, 12, 3),
        hidden=[ConvSpec(8, 3, 1, 1, pad_value=17, pool=2), ConvSpec(40, 3, 2, 1, pad_value=1), 50],
    ),
    "conv-32ch": dict(
        input_shape=(10, 9, 1), hidden=[ConvSpec(32, 3, 1, 1, pool=2), ConvSpec(64, 2, 1, 0, pad_value=-1), 20]
    ),
    "binarized-conv": dict(
        input_shape=(9, 9, 2), hidden=[ConvSpec(16, 3, 1, 2, pad_value=1, pool=3), 10], binarize_at=60
    ),
}


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request) -> SimpleNamespace:
    """run/predict of the chosen back end, the kernels it can use, and batch sizes it is quick enough for."""
    if request.param == "gpu":
        return SimpleNamespace(
            run=cuda_ref.run,
            predict=cuda_ref.predict,
            kernels=["tiled"] + (TENSOR_CORE_CHOICES if STATUS.tensor_cores else []),
            counts=(1, 3, 131, 1000),
            real_images=3000,
        )
    _, _, network = emulator.load()
    return SimpleNamespace(
        run=network.run,
        predict=network.predict,
        kernels=["tiled", *TENSOR_CORE_CHOICES],
        counts=(1, 13),
        real_images=40,
    )


# kernel choice -> run()/predict() options: bits layers' kernel and the first pixel layer's
CHOICES = {
    "tiled": dict(kernel="tiled"),
    "bmma": dict(kernel="bmma"),  # pixel layer on the 8-bit tensor cores (imma), the default
    "bmma256": dict(kernel="bmma256"),  # with imma256
    "bmma-planes": dict(kernel="bmma", pixel_kernel="bmma"),  # pixel layer as 8 bit planes on binary tensor cores
    "bmma256-planes": dict(kernel="bmma256", pixel_kernel="bmma256"),
    "bmma_v": dict(kernel="bmma_v"),  # 128-bit fragment reads, with imma_v
    "bmma256_v": dict(kernel="bmma256_v"),  # with imma256_v
    "bmma_v-planes": dict(kernel="bmma_v", pixel_kernel="bmma_v"),
    "bmma_v3": dict(kernel="bmma_v3"),  # three-stage pipeline, with imma_v3
    "bmma_v3-planes": dict(kernel="bmma_v3", pixel_kernel="bmma_v3"),
}
TENSOR_CORE_CHOICES = [name for name in CHOICES if name != "tiled"]


def assert_same(got: golden.GoldenResult, want: golden.GoldenResult) -> None:
    assert np.array_equal(got.classes, want.classes)
    assert got.scores.dtype == want.scores.dtype and np.array_equal(got.scores, want.scores)
    assert len(got.layers) == len(want.layers)
    for i, (g, w) in enumerate(zip(got.layers, want.layers, strict=True)):
        assert g.acc.shape == w.acc.shape and np.array_equal(g.acc, w.acc), f"layer {i} accumulators"
        assert g.out.dtype == w.out.dtype and np.array_equal(g.out, w.out), f"layer {i} outputs"


@pytest.mark.parametrize("kernel", list(CHOICES))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_run_is_golden(backend, name: str, kernel: str) -> None:
    if kernel not in backend.kernels:
        pytest.skip(f"no binary tensor cores: {STATUS.reason}")
    model = random_model(seed=11, **MODELS[name])
    for count in backend.counts:
        images = random_images(model, count, seed=count)
        want = golden.run(model, images)
        assert_same(backend.run(model, images, batch_size=50, **CHOICES[kernel]), want)
        assert np.array_equal(backend.predict(model, images, **CHOICES[kernel]), want.classes)


@pytest.mark.parametrize("kernel", list(CHOICES))
def test_real_images(backend, kernel: str) -> None:
    if kernel not in backend.kernels:
        pytest.skip(f"no binary tensor cores: {STATUS.reason}")
    from bnn_hw.datasets import load_dataset

    try:
        data = load_dataset("fashion-mnist", "test")
    except Exception as exc:
        pytest.skip(f"Fashion-MNIST not available: {exc}")
    model = random_model((28, 28, 1), [256, 256], seed=5)
    images = data.images[: backend.real_images]
    assert_same(backend.run(model, images, **CHOICES[kernel]), golden.run(model, images))


def test_memory_budget_splits_batches(backend) -> None:
    """A tiny device-memory budget cuts the batch into single images; the results do not change."""
    model = random_model(seed=3, **MODELS["conv"])
    images = random_images(model, 5, seed=1)
    assert_same(backend.run(model, images, kernel="tiled", memory_budget=1), golden.run(model, images))
