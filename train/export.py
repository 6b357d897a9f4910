"""Export a trained BinaryNet to the threshold-and-bitweight form (docs/format.md).

Thresholds are not derived from a formula but searched with the model's *own* eval-mode arithmetic
(`ThresholdBatchNorm.eval_at`): that arithmetic is monotone in the integer sum, so for each neuron the set of sums
that give +1 is an interval ending at one end of the reachable range, and a binary search over the integers finds its
boundary exactly — ties, negative, zero, tiny and huge scales included. A neuron whose +1 set is the lower end
(negative scale) gets its weight bits inverted, which turns the comparison into the single `acc >= threshold`.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from bnn_hw.train.layers import BinaryConv, BinaryDense, BinaryNet, ThresholdBatchNorm

from bnn_hw import __version__
from bnn_hw.errors import BnnError
from bnn_hw.model import PIXEL_MAX, BnnModel, Layer
from bnn_hw.packing import pack_bits

# float32 holds every integer of magnitude <= 2**24 and, above it, only every second one; a float32 sum of integers
# is therefore exact while its true value stays within 2**24 (docs/format.md, "Exact PyTorch scores").
FLOAT32_EXACT = 1 << 24


def _layer_name(index: int, block: torch.nn.Module) -> str:
    return f"layer {index} ({type(block).__name__})"


def _dot_bound(net: BinaryNet, index: int, block: torch.nn.Module) -> int:
    """The largest |dot| the block's binary layer can produce: K for a bits input, 255 K for raw pixels."""
    if isinstance(block, BinaryConv):
        conv = block.conv
        k = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
    else:
        k = block.linear.in_features
    pixels = index == 0 and net.binarize_input is None
    return PIXEL_MAX * k if pixels else k


def exactness_problems(net: BinaryNet) -> list[str]:
    """Everything that stops the integer model from reproducing this network's eval-mode arithmetic exactly, one
    line each naming the layer: non-finite parameters or statistics, negative BatchNorm variances, float32 sums that
    can leave the exact range. Empty for an exportable network."""
    problems = []
    names = {f"blocks.{i}.": _layer_name(i, b) for i, b in enumerate(net.blocks)}
    for name, tensor in itertools.chain(net.named_parameters(), net.named_buffers()):
        if not tensor.is_floating_point():
            continue
        finite = torch.isfinite(tensor.detach()).flatten()
        if not finite.all():
            at = int((~finite).nonzero()[0])
            where = next((v for k, v in names.items() if name.startswith(k)), "the network")
            value = tensor.detach().flatten()[at].item()
            problems.append(f"{where}: {name} holds {value} at index {at}; NaN and infinity have no integer form")
    for index, block in enumerate(net.blocks):
        where = _layer_name(index, block)
        norm = getattr(block, "norm", None)
        bound = _dot_bound(net, index, block) if isinstance(block, BinaryConv | BinaryDense) else 0
        if isinstance(norm, ThresholdBatchNorm):
            var = norm.running_var.detach()
            negative = (var < 0).nonzero().flatten()
            if len(negative):
                j = int(negative[0])
                problems.append(
                    f"{where}: BatchNorm running_var of neuron {j} is {var[j].item()}; a variance cannot be "
                    "negative (the checkpoint is damaged)"
                )
            if bound > FLOAT32_EXACT:
                problems.append(
                    f"{where}: |dot| can reach {bound:,} > 2**24, where PyTorch's float32 sums stop being exact"
                )
        elif isinstance(block, BinaryDense) and block.output == "scores":
            bias = torch.round(block.norm.bias.detach()).double()
            if not torch.isfinite(bias).all():
                continue  # already named above
            reach = bound + bias.abs()
            n = int(reach.argmax())
            if reach[n].item() > FLOAT32_EXACT:
                problems.append(
                    f"{where}: the score bias of class {n} is {int(bias[n].item()):,}; with |dot| up to {bound:,}, "
                    f"|dot + bias| can reach {int(reach[n].item()):,} > 2**24, where PyTorch's float32 scores stop "
                    "being exact"
                )
    return problems


def check_exportable(net: BinaryNet) -> None:
    """Refuse, in one line naming the layer, a network whose integer form could differ from PyTorch."""
    problems = exactness_problems(net)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BnnError(f"cannot export exactly: {problems[0]}{more}")


def _fires(norm: ThresholdBatchNorm, acc: np.ndarray, layer: Layer) -> np.ndarray:
    """Output bit (sign(BN(dot)) == +1) of every channel c at accumulator acc[c], by the model's own arithmetic."""
    dot = torch.from_numpy(layer.dot_from_acc(acc).astype(np.float32)).view(1, -1)
    with torch.no_grad():
        return (norm.eval_at(dot) >= 0).view(-1).numpy()


def fold_thresholds(norm: ThresholdBatchNorm, layer: Layer) -> tuple[np.ndarray, np.ndarray]:
    """Integer thresholds (acc >= t) and which neurons need inverted weights, exact for the given layer."""
    for name in ("running_mean", "running_var", "weight", "bias"):
        values = getattr(norm, name).detach()
        if not torch.isfinite(values).all():
            raise BnnError(f"BatchNorm {name} holds NaN or infinity: the checkpoint cannot be exported")
    n = layer.out_features
    lo, hi = layer.acc_range
    full_lo, full_hi = np.full(n, lo, np.int64), np.full(n, hi, np.int64)
    fires_lo, fires_hi = _fires(norm, full_lo, layer), _fires(norm, full_hi, layer)
    flip = ~fires_hi & fires_lo  # +1 only at the low end: a negative scale
    # Invariant: `left` does not fire (or is one below the range), `right` fires (or is one above it) in the
    # direction being searched; for flipped neurons the roles of the two ends swap.
    left = np.where(flip, lo, np.where(fires_hi, lo - 1, hi))
    right = np.where(flip, hi + 1, np.where(fires_hi, hi, hi + 1))  # never fires: threshold hi + 1
    while True:
        open_ = right - left > 1
        if not open_.any():
            break
        mid = (left + right) // 2
        probe = np.clip(mid, lo, hi)
        fired = _fires(norm, probe, layer)
        up_hit = open_ & ~flip & fired  # up-set: the boundary is at or below mid
        up_miss = open_ & ~flip & ~fired
        down_hit = open_ & flip & fired  # down-set: the boundary is at or above mid
        down_miss = open_ & flip & ~fired
        right = np.where(up_hit | down_miss, mid, right)
        left = np.where(up_miss | down_hit, mid, left)
    # Up-set: first firing acc is `right` (hi + 1 if none). Down-set: last firing acc is `left`; with inverted
    # weights acc' = lo + hi - acc, so the bit becomes acc' >= lo + hi - left.
    thresholds = np.where(flip, lo + hi - left, right).astype(np.int64)
    _check_boundaries(norm, layer, thresholds, flip)
    return thresholds, flip


def _check_boundaries(norm: ThresholdBatchNorm, layer: Layer, thresholds: np.ndarray, flip: np.ndarray) -> None:
    """Re-evaluate both sides of every boundary: a non-monotone BatchNorm would show up here, never silently."""
    lo, hi = layer.acc_range
    edge = np.where(flip, lo + hi - thresholds, thresholds)  # up-set: first firing acc; down-set: last firing acc
    up = ~flip
    for acc, want, where in (
        (edge, True, flip | (edge <= hi)),
        (edge - 1, False, up & (edge - 1 >= lo)),
        (edge + 1, False, flip & (edge + 1 <= hi)),
    ):
        wrong = where & (_fires(norm, np.clip(acc, lo, hi), layer) != want)
        if wrong.any():
            bad = int(np.flatnonzero(wrong)[0])
            raise BnnError(f"BatchNorm of neuron {bad} is not monotone in its integer sum: cannot export exactly")


def _weight_bits(weight: torch.Tensor) -> np.ndarray:
    """Latent real weights -> bits of sign(w) (sign(0) = +1), as the layers' forward binarizes them."""
    return weight.detach().cpu().numpy() >= 0


def export_model(net: BinaryNet, classes: list[str], name: str = "model", source: dict | None = None) -> BnnModel:
    """Turn a trained (eval-mode) BinaryNet into its integer model; refuses what cannot be made exact."""
    net = net.cpu().eval()
    check_exportable(net)
    c, h, w = net.input_shape
    shape: tuple[int, ...] = (h, w, c)
    chw: tuple[int, int, int] | None = (c, h, w)  # PyTorch's layout of a spatial tensor, None once flat
    first_input = "pixels" if net.binarize_input is None else "bits"
    layers: list[Layer] = []
    for index, block in enumerate(net.blocks):
        input_kind = first_input if index == 0 else "bits"
        if isinstance(block, BinaryConv):
            conv = block.conv
            if chw is None:
                raise BnnError(f"block {index}: a convolution after a dense layer is not supported")
            bits = _weight_bits(conv.weight).transpose(0, 2, 3, 1)  # (O, C, k, k) -> (O, ky, kx, C)
            bits = bits.reshape(bits.shape[0], -1)
            pad_value = conv.pad_value
            if pad_value != int(pad_value):
                raise BnnError(f"block {index}: padding value {pad_value} is not an integer")
            layer = Layer(
                kind="conv",
                input=input_kind,
                output="bits",
                in_shape=shape,
                out_features=conv.out_channels,
                weights=pack_bits(bits),
                thresholds=np.zeros(conv.out_channels, np.int64),
                kernel=conv.kernel_size[0],
                stride=conv.stride[0],
                padding=conv.pad,
                pad_value=int(pad_value),
                pool=block.pool,
            )
        elif isinstance(block, BinaryDense):
            bits = _weight_bits(block.linear.weight)
            if chw is not None and len(shape) == 3:  # flatten order: PyTorch (C, H, W) -> file (H, W, C)
                ch, hh, ww = chw
                bits = bits.reshape(-1, ch, hh, ww).transpose(0, 2, 3, 1).reshape(bits.shape[0], -1)
            k = bits.shape[1]
            if k != int(np.prod(shape)):
                raise BnnError(f"block {index}: dense fan-in {k} does not match its input {shape}")
            n = bits.shape[0]
            if block.output == "scores":
                bias = torch.round(block.norm.bias.detach()).cpu().numpy().astype(np.int64)
                layer = Layer(
                    kind="dense",
                    input=input_kind,
                    output="scores",
                    in_shape=(k,),
                    out_features=n,
                    weights=pack_bits(bits),
                    bias=bias,
                )
            else:
                layer = Layer(
                    kind="dense",
                    input=input_kind,
                    output="bits",
                    in_shape=(k,),
                    out_features=n,
                    weights=pack_bits(bits),
                    thresholds=np.zeros(n, np.int64),
                )
        else:
            raise BnnError(f"block {index}: {type(block).__name__} has no integer form")
        if layer.output == "bits":
            thresholds, flip = fold_thresholds(block.norm, layer)
            bits[flip] = ~bits[flip]
            layer = layer.replace(weights=pack_bits(bits), thresholds=thresholds)
        layers.append(layer)
        shape = layer.out_shape
        chw = (shape[2], shape[0], shape[1]) if len(shape) == 3 else None
    meta = {"exporter": f"bnn-hw {__version__}"}
    meta.update(source or {})
    model = BnnModel(
        layers=layers,
        input_shape=(h, w, c),
        classes=list(classes),
        binarize_at=net.binarize_input,
        name=name,
        source=meta,
    )
    model.validate()
    return model


def torch_layer_outputs(net: BinaryNet, images: np.ndarray, batch_size: int = 1000) -> list[np.ndarray]:
    """Every block's eval-mode output on uint8 (B, H, W, C) images, in the golden model's layout:
    bits as bool (B, N) or channels-last (B, H, W, N); scores as int64 (B, N)."""
    net = net.cpu().eval()
    outputs: list[list[np.ndarray]] = [[] for _ in net.blocks]
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(np.array(images[start : start + batch_size])).permute(0, 3, 1, 2).float()
            x = net.input_binarize(x)
            for i, block in enumerate(net.blocks):
                x = block(x)
                y = x.numpy()
                if isinstance(block, BinaryDense) and block.output == "scores":
                    _check_scores(net, i, y)
                    outputs[i].append(y.astype(np.int64))
                else:
                    y = y > 0
                    outputs[i].append(y.transpose(0, 2, 3, 1) if y.ndim == 4 else y)
    return [np.concatenate(o) for o in outputs]


def _check_scores(net: BinaryNet, index: int, scores: np.ndarray) -> None:
    """PyTorch scores must be finite integers to compare with the integer model; name the cause when they are not."""
    if np.isfinite(scores).all() and np.array_equal(scores, np.round(scores)):
        return
    problems = exactness_problems(net)
    cause = problems[0] if problems else "its score head does not compute dot + round(bias)"
    what = "NaN or infinity" if not np.isfinite(scores).all() else "values that are not integers"
    raise BnnError(f"PyTorch scores of layer {index} hold {what}: {cause}")
