"""Typed stage files: the JSON documents one stage of the chain writes and another reads.

Each file that crosses a stage boundary (rtl -> sim, rtl -> synth, train -> demo, everything -> report) is one
dataclass here. Producers build the dataclass and `write()` it; readers `read()` it and use attributes, so a field
that one side renames fails at once, in one line, instead of being read as a missing value somewhere downstream.

Every file starts with `"schema"` (what it is) and `"version"` (of that schema). `from_json` is strict: a wrong
schema or version, a missing key, an unknown key or a value of the wrong type raises `BnnError` naming the file
and the key, with the command that regenerates the file. Nested objects with a fixed set of keys are `Record`
dataclasses (checked the same way); open-ended parts (per-layer folding, port lists, free-form measurements) are
`dict[str, Any]` and checked only to be objects.

To add a stage file: subclass `StageFile` as a dataclass, set `SCHEMA`, `VERSION`, `FILE` and `MAKE`, and bump
`VERSION` whenever a field changes meaning, is added or goes.

numpy only (the core); nothing here imports a spoke.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar, Union

from bnn_hw.errors import BnnError

R = TypeVar("R", bound="Record")
S = TypeVar("S", bound="StageFile")

_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    if isinstance(tp, type):
        return {"int": "an integer", "float": "a number", "str": "a string", "bool": "true/false"}.get(
            tp.__name__, tp.__name__
        )
    return str(tp).replace("typing.", "")


def _key(path: str) -> str:
    return f"key {path!r}" if path else "the file"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check(value: Any, tp: Any, path: str) -> Any:
    """`value` checked against type `tp` (nested records built), or BnnError naming the key at `path`."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        for option in typing.get_args(tp):
            try:
                return _check(value, option, path)
            except BnnError:
                pass
        raise BnnError(f"{_key(path)} is {_json_kind(value)}, expected {_type_name(tp)}")
    if origin is list:
        if not isinstance(value, list):
            raise BnnError(f"{_key(path)} is {_json_kind(value)}, expected a list")
        (item,) = typing.get_args(tp)
        return [_check(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise BnnError(f"{_key(path)} is {_json_kind(value)}, expected an object")
        _, item = typing.get_args(tp)
        return {str(k): _check(v, item, _join(path, str(k))) for k, v in value.items()}
    if isinstance(tp, type) and issubclass(tp, Record):
        return tp._from_json(value, path)
    if tp is type(None):
        ok = value is None
    elif tp is float:  # JSON has one number type: an integer is a valid float
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, tp)
    if not ok:
        raise BnnError(f"{_key(path)} is {_json_kind(value)}, expected {_type_name(tp)}")
    return value


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _plain(value: Any) -> Any:
    """JSON-ready copy: records become objects, paths strings, numpy scalars and arrays numbers and lists."""
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    return value


class Record:
    """A JSON object with a fixed set of keys, one per dataclass field (subclasses are dataclasses)."""

    def to_json(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def _from_json(cls: type[R], data: Any, path: str) -> R:
        if not isinstance(data, dict):
            raise BnnError(f"{_key(path)} is {_json_kind(data)}, expected an object")
        hints = _hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        unknown = [k for k in data if k not in names]
        if unknown:
            raise BnnError(f"unknown key {_join(path, unknown[0])!r}")
        missing = [k for k in names if k not in data]
        if missing:
            raise BnnError(f"missing key {_join(path, missing[0])!r}")
        return cls(**{k: _check(data[k], hints[k], _join(path, k)) for k in names})

    @classmethod
    def from_json(cls: type[R], data: Any) -> R:
        try:
            return cls._from_json(data, "")
        except BnnError as exc:
            raise BnnError(f"{cls.__name__}: {exc}") from None


class StageFile(Record):
    """A whole stage file: a Record with a schema name and version, written and read as one JSON file."""

    SCHEMA: ClassVar[str]
    VERSION: ClassVar[int]
    FILE: ClassVar[str]  # the usual file name
    MAKE: ClassVar[str]  # the command that writes it (for "regenerate it with ...")

    def to_json(self) -> dict[str, Any]:
        return {"schema": self.SCHEMA, "version": self.VERSION, **super().to_json()}

    @classmethod
    def _from_json(cls: type[S], data: Any, path: str) -> S:
        if not isinstance(data, dict):
            raise BnnError(f"{_key(path)} is {_json_kind(data)}, expected a JSON object")
        schema, version = data.get("schema"), data.get("version")
        if schema != cls.SCHEMA:
            raise BnnError(f"{_key(_join(path, 'schema'))} is {schema!r}, expected {cls.SCHEMA!r}")
        if version != cls.VERSION:
            raise BnnError(
                f"{_key(_join(path, 'version'))} is {version!r}: this bnn-hw reads version {cls.VERSION} of "
                f"{cls.SCHEMA!r}"
            )
        body = {k: v for k, v in data.items() if k not in ("schema", "version")}
        return super()._from_json(body, path)

    @classmethod
    def from_json(cls: type[S], data: Any, source: str | Path | None = None) -> S:
        """The file's object, checked strictly; `source` (the path) names it in the error."""
        try:
            return cls._from_json(data, "")
        except BnnError as exc:
            raise BnnError(f"{source or cls.FILE}: {exc}; regenerate it with `{cls.MAKE}`") from None

    @classmethod
    def of(cls: type[S], body: dict[str, Any]) -> S:
        """Build from a plain dict of the fields (what a producer assembled step by step), checked as a read is;
        fields with a default may be left out here (a file must hold every key)."""
        defaults: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.default is not dataclasses.MISSING:
                defaults[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                defaults[f.name] = f.default_factory()
        full = {"schema": cls.SCHEMA, "version": cls.VERSION, **defaults, **_plain(body)}
        return cls.from_json(full, f"the {cls.__name__} being written")

    def write(self, path: str | Path) -> Path:
        """Write atomically (bnn_hw.fileio: a temporary file renamed into place): a reader never sees half a file."""
        from bnn_hw import fileio

        return fileio.write_text(path, json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def read(cls: type[S], path: str | Path) -> S:
        path = Path(path)
        if not path.is_file():
            raise BnnError(f"{path}: not found; write it with `{cls.MAKE}`")
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            raise BnnError(f"{path}: cannot be read ({exc}); regenerate it with `{cls.MAKE}`") from None
        except json.JSONDecodeError as exc:
            raise BnnError(
                f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); regenerate it with `{cls.MAKE}`"
            ) from None
        return cls.from_json(data, path)

    @classmethod
    def read_if(cls: type[S], path: str | Path | None) -> S | None:
        """The file when it exists (read strictly), else None: for readers whose input is optional."""
        return cls.read(path) if path is not None and Path(path).is_file() else None


# ------------------------------------------------------------------------------------------------ rtl -> everyone


@dataclass
class Generator(Record):
    name: str
    version: str
    args: dict[str, Any]  # the `bnn-hw rtl` options as given and as resolved


@dataclass
class Predicted(Record):
    cycles_per_image: int
    limited_by: str
    stage_cycles_per_image: dict[str, int]
    latency_cycles: int | None
    latency_definition: str


@dataclass
class MemoryBits(Record):
    weights: int
    thresholds: int
    windows: int
    total: int


@dataclass
class Manifest(StageFile):
    """`bnn-hw rtl -o DIR` -> DIR/manifest.json: the contract of a generated top (sim/, synth, sweep, report)."""

    SCHEMA: ClassVar[str] = "bnn-hw rtl manifest"
    VERSION: ClassVar[int] = 2
    FILE: ClassVar[str] = "manifest.json"
    MAKE: ClassVar[str] = "bnn-hw rtl MODEL.bnn -o DIR"

    model_hash: str
    model_name: str
    generator: Generator
    top: str
    verilog: list[str]
    clock: dict[str, Any]
    reset: dict[str, Any]
    ports: dict[str, dict[str, Any]]
    input: dict[str, Any]
    pixels_per_beat: int
    beats_per_image: int
    num_classes: int
    class_bits: int
    score_bits: int
    result_bits: int
    result_layout: str
    layers: list[dict[str, Any]]  # rtl.folding.Folding.to_json() per layer, plus "lanes"
    debug_taps: list[dict[str, Any]]
    predicted: Predicted
    memory_bits: MemoryBits
    lanes_total: int
    interface: str = "bare"  # "bare" (valid/ready streams) or "axis" (AXI4-Stream top, rtl/axis_top.py)
    axis: dict[str, Any] | None = None  # the AXI4-Stream framing (interface "axis")
    axi_lite: dict[str, Any] | None = None  # the AXI4-Lite register map, when generated
    packages: dict[str, str] | None = None  # FuseSoC core / IP-XACT / testbench file names (interface "axis")
    core_module: str | None = None  # the module holding the layer engines when the top wraps BnnTop (AXI)
    generation_seconds: float | None = None


# ------------------------------------------------------------------------------------------------ synth


@dataclass
class SynthReport(StageFile):
    """`bnn-hw synth BUILD --target T [--pnr]` (rtl.synthesis.synthesize, rtl.pnr.place_and_route; also each sweep
    point) -> BUILD/synth_T.json: Yosys resources per layer, glue and total, and the place-and-route result."""

    SCHEMA: ClassVar[str] = "bnn-hw synth report"
    VERSION: ClassVar[int] = 1
    FILE: ClassVar[str] = "synth_{target}.json"
    MAKE: ClassVar[str] = "bnn-hw synth BUILD --target TARGET"

    target: str
    top: str
    model_hash: str
    generator_args: dict[str, Any]
    yosys: str
    flow: str  # "full" or "fast"
    flow_note: str
    check: str
    layers: dict[str, dict[str, Any]]  # layer index -> resource counts (+ lanes, luts_per_lane)
    glue: dict[str, Any]
    total: dict[str, Any]
    log: str
    wrapper_cells: dict[str, Any] | None = None  # the place-and-route pin wrapper's own cells
    netlist: str | None = None  # the flat JSON netlist for nextpnr
    netlist_top: str | None = None
    flat_total: dict[str, Any] | None = None
    intact: dict[str, Any] | None = None  # did flattening keep every cell
    pnr: dict[str, Any] | None = None  # place and route: status, fmax_mhz, device, speed grade, ...

    @staticmethod
    def file_name(target: str) -> str:
        return f"synth_{target}.json"


# ------------------------------------------------------------------------------------------------ sim


@dataclass
class SimReport(StageFile):
    """`bnn-hw sim BUILD` -> BUILD/sim_report.json: bit-exactness and measured cycles of the RTL."""

    SCHEMA: ClassVar[str] = "bnn-hw sim report"
    VERSION: ClassVar[int] = 1
    FILE: ClassVar[str] = "sim_report.json"
    MAKE: ClassVar[str] = "bnn-hw sim BUILD --model MODEL.bnn"

    passed: bool
    model_hash: str
    model: str
    build_dir: str
    manifest_model_hash: str
    simulator: str
    simulator_version: str
    cocotb_version: str
    driver: str
    seed: int
    gap: float
    stall: float
    images: int
    image_source: dict[str, Any]
    reference: str
    reference_seconds: float
    reference_accuracy: float | None
    results_checked: int
    results_matched: int
    mismatch_count: int  # every mismatching result of every phase
    timeouts: list[str]
    cycles_per_image: float | None
    latency_cycles: float | None
    mismatches: list[dict[str, Any]]  # the first few, with details
    phases: list[dict[str, Any]]
    metrics: dict[str, Any]  # measured figures (cycles, latency, utilization) and the predicted ones beside them
    build_seconds: float | None
    simulation_seconds: float
    waves: str | None
    shards: list[dict[str, Any]] | None = None  # `--shards K`: one summary per shard (Dask)


# ------------------------------------------------------------------------------------------------ train


@dataclass
class Epoch(Record):
    epoch: int
    lr: float
    loss: float
    train_acc: float
    test_acc: float
    seconds: float


@dataclass
class Metrics(StageFile):
    """`bnn-hw train --out DIR` -> DIR/metrics.json: the run's configuration and one row per epoch."""

    SCHEMA: ClassVar[str] = "bnn-hw training metrics"
    VERSION: ClassVar[int] = 1
    FILE: ClassVar[str] = "metrics.json"
    MAKE: ClassVar[str] = "bnn-hw train --out DIR"

    model: dict[str, Any]  # train.models.ModelConfig.to_dict()
    dataset: dict[str, Any]  # bnn_hw.datasets.DatasetInfo.to_dict()
    train: dict[str, Any]  # train.loop.TrainConfig.to_dict() plus resolved values and the environment
    epochs: list[Epoch] = field(default_factory=list)
    test_acc: float | None = None
    best_test_acc: float | None = None
    train_seconds: float = 0.0
    checkpoint_hash: str | None = None


# ------------------------------------------------------------------------------------------------ verify


@dataclass
class LayerAgreement(Record):
    layer: int
    what: str  # "bits" or "scores"
    agree: int
    total: int


@dataclass
class Verify(StageFile):
    """`bnn-hw verify MODEL --against CKPT --json FILE`: golden model vs PyTorch, per layer."""

    SCHEMA: ClassVar[str] = "bnn-hw verify report"
    VERSION: ClassVar[int] = 1
    FILE: ClassVar[str] = "verify.json"
    MAKE: ClassVar[str] = "bnn-hw verify MODEL.bnn --against CHECKPOINT --json verify.json"

    model: str
    model_hash: str
    checkpoint_sha256: str
    dataset: str
    split: str
    images: int
    layers: list[LayerAgreement]
    classes_agree: int
    golden_accuracy: float
    pytorch_accuracy: float
    classes: list[str]
    confusion_matrix: list[list[int]]  # rows: true class, columns: the golden model's class

    @property
    def bit_exact(self) -> bool:
        return self.classes_agree == self.images and all(r.agree == r.total for r in self.layers)


# ------------------------------------------------------------------------------------------------ bench


@dataclass
class BenchCpu(StageFile):
    """`bnn-hw bench cpu -o FILE` (default runs/bench/cpu.json): golden model vs PyTorch float32 on the CPU."""

    SCHEMA: ClassVar[str] = "bnn-hw bench cpu"
    VERSION: ClassVar[int] = 1
    FILE: ClassVar[str] = "cpu.json"
    MAKE: ClassVar[str] = "bnn-hw bench cpu -o FILE"

    benchmark: str
    date: str
    machine: dict[str, Any]
    model: dict[str, Any]
    images: dict[str, Any]
    params: dict[str, Any]
    golden_numpy: dict[str, Any]  # seconds, runs, images_per_s
    torch_float32_cpu: dict[str, Any]  # the same plus class and score mismatches
    golden_vs_torch_speed: float
    bit_exact: bool
    accuracy: float | None = None  # with a trained model and labels
    arguments: dict[str, Any] = field(default_factory=dict)

    def throughputs(self) -> dict[str, float]:
        """{system: images per second} of the whole-network measurements."""
        return {
            "golden_numpy": float(self.golden_numpy["images_per_s"]),
            "torch_float32_cpu": float(self.torch_float32_cpu["images_per_s"]),
        }


@dataclass
class BenchGpu(StageFile):
    """`bnn-hw bench gpu -o FILE` (default runs/bench/gpu.json): CUDA kernels vs cuBLAS/PyTorch on one GPU."""

    SCHEMA: ClassVar[str] = "bnn-hw bench gpu"
    VERSION: ClassVar[int] = 1
    FILE: ClassVar[str] = "gpu.json"
    MAKE: ClassVar[str] = "bnn-hw bench gpu -o FILE"

    benchmark: str
    date: str
    machine: dict[str, Any]
    device: dict[str, Any]
    params: dict[str, Any]
    ceilings: dict[str, Any]
    matmul: dict[str, Any]
    layers: list[dict[str, Any]]
    networks: list[dict[str, Any]]  # per model: {"model", "hash", "note", "layers", "batches": {batch: {system: ..}}}
    derived: dict[str, Any]
    targets: dict[str, Any]
    bit_exact: bool
    arguments: dict[str, Any] = field(default_factory=dict)

    def throughputs(self) -> dict[str, float]:
        """{system: images per second} on the benchmarked model (the first network) at its largest batch."""
        if not self.networks or not self.networks[0]["batches"]:
            return {}
        batches = self.networks[0]["batches"]
        entry = batches[max(batches, key=int)]
        return {k: float(v["images_per_s"]) for k, v in entry.items() if "images_per_s" in v}


# ------------------------------------------------------------------------------------------------ sweep


@dataclass
class PointRequest(Record):
    """What a sweep point was asked for; a point.json answering the same request is reused."""

    version: int
    model_hash: str
    pe: int
    simd: int
    target: str
    flow: str
    simulate: int
    random_images: bool
    pnr: dict[str, Any] | None  # --pnr: device, package, speed, freq, seed


@dataclass
class Point(StageFile):
    """`bnn-hw sweep` -> OUT/pe<P>_simd<S>/point.json: one design point (also a row of sweep.json)."""

    SCHEMA: ClassVar[str] = "bnn-hw sweep point"
    VERSION: ClassVar[int] = 1
    FILE: ClassVar[str] = "point.json"
    MAKE: ClassVar[str] = "bnn-hw sweep MODEL.bnn --redo"

    request: PointRequest
    pe: int
    simd: int
    pe_per_layer: list[int]
    simd_per_layer: list[int]
    lanes: int
    target: str
    flow: str
    cycles_per_image: int
    latency_cycles: int | None
    limited_by: str
    luts: int | None
    lutram: int | None
    ffs: int | None
    brams: float | None
    bram_unit: str
    carry: int | None
    memory_bits: int
    luts_per_layer: dict[str, int | None]
    measured_cycles_per_image: float | None
    sim_mismatches: int | None
    fmax_mhz: float | None  # --pnr: post-route
    images_per_s: float | None  # at the measured Fmax
    clock_source: str | None
    critical_path: Any  # --pnr: what the critical path runs through
    worker: str | None  # the Dask worker (or this process) that made the point
    seconds: dict[str, float]
    started: float
    finished: float


@dataclass
class Sweep(StageFile):
    """`bnn-hw sweep -o OUT` -> OUT/sweep.json: every point, the Pareto front and the failures."""

    SCHEMA: ClassVar[str] = "bnn-hw sweep"
    VERSION: ClassVar[int] = 1
    FILE: ClassVar[str] = "sweep.json"
    MAKE: ClassVar[str] = "bnn-hw sweep MODEL.bnn -o OUT"

    model: str
    model_hash: str
    model_name: str
    target: str
    flow: str
    bnn_hw_commit: str | None
    clock_mhz: float | None  # the assumed clock; None when every point has a measured Fmax (--pnr)
    clock: str
    jobs: int
    wall_seconds: float
    reused: int
    points: list[Point]
    pareto: list[list[int]]
    failures: list[str]


def stage_file_for(path: str | Path) -> type[StageFile] | None:
    """The stage-file class of a file by its usual name (`bench/cpu.json` needs its folder), else None."""
    import fnmatch

    path = Path(path)
    for cls in STAGE_FILES:
        pattern = cls.FILE.replace("{target}", "*")
        if cls in (BenchCpu, BenchGpu) and path.parent.name != "bench":
            continue
        if fnmatch.fnmatch(path.name, pattern):
            return cls
    return None


STAGE_FILES: tuple[type[StageFile], ...] = (
    Manifest,
    SynthReport,
    SimReport,
    Metrics,
    Verify,
    BenchCpu,
    BenchGpu,
    Point,
    Sweep,
)
