"""`bnn-hw bench cpu` and the PyTorch float model it compares against (which must equal the golden model)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from bnn_hw import golden
from bnn_hw.cli import main
from bnn_hw.model import save_model
from bnn_hw.synthetic import ConvSpec, random_images, random_model

torch = pytest.importorskip("torch")

MODELS = {
    "mlp": dict(input_shape=(28, 28, 1), hidden=[256, 256]),
    "odd-mlp": dict(input_shape=(5, 7, 3), hidden=[33, 65], num_classes=7),
    "binarized-mlp": dict(input_shape=(6, 6, 1), hidden=[20], binarize_at=128),
    "conv": dict(
        input_shape=(12, 12, 3),
        hidden=[ConvSpec(8, 3, 1, 1, pad_value=17, pool=2), ConvSpec(16, 3, 2, 1, pad_value=1), 30],
    ),
    "binarized-conv": dict(
        input_shape=(9, 9, 2), hidden=[ConvSpec(6, 3, 1, 2, pad_value=-1, pool=3), 10], binarize_at=60
    ),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_float_model_equals_golden(name: str) -> None:
    from bnn_hw.cuda_ref.torch_ref import float_model

    model = random_model(seed=2, **MODELS[name])
    images = random_images(model, 64, seed=3)
    want = golden.run(model, images)
    fm = float_model(model, "float32")
    with torch.inference_mode():
        scores = fm(torch.from_numpy(images)).numpy()
        classes = fm.classify(torch.from_numpy(images)).numpy()
    assert np.array_equal(scores, want.scores)
    assert np.array_equal(classes, want.classes)


def test_bench_cpu_records_json(tmp_path, capsys) -> None:
    model = random_model((28, 28, 1), [64], seed=4)
    path = tmp_path / "m.bnn"
    save_model(model, path)
    out = tmp_path / "cpu.json"
    assert (
        main(["bench", "cpu", "--model", str(path), "--images", "300", "--repeats", "1", "--quiet", "-o", str(out)])
        == 0
    )
    record = json.loads(out.read_text())
    assert record["bit_exact"] is True
    assert record["model"]["hash"] == model.hash
    assert record["images"]["count"] == 300
    assert record["golden_numpy"]["images_per_s"] > 0 and record["torch_float32_cpu"]["images_per_s"] > 0
    text = capsys.readouterr().out
    assert "bit-exact: yes" in text and "images/s" in text


def test_bench_cpu_bad_model_is_one_line(tmp_path, capsys) -> None:
    assert main(["bench", "cpu", "--model", str(tmp_path / "missing.bnn")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not found" in err[0]


@pytest.mark.slow
def test_golden_speed_default_mlp() -> None:
    """The golden model classifies 10,000 Fashion-MNIST-shaped images through the default MLP in <= 1 s."""
    from bnn_hw.cuda_ref.bench_common import random_mlp

    model = random_mlp()
    images = random_images(model, 10_000, seed=0)
    golden.run(model, images[:100])
    best = min(_timed(lambda: golden.run(model, images)) for _ in range(3))
    assert best <= 1.0, f"golden model took {best:.2f} s for 10,000 images"


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
