"""FINN's binarized topologies (TFC, SFC, LFC MLPs and a small CNV-style ConvNet) as Brevitas models, and the check
that carries one from Brevitas through QONNX to bnn-hw: Brevitas forward = QONNX executor = golden model.

The layers are what FINN's `bnn_pynq` examples use, sized for 28x28 Fashion-MNIST: `QuantLinear`/`QuantConv2d` with
binary weights of constant scale 1, `BatchNorm` and a bipolar `QuantIdentity` (scale 1) between layers, max-pooling
after the activation, and a per-tensor affine score norm (FINN's TensorNorm) on the last layer. Inputs come as
torchvision's ToTensor gives them (pixel / 255): the 8-bit variant multiplies by 255 and quantizes with an unsigned
8-bit scale-1 quantizer (an exact 1:1 map of the pixel), the binarized one computes `2x - 1` and a bipolar sign
(bit = pixel >= 128). Scale-1 weights and activations keep every sum an exact integer in float32, so no executor's
summation order can change a bit (docs/qonnx.md explains why Brevitas' default 0.1 weight scale does not).

Needs torch and the `[onnx]` extra (brevitas); imported only by the benchmark script and tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from brevitas.core.scaling import ScalingImplType
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
from brevitas.quant import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst, Uint8ActPerTensorFloat
from torch import nn


class BinaryWeight(SignedBinaryWeightPerTensorConst):
    """Binary weights +-1 (FINN's CommonWeightQuant with scaling_const 1)."""

    scaling_const = 1.0


class BinaryAct(SignedBinaryActPerTensorConst):
    """Bipolar activations +-1; Brevitas' sign maps 0 to +1, as QONNX's BipolarQuant does."""


class PixelQuant(Uint8ActPerTensorFloat):
    """Unsigned 8-bit input quantizer with scale 1 applied to 255 * x: the raw pixel value, exactly."""

    scaling_impl_type = ScalingImplType.CONST
    scaling_const = 255.0
    max_val = 255.0


class ScoreNorm(nn.Module):
    """FINN's TensorNorm in its eval form: one learned scale and shift for all scores (a per-class BatchNorm would
    reorder the classes in ways integer scores cannot express)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight + self.bias


@dataclass(frozen=True)
class Topology:
    """One preset: conv channels (each `(channels, pool)`; 3x3 kernels), dense widths, input kind.

    `first_padding` is QuantConv2d's own zero padding on the first convolution: pixel 0 for the 8-bit input (a
    binarized input is a +-1 map, and zero padding of a +-1 map has no bnn-hw form). `binary_padding` pads every
    later convolution's +-1 input map with -1 (`nn.ConstantPad2d` before the QuantConv2d, exported as an ONNX `Pad`,
    imported as pad value -1)."""

    name: str
    convs: tuple[tuple[int, int], ...]
    dense: tuple[int, ...]
    binarized_input: bool
    first_padding: int = 0
    binary_padding: int = 0


PRESETS: dict[str, Topology] = {
    # FINN bnn_pynq: TFC 3x64, SFC 3x256, LFC 3x1024 hidden neurons; CNV 64,64/128,128/256,256 + 512,512 (here
    # shrunk to 16,16/32,32 + 64 for a 28x28 image and a short CPU training run).
    "tfc": Topology("tfc", (), (64, 64, 64), binarized_input=False),
    "sfc": Topology("sfc", (), (256, 256, 256), binarized_input=True),
    "lfc": Topology("lfc", (), (1024, 1024, 1024), binarized_input=True),
    "cnv": Topology("cnv", ((16, 0), (16, 2), (32, 0), (32, 2)), (64,), binarized_input=False, first_padding=1),
    # tiny ones for the default test suite
    # the MLP of issue 17's probe (784-64-48-10, binarized input)
    "issue17": Topology("issue17", (), (64, 48), binarized_input=True),
    "tiny-mlp": Topology("tiny-mlp", (), (32,), binarized_input=False),
    "tiny-cnv": Topology("tiny-cnv", ((8, 2),), (16,), binarized_input=True, first_padding=0),
}


class FinnNet(nn.Module):
    """A FINN-style binarized network built from a Topology, input (B, C, H, W) = pixel / 255."""

    def __init__(
        self,
        topo: Topology,
        in_shape: tuple[int, int, int] = (1, 28, 28),
        classes: int = 10,
        weight_quant: type = BinaryWeight,
        act_quant: type = BinaryAct,
        last_norm: str = "tensor",
    ):
        """`weight_quant`/`act_quant`/`last_norm="batch"` swap in other Brevitas quantizers or a per-class
        BatchNorm on the scores (used to study where Brevitas and QONNX's executor differ; bnn-hw refuses the
        per-class norm)."""
        super().__init__()
        self.topo = topo
        c, h, w = in_shape
        if topo.binarized_input:
            self.inq = QuantIdentity(act_quant=act_quant, return_quant_tensor=False)
        else:
            self.inq = QuantIdentity(act_quant=PixelQuant, return_quant_tensor=False)
        layers: list[nn.Module] = []
        for i, (ch, pool) in enumerate(topo.convs):
            pad = topo.first_padding if i == 0 else 0
            if i > 0 and topo.binary_padding:
                layers.append(nn.ConstantPad2d(topo.binary_padding, -1.0))
                h, w = h + 2 * topo.binary_padding, w + 2 * topo.binary_padding
            layers += [
                QuantConv2d(c, ch, 3, padding=pad, bias=False, weight_quant=weight_quant),
                nn.BatchNorm2d(ch),
                QuantIdentity(act_quant=act_quant),
            ]
            h, w, c = h + 2 * pad - 2, w + 2 * pad - 2, ch
            if pool:
                layers.append(nn.MaxPool2d(pool))
                h, w = h // pool, w // pool
        self.features = nn.Sequential(*layers)
        fan_in = c * h * w
        dense: list[nn.Module] = []
        for width in topo.dense:
            dense += [
                QuantLinear(fan_in, width, bias=False, weight_quant=weight_quant),
                nn.BatchNorm1d(width),
                QuantIdentity(act_quant=act_quant),
            ]
            fan_in = width
        norm = ScoreNorm() if last_norm == "tensor" else nn.BatchNorm1d(classes)
        dense += [QuantLinear(fan_in, classes, bias=False, weight_quant=weight_quant), norm]
        self.classifier = nn.Sequential(*dense)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inq(2.0 * x - 1.0) if self.topo.binarized_input else self.inq(255.0 * x)
        x = self.features(x)
        return self.classifier(torch.flatten(x, 1))


def to_input(images: np.ndarray) -> torch.Tensor:
    """uint8 (B, H, W, C) -> float (B, C, H, W) pixel / 255, as torchvision's ToTensor."""
    return torch.from_numpy(np.array(images, dtype=np.float32)).permute(0, 3, 1, 2) / 255.0


def train(
    net: FinnNet,
    images: np.ndarray,
    labels: np.ndarray,
    epochs: int = 1,
    batch: int = 100,
    lr: float = 5e-3,
    seed: int = 0,
    log=None,
) -> FinnNet:
    """A short Adam run (BinaryNet recipe: latent weights clipped by the quantizer, straight-through sign)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x_all, y_all = to_input(images), torch.from_numpy(labels.astype(np.int64))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x_all), generator=gen)
        total, correct = 0.0, 0
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            opt.zero_grad()
            out = net(x_all[idx])
            loss = nn.functional.cross_entropy(out, y_all[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            correct += int((out.argmax(1) == y_all[idx]).sum())
        if log:
            n = len(order)
            log(f"{net.topo.name} epoch {epoch + 1}: loss {total / n:.4f}, train acc {correct / n:.4f}")
    return net.eval()


@torch.no_grad()
def brevitas_scores(net: FinnNet, images: np.ndarray, batch: int = 1000) -> np.ndarray:
    """The Brevitas (PyTorch) eval-mode forward's scores, float32 (B, classes)."""
    net.eval()
    return np.concatenate([net(to_input(images[s : s + batch])).numpy() for s in range(0, len(images), batch)])


def export(net: FinnNet, path: str | Path, in_shape: tuple[int, int, int] = (1, 28, 28)) -> Path:
    """Brevitas' own `export_qonnx` with a batch-1 example input (the graph FINN users hand to FINN)."""
    import warnings

    from brevitas.export import export_qonnx

    net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(net, torch.zeros((1, *in_shape)), str(path))
    return Path(path)
