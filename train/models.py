"""Named BinaryNet architectures: a dataclass config per model, a preset registry, and `build_model`.

Every model is built only from `train.layers` blocks (BinaryConv, BinaryDense inside a BinaryNet), so the exporter can
walk `model.blocks` and turn each block into one integer layer. Presets adapt to the data set's image shape
(channels, size) and refuse clearly when the architecture cannot fit it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from bnn_hw.errors import BnnError

MIN_FEATURE_MAP = 2  # a ConvNet's last feature map must be at least 2x2 after its pooling stages


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model: the checkpoint stores it and nothing else about the architecture.

    `conv` lists (out_channels, pool) per convolution (pool 0 = none, else the max-pool window after the sign);
    `hidden` lists the widths of the binary dense layers before the class-score layer.
    """

    preset: str
    input_shape: tuple[int, int, int]  # (C, H, W), PyTorch's layout
    num_classes: int
    conv: list[tuple[int, int]] = field(default_factory=list)
    hidden: list[int] = field(default_factory=list)
    kernel: int = 3
    padding: int = 1
    pad_value: int = -1  # padding of +-1 (bits) inputs
    first_pad_value: int = 0  # padding of the raw-pixel input (a pixel value 0..255)
    dropout_in: float = 0.0
    dropout_hidden: float = 0.0
    binarize_input: int | None = None  # None: raw pixels into the first layer; t: bits (pixel >= t)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["conv"] = [list(c) for c in self.conv]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise BnnError(f"model config has unknown keys {sorted(unknown)}: written by a newer bnn-hw?")
        values = dict(data)
        values["input_shape"] = tuple(int(v) for v in values["input_shape"])
        values["conv"] = [(int(c), int(p)) for c, p in values.get("conv", [])]
        values["hidden"] = [int(h) for h in values.get("hidden", [])]
        return cls(**values)


@dataclass(frozen=True)
class TrainDefaults:
    """The recipe a preset is meant to be trained with (flags override each value)."""

    epochs: int
    batch_size: int
    lr_start: float
    lr_end: float


@dataclass(frozen=True)
class Preset:
    description: str
    conv: tuple[tuple[int, int], ...]
    hidden: tuple[int, ...]
    defaults: TrainDefaults
    dropout_in: float = 0.0
    dropout_hidden: float = 0.0
    padding: int = 1
    adapt_pools: bool = False  # small images: drop the last pooling stages instead of refusing
    binarize_input: int | None = None  # FINN-style bit input (pixel >= t) unless --binarize-input overrides it


PRESETS: dict[str, Preset] = {
    "mlp": Preset(
        "fast binarized MLP for Fashion-MNIST (2 x 512 hidden), the default",
        conv=(),
        hidden=(512, 512),
        defaults=TrainDefaults(5, 100, 3e-3, 3e-4),
    ),
    "cnn": Preset(
        "binarized ConvNet sized for Fashion-MNIST on a CPU (32C3-MP2-64C3-MP2-128C3-MP2-512FC)",
        conv=((32, 2), (64, 2), (128, 2)),
        hidden=(512,),
        defaults=TrainDefaults(25, 100, 3e-3, 3e-5),
        dropout_hidden=0.2,
        adapt_pools=True,
    ),
    "paper-mnist": Preset(
        "BinaryNet paper MNIST MLP: 3 x 4096, dropout 0.2 input / 0.5 hidden",
        conv=(),
        hidden=(4096, 4096, 4096),
        defaults=TrainDefaults(1000, 100, 3e-3, 3e-7),
        dropout_in=0.2,
        dropout_hidden=0.5,
    ),
    "paper-cifar10": Preset(
        "BinaryNet paper CIFAR-10 ConvNet: 2x128C3-MP2-2x256C3-MP2-2x512C3-MP2-2x1024FC",
        conv=((128, 0), (128, 2), (256, 0), (256, 2), (512, 0), (512, 2)),
        hidden=(1024, 1024),
        defaults=TrainDefaults(500, 50, 1e-3, 3e-7),
    ),
    "paper-svhn": Preset(
        "BinaryNet paper SVHN ConvNet: the CIFAR-10 net at half width",
        conv=((64, 0), (64, 2), (128, 0), (128, 2), (256, 0), (256, 2)),
        hidden=(512, 512),
        defaults=TrainDefaults(200, 50, 1e-3, 3e-7),
    ),
    # FINN's published MLP topologies (Umuroglu et al., FPGA'17; BNN-PYNQ): three binary hidden layers on a
    # binarized 784-pixel input (pixel >= 128), for side-by-side hardware comparisons (benchmarks/finn_compare.py).
    "tfc": Preset(
        "FINN TFC: 3 x 64 binary hidden layers, binarized input (pixel >= 128)",
        conv=(),
        hidden=(64, 64, 64),
        defaults=TrainDefaults(5, 100, 3e-3, 3e-4),
        binarize_input=128,
    ),
    "sfc": Preset(
        "FINN SFC: 3 x 256 binary hidden layers, binarized input (pixel >= 128)",
        conv=(),
        hidden=(256, 256, 256),
        defaults=TrainDefaults(5, 100, 3e-3, 3e-4),
        binarize_input=128,
    ),
    "lfc": Preset(
        "FINN LFC: 3 x 1024 binary hidden layers, binarized input (pixel >= 128), dropout as BNN-PYNQ",
        conv=(),
        hidden=(1024, 1024, 1024),
        defaults=TrainDefaults(5, 100, 3e-3, 3e-4),
        dropout_in=0.2,
        dropout_hidden=0.2,
        binarize_input=128,
    ),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise BnnError(f"unknown preset {name!r}; choose from: {', '.join(PRESETS)}")
    return PRESETS[name]


def make_config(
    preset: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    hidden: list[int] | None = None,
    dropout_in: float | None = None,
    dropout_hidden: float | None = None,
    binarize_input: int | None = None,
) -> ModelConfig:
    """A preset adapted to a data set: `input_shape` is the data set's (H, W, C); flags override the preset."""
    spec = get_preset(preset)
    h, w, c = (int(v) for v in input_shape)
    widths = list(spec.hidden) if hidden is None else [int(v) for v in hidden]
    if any(v < 1 for v in widths):
        raise BnnError(f"hidden widths must be positive integers, got {widths}")
    if num_classes < 2:
        raise BnnError(f"a classifier needs at least 2 classes, got {num_classes}")
    conv = list(spec.conv)
    if conv and spec.adapt_pools:  # keep each pooling stage only while the feature map stays >= MIN_FEATURE_MAP
        fh, fw, adapted = h, w, []
        for channels, pool in conv:
            if pool and min(fh // pool, fw // pool) >= MIN_FEATURE_MAP:
                fh, fw = fh // pool, fw // pool
            else:
                pool = 0
            adapted.append((channels, pool))
        conv = adapted
    if conv:
        pools = [p for _, p in conv if p]
        fh, fw = h, w
        for p in pools:
            fh, fw = fh // p, fw // p
        if min(fh, fw) < MIN_FEATURE_MAP:
            need = MIN_FEATURE_MAP
            for p in pools:
                need *= p
            raise BnnError(
                f"preset {preset!r} pools {len(pools)} times: a {h}x{w} image would shrink to {fh}x{fw}; "
                f"it needs images of at least {need}x{need} (try --preset mlp or cnn)"
            )
    for name, value in (("dropout_in", dropout_in), ("dropout_hidden", dropout_hidden)):
        if value is not None and not 0.0 <= value < 1.0:
            raise BnnError(f"{name.replace('_', '-')} must be in [0, 1), got {value}")
    if binarize_input is not None and not 1 <= binarize_input <= 255:
        raise BnnError(f"binarize-input threshold must be 1..255 (bit = pixel >= T), got {binarize_input}")
    return ModelConfig(
        preset=preset,
        input_shape=(c, h, w),
        num_classes=int(num_classes),
        conv=conv,
        hidden=widths,
        padding=spec.padding,
        dropout_in=spec.dropout_in if dropout_in is None else float(dropout_in),
        dropout_hidden=spec.dropout_hidden if dropout_hidden is None else float(dropout_hidden),
        binarize_input=spec.binarize_input if binarize_input is None else binarize_input,
    )


def build_model(config: ModelConfig):
    """The BinaryNet described by `config`, freshly initialized (uses torch's global RNG: seed it first)."""
    from bnn_hw.train.layers import BinaryConv, BinaryDense, BinaryNet

    c, h, w = config.input_shape
    blocks = []
    channels = c
    for index, (out_channels, pool) in enumerate(config.conv):
        first = index == 0
        # Raw pixels are padded with a pixel value; +-1 inputs (hidden layers, binarized input) with a +-1 value.
        pad_value = config.first_pad_value if first and config.binarize_input is None else config.pad_value
        blocks.append(
            BinaryConv(
                channels,
                out_channels,
                config.kernel,
                padding=config.padding,
                pad_value=float(pad_value),
                pool=pool,
                dropout=config.dropout_in if first else 0.0,
            )
        )
        channels = out_channels
        h = (h + 2 * config.padding - config.kernel) + 1
        w = (w + 2 * config.padding - config.kernel) + 1
        if pool:
            h, w = h // pool, w // pool
        if min(h, w) < 1:
            raise BnnError(f"preset {config.preset!r}: convolution {index} leaves no pixels ({h}x{w})")
    features = channels * h * w
    widths = list(config.hidden) + [config.num_classes]
    for index, width in enumerate(widths):
        first = not blocks
        dropout = config.dropout_in if first else config.dropout_hidden
        last = index == len(widths) - 1
        blocks.append(BinaryDense(features, width, output="scores" if last else "bits", dropout=dropout))
        features = width
    return BinaryNet(config.input_shape, blocks, binarize_input=config.binarize_input)
