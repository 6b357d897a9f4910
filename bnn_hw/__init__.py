"""bnn-hw: the hub of the toolkit.

The threshold-and-bitweight model form (`bnn_hw.model`), its bit packing (`bnn_hw.packing`) and the bit-exact numpy
golden model (`bnn_hw.golden`). Importing this package needs numpy alone: torch, amaranth, cocotb and cupy are only
imported by the spokes (train/, rtl/, sim/, cuda_ref/) that use them.
"""

from bnn_hw.accelerator import Accelerator
from bnn_hw.errors import BnnError
from bnn_hw.model import BnnModel, InputKind, Layer, LayerKind, OutputKind, load_model, save_model

__version__ = "0.1.0"

__all__ = [
    "Accelerator",
    "BnnError",
    "BnnModel",
    "InputKind",
    "Layer",
    "LayerKind",
    "OutputKind",
    "load_model",
    "save_model",
    "__version__",
]
