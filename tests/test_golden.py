"""The golden model against a naive, independent reading of docs/format.md (loops over +-1 integers)."""

import numpy as np
import pytest

from bnn_hw import golden
from bnn_hw.errors import BnnError
from bnn_hw.packing import unpack_bits
from bnn_hw.synthetic import ConvSpec, random_images, random_model


def naive_run(model, images):
    """Straight from the spec: signs, explicit windows, explicit sums. Slow and obviously right."""
    x = images.astype(np.int64)
    if model.binarize_at is not None:
        x = np.where(images >= model.binarize_at, 1, -1)
    outs = []
    for layer in model.layers:
        w = np.where(unpack_bits(layer.weights, layer.fan_in), 1, -1).astype(np.int64)
        if layer.kind == "dense":
            dot = x.reshape(len(x), -1) @ w.T
        else:
            b, h, wd, c = x.shape
            p, k, s = layer.padding, layer.kernel, layer.stride
            pad = layer.pad_value
            xp = np.full((b, h + 2 * p, wd + 2 * p, c), pad, dtype=np.int64)
            xp[:, p : p + h, p : p + wd] = x
            oh, ow = layer.conv_shape
            dot = np.zeros((b, oh, ow, layer.out_features), dtype=np.int64)
            for oy in range(oh):
                for ox in range(ow):
                    window = xp[:, oy * s : oy * s + k, ox * s : ox * s + k, :].reshape(b, -1)
                    dot[:, oy, ox] = window @ w.T
        if layer.output == "scores":
            x = dot + layer.bias
            outs.append(x)
            break
        acc = (dot + layer.fan_in) // 2 if layer.input == "bits" else dot
        y = np.where(acc >= layer.thresholds, 1, -1)
        if layer.pool:
            q = layer.pool
            b, h, wd, c = y.shape
            pooled = np.full((b, h // q, wd // q, c), -1)
            for i in range(h // q):
                for j in range(wd // q):
                    pooled[:, i, j] = y[:, i * q : (i + 1) * q, j * q : (j + 1) * q].max(axis=(1, 2))
            y = pooled
        outs.append(y > 0)
        x = y
    return outs


CASES = [
    ("mlp odd widths", (5, 7, 1), [65, 31, 130], None),
    ("mlp binarized input", (6, 6, 2), [64, 63], 100),
    ("conv pad -1 stride 2", (9, 11, 3), [ConvSpec(5, 3, 2, 1, 0), ConvSpec(7, 3, 1, 1, -1, 2), 19], None),
    ("conv pad +1 pool 3", (10, 10, 1), [ConvSpec(4, 3, 1, 1, 255, 0), ConvSpec(65, 2, 1, 1, 1, 3), 9], None),
    ("conv binarized no pad", (8, 8, 3), [ConvSpec(3, 5, 1, 0, -1, 2), 12], 128),
]


@pytest.mark.parametrize("name,shape,hidden,binarize_at", CASES, ids=[c[0] for c in CASES])
def test_golden_matches_naive_spec(name, shape, hidden, binarize_at):
    model = random_model(shape, hidden, num_classes=6, seed=len(name), binarize_at=binarize_at)
    images = random_images(model, 64, seed=1)
    result = golden.run(model, images, batch_size=17)  # batches that do not divide the image count
    want = naive_run(model, images)
    for i, (trace, expected) in enumerate(zip(result.layers, want, strict=True)):
        assert trace.out.shape == expected.shape, f"layer {i}"
        assert np.array_equal(trace.out, expected), f"layer {i} differs"
    assert np.array_equal(result.scores, want[-1])
    assert np.array_equal(result.classes, np.argmax(want[-1], axis=1))


def test_class_ties_take_the_first_index():
    model = random_model((2, 2, 1), [8], num_classes=4, seed=0)
    last = model.layers[-1]
    last = last.replace(weights=np.repeat(last.weights[:1], 4, axis=0), bias=np.array([1, 3, 3, 2]))  # equal dots
    model = model.replace(layers=(*model.layers[:-1], last))
    result = golden.run(model, random_images(model, 5))
    assert np.all(result.classes == 1)


def test_image_shapes_are_accepted_or_rejected_clearly():
    model = random_model((4, 4, 1), [8], seed=0)
    images = random_images(model, 3)
    flat = golden.run(model, images.reshape(3, -1)).scores
    assert np.array_equal(flat, golden.run(model, images[..., 0]).scores)
    with pytest.raises(BnnError, match="do not fit"):
        golden.run(model, np.zeros((3, 5, 5, 1), np.uint8))
    with pytest.raises(BnnError, match="uint8"):
        golden.run(model, np.full((3, 4, 4, 1), 300))
