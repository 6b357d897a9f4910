"""The build configuration file (`bnn-hw build CONFIG`, `bnn-hw rtl --config CONFIG`): YAML or JSON, validated.

One file says what FINN's build_dataflow configuration and hls4ml's per-layer configuration dictionary say: where the
model comes from (a .bnn file, a checkpoint to export, or a training run), the folding (one PE/SIMD for every layer,
per-layer entries, or an automatic target), the interface, the target device and clock, and what to simulate and
measure. Every mistake is one line naming the key and the rule it breaks (docs/build.md has the schema). Relative
paths are relative to the configuration file's folder. YAML needs PyYAML (`pip install 'bnn-hw[config]'`); JSON
needs nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bnn_hw.devices import DEVICES, Device
from bnn_hw.errors import BnnError

SCHEMA_VERSION = 1
SYNTH_FAMILIES = ("xilinx", "ice40", "ecp5")
SIMULATORS = ("verilator", "icarus")
# `bnn-hw train` options a configuration may set (TrainConfig fields; tests check they exist there).
TRAIN_KEYS = (
    "preset",
    "dataset",
    "epochs",
    "batch_size",
    "lr_start",
    "lr_end",
    "loss",
    "hidden",
    "dropout_in",
    "dropout_hidden",
    "binarize_input",
    "lr_scale",
    "augment",
    "seed",
    "device",
    "data_dir",
    "train_limit",
    "test_limit",
    "threads",
)


class _Bad(Exception):
    """A value breaking its rule: the rule's text."""


# ------------------------------------------------------------------------------------------------- rules


def _pos_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise _Bad("must be a positive integer")
    return v


def _nonneg_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise _Bad("must be an integer >= 0")
    return v


def _pos_number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
        raise _Bad("must be a positive number")
    return float(v)


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise _Bad("must be true or false")
    return v


def _text(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise _Bad("must be a non-empty string")
    return v


def _probability(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < 1:
        raise _Bad("must be a number in [0, 1)")
    return float(v)


def _one_of(*choices: str):
    def rule(v: Any) -> str:
        if v not in choices:
            raise _Bad(f"must be one of: {', '.join(choices)}")
        return v

    return rule


def _int_or_list(v: Any) -> int | list[int]:
    if isinstance(v, list):
        if not v or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in v):
            raise _Bad("must be a positive integer or a non-empty list of positive integers (one per layer)")
        return list(v)
    try:
        return _pos_int(v)
    except _Bad:
        raise _Bad("must be a positive integer or a non-empty list of positive integers (one per layer)") from None


def _int_set(v: Any) -> list[int]:
    if isinstance(v, int) and not isinstance(v, bool):
        v = [v]
    if (
        not isinstance(v, list)
        or not v
        or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in v)
    ):
        raise _Bad("must be a positive integer or a non-empty list of them")
    return sorted(set(v))


def _int_widths(v: Any) -> list[int]:
    if (
        not isinstance(v, list)
        or not v
        or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in v)
    ):
        raise _Bad("must be a non-empty list of positive integers, e.g. [256, 256]")
    return list(v)


class _Section:
    """Reads one mapping of the file, key by key; whatever is left over is an unknown key."""

    def __init__(self, source: str, prefix: str, data: Any) -> None:
        self.source, self.prefix = source, prefix
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise BnnError(f"{source}: {prefix or 'the file'}: must be a mapping of keys to values, got {_show(data)}")
        self.data = dict(data)

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, rule: str, value: Any = None, *, show: bool = True) -> BnnError:
        got = f" (got {_show(value)})" if show else ""
        return BnnError(f"{self.source}: {self.key(name)}: {rule}{got}")

    def take(self, name: str, rule, default: Any = None) -> Any:
        if name not in self.data or self.data[name] is None:
            self.data.pop(name, None)
            return default
        value = self.data.pop(name)
        try:
            return rule(value)
        except _Bad as exc:
            raise self.fail(name, str(exc), value) from None

    def section(self, name: str) -> _Section:
        return _Section(self.source, self.key(name), self.data.pop(name, None))

    def done(self, known: tuple[str, ...]) -> None:
        if self.data:
            name = next(iter(self.data))
            raise self.fail(name, f"unknown key; the keys here are: {', '.join(known)}", show=False)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------------------------------------------- sections


@dataclass
class ModelSection:
    """Where the .bnn model comes from: exactly one of path, checkpoint (exported) or train (trained, exported)."""

    path: Path | None = None
    checkpoint: Path | None = None
    train: dict[str, Any] | None = None
    name: str | None = None
    verify: bool = True  # with a checkpoint: golden model vs PyTorch on every bit (verify.json)
    data_dir: Path | None = None


@dataclass
class FoldingSection:
    """PE and SIMD per layer: one value for every layer (fitted to each, as `bnn-hw rtl --pe N`), a list with one
    exact value per layer, per-layer entries on top of the defaults (`layers`), or an automatic target (`auto`)."""

    pe: int | list[int] | None = None
    simd: int | list[int] | None = None
    layers: dict[int, dict[str, int]] = field(default_factory=dict)  # layer index -> {"pe": ..., "simd": ...}
    target_cycles: int | None = None  # auto
    lut_budget: int | None = None  # auto
    weights: str = "auto"  # `bnn-hw rtl --weights`: weight memory style (auto, block, logic)

    @property
    def auto(self) -> bool:
        return self.target_cycles is not None or self.lut_budget is not None

    def per_layer(self, n_layers: int, fit) -> tuple[list[int], list[int]] | None:
        """Exact per-layer (PE, SIMD) lists when the folding needs them (per-layer entries or lists), else None.
        `fit(value, layer_index, "pe"|"simd")` fits a one-for-all value to a layer, as `bnn-hw rtl` does."""
        if not self.layers and not isinstance(self.pe, list) and not isinstance(self.simd, list):
            return None
        out = []
        for what, default, fallback in (("pe", self.pe, 16), ("simd", self.simd, 32)):
            if isinstance(default, list) and len(default) != n_layers:
                raise BnnError(
                    f"folding.{what}: the list has {len(default)} values but the model has {n_layers} layers"
                )
            values = []
            for i in range(n_layers):
                if what in self.layers.get(i, {}):
                    values.append(self.layers[i][what])
                elif isinstance(default, list):
                    values.append(default[i])
                else:
                    values.append(fit(default or fallback, i, what))
            out.append(values)
        bad = [i for i in self.layers if i >= n_layers]
        if bad:
            raise BnnError(f"folding.layers: layer {bad[0]} does not exist (the model has layers 0..{n_layers - 1})")
        return out[0], out[1]


@dataclass
class InterfaceSection:
    pixels_per_beat: int | None = None  # default: the first layer's SIMD
    debug_taps: bool = False
    kind: str = "bare"  # `bnn-hw rtl --interface`: bare streams or AXI4-Stream (docs/rtl.md)
    axi_lite: bool = False
    frame_images: int = 0
    result_framing: str = "image"


@dataclass
class TargetSection:
    """What the design is synthesized for and at which clock. `device` names a part (bnn_hw.devices) whose capacity
    the report draws utilisation against; `clock_mhz` is an assumption (labelled so) unless place and route ran."""

    device: str | None = None
    family: str = "xilinx"
    clock_mhz: float | None = None
    synth: bool = True
    pnr: bool = False
    timeout: float | None = None

    @property
    def part(self) -> Device | None:
        return DEVICES.get(self.device) if self.device else None


@dataclass
class SimSection:
    enabled: bool = True
    images: int = 200
    simulator: str = "verilator"
    seed: int = 1
    dataset: str | None = None
    random_images: bool = False
    gap: float = 0.2
    stall: float = 0.2


@dataclass
class BenchSection:
    cpu: bool = True
    images: int = 1000
    repeats: int = 3


@dataclass
class SweepSection:
    pe: list[int]
    simd: list[int]
    flow: str = "fast"
    jobs: int = 1
    simulate: int = 0


@dataclass
class BuildConfig:
    """A validated build configuration. `source` is the file it came from (or "<dict>")."""

    source: str
    out: Path
    model: ModelSection
    folding: FoldingSection
    interface: InterfaceSection
    target: TargetSection
    sim: SimSection
    bench: BenchSection
    sweep: SweepSection | None = None
    report: bool = True
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, paths as text: what the run folder records as build.json's "config"."""
        return json.loads(json.dumps(asdict(self), default=str))


_TOP_KEYS = ("version", "out", "seed", "model", "folding", "interface", "target", "sim", "bench", "sweep", "report")


def load_config(config: str | Path | dict[str, Any], base: Path | None = None) -> BuildConfig:
    """Read and validate a configuration file (YAML or JSON by its suffix) or an already-parsed dict."""
    if isinstance(config, dict):
        return parse_config(config, "<dict>", base or Path.cwd())
    path = Path(config)
    if not path.is_file():
        raise BnnError(f"{path}: configuration file not found")
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise BnnError(
                f"{path}: reading YAML needs PyYAML (pip install 'bnn-hw[config]'), or write the file as JSON"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise BnnError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    elif path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BnnError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    else:
        raise BnnError(f"{path}: a configuration file ends in .yaml, .yml or .json")
    return parse_config(data, str(path), path.resolve().parent)


def parse_config(data: Any, source: str, base: Path) -> BuildConfig:
    """Validate parsed configuration data; paths become absolute, relative to `base`."""
    top = _Section(source, "", data)
    unknown = [k for k in top.data if k not in _TOP_KEYS]
    if unknown:  # before any section's own checks: a misspelt section name is the likelier mistake
        raise top.fail(unknown[0], f"unknown key; the keys here are: {', '.join(_TOP_KEYS)}", show=False)

    def path_rule(v: Any) -> Path:
        p = Path(_text(v)).expanduser()
        return p if p.is_absolute() else base / p

    version = top.take("version", _pos_int, SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise top.fail("version", f"this bnn-hw reads version {SCHEMA_VERSION}", version)
    name = Path(source).stem if source != "<dict>" else "build"
    out = top.take("out", path_rule, base / "runs" / name)
    seed = top.take("seed", _nonneg_int, 0)

    # model
    m = top.section("model")
    model = ModelSection(
        path=m.take("path", path_rule),
        checkpoint=m.take("checkpoint", path_rule),
        name=m.take("name", _text),
        verify=m.take("verify", _bool, True),
        data_dir=m.take("data_dir", path_rule),
    )
    if "train" in m.data:
        t = m.section("train")
        train: dict[str, Any] = {}
        rules = {
            "preset": _text,
            "dataset": _text,
            "loss": _one_of("squared-hinge", "cross-entropy"),
            "augment": _one_of("none", "shift", "shift-flip"),
            "device": _text,
            "hidden": _int_widths,
            "lr_start": _pos_number,
            "lr_end": _pos_number,
            "dropout_in": _probability,
            "dropout_hidden": _probability,
            "binarize_input": _nonneg_int,
            "lr_scale": _bool,
            "seed": _nonneg_int,
            "data_dir": lambda v: str(path_rule(v)),
        }
        for key in TRAIN_KEYS:
            value = t.take(key, rules.get(key, _pos_int))
            if value is not None:
                train[key] = value
        t.done(TRAIN_KEYS)
        train.setdefault("seed", seed)
        model.train = train
    m.done(("path", "checkpoint", "train", "name", "verify", "data_dir"))
    given = [k for k in ("path", "checkpoint", "train") if getattr(model, k) is not None]
    if len(given) != 1:
        what = "none" if not given else " and ".join(given)
        raise BnnError(f"{source}: model: give exactly one of model.path, model.checkpoint or model.train (got {what})")
    if model.path is not None and model.path.suffix != ".bnn":
        raise m.fail("path", "must be an exported .bnn model (a checkpoint goes in model.checkpoint)", str(model.path))

    # folding
    f = top.section("folding")
    folding = FoldingSection(
        pe=f.take("pe", _int_or_list),
        simd=f.take("simd", _int_or_list),
        weights=f.take("weights", _one_of("auto", "block", "logic"), "auto"),
    )
    if "auto" in f.data:
        a = f.section("auto")
        folding.target_cycles = a.take("target_cycles", _pos_int)
        folding.lut_budget = a.take("lut_budget", _pos_int)
        a.done(("target_cycles", "lut_budget"))
        if (folding.target_cycles is None) == (folding.lut_budget is None):
            raise BnnError(f"{source}: folding.auto: give exactly one of target_cycles or lut_budget")
        if folding.pe is not None or folding.simd is not None:
            raise BnnError(f"{source}: folding.auto: chooses PE and SIMD itself; drop folding.pe/folding.simd")
    if "layers" in f.data:
        folding.layers = _layers(f, f.data.pop("layers"))
        if folding.auto:
            raise BnnError(f"{source}: folding.auto: chooses every layer itself; drop folding.layers")
    f.done(("pe", "simd", "layers", "auto", "weights"))

    i = top.section("interface")
    interface = InterfaceSection(
        pixels_per_beat=i.take("pixels_per_beat", _pos_int),
        debug_taps=i.take("debug_taps", _bool, False),
        kind=i.take("kind", _one_of("bare", "axis"), "bare"),
        axi_lite=i.take("axi_lite", _bool, False),
        frame_images=i.take("frame_images", _nonneg_int, 0),
        result_framing=i.take("result_framing", _one_of("image", "frame"), "image"),
    )
    i.done(("pixels_per_beat", "debug_taps", "kind", "axi_lite", "frame_images", "result_framing"))

    g = top.section("target")
    device = g.take("device", _one_of(*DEVICES))
    family = g.take("family", _one_of(*SYNTH_FAMILIES))
    if device is not None and family is not None and DEVICES[device].family != family:
        raise g.fail("family", f"device {device} is {DEVICES[device].family}", family)
    target = TargetSection(
        device=device,
        family=family or (DEVICES[device].family if device else "xilinx"),
        clock_mhz=g.take("clock_mhz", _pos_number),
        synth=g.take("synth", _bool, True),
        pnr=g.take("pnr", _bool, False),
        timeout=g.take("timeout", _pos_number),
    )
    g.done(("device", "family", "clock_mhz", "synth", "pnr", "timeout"))
    if target.pnr and not target.synth:
        raise g.fail("pnr", "place and route needs target.synth: true", True)
    if target.pnr and target.family not in ("ecp5", "ice40"):
        raise g.fail("pnr", "open place and route exists for ecp5 and ice40 devices (nextpnr), not xilinx", True)

    s = top.section("sim")
    sim = SimSection(
        enabled=s.take("enabled", _bool, True),
        images=s.take("images", _nonneg_int, 200),
        simulator=s.take("simulator", _one_of(*SIMULATORS), "verilator"),
        seed=s.take("seed", _nonneg_int, 1),
        dataset=s.take("dataset", _text),
        random_images=s.take("random_images", _bool, False),
        gap=s.take("gap", _probability, 0.2),
        stall=s.take("stall", _probability, 0.2),
    )
    s.done(("enabled", "images", "simulator", "seed", "dataset", "random_images", "gap", "stall"))

    b = top.section("bench")
    bench = BenchSection(
        cpu=b.take("cpu", _bool, True), images=b.take("images", _pos_int, 1000), repeats=b.take("repeats", _pos_int, 3)
    )
    b.done(("cpu", "images", "repeats"))

    sweep = None
    if "sweep" in top.data:
        w = top.section("sweep")
        pe, simd = w.take("pe", _int_set), w.take("simd", _int_set)
        if pe is None or simd is None:
            raise w.fail("pe" if pe is None else "simd", "is required: the values the sweep tries", show=False)
        sweep = SweepSection(
            pe=pe,
            simd=simd,
            flow=w.take("flow", _one_of("fast", "full"), "fast"),
            jobs=w.take("jobs", _pos_int, 1),
            simulate=w.take("simulate", _nonneg_int, 0),
        )
        w.done(("pe", "simd", "flow", "jobs", "simulate"))
    report = top.take("report", _bool, True)
    top.done(_TOP_KEYS)
    return BuildConfig(source, out, model, folding, interface, target, sim, bench, sweep, report, seed)


# `3`, `layer3`, or FINN's node names such as `MatrixVectorActivation_3` / `MVAU_hls_3`: the layer's index
_LAYER_NAME = re.compile(r"^(?:layer|[A-Za-z][A-Za-z_]*_)?(\d+)$")


def _layers(parent: _Section, data: Any) -> dict[int, dict[str, int]]:
    """Per-layer entries: a list in layer order (FINN's folding file, one entry per layer) or a mapping from layer
    index or name `layerN` to its entry (hls4ml's per-layer dict). An entry sets pe and/or simd (PE/SIMD accepted)."""
    if isinstance(data, list):
        items = list(enumerate(data))
    elif isinstance(data, dict):
        items = []
        for key, entry in data.items():
            if str(key) in ("Defaults", "defaults"):  # FINN's folding files carry one; it sets nothing per layer
                if entry not in ({}, None):
                    raise parent.fail(f"layers.{key}", "must be empty; put defaults in folding.pe/folding.simd", entry)
                continue
            m = _LAYER_NAME.match(str(key))
            if not m:
                raise parent.fail(
                    f"layers.{key}", "a layer is named by its index or as layerN, e.g. layer0", show=False
                )
            items.append((int(m.group(1)), entry))
    else:
        raise parent.fail("layers", "must be a list (one entry per layer) or a mapping from layerN to an entry", data)
    out: dict[int, dict[str, int]] = {}
    for index, entry in items:
        sec = _Section(parent.source, parent.key(f"layers.layer{index}"), entry)
        for upper in ("PE", "SIMD"):  # FINN's folding files spell them in capitals
            if upper in sec.data:
                sec.data[upper.lower()] = sec.data.pop(upper)
        values = {k: v for k in ("pe", "simd") if (v := sec.take(k, _pos_int)) is not None}
        sec.done(("pe", "simd"))
        if values:
            out[index] = values
    return out
