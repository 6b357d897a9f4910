"""QONNX / FINN-style ONNX import and export (`bnn-hw import`, `bnn-hw export-qonnx`); docs/qonnx.md.

hls4ml-style layering: `converter` (ONNX graph -> bnn-hw model), `writer` (bnn-hw model -> QONNX graph), `graph`
(loading, and running pieces of a graph with QONNX's own executor). Needs the `[onnx]` extra; nothing here is
imported by `import bnn_hw`.
"""
