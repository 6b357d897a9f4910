"""Read a build directory written by `bnn-hw rtl` (manifest.json + Verilog) into a `sim.network.Design`.

The manifest is the contract between rtl/ and sim/: stream layouts, widths, the model hash, per-layer folding and the
predicted cycles per image and latency. Every field the bench relies on is checked here so that a build that does not
fit gives one clear line instead of a simulator error.
"""

from __future__ import annotations

from pathlib import Path

from bnn_hw.sim.network import Design
from bnn_hw.sim.payload import PixelStream, ResultFormat

from bnn_hw.artifacts import Manifest
from bnn_hw.errors import BnnError
from bnn_hw.model import BnnModel, load_model

MANIFEST = Manifest.FILE


def read_manifest(build_dir: str | Path) -> tuple[Manifest, Path]:
    build = Path(build_dir)
    if not build.exists():
        raise BnnError(f"build directory {build} does not exist; generate it with `bnn-hw rtl MODEL.bnn -o {build}`")
    if not build.is_dir():
        raise BnnError(f"{build} is not a directory; pass the folder `bnn-hw rtl ... -o DIR` wrote")
    path = build / MANIFEST
    if not path.is_file():
        raise BnnError(
            f"{build} has no {MANIFEST}: it is not a `bnn-hw rtl` build (run `bnn-hw rtl MODEL.bnn -o {build}`)"
        )
    return Manifest.read(path), path


def _sources(manifest: Manifest, build: Path) -> list[Path]:
    paths = [build / n for n in manifest.verilog]
    for p in paths:
        if not p.is_file():
            raise BnnError(f"{p} is missing from the build; regenerate it with `bnn-hw rtl MODEL.bnn -o {build}`")
    return paths


def load_design(build_dir: str | Path) -> Design:
    """The Design a build directory describes; BnnError when it is missing or inconsistent."""
    build = Path(build_dir)
    manifest, path = read_manifest(build)
    pixels = PixelStream(manifest.pixels_per_beat, manifest.beats_per_image)
    result = ResultFormat(manifest.class_bits, manifest.score_bits, manifest.num_classes)
    if pixels.pixels_per_beat < 1 or pixels.beats_per_image < 1 or result.score_bits < 1 or result.num_classes < 1:
        raise BnnError(
            f"{path}: stream sizes must be positive (pixels_per_beat, beats_per_image, score_bits, num_classes)"
        )
    bare = manifest.interface == "bare"  # an AXI4-Stream top pads its streams to whole bytes (manifest "axis")
    for port, want in (("pixels__payload", pixels.width), ("result__payload", result.width)) if bare else ():
        have = manifest.ports[port]["width"] if port in manifest.ports else None
        if have != want:
            raise BnnError(
                f"{path}: port {port} is {have} bits wide but the stream layout implies {want}; the manifest is "
                "inconsistent, regenerate the build"
            )
    return Design(
        sources=_sources(manifest, build),
        pixels=pixels,
        result=result,
        model_hash=manifest.model_hash,
        cycles_per_image=manifest.predicted.cycles_per_image,
        latency=manifest.predicted.latency_cycles,
        layers=manifest.layers,
        manifest=manifest,
    )


def model_for_build(design: Design, build_dir: str | Path, model_path: str | Path | None) -> tuple[BnnModel, Path]:
    """Load the model the build was generated from and prove it is the same one (hash), or explain the mismatch."""
    build = Path(build_dir)
    if model_path is None:
        recorded = design.manifest.generator.args.get("model") if design.manifest else None
        if not isinstance(recorded, str):  # `bnn-hw rtl` records its arguments, the model path among them
            raise BnnError(f"{build}/{MANIFEST} records no model file; pass the model with --model MODEL.bnn")
        candidate = Path(recorded)
        if not candidate.is_absolute() and not candidate.exists():
            candidate = build / recorded
        model_path = candidate
    model = load_model(model_path)
    if model.hash != design.model_hash:
        raise BnnError(
            f"{build} was generated from model {str(design.model_hash)[:12]}... but {model_path} is "
            f"{model.hash[:12]}...: regenerate with `bnn-hw rtl {model_path} -o {build}` or pass the "
            "model it was built from with --model"
        )
    if model.num_classes != design.result.num_classes:
        raise BnnError(f"{build}: manifest has {design.result.num_classes} classes, model {model.num_classes}")
    return model, Path(model_path)
