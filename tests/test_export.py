"""Export exactness: golden model == PyTorch eval model on every bit, at every reachable sum and at thresholds."""

import numpy as np
import pytest
import torch
from bnn_hw.train.export import export_model, torch_layer_outputs
from bnn_hw.train.layers import BinaryConv, BinaryDense, BinaryNet, ThresholdBatchNorm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bnn_hw import golden
from bnn_hw.errors import BnnError
from bnn_hw.model import parse_model, save_model
from bnn_hw.packing import unpack_bits

SCALES = st.sampled_from([0.0, -0.0, 1e-38, -1e-38, 1e-7, -1e-7, 1.0, -1.0, 3.7, -2.5, 1e30, -1e30])
finite = st.floats(allow_nan=False, allow_infinity=False, width=32)


def set_norm(norm: ThresholdBatchNorm, data, center: float, spread: float) -> None:
    n = norm.num_features
    with torch.no_grad():
        norm.running_mean.copy_(
            torch.tensor(
                data.draw(st.lists(st.floats(center - spread, center + spread, width=32), min_size=n, max_size=n))
            )
        )
        norm.running_var.copy_(
            torch.tensor(
                data.draw(st.lists(st.sampled_from([0.0, 1e-12, 0.25, 1.0, 30.0, 1e6]), min_size=n, max_size=n))
            )
        )
        norm.weight.copy_(torch.tensor(data.draw(st.lists(SCALES, min_size=n, max_size=n))))
        norm.bias.copy_(
            torch.tensor(
                data.draw(
                    st.lists(
                        st.one_of(st.floats(-3, 3, width=32), st.sampled_from([0.0, -0.0, 1e20, -1e20])),
                        min_size=n,
                        max_size=n,
                    )
                )
            )
        )


def assert_bit_exact(net, model, images):
    theirs = torch_layer_outputs(net, images)
    ours = golden.run(model, images)
    for i, (a, b) in enumerate(zip(theirs, ours.layers, strict=True)):
        assert a.shape == b.out.shape and np.array_equal(a, b.out), f"layer {i} differs"
    assert np.array_equal(theirs[-1].argmax(axis=1), ours.classes)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(1, 150), n=st.integers(1, 12), data=st.data())
def test_bits_layer_every_reachable_sum(k, n, data):
    """Binarized input, so each neuron can be driven to every dot value -K, -K+2, ..., K exactly."""
    torch.manual_seed(data.draw(st.integers(0, 2**16)))
    net = BinaryNet((1, 1, k), [BinaryDense(k, n), BinaryDense(n, 3, output="scores")], binarize_input=128).eval()
    set_norm(net.blocks[0].norm, data, 0.0, k + 1.0)
    model = export_model(net, ["a", "b", "c"])
    signs = net.blocks[0].linear.weight.detach().numpy() >= 0
    rows = []
    for neuron in range(n):
        for flips in range(k + 1):  # flip the first `flips` inputs: dot = K - 2*flips
            bits = signs[neuron].copy()
            bits[:flips] = ~bits[:flips]
            rows.append(np.where(bits, 255, 0))
    images = np.array(rows, dtype=np.uint8).reshape(-1, 1, k, 1)
    assert_bit_exact(net, model, images)


def pixels_with_dot(signs: np.ndarray, target: int) -> np.ndarray | None:
    """uint8 pixels x with sum(signs * x) == target, or None when unreachable."""
    x = np.zeros(len(signs), dtype=np.int64)
    want = np.flatnonzero(signs > 0) if target > 0 else np.flatnonzero(signs < 0)
    left = abs(target)
    for i in want:
        x[i] = min(255, left)
        left -= x[i]
    return None if left else x.astype(np.uint8)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(1, 70), n=st.integers(1, 10), data=st.data())
def test_pixel_layer_at_its_thresholds(k, n, data):
    """Raw 8-bit input: images placed exactly at, just below and just above every neuron's boundary."""
    torch.manual_seed(data.draw(st.integers(0, 2**16)))
    net = BinaryNet((1, 1, k), [BinaryDense(k, n), BinaryDense(n, 4, output="scores")]).eval()
    set_norm(net.blocks[0].norm, data, 0.0, 255.0 * k)
    model = export_model(net, list("abcd"))
    signs = np.where(net.blocks[0].linear.weight.detach().numpy() >= 0, 1, -1)
    layer = model.layers[0]
    flipped = np.any(unpack_bits(layer.weights, k) != (signs > 0), axis=1)
    rows = []
    for neuron in range(n):
        t = int(layer.thresholds[neuron])
        edge = -t if flipped[neuron] else t  # boundary in PyTorch's own dot
        for target in (edge - 1, edge, edge + 1):
            x = pixels_with_dot(signs[neuron], target)
            if x is not None:
                rows.append(x)
    rows.append(np.zeros(k, np.uint8))
    images = np.array(rows, dtype=np.uint8).reshape(-1, 1, k, 1)
    assert_bit_exact(net, model, images)


def test_convnet_with_padding_pooling_and_flatten_order(tmp_path):
    torch.manual_seed(3)
    net = BinaryNet(
        (2, 9, 7),
        [
            BinaryConv(2, 5, 3, padding=1, pad_value=0, pool=2),
            BinaryConv(5, 6, 3, padding=1, pad_value=-1),
            BinaryConv(6, 4, 2, stride=2, padding=1, pad_value=1),
            BinaryDense(4 * 3 * 2, 11),
            BinaryDense(11, 5, output="scores"),
        ],
    ).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, ThresholdBatchNorm):
                m.running_mean.normal_(0, 20, generator=gen)
                m.running_var.uniform_(0.5, 40, generator=gen)
                m.weight.normal_(0, 1, generator=gen)
                m.bias.normal_(0, 1, generator=gen)
        net.blocks[-1].norm.bias.normal_(0, 5, generator=gen)
    model = export_model(net, list("vwxyz"))
    save_model(model, tmp_path / "c.bnn")
    loaded = parse_model((tmp_path / "c.bnn").read_bytes())
    images = np.random.default_rng(0).integers(0, 256, (300, 9, 7, 2), dtype=np.uint8)
    assert_bit_exact(net, loaded, images)


def test_nan_batchnorm_is_refused():
    net = BinaryNet((1, 1, 8), [BinaryDense(8, 4), BinaryDense(4, 2, output="scores")]).eval()
    with torch.no_grad():
        net.blocks[0].norm.running_var[1] = float("nan")
    with pytest.raises(BnnError, match="NaN"):
        export_model(net, ["a", "b"])


# ------------------------------------------------------------------ what the exporter refuses: it cannot be exact


def _score_net(k: int = 8, binarize_input: int | None = 128) -> BinaryNet:
    torch.manual_seed(0)
    return BinaryNet(
        (1, 1, k), [BinaryDense(k, 4), BinaryDense(4, 3, output="scores")], binarize_input=binarize_input
    ).eval()


def test_the_score_bound_is_2_to_the_24_and_tight():
    """|dot| + |bias| = 2**24 exports and matches PyTorch at the extreme input; one more is refused, and PyTorch's
    float32 score really is wrong there (2**24 + 1 is the first integer float32 cannot hold)."""
    net = _score_net()
    head = net.blocks[-1]
    with torch.no_grad():
        head.linear.weight.fill_(1.0)  # every hidden bit +1 gives dot = +4 for all classes
        net.blocks[0].norm.bias.fill_(100.0)  # hidden bits always +1
        head.norm.bias.copy_(torch.tensor([2.0**24 - 4, -(2.0**24) + 4, 0.0]))
    model = export_model(net, ["a", "b", "c"])
    images = np.full((2, 1, 8, 1), 255, np.uint8)
    assert_bit_exact(net, model, images)
    assert golden.run(model, images).scores[0, 0] == 2**24
    with torch.no_grad():
        head.norm.bias[0] = 2.0**24 - 3
    with pytest.raises(BnnError, match=r"layer 1 \(BinaryDense\): the score bias of class 0 is 16,777,213.*2\*\*24"):
        export_model(net, ["a", "b", "c"])
    with torch.no_grad():
        torch_score = net(torch.full((1, 1, 1, 8), 255.0))[0, 0].item()
    assert torch_score != 2**24 + 1  # what the integer model would say: PyTorch is the inexact one


def test_pixel_scores_count_255_per_input():
    net = BinaryNet((1, 1, 8), [BinaryDense(8, 2, output="scores")]).eval()
    with torch.no_grad():
        net.blocks[0].norm.bias.copy_(torch.tensor([2.0**24 - 255 * 8, 0.0]))
    export_model(net, ["a", "b"])
    with torch.no_grad():
        net.blocks[0].norm.bias[1] = -(2.0**24) + 255 * 8 - 1
    with pytest.raises(BnnError, match=r"layer 0 \(BinaryDense\): the score bias of class 1.*\|dot\| up to 2,040"):
        export_model(net, ["a", "b"])


@pytest.mark.parametrize(
    "where,value,message",
    [
        ("head_bias", float("nan"), r"layer 1 \(BinaryDense\): blocks\.1\.norm\.bias holds nan at index 1"),
        ("head_bias", float("inf"), r"layer 1 \(BinaryDense\): blocks\.1\.norm\.bias holds inf at index 1"),
        ("head_bias", 2.0**26, r"layer 1 \(BinaryDense\): the score bias of class 1 is 67,108,864"),
        ("weight", float("nan"), r"layer 0 \(BinaryDense\): blocks\.0\.linear\.weight holds nan"),
        ("mean", float("-inf"), r"layer 0 \(BinaryDense\): blocks\.0\.norm\.running_mean holds -inf"),
        ("var", -1.0, r"layer 0 \(BinaryDense\): BatchNorm running_var of neuron 1 is -1\.0; a variance cannot be"),
        ("scale", float("nan"), r"the network|blocks\.1\.norm\.log_scale holds nan"),
    ],
)
def test_inexact_checkpoints_are_refused_naming_the_layer(where, value, message):
    net = _score_net()
    with torch.no_grad():
        if where == "head_bias":
            net.blocks[1].norm.bias[1] = value
        elif where == "weight":
            net.blocks[0].linear.weight[0, 3] = value
        elif where == "mean":
            net.blocks[0].norm.running_mean[2] = value
        elif where == "var":
            net.blocks[0].norm.running_var[1] = value
        else:
            net.blocks[1].norm.log_scale.fill_(value)
    with pytest.raises(BnnError, match=message) as info:
        export_model(net, ["a", "b", "c"])
    assert "\n" not in str(info.value) and str(info.value).startswith("cannot export exactly: ")


def test_non_finite_scores_name_the_real_cause():
    """PyTorch scores that are NaN are blamed on the parameter that holds NaN, not on the eval mode."""
    net = _score_net()
    with torch.no_grad():
        net.blocks[1].norm.bias[2] = float("nan")
    with pytest.raises(BnnError, match=r"PyTorch scores of layer 1 hold NaN or infinity: layer 1 .*norm\.bias") as info:
        torch_layer_outputs(net, np.zeros((3, 1, 8, 1), np.uint8))
    assert "eval mode" not in str(info.value)
