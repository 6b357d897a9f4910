"""`bnn-hw report RUN_DIR`: one self-contained HTML page (and a Markdown twin) for a run.

It only reads what the other stages wrote (JSON files and the model), so every number on the page can be traced to
its source file, which the page names. Numbers that were not measured are written as "not measured".
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bnn_hw import __version__
from bnn_hw.errors import BnnError

NOT_MEASURED = "not measured"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="a run folder (e.g. runs/demo from `bnn-hw demo`)")
    parser.add_argument("-o", "--out", type=Path, default=None, help="output folder (default: RUN_DIR/report)")
    parser.add_argument(
        "--clock-mhz",
        type=float,
        default=None,
        help="FPGA clock to assume when no measured Fmax exists (labelled 'assumed')",
    )


@dataclass
class Section:
    title: str
    source: list[str] = field(default_factory=list)
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[Any]]]] = field(default_factory=list)
    images: list[tuple[str, bytes]] = field(default_factory=list)  # (name, png bytes)


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BnnError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); regenerate it") from None


# What `bnn-hw demo`, `train`, `rtl`, `synth`, `sim` and `bench` leave in a folder; any one makes it a run folder. A
# lone *.bnn does not: it would let the report pick up an unrelated model (e.g. in /tmp).
RUN_MARKERS = (
    "model.bnn",
    "train/metrics.json",
    "metrics.json",
    "checkpoint.pt",
    "verify.json",
    "rtl/manifest.json",
    "manifest.json",
    "rtl/synth*.json",
    "synth*.json",
    "rtl/sim_report.json",
    "sim_report.json",
    "bench/*.json",
)


def _first(run: Path, *names: str) -> Path | None:
    for name in names:
        hits = sorted(run.glob(name))
        if hits:
            return hits[0]
    return None


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return NOT_MEASURED
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _training(run: Path) -> Section | None:
    path = _first(run, "train/metrics.json", "metrics.json")
    metrics = _read_json(path) if path else None
    if not metrics or not metrics.get("epochs"):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = metrics["epochs"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    epochs = [r["epoch"] for r in rows]
    ax1.plot(epochs, [r["loss"] for r in rows], marker="o")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("training loss")
    ax2.plot(epochs, [100 * r["train_acc"] for r in rows], marker="o", label="train")
    ax2.plot(epochs, [100 * r["test_acc"] for r in rows], marker="o", label="test")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy (%)")
    ax2.legend()
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    seconds = sum(r.get("seconds", 0.0) for r in rows)
    model = metrics.get("model", {})
    sec = Section("Training", [str(path)])
    sec.paragraphs.append(
        f"Preset <b>{html.escape(str(model.get('preset', '?')))}</b> on "
        f"{html.escape(str(metrics.get('dataset', {}).get('name', '?')))}: {len(rows)} epochs, "
        f"{seconds:,.0f} s of training; final test accuracy {100 * rows[-1]['test_acc']:.2f} % "
        f"(best {100 * max(r['test_acc'] for r in rows):.2f} %)."
    )
    sec.images.append(("training_curve.png", _png(fig)))
    return sec


def _model(run: Path) -> tuple[Section | None, Any]:
    path = _first(run, "model.bnn", "*.bnn")
    if path is None:
        return None, None
    from bnn_hw.commands.info import memory_summary
    from bnn_hw.model import load_model

    model = load_model(path)
    summary = memory_summary(model)
    sec = Section("Model", [str(path)])
    sec.paragraphs.append(
        f"{html.escape(model.name)}, hash <code>{model.hash[:16]}</code>, input "
        f"{tuple(model.input_shape)} uint8, {summary['total_bits']:,} bits of weights and "
        f"thresholds ({summary['compression_vs_float32']:.1f}x smaller than float32)."
    )
    sec.tables.append(
        (
            ["layer", "description", "weight bits", "threshold/bias bits"],
            [[r["layer"], r["description"], r["weight_bits"], r["threshold_or_bias_bits"]] for r in summary["layers"]],
        )
    )
    return sec, model


def _export(run: Path) -> Section | None:
    path = _first(run, "verify.json")
    data = _read_json(path) if path else None
    if not data:
        return None
    rows = [
        [r["layer"], r["what"], r["agree"], r["total"], f"{100 * r['agree'] / r['total']:.3f} %"]
        for r in data["layers"]
    ]
    rows.append(
        [
            "all",
            "classes",
            data["classes_agree"],
            data["images"],
            f"{100 * data['classes_agree'] / data['images']:.3f} %",
        ]
    )
    exact = all(r[2] == r[3] for r in rows)
    sec = Section("Export agreement: golden model vs PyTorch", [str(path)])
    sec.paragraphs.append(
        f"{'<b>Bit-exact</b>' if exact else '<b>MISMATCH</b>'} on {data['images']:,} {data['dataset']} "
        f"{data['split']} images. Accuracy: golden {100 * data['golden_accuracy']:.2f} %, PyTorch "
        f"{100 * data['pytorch_accuracy']:.2f} %."
    )
    sec.tables.append((["layer", "checked", "agree", "of", "agreement"], rows))
    return sec


def _folding(manifest: dict, path: Path) -> Section:
    sec = Section("Hardware folding per layer", [str(path)])
    layers = manifest.get("layers", [])
    keys = ["kind", "MW", "MH", "PE", "SIMD", "NF", "SF", "input_vectors", "cycles_per_image"]
    sec.tables.append((["layer", *keys], [[i, *[layer.get(k) for k in keys]] for i, layer in enumerate(layers)]))
    predicted = manifest.get("predicted", {})
    sec.paragraphs.append(
        f"Predicted {_fmt(predicted.get('cycles_per_image'))} cycles per image (limited by "
        f"{predicted.get('limited_by', '?')}) and {_fmt(predicted.get('latency_cycles'))} cycles of "
        "latency for one image."
    )
    return sec


def _synthesis(run: Path) -> tuple[Section | None, dict | None]:
    path = _first(run, "rtl/synth*.json", "synth*.json")
    data = _read_json(path) if path else None
    if not data:
        return None, None
    total = data.get("total", {})
    sec = Section(f"Synthesis ({data.get('target', '?')}, Yosys)", [str(path)])
    from bnn_hw.flow.sweep import BRAM

    ram_key, unit, size = BRAM.get(data.get("target"), ("bram_cells", "cells", "size unknown"))
    ram_label = f"block RAM ({unit}, {size})"

    def cells(counts: dict) -> list[Any]:  # RAMB18 counts as half a RAMB36: keep the half
        ram = counts.get(ram_key)
        ram = f"{ram:.1f}" if isinstance(ram, float) and not ram.is_integer() else ram
        return [counts.get("luts"), counts.get("ffs"), ram, counts.get("carry")]

    rows = [[f"layer {name}", *cells(counts)] for name, counts in (data.get("layers") or {}).items()]
    rows.append(["total", *cells(total)])
    sec.tables.append((["part", "LUTs", "flip-flops", ram_label, "carry cells"], rows))
    fmax = _fmax(data)
    if fmax:
        sec.paragraphs.append(f"nextpnr-ice40 Fmax: {fmax:.1f} MHz (measured by place and route).")
    return sec, data


def _fmax(synth: dict | None) -> float | None:
    return ((synth or {}).get("pnr") or {}).get("fmax_mhz")


def _sim_value(sim: dict, key: str) -> Any:
    """A figure of sim_report.json: `bnn-hw sim` writes the measured ones under "metrics" (older reports: top level)."""
    return (sim.get("metrics") or {}).get(key, sim.get(key))


def _simulation(run: Path) -> tuple[Section | None, dict | None]:
    path = _first(run, "rtl/sim_report.json", "sim_report.json")
    data = _read_json(path) if path else None
    if not data:
        return None, None
    sec = Section("RTL simulation", [str(path)])
    mism = data.get("mismatches_total", data.get("mismatches"))
    if isinstance(mism, list):
        mism = len(mism)
    util = _sim_value(data, "utilization")
    if isinstance(util, dict):
        share = util.get("bottleneck_utilization")
        util = None if share is None else f"{100 * share:.1f} % (bottleneck layer {util.get('bottleneck_layer')})"
    elif isinstance(util, float):
        util = f"{100 * util:.1f} %"
    sec.tables.append(
        (
            ["quantity", "value"],
            [
                ["simulator", f"{data.get('simulator')} {data.get('simulator_version', '')}"],
                ["images", data.get("images")],
                ["reference", data.get("reference")],
                ["mismatching results", mism],
                ["cycles per image (measured)", _sim_value(data, "cycles_per_image")],
                ["cycles per image (predicted)", _sim_value(data, "predicted_cycles_per_image")],
                ["latency, cycles", _sim_value(data, "latency_cycles")],
                ["PE-array utilization", util],
            ],
        )
    )
    return sec, data


def _throughput(
    run: Path, manifest: dict | None, synth: dict | None, sim: dict | None, clock_mhz: float | None
) -> Section:
    sec = Section("Throughput comparison")
    rows: list[list[Any]] = []
    cycles = _sim_value(sim or {}, "cycles_per_image") or (manifest or {}).get("predicted", {}).get("cycles_per_image")
    luts = ((synth or {}).get("total") or {}).get("luts")
    clock, clock_note = None, ""
    if _fmax(synth):
        clock, clock_note = float(_fmax(synth)), "nextpnr-ice40 Fmax (measured)"
    elif clock_mhz:
        clock, clock_note = clock_mhz, "assumed (--clock-mhz), not measured"
    fpga = clock * 1e6 / cycles if clock and cycles else None
    if clock:
        how = f"{clock:,.1f} MHz: {clock_note}"
    else:
        pnr = (synth or {}).get("pnr") or {}
        failed = "place and route failed (see its log); " if str(pnr.get("status", "")).startswith("failed") else ""
        how = (
            f"no clock: {failed}pass `bnn-hw report --clock-mhz MHZ` (assumed) or run "
            "`bnn-hw synth RTL --target ice40 --pnr` (measured Fmax)"
        )
    rows.append(
        [
            "this design (FPGA)",
            _fmt(fpga),
            f"{how}; {_fmt(cycles)} cycles/image",
            _fmt(luts),
            _fmt(fpga / luts if fpga and luts else None, 2),
        ]
    )
    for target in ("cpu", "gpu"):
        path = _first(run, f"bench/{target}.json", f"bench_{target}.json")
        data = _read_json(path) if path else None
        if path:
            sec.source.append(str(path))
        found = False
        for key, entry in (data or {}).items():
            if isinstance(entry, dict) and isinstance(entry.get("images_per_s"), int | float):
                rows.append([key.replace("_", " "), _fmt(float(entry["images_per_s"])), f"bench {target}", "", ""])
                found = True
        if not found:
            rows.append([f"bench {target}", NOT_MEASURED, f"run `bnn-hw bench {target}`", "", ""])
    if fpga:
        for row in rows[1:]:
            try:
                row.append(f"{float(str(row[1]).replace(',', '')) / fpga:.2f}x")
            except ValueError:
                row.append("")
        rows[0].append("1.00x")
    sec.tables.append((["system", "images/s", "how", "LUTs", "images/s per LUT", "vs FPGA"][: len(rows[0])], rows))
    return sec


def build_sections(run: Path, clock_mhz: float | None) -> list[Section]:
    if not run.is_dir():
        raise BnnError(f"{run}: run folder not found (make one with `bnn-hw demo --out {run}`)")
    if _first(run, *RUN_MARKERS) is None:
        raise BnnError(
            f"{run}: not a bnn-hw run folder (it has no model.bnn, train/metrics.json, verify.json or "
            f"rtl/manifest.json); pass the folder `bnn-hw demo --out` or `bnn-hw train --out` wrote"
        )
    sections: list[Section] = []
    model_sec, _ = _model(run)
    for sec in (model_sec, _training(run), _export(run)):
        if sec:
            sections.append(sec)
    manifest_path = _first(run, "rtl/manifest.json", "manifest.json")
    manifest = _read_json(manifest_path) if manifest_path else None
    if manifest:
        sections.append(_folding(manifest, manifest_path))
    synth_sec, synth = _synthesis(run)
    sim_sec, sim = _simulation(run)
    sections += [s for s in (synth_sec, sim_sec) if s]
    sections.append(_throughput(run, manifest, synth, sim, clock_mhz))
    if not sections[:-1]:
        raise BnnError(f"{run}: holds no results (model.bnn, train/metrics.json, verify.json, rtl/...)")
    return sections


def _html_table(head: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(c)) if not isinstance(c, str) else c}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def render_html(run: Path, sections: list[Section]) -> str:
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>bnn-hw report: {html.escape(run.name)}"
        "</title><style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #bbb;padding:3px 8px;"
        "text-align:right}th{background:#eee}td:first-child{text-align:left}.src{color:#777;font-size:85%}"
        "img{max-width:100%}</style></head><body>",
        f"<h1>bnn-hw report: {html.escape(str(run))}</h1>",
        f"<p class='src'>bnn-hw {__version__}, {time.strftime('%Y-%m-%d %H:%M')}</p>",
    ]
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec.title)}</h2>")
        parts += [f"<p>{p}</p>" for p in sec.paragraphs]
        parts += [_html_table(h, r) for h, r in sec.tables]
        for name, png in sec.images:
            data = base64.b64encode(png).decode()
            parts.append(f"<img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>")
        if sec.source:
            parts.append(f"<p class='src'>source: {html.escape(', '.join(sec.source))}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_markdown(run: Path, sections: list[Section], out: Path) -> str:
    import re

    lines = [f"# bnn-hw report: {run}", ""]
    for sec in sections:
        lines += [f"## {sec.title}", ""]
        for p in sec.paragraphs:
            lines.append(re.sub(r"</?(b|code)>", lambda m: "**" if m.group(1) == "b" else "`", p) + "\n")
        for head, rows in sec.tables:
            lines.append("| " + " | ".join(map(str, head)) + " |")
            lines.append("|" + "---|" * len(head))
            lines += ["| " + " | ".join(_fmt(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
            lines.append("")
        for name, png in sec.images:
            (out / name).write_bytes(png)
            lines += [f"![{name}]({name})", ""]
        if sec.source:
            lines += [f"source: {', '.join(sec.source)}", ""]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    sections = build_sections(args.run_dir, args.clock_mhz)
    out = args.out or args.run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.html").write_text(render_html(args.run_dir, sections))
    (out / "report.md").write_text(render_markdown(args.run_dir, sections, out))
    print(f"wrote {out / 'report.html'} and {out / 'report.md'} ({len(sections)} sections)")
    return 0
