"""bnn-hw model -> QONNX graph that QONNX's executor runs and that classifies exactly as the golden model.

Every float in the graph is an integer well inside float32's exact range, so any executor's summation order gives
the golden model's numbers: the input is `pixel / 255` (what torchvision's ToTensor feeds a Brevitas model),
multiplied back by 255 and rounded by an 8-bit `Quant` (pixels input) or compared with `binarize_at - 0.5` by a
`BipolarQuant` (bits input); weights are `BipolarQuant` of +-1 initializers (scale 1); each layer's threshold is an
`Add` of `K - 2t` (bits) or `-t` (pixels) before a `BipolarQuant`, so `acc >= t` becomes "dot + offset >= 0", and
BipolarQuant maps 0 to +1 exactly as bnn-hw's `>=` does; padding is a `Pad` with the model's pad value; max-pooling
a `MaxPool` on the +-1 bits (the OR); the scores are `Gemm + Add(bias)`. The model's name, classes and provenance
travel in the ONNX metadata, so importing the file gives back the same `.bnn`, byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from bnn_hw.qonnx.converter import METADATA_PREFIX, PAD_NOTE
from bnn_hw.qonnx.graph import CUSTOM_DOMAIN, need_onnx

from bnn_hw import __version__
from bnn_hw.errors import BnnError
from bnn_hw.model import BnnModel, Layer
from bnn_hw.packing import unpack_bits

OPSET = 13
_EXACT = 1 << 24  # float32 holds every integer below this


class _Builder:
    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(self.numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], name: str, domain: str = "", **kw: Any) -> str:
        out = f"{name}_out"
        self.nodes.append(self.helper.make_node(op, inputs, [out], name=name, domain=domain, **kw))
        return out

    def bipolar(self, x: str, name: str) -> str:
        scale = self.const(f"{name}_scale", np.array(1.0, np.float32))
        return self.node("BipolarQuant", [x, scale], name, domain=CUSTOM_DOMAIN)


def _pm1(layer: Layer) -> np.ndarray:
    """{-1,+1} float32 weights (N, K) in the model's fan-in order."""
    return np.where(unpack_bits(layer.weights, layer.fan_in), np.float32(1), np.float32(-1))


def build_qonnx(model: BnnModel, hwc_flatten: bool = False) -> Any:
    """The QONNX `onnx.ModelProto` of `model` (batch 1, NCHW input `x` = pixel / 255, output `scores`).

    `hwc_flatten`: flatten a feature map with Transpose(NCHW -> NHWC) + Flatten and keep the dense weights in the
    model's HWC order, instead of Flatten on NCHW with the weights reordered to (C, H, W) as PyTorch would have them."""
    need_onnx()
    from onnx import TensorProto, helper

    model.validate()
    b = _Builder()
    h, w, c = model.input_shape
    x = b.node("Mul", ["x", b.const("to_pixels", np.array(255.0, np.float32))], "to_pixels")
    if model.binarize_at is not None:
        shift = b.const("binarize_shift", np.array(0.5 - model.binarize_at, np.float32))
        x = b.bipolar(b.node("Add", [x, shift], "binarize_at"), "binarize")
    else:
        x = b.node(
            "Quant",
            [
                x,
                b.const("pixel_scale", np.array(1.0, np.float32)),
                b.const("pixel_zeropt", np.array(0.0, np.float32)),
                b.const("pixel_bits", np.array(8.0, np.float32)),
            ],
            "pixel_quant",
            domain=CUSTOM_DOMAIN,
            signed=0,
            narrow=0,
            rounding_mode="ROUND",
        )
    spatial = True
    for i, layer in enumerate(model.layers):
        p = f"l{i}"
        wf = _pm1(layer)
        n, k = wf.shape
        if layer.kind == "conv":
            if layer.padding:
                pad_level = float(layer.pad_value)  # +-1 for bits, the pixel value itself for pixels
                pads = b.const(f"{p}_pads", np.array([0, 0, layer.padding, layer.padding] * 2, np.int64))
                x = b.node(
                    "Pad",
                    [x, pads, b.const(f"{p}_padval", np.array(pad_level, np.float32))],
                    f"{p}_pad",
                    mode="constant",
                )
            kk = layer.kernel
            oihw = wf.reshape(n, kk, kk, layer.in_shape[2]).transpose(0, 3, 1, 2)
            wq = b.bipolar(b.const(f"{p}_w", np.ascontiguousarray(oihw)), f"{p}_wq")
            x = b.node(
                "Conv", [x, wq], f"{p}_conv", kernel_shape=[kk, kk], strides=[layer.stride] * 2, pads=[0, 0, 0, 0]
            )
            if not layer.padding:  # the pad value changes nothing here; recorded for an exact round trip
                b.nodes[-1].doc_string = f"{PAD_NOTE}{layer.pad_value}"
            shape = (1, n, 1, 1)
        else:
            if spatial:
                hh, ww, cc = model.input_shape if i == 0 else model.layers[i - 1].out_shape
                if hwc_flatten:
                    x = b.node("Transpose", [x], f"{p}_nhwc", perm=[0, 2, 3, 1])
                else:  # weights in PyTorch's (C, H, W) flatten order
                    wf = wf.reshape(n, hh, ww, cc).transpose(0, 3, 1, 2).reshape(n, k)
                x = b.node("Flatten", [x], f"{p}_flatten", axis=1)
                spatial = False
            wq = b.bipolar(b.const(f"{p}_w", np.ascontiguousarray(wf)), f"{p}_wq")
            x = b.node("Gemm", [x, wq], f"{p}_gemm", transB=1)
            shape = (1, n)
        if layer.output == "bits":
            k_fan = layer.fan_in
            t = layer.thresholds.astype(np.int64)
            offset = (k_fan - 2 * t) if layer.input == "bits" else -t
            if np.abs(offset).max(initial=0) >= _EXACT:
                raise BnnError(f"layer {i}: threshold offsets beyond 2**24 are not exact in float32")
            x = b.node("Add", [x, b.const(f"{p}_offset", offset.astype(np.float32).reshape(shape))], f"{p}_threshold")
            x = b.bipolar(x, f"{p}_sign")
            if layer.pool:
                x = b.node("MaxPool", [x], f"{p}_pool", kernel_shape=[layer.pool] * 2, strides=[layer.pool] * 2)
        else:
            bias = layer.bias.astype(np.int64)
            lo, hi = layer.acc_range
            top = max(abs(layer.dot_from_acc(np.array([lo, hi]))).max(), 0) + np.abs(bias).max(initial=0)
            if top >= _EXACT:
                raise BnnError(f"layer {i}: scores up to {top} are not exact in float32 (limit 2**24)")
            x = b.node("Add", [x, b.const(f"{p}_bias", bias.astype(np.float32).reshape(1, n))], f"{p}_bias")
    b.nodes.append(helper.make_node("Identity", [x], ["scores"], name="scores"))
    graph = helper.make_graph(
        b.nodes,
        model.name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, h, w])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, model.num_classes])],
        b.inits,
    )
    proto = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(CUSTOM_DOMAIN, 1)],
        producer_name="bnn-hw",
        producer_version=__version__,
    )
    proto.ir_version = 8
    meta = {
        "name": model.name,
        "classes": json.dumps(model.classes),
        "source": json.dumps(model.source, sort_keys=True),
        "model_hash": model.hash,
        "input": "x = pixel / 255, NCHW float32; import with --input-scale 1/255",
    }
    helper.set_model_props(proto, {METADATA_PREFIX + k: v for k, v in meta.items()})
    return proto


def export_qonnx(model: BnnModel, path: str | Path, hwc_flatten: bool = False) -> Path:
    """Write `model` as a QONNX file; shapes are inferred so QONNX's executor runs it as is."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    proto = build_qonnx(model, hwc_flatten=hwc_flatten)
    wrapper = ModelWrapper(proto).transform(InferShapes())
    path = Path(path)
    wrapper.save(str(path))
    return path


def with_batch(wrapper: Any, batch: int) -> Any:
    """The same graph for `batch` images at once (QONNX's executor needs static shapes): the input's first dimension
    and any Reshape target that names batch 1 become `batch`; shapes are inferred again."""
    from onnx import numpy_helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    proto = type(wrapper.model)()
    proto.CopyFrom(wrapper.model)
    g = proto.graph
    inits = {i.name: i for i in g.initializer}
    for node in g.node:
        if node.op_type == "Reshape" and node.input[1] in inits:
            target = numpy_helper.to_array(inits[node.input[1]]).copy()
            if target.size and target[0] == 1:
                target[0] = batch
                inits[node.input[1]].CopyFrom(numpy_helper.from_array(target.astype(np.int64), node.input[1]))
    init_names = set(inits)
    for vi in list(g.input) + list(g.output):
        if vi.name not in init_names and vi.type.tensor_type.shape.dim:
            vi.type.tensor_type.shape.dim[0].dim_value = batch
    del g.value_info[:]
    return ModelWrapper(proto).transform(InferShapes())


def execute_batches(path_or_wrapper: Any, x: np.ndarray, batch: int = 500) -> np.ndarray:
    """QONNX's executor on many inputs (N, ...) in batches; returns the graph output for each."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    base = path_or_wrapper if isinstance(path_or_wrapper, ModelWrapper) else ModelWrapper(str(path_or_wrapper))
    inp = [i.name for i in base.graph.input if base.get_initializer(i.name) is None][0]
    out = base.graph.output[0].name
    outs = []
    cache: dict[int, Any] = {}
    for start in range(0, len(x), batch):
        xb = np.ascontiguousarray(x[start : start + batch], dtype=np.float32)
        m = cache.get(len(xb))
        if m is None:
            m = cache[len(xb)] = with_batch(base, len(xb))
        outs.append(execute_onnx(m, {inp: xb})[out])
    return np.concatenate(outs)
