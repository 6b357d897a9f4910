"""Read a build directory written by `bnn-hw rtl` (manifest.json + Verilog) into a `sim.network.Design`.

The manifest is the contract between rtl/ and sim/: stream layouts, widths, the model hash, per-layer folding and the
predicted cycles per image and latency. Every field the bench relies on is checked here so that a build that does not
fit gives one clear line instead of a simulator error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bnn_hw.sim.network import Design
from bnn_hw.sim.payload import PixelStream, ResultFormat

from bnn_hw.errors import BnnError
from bnn_hw.model import BnnModel, load_model

MANIFEST = "manifest.json"
TOP_VERILOG = "bnn_top.v"


def _get(manifest: dict[str, Any], *names: str, where: str = "") -> Any:
    """First present key among `names` (top level or under `ports`/`streams`/`prediction`), else None."""
    scopes = [manifest] + [
        manifest[k]
        for k in ("ports", "streams", "predicted", "prediction", "timing", "interface")
        if isinstance(manifest.get(k), dict)
    ]
    for scope in scopes:
        for name in names:
            if name in scope and scope[name] is not None:
                return scope[name]
    return None


def _need_int(manifest: dict[str, Any], path: Path, *names: str) -> int:
    value = _get(manifest, *names)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BnnError(
            f"{path}: manifest field {names[0]!r} is missing or not a non-negative integer; regenerate the "
            "build with `bnn-hw rtl MODEL -o DIR`"
        )
    return value


def read_manifest(build_dir: str | Path) -> tuple[dict[str, Any], Path]:
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
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BnnError(f"{path}: not valid JSON ({exc}); regenerate the build with `bnn-hw rtl`") from None
    if not isinstance(manifest, dict):
        raise BnnError(f"{path}: expected a JSON object; regenerate the build with `bnn-hw rtl`")
    return manifest, path


def _sources(manifest: dict[str, Any], build: Path) -> list[Path]:
    listed = _get(manifest, "verilog", "verilog_files", "sources", "top_verilog")
    if isinstance(listed, str):
        listed = [listed]
    if isinstance(listed, dict):  # e.g. {"top": "bnn_top.v", ...}
        listed = list(listed.values())
    names = [str(x) for x in listed] if isinstance(listed, list) and listed else [TOP_VERILOG]
    paths = [(build / n) if not Path(n).is_absolute() else Path(n) for n in names]
    for p in paths:
        if not p.is_file():
            raise BnnError(f"{p} is missing from the build; regenerate it with `bnn-hw rtl MODEL.bnn -o {build}`")
    return paths


def _layers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    raw = _get(manifest, "layers", "folding")
    if not isinstance(raw, list):
        return []
    out = []
    for layer in raw:
        if not isinstance(layer, dict):
            continue
        entry = dict(layer)
        for want, alts in {
            "out_features": ("mh", "MH", "neurons", "out_features"),
            "fan_in": ("mw", "MW", "fan_in", "k"),
            "pe": ("pe", "PE"),
            "simd": ("simd", "SIMD"),
            "input_vectors": ("input_vectors", "vectors"),
        }.items():
            for a in alts:
                if a in layer:
                    entry[want] = layer[a]
                    break
        out.append(entry)
    return out


def load_design(build_dir: str | Path) -> Design:
    """The Design a build directory describes; BnnError when it is missing or inconsistent."""
    build = Path(build_dir)
    manifest, path = read_manifest(build)
    pixels = PixelStream(_need_int(manifest, path, "pixels_per_beat"), _need_int(manifest, path, "beats_per_image"))
    result = ResultFormat(
        _need_int(manifest, path, "class_bits"),
        _need_int(manifest, path, "score_bits"),
        _need_int(manifest, path, "num_classes"),
    )
    if pixels.pixels_per_beat < 1 or pixels.beats_per_image < 1 or result.score_bits < 1 or result.num_classes < 1:
        raise BnnError(
            f"{path}: stream sizes must be positive (pixels_per_beat, beats_per_image, score_bits, num_classes)"
        )
    for port, want in (("pixels_width", pixels.width), ("result_width", result.width)):
        have = _get(manifest, port, port.replace("_width", "__payload_width"))
        if isinstance(have, int) and have != want:
            raise BnnError(
                f"{path}: {port} is {have} but the stream layout implies {want}; the manifest is "
                "inconsistent, regenerate the build"
            )
    cpi = _get(manifest, "cycles_per_image", "predicted_cycles_per_image")
    lat = _get(manifest, "latency", "latency_cycles", "predicted_latency")
    return Design(
        sources=_sources(manifest, build),
        pixels=pixels,
        result=result,
        model_hash=_get(manifest, "model_hash"),
        cycles_per_image=cpi if isinstance(cpi, int) else None,
        latency=lat if isinstance(lat, int) else None,
        layers=_layers(manifest),
        manifest=manifest,
    )


def model_for_build(design: Design, build_dir: str | Path, model_path: str | Path | None) -> tuple[BnnModel, Path]:
    """Load the model the build was generated from and prove it is the same one (hash), or explain the mismatch."""
    build = Path(build_dir)
    recorded = _get(design.manifest, "model_path", "model_file")
    gen = design.manifest.get("generator")
    if recorded is None and isinstance(gen, dict) and isinstance(gen.get("args"), dict):
        recorded = gen["args"].get("model")  # `bnn-hw rtl` records its arguments, the model path among them
    if model_path is None:
        if not isinstance(recorded, str):
            raise BnnError(f"{build}/{MANIFEST} records no model file; pass the model with --model MODEL.bnn")
        candidate = Path(recorded)
        if not candidate.is_absolute() and not candidate.exists():
            candidate = build / recorded
        model_path = candidate
    model = load_model(model_path)
    if not design.model_hash:
        raise BnnError(f"{build}/{MANIFEST} records no model_hash; regenerate the build with `bnn-hw rtl`")
    if model.hash != design.model_hash:
        raise BnnError(
            f"{build} was generated from model {design.model_hash[:12]}... but {model_path} is "
            f"{model.hash[:12]}...: regenerate with `bnn-hw rtl {model_path} -o {build}` or pass the "
            "model it was built from with --model"
        )
    if model.num_classes != design.result.num_classes:
        raise BnnError(f"{build}: manifest has {design.result.num_classes} classes, model {model.num_classes}")
    return model, Path(model_path)
