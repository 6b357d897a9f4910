"""QONNX import/export (bnn_hw.qonnx): round trips keep the model hash, QONNX's own executor classifies exactly as the
golden model (every class and score), sign(0) and BatchNorm-style float chains fold exactly (exhaustively on a small
layer), FINN-style MultiThreshold/XnorPopcountMatMul graphs import, unsupported graphs are refused in one line, and
Brevitas-trained FINN-style models go Brevitas forward = execute_onnx = golden = RTL simulation.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("qonnx")

from bnn_hw.qonnx import converter  # noqa: E402
from bnn_hw.qonnx.converter import import_onnx  # noqa: E402
from bnn_hw.qonnx.graph import CUSTOM_DOMAIN  # noqa: E402
from bnn_hw.qonnx.writer import build_qonnx, execute_batches, export_qonnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from bnn_hw import golden  # noqa: E402
from bnn_hw.cli import main as cli  # noqa: E402
from bnn_hw.errors import BnnError  # noqa: E402
from bnn_hw.model import BnnModel, load_model, save_model  # noqa: E402
from bnn_hw.packing import unpack_bits  # noqa: E402
from bnn_hw.synthetic import ConvSpec, random_images, random_model  # noqa: E402


def nchw(images: np.ndarray) -> np.ndarray:
    """uint8 (B, H, W, C) -> what the exported graph takes: float32 NCHW pixel / 255."""
    return images.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)


def demo_mlp() -> BnnModel:
    """The demo preset's shape (784-512-512-10, raw pixels), random weights and thresholds."""
    return random_model((28, 28, 1), [512, 512], seed=5, name="mlp-shape")


def demo_cnn() -> BnnModel:
    """The `cnn` preset's shape (32C3-MP2-64C3-MP2-128C3-MP2-512FC, padding 1) with every kind of pad value."""
    specs = [ConvSpec(32, 3, 1, 1, pad_value=0, pool=2), ConvSpec(64, 3, 1, 1, -1, 2), ConvSpec(128, 3, 1, 1, 1, 2)]
    return random_model((28, 28, 1), [*specs, 512], seed=4, name="cnn-shape")


# ------------------------------------------------------------------------------------------------------ round trip


@pytest.mark.parametrize("hwc", [False, True], ids=["nchw-flatten", "hwc-flatten"])
@pytest.mark.parametrize(
    "make",
    [
        demo_mlp,
        demo_cnn,
        lambda: random_model((8, 8, 1), [24, 16], num_classes=5, seed=2, binarize_at=100, name="bin"),
        lambda: random_model(
            (9, 9, 3),
            [ConvSpec(8, 3, 2, 2, 5, 0), ConvSpec(4, 2, 1, 0, 1, 0), 12],
            num_classes=4,
            seed=3,
            name="stride",
        ),
    ],
    ids=["demo-mlp", "cnn", "binarized", "stride-pad"],
)
def test_round_trip_same_hash_and_executor_equals_golden(tmp_path, make, hwc, fashion):
    model = make()
    path = export_qonnx(model, tmp_path / "m.onnx", hwc_flatten=hwc)
    back, notes = import_onnx(path)
    assert notes == []
    save_model(back, tmp_path / "back.bnn")
    save_model(model, tmp_path / "orig.bnn")
    assert (tmp_path / "back.bnn").read_bytes() == (tmp_path / "orig.bnn").read_bytes()
    if model.input_shape == (28, 28, 1):
        images = fashion[1].images[:500]
    else:
        images = random_images(model, 300, seed=1)
    scores = execute_batches(path, nchw(images), batch=250)
    ref = golden.run(model, images)
    assert np.array_equal(scores, ref.scores.astype(np.float32))
    assert np.array_equal(np.argmax(scores, axis=1), ref.classes)


@pytest.mark.slow
@pytest.mark.parametrize("make", [demo_mlp, demo_cnn], ids=["demo-mlp", "cnn"])
def test_executor_equals_golden_on_all_test_images(tmp_path, make, fashion):
    model = make()
    path = export_qonnx(model, tmp_path / "m.onnx")
    images = fashion[1].images
    scores = execute_batches(path, nchw(images), batch=1000)
    ref = golden.run(model, images)
    assert len(images) == 10_000
    assert np.array_equal(scores, ref.scores.astype(np.float32))


def test_bisection_equals_enumeration(tmp_path, monkeypatch):
    """Large pixel layers are folded by bisection; on a layer small enough to enumerate both give the same model."""
    model = random_model((6, 6, 1), [16], num_classes=3, seed=9)
    path = export_qonnx(model, tmp_path / "m.onnx")
    enumerated, _ = import_onnx(path)
    monkeypatch.setattr(converter, "_ENUMERATE", 1)
    bisected, _ = import_onnx(path)
    assert enumerated.hash == bisected.hash == model.hash


# ------------------------------------------------------------------------------------------- hand-made graphs


def _const(name: str, value) -> object:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def _graph(nodes, inits, in_shape, out_shape, path):
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(CUSTOM_DOMAIN, 1)])
    m.ir_version = 8
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    ModelWrapper(m).transform(InferShapes()).save(str(path))
    return path


def _bq(x: str, out: str) -> object:
    return helper.make_node("BipolarQuant", [x, "one"], [out], name=out, domain=CUSTOM_DOMAIN)


def test_sign_zero_and_negative_scales_exhaustively(tmp_path):
    """Gemm -> Mul -> Add -> BipolarQuant where the float value is exactly 0 at some integer sums (BipolarQuant maps 0
    to +1) and some scales are negative or zero: the imported model equals QONNX's executor on all 2**16 inputs."""
    rng = np.random.default_rng(0)
    k, n = 16, 8
    w0 = np.where(rng.random((n, k)) < 0.5, 1.0, -1.0)
    mul = np.array([0.5, -0.5, 0.25, -2.0, 0.0, 1.0, -1.0, 0.125], np.float32)
    add = np.array([-1.0, 1.0, 0.0, 4.0, 0.0, -3.0, -16.0, 0.25], np.float32)  # zero crossings at integer sums
    w1 = np.where(rng.random((3, n)) < 0.5, 1.0, -1.0)
    nodes = [
        helper.make_node("Mul", ["x", "c255"], ["p"], name="to_pixels"),
        helper.make_node("Add", ["p", "shift"], ["s"], name="shift"),
        _bq("s", "b"),
        helper.make_node("Flatten", ["b"], ["f"], name="flat"),
        _bq("w0", "w0q"),
        helper.make_node("Gemm", ["f", "w0q"], ["g0"], name="gemm0", transB=1),
        helper.make_node("Mul", ["g0", "mul"], ["m0"], name="mul0"),
        helper.make_node("Add", ["m0", "add"], ["a0"], name="add0"),
        _bq("a0", "h"),
        _bq("w1", "w1q"),
        helper.make_node("Gemm", ["h", "w1q"], ["y"], name="gemm1", transB=1),
    ]
    inits = [
        _const("c255", 255.0),
        _const("shift", -127.5),
        _const("one", 1.0),
        _const("w0", w0),
        _const("mul", mul.reshape(1, n)),
        _const("add", add.reshape(1, n)),
        _const("w1", w1),
    ]
    path = _graph(nodes, inits, (1, 1, 4, 4), (1, 3), tmp_path / "sign0.onnx")
    model, _ = import_onnx(path)
    assert model.binarize_at == 128
    patterns = (np.arange(1 << k)[:, None] >> np.arange(k)) & 1
    images = (patterns * 255).astype(np.uint8).reshape(-1, 4, 4, 1)
    scores = execute_batches(path, nchw(images), batch=8192)
    ref = golden.run(model, images)
    assert np.array_equal(scores, ref.scores.astype(np.float32))
    # and the hidden bits themselves, against BipolarQuant(0) = +1 evaluated directly in numpy
    dot = (2 * patterns - 1) @ w0.T
    hidden = (dot.astype(np.float32) * mul + add) >= 0
    assert np.array_equal(ref.layers[0].out, hidden)
    assert hidden[(dot.astype(np.float32) * mul + add) == 0].all() and ((dot * mul + add) == 0).any()


def finn_bipolar(model: BnnModel, path):
    """FINN-streamlined form before the XNOR conversion: MultiThreshold with a BIPOLAR output (out_scale 2, out_bias
    -1) and MatMul with +-1 weights; thresholds on the dot product 2 * acc - K."""
    mt = {"domain": CUSTOM_DOMAIN, "out_dtype": "BIPOLAR", "out_scale": 2.0, "out_bias": -1.0}
    nodes = [
        helper.make_node("Mul", ["x", "c255"], ["p"], name="to_pixels"),
        helper.make_node("MultiThreshold", ["p", "t_in"], ["b"], name="mt_in", **mt),
        helper.make_node("Flatten", ["b"], ["a_in"], name="flat"),
    ]
    inits = [_const("c255", 255.0), _const("t_in", [[model.binarize_at - 0.5]])]
    x = "a_in"
    for i, layer in enumerate(model.layers):
        pm1 = np.where(unpack_bits(layer.weights, layer.fan_in), 1.0, -1.0)
        inits.append(_const(f"w{i}", pm1.T))
        nodes.append(helper.make_node("MatMul", [x, f"w{i}"], [f"dot{i}"], name=f"matmul{i}"))
        if layer.output == "bits":
            t = 2 * layer.thresholds - layer.fan_in
            inits.append(_const(f"t{i}", t.reshape(-1, 1)))
            nodes.append(helper.make_node("MultiThreshold", [f"dot{i}", f"t{i}"], [f"a{i}"], name=f"mt{i}", **mt))
            x = f"a{i}"
        else:
            inits.append(_const("bias", layer.bias.reshape(1, -1)))
            nodes.append(helper.make_node("Add", [f"dot{i}", "bias"], ["y"], name="scores"))
    h, w, c = model.input_shape
    return _graph(nodes, inits, (1, c, h, w), (1, model.num_classes), path)


def finn_streamlined(model: BnnModel, path):
    """A FINN-style streamlined graph of a binarized-input dense model: MultiThreshold (BINARY) activations and
    XnorPopcountMatMul layers, the scores as 2 * popcount - K + bias."""
    nodes = [
        helper.make_node("Mul", ["x", "c255"], ["p"], name="to_pixels"),
        helper.make_node(
            "MultiThreshold", ["p", "t_in"], ["b"], name="mt_in", domain=CUSTOM_DOMAIN, out_dtype="BINARY"
        ),
        helper.make_node("Flatten", ["b"], ["a_in"], name="flat"),
    ]
    inits = [_const("c255", 255.0), _const("t_in", [[model.binarize_at - 0.5]])]
    x = "a_in"
    for i, layer in enumerate(model.layers):
        bits = unpack_bits(layer.weights, layer.fan_in).astype(np.float32)  # (N, K) 0/1
        inits.append(_const(f"w{i}", bits.T))
        nodes.append(
            helper.make_node("XnorPopcountMatMul", [x, f"w{i}"], [f"acc{i}"], name=f"xnor{i}", domain=CUSTOM_DOMAIN)
        )
        if layer.output == "bits":
            inits.append(_const(f"t{i}", layer.thresholds.reshape(-1, 1).astype(np.float32)))
            nodes.append(
                helper.make_node(
                    "MultiThreshold",
                    [f"acc{i}", f"t{i}"],
                    [f"a{i}"],
                    name=f"mt{i}",
                    domain=CUSTOM_DOMAIN,
                    out_dtype="BINARY",
                )
            )
            x = f"a{i}"
        else:
            inits += [_const("two", 2.0), _const("off", (layer.bias - layer.fan_in).reshape(1, -1))]
            nodes += [
                helper.make_node("Mul", [f"acc{i}", "two"], ["dbl"], name="double"),
                helper.make_node("Add", ["dbl", "off"], ["y"], name="scores"),
            ]
    h, w, c = model.input_shape
    return _graph(nodes, inits, (1, c, h, w), (1, model.num_classes), path)


@pytest.mark.parametrize("build", [finn_streamlined, finn_bipolar], ids=["xnorpopcount", "bipolar-matmul"])
def test_finn_multithreshold_graphs(tmp_path, build):
    model = random_model((6, 6, 1), [20, 12], num_classes=4, seed=6, binarize_at=90)
    path = build(model, tmp_path / "finn.onnx")
    back, _ = import_onnx(path)
    for a, b in zip(model.layers, back.layers, strict=True):
        assert np.array_equal(a.weights, b.weights)
        assert np.array_equal(
            a.thresholds if a.output == "bits" else a.bias, b.thresholds if b.output == "bits" else b.bias
        )
    assert back.binarize_at == 90
    images = random_images(model, 300, seed=2)
    assert np.array_equal(execute_batches(path, nchw(images), 300), golden.run(back, images).scores)


def _tamper(model: BnnModel, path, edit):
    proto = build_qonnx(model)
    edit(proto)
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    del proto.graph.value_info[:]
    ModelWrapper(proto).transform(InferShapes()).save(str(path))
    return path


def _node(proto, name):
    return next(n for n in proto.graph.node if n.name == name)


def _relu(proto):
    node = _node(proto, "l0_sign")
    node.op_type, node.domain = "Relu", ""
    del node.input[1:]


def _quant2(proto):
    node = _node(proto, "l0_sign")
    node.op_type = "Quant"
    node.input.extend(["zp0", "bits2"])
    node.attribute.extend([helper.make_attribute(k, v) for k, v in (("signed", 1), ("narrow", 0))])
    node.attribute.append(helper.make_attribute("rounding_mode", "ROUND"))
    proto.graph.initializer.extend([_const("zp0", 0.0), _const("bits2", 2.0)])


def _weight_quant2(proto):
    node = _node(proto, "l1_wq")
    node.op_type = "Quant"
    node.input.extend(["zp0", "bits2"])
    node.attribute.extend([helper.make_attribute(k, v) for k, v in (("signed", 1), ("narrow", 0))])
    node.attribute.append(helper.make_attribute("rounding_mode", "ROUND"))
    proto.graph.initializer.extend([_const("zp0", 0.0), _const("bits2", 2.0)])


def _residual(proto):
    """layer 1's sign output + layer 0's sign output (both 16 wide) feeding layer 2."""
    gemm = _node(proto, "l2_gemm")
    res = helper.make_node("Add", ["l1_sign_out", "l0_sign_out"], ["res_out"], name="res")
    gemm.input[0] = "res_out"
    nodes = list(proto.graph.node)
    nodes.insert(nodes.index(gemm), res)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)


def _non_square(proto):
    node = _node(proto, "l0_conv")
    w = next(i for i in proto.graph.initializer if i.name == "l0_w")
    arr = numpy_helper.to_array(w)[:, :, :, :1]  # 3x1 kernels
    w.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(arr), "l0_w"))
    for a in node.attribute:
        if a.name == "kernel_shape":
            a.ints[:] = [3, 1]


def _zero_padded_bits(proto):
    """Layer 1's Pad (+1) folded into its Conv's pads, as Brevitas exports QuantConv2d(padding=1): zero padding of a
    +-1 map."""
    pad = _node(proto, "l1_pad")
    conv = _node(proto, "l1_conv")
    conv.input[0] = pad.input[0]
    for a in conv.attribute:
        if a.name == "pads":
            a.ints[:] = [1, 1, 1, 1]
    proto.graph.node.remove(pad)


def _sign(proto):
    node = _node(proto, "l0_sign")
    node.op_type, node.domain = "Sign", ""
    del node.input[1:]


@pytest.mark.parametrize(
    "edit, conv, expect",
    [
        (_relu, False, "node 'l0_sign' (Relu): op type Relu is not supported"),
        (_quant2, False, "node 'l0_sign' (Quant): 2-bit activation quantizer"),
        (_weight_quant2, False, "node 'l1_wq' (Quant): 2-bit weight quantizer"),
        (_residual, False, "node 'res' (Add): combines computed tensors (a residual/skip connection)"),
        (_non_square, True, "node 'l0_conv' (Conv): kernel 3x1 is not square"),
        (_sign, False, "node 'l0_sign' (Sign): ONNX Sign maps 0 to 0"),
        (_zero_padded_bits, True, "node 'l1_conv' (Conv): pads ±1 activations with 0; bnn-hw pads a bits input"),
    ],
    ids=["relu", "2-bit-quant", "2-bit-weights", "residual-add", "non-square-kernel", "onnx-sign", "zero-pad-bits"],
)
def test_unsupported_graphs_are_refused_in_one_line(tmp_path, capsys, edit, conv, expect):
    if conv:
        convs = [ConvSpec(4, 3, 1, 0, 0, 0), ConvSpec(4, 3, 1, 1, 1, 0)]
        model = random_model((8, 8, 1), [*convs, 8], num_classes=3, seed=1)
    else:
        model = random_model((4, 4, 1), [16, 16], num_classes=3, seed=1)
    path = _tamper(model, tmp_path / "bad.onnx", edit)
    with pytest.raises(BnnError) as info:
        import_onnx(path)
    assert expect in str(info.value)
    assert cli(["import", str(path), "-o", str(tmp_path / "bad.bnn")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("bnn-hw import: error: node ") and expect in err
    assert not (tmp_path / "bad.bnn").exists()


def test_per_class_scale_on_scores_is_refused(tmp_path):
    """Scores dot * c[n] with per-class c (a per-class BatchNorm on the last layer) have no integer dot + bias form."""
    model = random_model((4, 4, 1), [16], num_classes=3, seed=1)

    def per_class(proto):
        _node(proto, "l1_bias").op_type = "Mul"
        bias = next(i for i in proto.graph.initializer if i.name == "l1_bias")
        bias.CopyFrom(_const("l1_bias", [[1.0, 0.5, 2.0]]))

    path = _tamper(model, tmp_path / "m.onnx", per_class)
    with pytest.raises(BnnError, match="order the classes differently"):
        import_onnx(path)


# ------------------------------------------------------------------------------------------------------------- CLI


def test_cli_export_then_import(tmp_path, capsys):
    model = random_model((5, 5, 1), [ConvSpec(4, 3, 1, 1, -1, 2), 8], num_classes=3, seed=3, binarize_at=50)
    save_model(model, tmp_path / "m.bnn")
    assert cli(["export-qonnx", str(tmp_path / "m.bnn"), "-o", str(tmp_path / "m.onnx")]) == 0
    assert cli(["import", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "back.bnn")]) == 0
    out = capsys.readouterr().out
    assert f"model hash {model.hash[:16]}" in out
    assert load_model(tmp_path / "back.bnn").hash == model.hash


@pytest.mark.parametrize(
    "args, code, msg",
    [
        (["import", "missing.onnx"], 1, "missing.onnx: ONNX file not found"),
        (["import", "x.onnx", "--input-scale", "abc"], 2, "is not a number or fraction"),
        (["import", "x.onnx", "--input-scale", "-1"], 2, "must be > 0"),
        (["import", "x.onnx", "--input-shape", "28,28"], 2, "expected H,W,C"),
        (["export-qonnx", "missing.bnn"], 1, "model file not found"),
    ],
)
def test_cli_errors(tmp_path, capsys, monkeypatch, args, code, msg):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.onnx").write_bytes(b"not onnx")
    try:
        rc = cli(args)
    except SystemExit as exc:  # usage errors: argparse exits 2
        rc = exc.code
    assert rc == code
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1


def test_not_onnx_is_one_line(tmp_path):
    (tmp_path / "x.onnx").write_bytes(b"\x00\x01garbage")
    with pytest.raises(BnnError, match="not an ONNX model"):
        import_onnx(tmp_path / "x.onnx")


def test_wrong_input_scale_is_explained(tmp_path):
    """A graph fed pixel/255 imported as if it took raw pixels: the 8-bit quantizer clips, which is refused."""
    model = random_model((4, 4, 1), [8], num_classes=3, seed=1)
    path = export_qonnx(model, tmp_path / "m.onnx")
    with pytest.raises(BnnError, match="not a one-to-one map of the pixel values"):
        import_onnx(path, input_scale=1.0)


def test_import_bnn_hw_stays_numpy_only():
    import subprocess
    import sys

    code = (
        "import bnn_hw, bnn_hw.cli, sys; "
        "print(any(m.split('.')[0] in ('onnx', 'qonnx', 'onnxruntime', 'torch') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


# ------------------------------------------------------------------------------------------------ Brevitas models


@pytest.fixture(scope="session")
def brevitas_runs(tmp_path_factory):
    """Two tiny FINN-style Brevitas models (8-bit pixel MLP, binarized-input ConvNet) trained for one epoch on 3,000
    Fashion-MNIST images, exported with Brevitas' export_qonnx and imported; cached for the session."""
    pytest.importorskip("brevitas")
    import torch
    from bnn_hw.qonnx.brevitas_models import PRESETS, FinnNet, export, train

    from bnn_hw.datasets import load_dataset

    try:
        train_set = load_dataset("fashion-mnist", "train").subset(3000)
    except BnnError as exc:
        pytest.skip(str(exc))
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("brevitas")
    runs = {}
    for name in ("tiny-mlp", "tiny-cnv"):
        net = train(FinnNet(PRESETS[name]), train_set.images, train_set.labels, epochs=1, seed=0)
        onnx_path = export(net, root / f"{name}.onnx")
        assert cli(["import", str(onnx_path), "-o", str(root / f"{name}.bnn"), "--classes", "fashion-mnist"]) == 0
        runs[name] = (net, onnx_path, root / f"{name}.bnn")
    return runs


def _three_way(net, onnx_path, model, images):
    from bnn_hw.qonnx.brevitas_models import brevitas_scores

    brevitas = brevitas_scores(net, images).argmax(axis=1)
    executor = execute_batches(onnx_path, nchw(images), batch=1000).argmax(axis=1)
    ref = golden.run(model, images).classes
    return brevitas, executor, ref


@pytest.mark.parametrize("name", ["tiny-mlp", "tiny-cnv"])
def test_brevitas_forward_equals_executor_equals_golden(brevitas_runs, fashion, name):
    net, onnx_path, bnn_path = brevitas_runs[name]
    model = load_model(bnn_path)
    assert model.classes[0] == "T-shirt/top"
    images = fashion[1].images[:1000]
    brevitas, executor, ref = _three_way(net, onnx_path, model, images)
    assert np.array_equal(executor, ref)
    assert np.array_equal(brevitas, executor)
    assert (ref == fashion[1].labels[:1000]).mean() > 0.5  # it learned something: the comparison is not vacuous


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny-mlp", "tiny-cnv"])
def test_brevitas_all_test_images(brevitas_runs, fashion, name):
    net, onnx_path, bnn_path = brevitas_runs[name]
    images = fashion[1].images
    brevitas, executor, ref = _three_way(net, onnx_path, load_model(bnn_path), images)
    assert len(images) == 10_000
    assert np.array_equal(executor, ref) and np.array_equal(brevitas, executor)


def _calibrated_cnv(images: np.ndarray, seed: int):
    """An untrained CNV-shaped Brevitas net (8-bit pixel input with zero padding 1, two more binary convolutions on
    +-1 maps padded with -1, two max-pools after the sign, a binary dense layer): random weights, BatchNorm statistics
    set from one pass over `images` (so every threshold lies among the sums real images reach) and random BatchNorm
    scales of both signs."""
    import torch
    from bnn_hw.qonnx.brevitas_models import FinnNet, Topology, to_input

    torch.manual_seed(seed)
    topo = Topology("cnv-shape", ((8, 0), (8, 2), (16, 2)), (16,), False, first_padding=1, binary_padding=1)
    net = FinnNet(topo)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        bn.momentum = None  # cumulative average: one pass sets the running statistics to the batch's
        with torch.no_grad():
            bn.weight.uniform_(-1.0, 1.0)
            bn.bias.uniform_(-0.5, 0.5)
    net.train()
    with torch.no_grad():
        net(to_input(images))
    return net.eval()


def test_untrained_cnv_brevitas_equals_executor_equals_golden(tmp_path, fashion):
    """Brevitas export_qonnx of a multi-layer ConvNet (zero-padded pixel layer, Pad(-1) + conv on bits, MaxPool
    after the sign, NCHW flatten into a dense layer) imports to a model that classifies as Brevitas and QONNX's
    executor do."""
    pytest.importorskip("brevitas")
    from bnn_hw.qonnx.brevitas_models import export

    net = _calibrated_cnv(fashion[0].images[:500], seed=3)
    onnx_path = export(net, tmp_path / "cnv.onnx")
    model, notes = import_onnx(onnx_path)
    assert notes == []
    assert [layer.kind for layer in model.layers] == ["conv"] * 3 + ["dense"] * 2
    convs = [(layer.padding, layer.pad_value, layer.pool) for layer in model.layers[:3]]
    assert convs == [(1, 0, 0), (1, -1, 2), (1, -1, 2)]  # (padding, pad value, pool)
    brevitas, executor, ref = _three_way(net, onnx_path, model, fashion[1].images[:300])
    assert np.array_equal(executor, ref) and np.array_equal(brevitas, executor)
    assert len(np.unique(ref)) >= 3  # not one constant class: the comparison is not vacuous


def _rtl_sim(sim_cli, tmp_path, bnn_path, images: int):
    from bnn_hw.sim import tools

    ok, why = tools.available("verilator")
    if not ok:
        pytest.skip(why)
    build = tmp_path / "rtl"
    assert cli(["rtl", str(bnn_path), "--pe", "8", "--simd", "16", "-o", str(build), "-q"]) == 0
    rc, report, out = sim_cli(build, bnn_path, "verilator", images, seed=1)
    assert rc == 0, out
    assert report["images"] == (images or 10_000) and report["mismatch_count"] == 0


@pytest.mark.parametrize("name", ["tiny-mlp", pytest.param("tiny-cnv", marks=pytest.mark.slow)])
def test_brevitas_model_rtl_simulation_bit_exact(brevitas_runs, sim_cli, tmp_path, name):
    pytest.importorskip("amaranth")
    pytest.importorskip("cocotb")
    _rtl_sim(sim_cli, tmp_path, brevitas_runs[name][2], 200)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny-mlp", "tiny-cnv"])
def test_brevitas_model_rtl_simulation_all_images(brevitas_runs, sim_cli, tmp_path, name):
    pytest.importorskip("amaranth")
    pytest.importorskip("cocotb")
    _rtl_sim(sim_cli, tmp_path, brevitas_runs[name][2], 0)


@pytest.mark.slow
def test_brevitas_cnv_preset_all_test_images_and_rtl(tmp_path, fashion, sim_cli):
    """The `cnv` preset (four binary convolutions after a zero-padded 8-bit pixel layer, two max-pools, a dense
    layer), one epoch on 10,000 training images: Brevitas forward = execute_onnx = golden model on all 10,000 test
    images, and the imported model's RTL bit-exact on 200 of them."""
    pytest.importorskip("brevitas")
    import torch
    from bnn_hw.qonnx.brevitas_models import PRESETS, FinnNet, export, train

    train_set = fashion[0].subset(10_000)
    torch.manual_seed(0)
    net = train(FinnNet(PRESETS["cnv"]), train_set.images, train_set.labels, epochs=1, seed=0)
    onnx_path = export(net, tmp_path / "cnv.onnx")
    bnn_path = tmp_path / "cnv.bnn"
    assert cli(["import", str(onnx_path), "-o", str(bnn_path), "--classes", "fashion-mnist"]) == 0
    model = load_model(bnn_path)
    assert [layer.kind for layer in model.layers].count("conv") == 4
    images = fashion[1].images
    brevitas, executor, ref = _three_way(net, onnx_path, model, images)
    assert len(images) == 10_000
    assert np.array_equal(executor, ref) and np.array_equal(brevitas, executor)
    assert (ref == fashion[1].labels).mean() > 0.5
    pytest.importorskip("amaranth")
    pytest.importorskip("cocotb")
    _rtl_sim(sim_cli, tmp_path, bnn_path, 200)
