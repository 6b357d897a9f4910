"""Reading an ONNX/QONNX file and running parts of it with QONNX's own executor.

The converter never re-implements an operator's float arithmetic: whatever it needs to know about a node (a folded
weight tensor, what a BatchNormalization followed by a BipolarQuant does at an integer sum), it learns by running that
node through `qonnx.core.onnx_exec.execute_onnx`, the same code path (onnxruntime per standard node, QONNX's numpy
implementations of BipolarQuant/Quant/MultiThreshold/XnorPopcountMatMul) that executes the whole file.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bnn_hw.errors import BnnError

# FINN's streamlined graphs name the QONNX op library by its old domain.
_DOMAIN_ALIASES = {"finn.custom_op.general": "qonnx.custom_op.general", "finn": "qonnx.custom_op.general"}
CUSTOM_DOMAIN = "qonnx.custom_op.general"


def need_onnx() -> None:
    """Import check for the optional `[onnx]` extra, with the fix in the message."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import qonnx  # noqa: F401
    except ImportError as exc:
        raise BnnError(
            f"QONNX import/export needs the onnx extra ({exc.name} is missing): pip install 'bnn-hw[onnx]'"
        ) from None


def _quiet():
    """QONNX and onnxruntime warn about things (opset guesses, shape mismatches on scratch graphs) that are not the
    user's problem; the converter checks what it relies on itself."""
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("ignore")
    return ctx


@dataclass
class Graph:
    """One loaded ONNX model: its nodes in order, constants (initializers and `Constant` nodes) by name, and who
    consumes which tensor."""

    proto: Any  # onnx.ModelProto
    path: str
    sha256: str
    consts: dict[str, np.ndarray]
    consumers: dict[str, list[Any]]
    producer: dict[str, Any]
    input_name: str
    input_shape: tuple[int, ...]
    output_name: str

    @property
    def nodes(self) -> list[Any]:
        return list(self.proto.graph.node)

    def metadata(self) -> dict[str, str]:
        return {p.key: p.value for p in self.proto.metadata_props}

    def opsets(self) -> list[Any]:
        return list(self.proto.opset_import)


def node_name(node: Any) -> str:
    return node.name or (node.output[0] if node.output else "?")


def where(node: Any) -> str:
    """How errors name a node: `node 'Gemm_3' (Gemm)`."""
    return f"node {node_name(node)!r} ({node.op_type})"


def attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def load_graph(path: str | Path) -> Graph:
    """Load and sanity-check an ONNX file: one graph input (besides initializers), one output, topological order."""
    need_onnx()
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    if not path.is_file():
        raise BnnError(f"{path}: ONNX file not found")
    data = path.read_bytes()
    try:
        proto = onnx.load_from_string(data)
    except Exception as exc:  # protobuf raises its own DecodeError types
        raise BnnError(f"{path}: not an ONNX model ({type(exc).__name__}: {exc})") from None
    for node in proto.graph.node:
        if node.domain in _DOMAIN_ALIASES:
            node.domain = _DOMAIN_ALIASES[node.domain]
    consts = {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type == "Constant":
            a = attrs(node)
            if "value" not in a:
                raise BnnError(f"{where(node)}: only tensor-valued Constant nodes are supported")
            consts[node.output[0]] = numpy_helper.to_array(a["value"])
    inputs = [i for i in proto.graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise BnnError(f"{path}: the graph has {len(inputs)} data inputs; bnn-hw imports one image input")
    if len(proto.graph.output) != 1:
        raise BnnError(f"{path}: the graph has {len(proto.graph.output)} outputs; bnn-hw imports one score output")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = tuple(int(d.dim_value) if d.dim_value > 0 else 1 for d in dims)
    consumers: dict[str, list[Any]] = {}
    producer: dict[str, Any] = {}
    known = set(consts) | {inputs[0].name}
    for node in proto.graph.node:
        for name in node.input:
            if name and name not in known:
                raise BnnError(
                    f"{where(node)}: input {name!r} is not computed before it: nodes not in topological order"
                )
            if name:
                consumers.setdefault(name, []).append(node)
        for name in node.output:
            producer[name] = node
            known.add(name)
    return Graph(
        proto=proto,
        path=str(path),
        sha256=hashlib.sha256(data).hexdigest(),
        consts=consts,
        consumers=consumers,
        producer=producer,
        input_name=inputs[0].name,
        input_shape=shape,
        output_name=proto.graph.output[0].name,
    )


def run_nodes(
    graph: Graph,
    nodes: list[Any],
    feeds: dict[str, np.ndarray],
    outputs: list[str],
) -> dict[str, np.ndarray]:
    """Run `nodes` (a connected piece of `graph`) on `feeds` with QONNX's executor; constants come from the graph.

    A scratch model holds just these nodes with the batch the caller chose, so the arithmetic is the executor's own
    (each standard node in its own onnxruntime session, custom ops in QONNX's numpy code)."""
    from onnx import TensorProto, helper, numpy_helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    produced = {o for n in nodes for o in n.output}
    needed = [i for n in nodes for i in n.input if i and i not in produced and i not in feeds]
    inits = []
    for name in dict.fromkeys(needed):
        if name not in graph.consts:
            raise BnnError(f"tensor {name!r} is neither a constant nor computed by the nodes it feeds")
        inits.append(numpy_helper.from_array(np.asarray(graph.consts[name]), name))
    ins = [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v.shape)) for k, v in feeds.items()]
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
    scratch = helper.make_graph([_copy(n) for n in nodes if n.op_type != "Constant"], "piece", ins, outs, inits)
    model = helper.make_model(scratch, opset_imports=graph.opsets())
    model.ir_version = graph.proto.ir_version
    ctx = _quiet()
    try:
        wrapper = ModelWrapper(model).transform(InferShapes())
        result = execute_onnx(wrapper, {k: np.asarray(v, dtype=np.float32) for k, v in feeds.items()})
    except BnnError:
        raise
    except Exception as exc:
        first = nodes[0] if nodes else None
        what = where(first) if first is not None else "graph piece"
        raise BnnError(f"{what}: QONNX's executor could not run it ({type(exc).__name__}: {exc})") from None
    finally:
        ctx.__exit__(None, None, None)
    return {o: np.asarray(result[o]) for o in outputs}


def _copy(node: Any) -> Any:
    from onnx import NodeProto

    copy = NodeProto()
    copy.CopyFrom(node)
    return copy


def const_value(graph: Graph, name: str) -> np.ndarray:
    """The value of a tensor computed from constants only (initializers through e.g. BipolarQuant/Quant/Transpose),
    folded with the executor; the result is cached in the graph's constants."""
    if name in graph.consts:
        return graph.consts[name]
    node = graph.producer.get(name)
    if node is None:
        raise BnnError(f"tensor {name!r} has no value")
    for inp in node.input:
        if inp:
            const_value(graph, inp)
    value = run_nodes(graph, [node], {}, [name])[name]
    graph.consts[name] = value
    return value


def is_const(graph: Graph, name: str, _memo: dict[str, bool] | None = None) -> bool:
    """Whether a tensor depends on constants only."""
    if name in graph.consts:
        return True
    if name == graph.input_name:
        return False
    node = graph.producer.get(name)
    if node is None:
        return False
    return all(is_const(graph, i) for i in node.input if i)
