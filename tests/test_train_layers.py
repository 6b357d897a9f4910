"""BinaryNet numerics the trainer relies on (sign, straight-through gradient, clipping) and the model presets."""

from __future__ import annotations

import pytest
import torch
from bnn_hw.train.layers import BinaryConv, BinaryDense, BinaryNet, SignSTE, clip_weights
from bnn_hw.train.loop import lr_scales, param_groups
from bnn_hw.train.models import PRESETS, ModelConfig, build_model, make_config

from bnn_hw.errors import BnnError


def test_sign_of_zero_is_plus_one():
    x = torch.tensor([-2.0, -1e-30, -0.0, 0.0, 1e-30, 3.0])
    assert SignSTE.apply(x).tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]


def test_straight_through_gradient():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.0001, 7.0], requires_grad=True)
    upstream = torch.arange(1.0, 9.0)
    SignSTE.apply(x).backward(upstream)
    # Passed where |x| <= 1 (hard-tanh derivative), zero elsewhere.
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0, 0.0]


def test_weight_clipping_after_a_step():
    torch.manual_seed(0)
    net = build_model(make_config("mlp", (8, 8, 1), 10, hidden=[16]))
    with torch.no_grad():
        net.blocks[0].linear.weight[0, :3] = torch.tensor([5.0, -3.0, 0.25])
    opt = torch.optim.SGD(net.parameters(), lr=100.0)
    x = torch.randint(0, 256, (4, 1, 8, 8)).float()
    net.logits(x).square().sum().backward()
    opt.step()
    bn_weight = net.blocks[0].norm.weight.detach().clone()
    clip_weights(net)
    for block in net.blocks:
        w = block.linear.weight
        assert float(w.detach().abs().max()) <= 1.0
    assert net.blocks[0].linear.weight[0, :2].abs().tolist() == [1.0, 1.0]
    # Only binary layers' latent weights are clipped; BatchNorm parameters are left alone.
    assert torch.equal(net.blocks[0].norm.weight, bn_weight)


def test_presets_build_only_layer_blocks():
    for name in PRESETS:
        shape = (8, 8, 1) if name in ("mlp", "cnn") else (32, 32, 3)
        if name == "paper-mnist":
            shape = (28, 28, 1)
        cfg = make_config(name, shape, 10, hidden=[32, 32] if name != "cnn" else None)
        if name.startswith("paper-") and cfg.conv:
            cfg.conv = [(8, p) for _, p in cfg.conv]  # same structure, small widths: quick to build
        net = build_model(cfg)
        assert isinstance(net, BinaryNet)
        assert all(isinstance(b, BinaryConv | BinaryDense) for b in net.blocks)
        assert net.blocks[-1].output == "scores" and net.blocks[-1].linear.out_features == 10
        net.eval()
        h, w, c = shape
        out = net(torch.randint(0, 256, (2, c, h, w)).float())
        assert out.shape == (2, 10) and torch.equal(out, out.round())


def test_paper_conv_nets_padding_and_pooling():
    net = build_model(make_config("paper-cifar10", (32, 32, 3), 10))
    convs = [b for b in net.blocks if isinstance(b, BinaryConv)]
    assert [b.conv.out_channels for b in convs] == [128, 128, 256, 256, 512, 512]
    assert [b.pool for b in convs] == [0, 2, 0, 2, 0, 2]
    assert convs[0].conv.pad_value == 0.0 and all(b.conv.pad_value == -1.0 for b in convs[1:])
    dense = [b for b in net.blocks if isinstance(b, BinaryDense)]
    assert [d.linear.in_features for d in dense] == [512 * 4 * 4, 1024, 1024]
    svhn = make_config("paper-svhn", (32, 32, 3), 10)
    assert [c for c, _ in svhn.conv] == [64, 64, 128, 128, 256, 256] and svhn.hidden == [512, 512]
    mnist = make_config("paper-mnist", (28, 28, 1), 10)
    assert mnist.hidden == [4096] * 3 and (mnist.dropout_in, mnist.dropout_hidden) == (0.2, 0.5)


def test_binarized_input_pads_with_minus_one():
    cfg = make_config("cnn", (28, 28, 1), 10, binarize_input=128)
    net = build_model(cfg)
    assert net.blocks[0].conv.pad_value == -1.0 and net.binarize_input == 128


def test_presets_adapt_or_refuse():
    cnn = make_config("cnn", (8, 8, 1), 10)
    assert [p for _, p in cnn.conv] == [2, 2, 0]  # 8 -> 4 -> 2, the third pooling dropped
    assert [p for _, p in make_config("cnn", (28, 28, 1), 10).conv] == [2, 2, 2]
    with pytest.raises(BnnError, match=r"8x8 image would shrink to 1x1; it needs images of at least 16x16"):
        make_config("paper-cifar10", (8, 8, 1), 10)
    with pytest.raises(BnnError, match=r"unknown preset 'resnet'; choose from: mlp, cnn, paper-mnist"):
        make_config("resnet", (28, 28, 1), 10)
    with pytest.raises(BnnError, match="hidden widths must be positive"):
        make_config("mlp", (28, 28, 1), 10, hidden=[0])
    with pytest.raises(BnnError, match=r"dropout-in must be in \[0, 1\)"):
        make_config("mlp", (28, 28, 1), 10, dropout_in=1.0)
    with pytest.raises(BnnError, match="binarize-input threshold must be 1..255"):
        make_config("mlp", (28, 28, 1), 10, binarize_input=300)


def test_config_dict_round_trip():
    cfg = make_config("cnn", (28, 28, 1), 10, hidden=[100], binarize_input=64)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(BnnError, match="unknown keys"):
        ModelConfig.from_dict({**cfg.to_dict(), "wings": 2})


def test_lr_scaling_only_for_binary_weights():
    net = build_model(make_config("mlp", (28, 28, 1), 10, hidden=[512]))
    scales = lr_scales(net)
    w0 = net.blocks[0].linear.weight
    assert scales[id(w0)] == pytest.approx((6.0 / (784 + 512)) ** -0.5)
    assert id(net.blocks[0].norm.weight) not in scales
    groups = param_groups(net, True)
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))
    assert param_groups(net, False)[0]["lr_scale"] == 1.0
