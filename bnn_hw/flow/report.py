"""`bnn-hw report RUN_DIR`: one self-contained HTML page (and a Markdown twin) for a run.

It only reads what the other stages wrote (JSON files and the model), so every number on the page traces to a stage
file: in the HTML each number is a `<span class="v">` whose `data-src` names the file and key it came from
(`rtl/synth_ice40.json:total.luts`) and, for a derived number, whose `data-calc` is the formula over those values
(`a*1e6/b` for images/s); tests/test_report_browser.py re-derives every one. Numbers that were not measured are
written as "not measured"; a clock that no place and route measured is labelled "assumed".
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bnn_hw import __version__, fileio
from bnn_hw.argtypes import positive_float
from bnn_hw.artifacts import stage_file_for
from bnn_hw.errors import BnnError

NOT_MEASURED = "not measured"
OPTIONS = "report/options.json"  # the report's own inputs (--clock-mhz, --device): a stage file like the others


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="a run folder (e.g. runs/demo from `bnn-hw demo`)")
    parser.add_argument("-o", "--out", type=Path, default=None, help="output folder (default: RUN_DIR/report)")
    parser.add_argument(
        "--clock-mhz",
        type=positive_float,
        default=None,
        help="FPGA clock to assume when no measured Fmax exists (labelled 'assumed'; default: the build "
        "configuration's target.clock_mhz)",
    )
    parser.add_argument(
        "--device",
        default=None,
        help="device to draw utilisation against, e.g. xc7a100t, ice40-hx8k, ecp5-85k (default: the build "
        "configuration's target.device)",
    )


# ------------------------------------------------------------------------------------------------- traced values


@dataclass(frozen=True)
class V:
    """A number shown on the page and where it came from: `src` lists `file:key.path` operands (a, b, c, ... in
    `calc`); without `calc` the number is the first operand itself. Shown as value * scale with `digits` decimals."""

    value: float
    src: tuple[str, ...]
    calc: str | None = None
    digits: int = 0
    scale: float = 1.0
    suffix: str = ""

    @property
    def text(self) -> str:
        shown = self.value * self.scale
        if self.digits == 0 and float(shown).is_integer():
            return f"{int(shown):,}{self.suffix}"
        return f"{shown:,.{self.digits}f}{self.suffix}"

    def html(self) -> str:
        calc = f" data-calc='{html.escape(self.calc)}'" if self.calc else ""
        return (
            f"<span class='v' data-src='{html.escape(';'.join(self.src))}'{calc} data-digits='{self.digits}' "
            f"data-scale='{self.scale:g}'>{html.escape(self.text)}</span>"
        )

    def __format__(self, spec: str) -> str:  # in f-strings of paragraphs: the HTML span
        return self.html()


@dataclass(frozen=True)
class Html:
    """Markup placed as it is (links, code, bars); its Markdown form is the tag-stripped text or `md`."""

    markup: str
    md: str | None = None
    first: bool = False  # placed before the section's tables (else after them)


_BUILTINS = {"len": len, "sum": sum, "range": range, "max": max, "min": min}


def evaluate(expr: str, values: list[Any]) -> Any:
    """`expr` over values named a, b, c, ... (the page's data-calc, re-derived the same way by the tests)."""
    names = {chr(ord("a") + i): v for i, v in enumerate(values)}
    return eval(expr, {"__builtins__": _BUILTINS, **names})  # noqa: S307 - the report's own formulas


def calc(expr: str, *operands: Any, digits: int = 0, scale: float = 1.0, suffix: str = "") -> V | str:
    """A derived number: `expr` over the operands (a, b, c, ...), or "not measured" when one is missing. Operands that
    are themselves derived are substituted, so data-calc always reads straight from the stage files."""
    if not all(isinstance(o, V) for o in operands):
        return NOT_MEASURED
    src: list[str] = []
    parts: dict[str, str] = {}
    for i, o in enumerate(operands):
        base = len(src)
        src += o.src
        inner = re.sub(r"\b([a-z])\b", lambda m, b=base: f"_{chr(ord(m.group(1)) + b)}", o.calc or "a")
        parts[chr(ord("a") + i)] = f"({inner})" if o.calc else inner
    if len(src) > 26:
        return NOT_MEASURED
    flat = re.sub(r"\b([a-z])\b", lambda m: parts.get(m.group(1), m.group(1)), expr)
    flat = re.sub(r"_([a-z])\b", r"\1", flat)
    try:
        value = evaluate(expr, [o.value for o in operands])
    except ZeroDivisionError:
        return NOT_MEASURED
    return V(float(value), tuple(src), flat, digits, scale, suffix)


class Files:
    """The run folder's stage files, read once; `num` turns a key of one into a traced number."""

    def __init__(self, run: Path, out: Path | None = None) -> None:
        import os

        self.run = run
        self.cache: dict[str, Any] = {}
        # links on the page are relative to the page's folder
        self.link_prefix = Path(os.path.relpath(run.resolve(), (out or run / "report").resolve())).as_posix()

    def json(self, rel: str | None) -> dict | None:
        if rel is None:
            return None
        if rel not in self.cache:
            kind = stage_file_for(rel)  # a stage file is read strictly, then looked up by key (the trace)
            path = self.run / rel
            self.cache[rel] = kind.read(path).to_json() if kind and path.is_file() else _read_json(path)
        return self.cache[rel]

    def first(self, *patterns: str) -> str | None:
        for pattern in patterns:
            hits = sorted(self.run.glob(pattern))
            if hits:
                return hits[0].relative_to(self.run).as_posix()
        return None

    def num(self, rel: str | None, key: str, digits: int = 0, scale: float = 1.0, suffix: str = "") -> V | str:
        value = lookup(self.json(rel), key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return NOT_MEASURED
        return V(float(value), (f"{rel}:{key}",), None, digits, scale, suffix)

    def ref(
        self, rel: str | None, key: str, expr: str, digits: int = 0, scale: float = 1.0, suffix: str = ""
    ) -> V | str:
        """A number computed by `expr` from one key's value (a list or mapping, named `a`)."""
        value = lookup(self.json(rel), key)
        if value is None:
            return NOT_MEASURED
        try:
            result = evaluate(expr, [value])
        except (TypeError, KeyError, IndexError, ZeroDivisionError):
            return NOT_MEASURED
        return V(float(result), (f"{rel}:{key}",), expr, digits, scale, suffix)

    def items(self, rel: str | None, key: str) -> V | str:
        return self.ref(rel, key, "len(a)") if isinstance(lookup(self.json(rel), key), list | dict) else NOT_MEASURED


def lookup(data: Any, key: str) -> Any:
    """`data["a"]["0"]` or `data["a"][0]` for the key "a.0"; None where it is missing."""
    for part in key.split(".") if key else []:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BnnError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); regenerate it") from None


def model_facts(path: Path) -> dict[str, Any]:
    """What the report reads from a .bnn file, as a stage file's JSON: `bnn-hw info`'s memory summary."""
    from bnn_hw.model import load_model
    from bnn_hw.summary import memory_summary

    return {"info": memory_summary(load_model(path))}


# ------------------------------------------------------------------------------------------------- sections


@dataclass
class Section:
    title: str
    source: list[str] = field(default_factory=list)
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[Any]]]] = field(default_factory=list)
    images: list[tuple[str, bytes]] = field(default_factory=list)  # (name, png bytes)
    blocks: list[Html] = field(default_factory=list)  # bars, code


# What `bnn-hw demo`, `build`, `train`, `rtl`, `synth`, `sim` and `bench` leave in a folder; any one makes it a run
# folder. A lone *.bnn does not: it would let the report pick up an unrelated model (e.g. in /tmp).
RUN_MARKERS = (
    "model.bnn",
    "build.json",
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


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _model(files: Files) -> Section | None:
    rel = files.first("model.bnn")
    if rel is None:
        return None
    files.cache[rel] = model_facts(files.run / rel)
    info = files.cache[rel]["info"]
    sec = Section("Model", [rel])
    sec.paragraphs.append(
        f"{_esc(info['name'])}, hash <code>{info['hash'][:16]}</code>, input <code>{tuple(info['input_shape'])}</code> "
        f"uint8, {files.num(rel, 'info.total_bits')} bits of weights and thresholds "
        f"({files.num(rel, 'info.compression_vs_float32', 1)}x smaller than float32)."
    )
    rows = [
        [
            Html(f"<code>{_esc(r['description'])}</code>", r["description"]),
            files.num(rel, f"info.layers.{i}.weight_bits"),
            files.num(rel, f"info.layers.{i}.threshold_or_bias_bits"),
        ]
        for i, r in enumerate(info["layers"])
    ]
    sec.tables.append((["layer", "description", "weight bits", "threshold/bias bits"], _label_rows(rows, "layer")))
    return sec


def _label_rows(rows: list[list[Any]], prefix: str) -> list[list[Any]]:
    return [[Html(f"{prefix} {i}"), *row] for i, row in enumerate(rows)]


def _training(files: Files) -> Section | None:
    rel = files.first("train/metrics.json", "metrics.json")
    metrics = files.json(rel)
    if not metrics or not metrics.get("epochs"):
        return None
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    rows = metrics["epochs"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    epochs = [r["epoch"] for r in rows]
    ax1.plot(epochs, [r["loss"] for r in rows], marker="o")
    ax1.set_ylabel("training loss")
    ax2.plot(epochs, [100 * r["train_acc"] for r in rows], marker="o", label="train")
    ax2.plot(epochs, [100 * r["test_acc"] for r in rows], marker="o", label="test")
    ax2.set_ylabel("accuracy (%)")
    ax2.legend()
    for ax in (ax1, ax2):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.grid(True, alpha=0.3)
    fig.suptitle("Training curve")
    fig.tight_layout()
    model = metrics.get("model", {})
    last = len(rows) - 1
    best = max(range(len(rows)), key=lambda i: rows[i]["test_acc"])
    total = files.ref(rel, "epochs", "sum(e['seconds'] for e in a)")
    sec = Section("Training", [rel])
    sec.paragraphs.append(
        f"Preset <b>{_esc(model.get('preset', '?'))}</b> on {_esc(metrics.get('dataset', {}).get('name', '?'))}: "
        f"{files.items(rel, 'epochs')} epochs, {total} s of training; final "
        f"test accuracy {files.num(rel, f'epochs.{last}.test_acc', 2, 100, ' %')} (best "
        f"{files.num(rel, f'epochs.{best}.test_acc', 2, 100, ' %')})."
    )
    sec.images.append(("training_curve.png", _png(fig)))
    return sec


def _export(files: Files) -> Section | None:
    rel = files.first("verify.json")
    data = files.json(rel)
    if not data:
        return None
    rows = []
    for i, r in enumerate(data["layers"]):
        agree, total = files.num(rel, f"layers.{i}.agree"), files.num(rel, f"layers.{i}.total")
        rows.append(
            [Html(f"layer {r['layer']}"), r["what"], agree, total, calc("a/b", agree, total, digits=3, scale=100)]
        )
    agree, images = files.num(rel, "classes_agree"), files.num(rel, "images")
    rows.append([Html("all"), "classes", agree, images, calc("a/b", agree, images, digits=3, scale=100)])
    exact = all(r["agree"] == r["total"] for r in data["layers"]) and data["classes_agree"] == data["images"]
    sec = Section("Export agreement: golden model vs PyTorch", [rel])
    sec.paragraphs.append(
        f"{'<b>Bit-exact</b>' if exact else '<b>MISMATCH</b>'} on {images} {_esc(data['dataset'])} "
        f"{_esc(data['split'])} images. Accuracy: golden {files.num(rel, 'golden_accuracy', 2, 100, ' %')}, PyTorch "
        f"{files.num(rel, 'pytorch_accuracy', 2, 100, ' %')}."
    )
    sec.tables.append((["layer", "checked", "agree", "of", "agreement (%)"], rows))
    return sec


def _accuracy(files: Files) -> Section | None:
    """Confusion matrix and per-class accuracy: evaluation.json (`bnn-hw build`), else verify.json's."""
    rel = next((r for r in ("evaluation.json", "verify.json") if (files.json(r) or {}).get("confusion_matrix")), None)
    if rel is None:
        return None
    data = files.json(rel)
    matrix = data["confusion_matrix"]
    classes = data.get("classes") or [str(i) for i in range(len(matrix))]
    sec = Section("Accuracy per class", [rel])
    correct = [files.num(rel, f"confusion_matrix.{i}.{i}") for i in range(len(matrix))]
    images = files.num(rel, "images")
    accuracy = files.ref(rel, "confusion_matrix", "sum(a[i][i] for i in range(len(a)))")
    sec.paragraphs.append(
        f"The golden model (bit-exact with the hardware where the simulation says so) on {images} "
        f"{_esc(data.get('dataset', '?'))} {_esc(data.get('split', 'test'))} images: "
        f"{calc('a/b', accuracy, images, digits=2, scale=100, suffix=' %')} correct. Rows: true class; "
        "columns: predicted class."
    )
    peak = max(max(row) for row in matrix) or 1
    head = "".join(f"<th>{_esc(c)}</th>" for c in classes)
    body = []
    for i, row in enumerate(matrix):
        cells = []
        for j, count in enumerate(row):
            shade = 0.08 + 0.6 * count / peak if count else 0.0
            colour = "46,125,50" if i == j else "198,40,40"
            v = files.num(rel, f"confusion_matrix.{i}.{j}")
            cells.append(f"<td class='num' style='background:rgba({colour},{shade:.2f})'>{v.html()}</td>")
        body.append(f"<tr><th class='label'>{_esc(classes[i])}</th>{''.join(cells)}</tr>")
    md_head = "| true \\ predicted | " + " | ".join(map(str, classes)) + " |"
    md_rows = [md_head, "|" + "---|" * (len(classes) + 1)]
    md_rows += ["| " + " | ".join([str(classes[i]), *map(str, row)]) + " |" for i, row in enumerate(matrix)]
    sec.blocks.append(
        Html(
            f"<table class='confusion'><thead><tr><th class='label'>true \\ predicted</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>",
            "\n".join(md_rows),
        )
    )
    rows = []
    for i, name in enumerate(classes):
        row_total = files.ref(rel, f"confusion_matrix.{i}", "sum(a)")
        rows.append(
            [
                Html(_esc(name)),
                row_total,
                correct[i],
                calc("a/b", correct[i], row_total, digits=1, scale=100),
            ]
        )
    sec.tables.append((["class", "images", "correct", "accuracy (%)"], rows))
    return sec


def _folding(files: Files, rel: str) -> Section:
    manifest = files.json(rel)
    sec = Section("Hardware folding per layer", [rel])
    keys = ["MW", "MH", "PE", "SIMD", "NF", "SF", "input_vectors", "cycles_per_image"]
    rows = [
        [Html(f"layer {i}"), str(layer.get("kind", "?")), *[files.num(rel, f"layers.{i}.{k}") for k in keys]]
        for i, layer in enumerate(manifest.get("layers", []))
    ]
    sec.tables.append((["layer", "kind", *keys], rows))
    sec.paragraphs.append(
        f"Predicted {files.num(rel, 'predicted.cycles_per_image')} cycles per image (limited by "
        f"<span class='label'>{_esc(manifest.get('predicted', {}).get('limited_by', '?'))}</span>) and "
        f"{files.num(rel, 'predicted.latency_cycles')} cycles of latency for one image."
    )
    links = [("Verilog", v) for v in manifest.get("verilog", [])] + [("manifest", "manifest.json")]
    folder = str(Path(rel).parent)
    sec.blocks.append(_links(files, [(label, f"{folder}/{name}" if folder != "." else name) for label, name in links]))
    return sec


def _links(files: Files, items: list[tuple[str, str]]) -> Html:
    present = [(label, rel) for label, rel in items if (files.run / rel).exists()]
    if not present:
        return Html("", "")
    pre = files.link_prefix
    markup = ", ".join(f"{_esc(label)} <a href='{_esc(pre)}/{_esc(rel)}'>{_esc(rel)}</a>" for label, rel in present)
    md = ", ".join(f"{label} [{rel}]({pre}/{rel})" for label, rel in present)
    return Html(f"<p class='src'>files: {markup}</p>", f"files: {md}")


def _bram(target: str | None) -> tuple[str, str, str]:
    from bnn_hw.flow.sweep import BRAM

    return BRAM.get(target, ("bram_cells", "cells", "size unknown"))


def _synthesis(files: Files, device) -> tuple[Section | None, str | None]:
    rel = files.first("rtl/synth*.json", "synth*.json")
    data = files.json(rel)
    if not data:
        return None, None
    target = data.get("target")
    sec = Section(f"Synthesis ({target or '?'}, Yosys)", [rel])
    ram_key, unit, size = _bram(target)

    def cells(prefix: str) -> list[Any]:
        digits = 1 if isinstance(lookup(data, f"{prefix}.{ram_key}"), float) else 0
        ram = files.num(rel, f"{prefix}.{ram_key}", digits)
        if isinstance(ram, V) and float(ram.value).is_integer():
            ram = V(ram.value, ram.src)
        return [
            files.num(rel, f"{prefix}.luts"),
            files.num(rel, f"{prefix}.ffs"),
            ram,
            files.num(rel, f"{prefix}.carry"),
        ]

    rows = [[Html(f"layer {name}"), *cells(f"layers.{name}")] for name in (data.get("layers") or {})]
    if data.get("glue"):
        rows.append([Html("glue"), *cells("glue")])
    rows.append([Html("total"), *cells("total")])
    sec.tables.append((["part", "LUTs", "flip-flops", f"block RAM ({unit}, {size})", "carry cells"], rows))
    if data.get("yosys"):
        sec.paragraphs.append(f"Tool: <code>{_esc(data['yosys'])}</code>; {_esc(data.get('check', ''))}.")
    folder = str(Path(rel).parent)
    logs = [("Yosys log", f"{folder}/yosys_{target}.log"), ("report", rel)]
    sec.blocks.append(_links(files, logs))
    if data.get("pnr") and data["pnr"].get("utilization"):
        sec.blocks.append(_pnr_utilisation(files, rel, data["pnr"]))
    if device is not None:
        sec.blocks.append(_utilisation(files, rel, data, device))
    elif not (data.get("pnr") or {}).get("utilization"):
        sec.paragraphs.append(
            "Utilisation: no device named; pass `bnn-hw report --device NAME` or set target.device in the build "
            "configuration."
        )
    return sec, rel


def _bars(title: str, rows: list[tuple[str, Any, Any]], note: str) -> Html:
    """A table of used / available with a bar per resource (red above 100 %, amber above 80 %)."""
    rows_html, rows_md = [], []
    for label, used, cap in rows:
        share = calc("a/b", used, cap, digits=1, scale=100, suffix=" %")
        if not isinstance(share, V) or not cap.value:
            continue
        width = min(100.0, 100 * share.value)
        colour = "#c62828" if share.value > 1 else "#2e7d32" if share.value < 0.8 else "#f9a825"
        rows_html.append(
            f"<tr><td class='label'>{_esc(label)}</td><td class='num'>{used.html()}</td><td class='num'>"
            f"{cap.html()}</td><td><div class='bar'><div style='width:{width:.1f}%;background:{colour}'></div></div>"
            f"</td><td class='num'>{share.html()}</td></tr>"
        )
        blocks = round(20 * min(1.0, share.value))
        rows_md.append(f"| {label} | {used.text} | {cap.text} | {'#' * blocks}{'.' * (20 - blocks)} | {share.text} |")
    if not rows_html:
        return Html("", "")
    return Html(
        f"<h3>{_esc(title)}</h3><table class='util'><thead><tr><th>resource</th><th>used</th><th>available</th>"
        "<th>share</th><th>%</th></tr></thead><tbody>" + "".join(rows_html) + f"</tbody></table><p class='src'>"
        f"{_esc(note)}</p>",
        f"### {title}\n\n| resource | used | available | share | % |\n|---|---|---|---|---|\n"
        + "\n".join(rows_md)
        + f"\n\n{note}",
    )


def _utilisation(files: Files, rel: str, data: dict, device) -> Html:
    """Bars of the synthesized LUTs, flip-flops and block RAM against the named device's data-sheet totals."""
    ram_key, unit, _ = _bram(data.get("target"))
    if data.get("target") != device.family:
        return Html(
            f"<p>Utilisation: the synthesis is for {_esc(data.get('target'))}, device {_esc(device.name)} is "
            f"{_esc(device.family)}; no bars.</p>"
        )
    files.cache[f"device/{device.name}"] = {"luts": device.luts, "ffs": device.ffs, "bram": device.bram}
    rows = []
    for key, label, cap_key in (("luts", "LUTs", "luts"), ("ffs", "flip-flops", "ffs"), (ram_key, unit, "bram")):
        used = files.num(rel, f"total.{key}", 1 if isinstance(lookup(data, f"total.{key}"), float) else 0)
        rows.append((label, used, files.num(f"device/{device.name}", cap_key)))
    return _bars(
        f"Utilisation of {device.part} ({device.name}), Yosys cells",
        rows,
        "available: the vendor's data-sheet totals (bnn_hw/devices.py)",
    )


def _pnr_utilisation(files: Files, rel: str, pnr: dict) -> Html:
    """nextpnr's own count of the placed netlist against the device (pin wrapper included, when one was used)."""
    rows = [
        (name, files.num(rel, f"pnr.utilization.{name}.used"), files.num(rel, f"pnr.utilization.{name}.available"))
        for name, cell in sorted((pnr.get("utilization") or {}).items())
        if isinstance(cell, dict) and cell.get("used")
    ]
    return _bars(
        f"Utilisation after place and route ({pnr.get('device', '?')} {pnr.get('package', '')})",
        rows,
        f"nextpnr's count of every placed cell; I/O: {pnr.get('io', '?')}",
    )


def _sim_key(sim: dict | None, key: str) -> str:
    """Where `bnn-hw sim` puts a measured figure: under "metrics"."""
    return f"metrics.{key}"


def _simulation(files: Files) -> tuple[Section | None, str | None]:
    rel = files.first("rtl/sim_report.json", "sim_report.json")
    data = files.json(rel)
    if not data:
        return None, None
    sec = Section("RTL simulation", [rel])
    mism = files.num(rel, "mismatch_count")
    util_key = _sim_key(data, "utilization")
    util: Any = NOT_MEASURED
    if isinstance(lookup(data, util_key), dict):
        share = files.num(rel, f"{util_key}.bottleneck_utilization", 1, 100, " %")
        if isinstance(share, V):
            layer = files.num(rel, f"{util_key}.bottleneck_layer")
            util = Html(
                f"{share.html()} (bottleneck layer {layer})",
                f"{share.text} (bottleneck layer {getattr(layer, 'text', '?')})",
            )
    elif isinstance(lookup(data, util_key), float):
        util = files.num(rel, util_key, 1, 100, " %")
    sec.tables.append(
        (
            ["quantity", "value"],
            [
                [
                    Html("simulator"),
                    Html(f"<code>{_esc(data.get('simulator'))} {_esc(data.get('simulator_version', ''))}</code>"),
                ],
                [Html("images"), files.num(rel, "images")],
                [Html("reference"), str(data.get("reference"))],
                [Html("mismatching results"), mism],
                [Html("cycles per image (measured)"), files.num(rel, _sim_key(data, "cycles_per_image"))],
                [Html("cycles per image (predicted)"), files.num(rel, _sim_key(data, "predicted_cycles_per_image"))],
                [Html("latency, cycles"), files.num(rel, _sim_key(data, "latency_cycles"))],
                [Html("PE-array utilization"), util],
            ],
        )
    )
    folder = str(Path(rel).parent)
    sec.blocks.append(_links(files, [("report", rel), ("Verilator build log", f"{folder}/sim/build_verilator.log")]))
    return sec, rel


def _clock(files: Files, synth_rel: str | None, clock_mhz: float | None) -> tuple[V | None, str]:
    """The clock images/s and microseconds are computed at: a place-and-route Fmax (measured), else the assumed one."""
    fmax = files.num(synth_rel, "pnr.fmax_mhz", 1, suffix=" MHz")
    if isinstance(fmax, V):
        pnr = (files.json(synth_rel) or {}).get("pnr", {})
        if pnr.get("clock_source"):
            return fmax, str(pnr["clock_source"])
        tool = pnr.get("tool") or "nextpnr"
        where = " ".join(str(pnr[k]) for k in ("device", "package", "speed_grade") if pnr.get(k))
        return fmax, f"measured: {tool} post-route Fmax, {where}" if where else f"measured: {tool} Fmax"
    if clock_mhz is not None:
        return files.num(OPTIONS, "clock_mhz", 1, suffix=" MHz"), "assumed, not measured"
    return None, ""


def _timing(files: Files, synth_rel: str | None, sim_rel: str | None, man_rel: str | None, clock_mhz) -> Section:
    """Fmax and latency in microseconds: from place and route when it ran, else at the assumed clock, so labelled."""
    clock, how = _clock(files, synth_rel, clock_mhz)
    sim = files.json(sim_rel) or {}
    latency = files.num(sim_rel, _sim_key(sim, "latency_cycles"))
    lat_how = "measured in simulation"
    if not isinstance(latency, V):
        latency, lat_how = files.num(man_rel, "predicted.latency_cycles"), "predicted"
    cycles = files.num(sim_rel, _sim_key(sim, "cycles_per_image"))
    cyc_how = "measured in simulation"
    if not isinstance(cycles, V):
        cycles, cyc_how = files.num(man_rel, "predicted.cycles_per_image"), "predicted"
    sec = Section("Clock and latency", [s for s in (synth_rel, OPTIONS if clock_mhz else None) if s])
    pnr = (files.json(synth_rel) or {}).get("pnr") or {}
    if clock is None:
        failed = (
            f"place and route failed ({_esc(pnr.get('status'))}); "
            if pnr.get("status", "").startswith("failed")
            else ""
        )
        sec.paragraphs.append(
            f"No clock: {failed}run <code>bnn-hw synth RTL --target ecp5 --pnr</code> (measured Fmax) or pass "
            "<code>bnn-hw report --clock-mhz MHZ</code> / target.clock_mhz (assumed)."
        )
    label = "Fmax" if "measured" in how else "clock"
    rows = [
        [Html(label), clock if clock is not None else NOT_MEASURED, Html(_esc(how) or "")],
        [Html("latency, cycles"), latency, lat_how],
        [
            Html("latency, microseconds"),
            calc("a/b", latency, clock, digits=3) if clock else NOT_MEASURED,
            f"at the {'measured Fmax' if 'measured' in how else 'assumed clock'}" if clock else "",
        ],
        [Html("cycles per image"), cycles, cyc_how],
        [
            Html("time per image, microseconds"),
            calc("a/b", cycles, clock, digits=3) if clock else NOT_MEASURED,
            f"at the {'measured Fmax' if 'measured' in how else 'assumed clock'}" if clock else "",
        ],
    ]
    if pnr.get("target_mhz") is not None:
        rows.append(
            [
                Html("placement target clock"),
                files.num(synth_rel, "pnr.target_mhz", 1, suffix=" MHz"),
                Html(f"<code>{_esc(pnr.get('status', ''))}</code>", str(pnr.get("status", ""))),
            ]
        )
    crit = pnr.get("critical_path") or {}
    if crit.get("delay_ns") is not None:
        through = " -> ".join(
            [crit.get("start_component", "?"), *crit.get("through", [])[1:-1], crit.get("end_component", "?")]
        )
        rows.append(
            [
                Html("critical path, ns"),
                files.num(synth_rel, "pnr.critical_path.delay_ns", 2),
                Html(f"<code>{_esc(through)}</code>", through),
            ]
        )
        rows.append([Html("of which routing, ns"), files.num(synth_rel, "pnr.critical_path.routing_ns", 2), ""])
    if pnr.get("status") and clock is None:
        rows.append([Html("place and route"), Html(f"<code>{_esc(pnr['status'])}</code>", str(pnr["status"])), ""])
    sec.tables.append((["quantity", "value", "how"], rows))
    if pnr.get("log"):
        log = Path(pnr["log"])
        rel = (
            log.relative_to(files.run.resolve()).as_posix()
            if log.is_absolute() and log.is_relative_to(files.run.resolve())
            else None
        )
        if rel:
            sec.blocks.append(_links(files, [("place-and-route log", rel)]))
    return sec


def _throughput(files: Files, man_rel, synth_rel, sim_rel, clock_mhz) -> Section:
    sec = Section("Throughput comparison", [s for s in (sim_rel or man_rel, synth_rel) if s])
    sim = files.json(sim_rel) or {}
    cycles = files.num(sim_rel, _sim_key(sim, "cycles_per_image"))
    if not isinstance(cycles, V):
        cycles = files.num(man_rel, "predicted.cycles_per_image")
    luts = files.num(synth_rel, "total.luts")
    clock, how = _clock(files, synth_rel, clock_mhz)
    fpga = calc("a*1e6/b", clock, cycles) if clock else NOT_MEASURED
    if clock:
        note = Html(
            f"{clock.html()}: <span class='label'>{_esc(how)}</span>; "
            f"{cycles.html() if isinstance(cycles, V) else NOT_MEASURED} cycles/image",
            f"{clock.text}: {how}; {getattr(cycles, 'text', NOT_MEASURED)} cycles/image",
        )
    else:
        pnr = (files.json(synth_rel) or {}).get("pnr") or {}
        failed = "place and route failed (see its log); " if str(pnr.get("status", "")).startswith("failed") else ""
        text = (
            f"no clock: {failed}pass `bnn-hw report --clock-mhz MHZ` (assumed) or run "
            "`bnn-hw synth RTL --target ecp5 --pnr` (measured Fmax); "
        )
        note = Html(
            _esc(text) + (cycles.html() if isinstance(cycles, V) else NOT_MEASURED) + " cycles/image",
            text + getattr(cycles, "text", NOT_MEASURED) + " cycles/image",
        )
    rows: list[list[Any]] = [
        [
            Html("this design (FPGA)"),
            fpga,
            note,
            luts,
            calc("a/b", fpga, luts, digits=2) if isinstance(fpga, V) else NOT_MEASURED,
        ]
    ]
    for target in ("cpu", "gpu"):
        rel = files.first(f"bench/{target}.json")
        data = files.json(rel) or {}
        if rel:
            sec.source.append(rel)
        found = False
        for key, entry in data.items():
            if isinstance(entry, dict) and isinstance(entry.get("images_per_s"), int | float):
                rows.append(
                    [
                        Html(_esc(key.replace("_", " "))),
                        files.num(rel, f"{key}.images_per_s"),
                        f"bench {target}",
                        "",
                        "",
                    ]
                )
                found = True
        if not found:
            rows.append(
                [
                    Html(f"bench {target}"),
                    NOT_MEASURED,
                    Html(f"run <code>bnn-hw bench {target}</code>", f"run `bnn-hw bench {target}`"),
                    "",
                    "",
                ]
            )
    head = ["system", "images/s", "how", "LUTs", "images/s per LUT"]
    if isinstance(fpga, V):
        head.append("vs FPGA")
        rows[0].append(calc("a/a", fpga, digits=2, suffix="x"))
        for row in rows[1:]:
            row.append(calc("a/b", row[1], fpga, digits=3, suffix="x") if isinstance(row[1], V) else "")
    sec.tables.append((head, rows))
    return sec


def _sweep(files: Files) -> Section | None:
    rel = files.first("sweep/sweep.json", "sweep.json")
    data = files.json(rel)
    if not data or not data.get("points"):
        return None
    points = data["points"]
    sec = Section(f"Design-space sweep ({data.get('target', '?')}, {data.get('flow', '?')} flow)", [rel])
    clock = files.num(rel, "clock_mhz", 1, suffix=" MHz")
    rows = []
    for i, p in enumerate(points):
        cycles = files.num(rel, f"points.{i}.cycles_per_image")
        if p.get("images_per_s"):  # placed and routed: at its own measured Fmax
            ips, how = files.num(rel, f"points.{i}.images_per_s"), "measured Fmax"
            clock_cell: Any = files.num(rel, f"points.{i}.fmax_mhz", 1, suffix=" MHz")
        else:
            ips, how, clock_cell = calc("a*1e6/b", clock, cycles), "assumed clock", clock
        rows.append(
            [
                files.num(rel, f"points.{i}.pe"),
                files.num(rel, f"points.{i}.simd"),
                cycles,
                ips,
                clock_cell,
                how,
                files.num(rel, f"points.{i}.luts"),
                files.num(rel, f"points.{i}.ffs"),
                files.num(rel, f"points.{i}.brams", 1 if isinstance(p.get("brams"), float) else 0),
                "yes" if [p["pe"], p["simd"]] in data.get("pareto", []) else "",
            ]
        )
    unit = points[0].get("bram_unit") or _bram(data.get("target"))[1]
    sec.paragraphs.append(
        f"{files.items(rel, 'points')} foldings synthesized with Yosys; images/s = clock / cycles per image, at each "
        f"point's place-and-route Fmax where one was measured, else at {clock} (assumed, not measured). Pareto: no "
        "other point has both fewer LUTs and more images/s."
    )
    sec.tables.append(
        (
            ["PE", "SIMD", "cycles/image", "images/s", "clock", "clock is", "LUTs", "FFs", f"BRAM ({unit})", "Pareto"],
            rows,
        )
    )
    sec.images.append(
        ("pareto.png", _png(pareto_figure(points, data.get("clock_mhz") or 0.0, data.get("target"), unit)))
    )
    return sec


def front(points: list[dict], cost: str, gain) -> list[dict]:
    """The points no other point beats on both `cost` (fewer) and `gain(point)` (more), cheapest first."""
    usable = [p for p in points if isinstance(p.get(cost), int | float)]
    out = [
        p
        for p in usable
        if not any(
            q[cost] <= p[cost] and gain(q) >= gain(p) and (q[cost], gain(q)) != (p[cost], gain(p)) for q in usable
        )
    ]
    return sorted(out, key=lambda p: (p[cost], -gain(p)))


def pareto_figure(points: list[dict], clock_mhz: float, target: str | None, bram_unit: str):
    """Images/s against LUTs and against block RAM, each with its Pareto front drawn as a staircase (a design is
    only as good as the best one at or below its cost)."""
    plt = _pyplot()

    from bnn_hw.flow.sweep import throughput

    def ips(p: dict) -> float:
        return throughput(p, clock_mhz)

    measured = all(p.get("images_per_s") for p in points)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, cost, label in (
        (axes[0], "luts", f"LUTs (Yosys, {target})"),
        (axes[1], "brams", f"block RAM ({bram_unit})"),
    ):
        usable = [p for p in points if isinstance(p.get(cost), int | float)]
        ax.scatter([p[cost] for p in usable], [ips(p) for p in usable], label="design points", zorder=3)
        for p in usable:
            ax.annotate(
                f"{p['pe']}x{p['simd']}", (p[cost], ips(p)), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
        best = front(usable, cost, ips)
        if best:
            xs = [p[cost] for p in best]
            ys = [ips(p) for p in best]
            top = max(p[cost] for p in usable)
            ax.step([*xs, top], [*ys, ys[-1]], where="post", color="tab:red", label="Pareto front", zorder=2)
        ax.set_xlabel(label)
        ax.set_ylabel(
            "images/s at each point's post-route Fmax" if measured else f"images/s at {clock_mhz:g} MHz (assumed)"
        )
        if cost == "luts":
            from matplotlib.ticker import NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels of a log axis overlap
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Throughput against area: {len(points)} foldings, Yosys {target}")
    fig.tight_layout()
    return fig


def _reproduce(files: Files) -> Section | None:
    """The exact commands, the environment and the git commit: build.json (`bnn-hw build`, `bnn-hw demo`)."""
    rel = files.first("build.json")
    data = files.json(rel)
    model = files.json("model.bnn") or {}
    sec = Section("Reproducibility", [rel] if rel else [])
    commit = (data or {}).get("git_commit")
    model_hash = (model.get("info") or {}).get("hash") or (data or {}).get("model_hash")
    sec.paragraphs.append(
        f"bnn-hw commit <code>{_esc(commit or 'not recorded')}</code>; model hash <code>{_esc(model_hash or '?')}"
        f"</code>."
    )
    if data is None:
        sec.paragraphs.append(
            "No build.json in this folder: the commands were not recorded (`bnn-hw build` and "
            "`bnn-hw demo` record them)."
        )
        return sec
    lines = [s["command"] for s in data.get("stages", []) if s.get("command")]
    if data.get("command"):
        where = f" (in {data['cwd']})" if data.get("cwd") else ""
        lines.insert(0, f"# the whole run{where}:\n{data['command']}")
    code = "\n".join(lines)
    sec.blocks.append(Html(f"<pre><code>{_esc(code)}</code></pre>", f"```\n{code}\n```", first=True))
    rows = []
    for i, stage in enumerate(data.get("stages", [])):
        rows.append(
            [
                Html(_esc(stage["name"])),
                str(stage.get("status", "?")),
                files.num(rel, f"stages.{i}.seconds", 1) if "seconds" in stage else "",
            ]
        )
    sec.tables.append((["stage", "status", "seconds"], rows))
    env = data.get("environment") or {}
    versions = [("python", env.get("python")), ("platform", env.get("platform"))]
    versions += [(k, v) for k, v in (env.get("packages") or {}).items()]
    versions += [(k, v) for k, v in (env.get("tools") or {}).items()]
    sec.tables.append(
        (
            ["component", "version"],
            [
                [Html(_esc(k)), Html(f"<code>{_esc(v or 'not installed')}</code>", str(v or "not installed"))]
                for k, v in versions
            ],
        )
    )
    config = files.first("config.yaml", "config.yml", "config.json")
    sec.blocks.append(
        _links(
            files,
            [("run record", rel), ("build log", "build.log"), *([("configuration", config)] if config else [])],
        )
    )
    return sec


def build_sections(
    run: Path, clock_mhz: float | None, device_name: str | None = None, out: Path | None = None
) -> list[Section]:
    """The page's sections from the run folder's stage files; writes the report's own options (report/options.json),
    which the page's assumed clock traces to."""
    if not run.is_dir():
        raise BnnError(f"{run}: run folder not found (make one with `bnn-hw demo --out {run}`)")
    files = Files(run, out)
    if files.first(*RUN_MARKERS) is None:
        raise BnnError(
            f"{run}: not a bnn-hw run folder (it has no model.bnn, train/metrics.json, verify.json or "
            f"rtl/manifest.json); pass the folder `bnn-hw demo --out` or `bnn-hw train --out` wrote"
        )
    from bnn_hw.devices import get_device

    record = files.json("build.json") or {}
    target = (record.get("config") or {}).get("target") or {}
    if clock_mhz is None and target.get("clock_mhz"):
        clock_mhz = float(target["clock_mhz"])
    device_name = device_name or target.get("device")
    device = get_device(device_name) if device_name else None
    files.cache[OPTIONS] = {"clock_mhz": clock_mhz, "device": device_name}
    fileio.write_json(run / OPTIONS, files.cache[OPTIONS])
    sections: list[Section] = []
    for sec in (_model(files), _training(files), _export(files), _accuracy(files)):
        if sec:
            sections.append(sec)
    man_rel = files.first("rtl/manifest.json", "manifest.json")
    if files.json(man_rel):
        sections.append(_folding(files, man_rel))
    synth_sec, synth_rel = _synthesis(files, device)
    sim_sec, sim_rel = _simulation(files)
    sections += [s for s in (synth_sec, sim_sec) if s]
    if man_rel or sim_rel:
        sections.append(_timing(files, synth_rel, sim_rel, man_rel, clock_mhz))
    sections.append(_throughput(files, man_rel, synth_rel, sim_rel, clock_mhz))
    sweep = _sweep(files)
    if sweep:
        sections.append(sweep)
    if len(sections) == 1:
        raise BnnError(f"{run}: holds no results (model.bnn, train/metrics.json, verify.json, rtl/...)")
    repro = _reproduce(files)
    if repro:
        sections.append(repro)
    return sections


# ------------------------------------------------------------------------------------------------- rendering


def _cell_html(cell: Any) -> str:
    if isinstance(cell, V):
        return f"<td class='num'>{cell.html()}</td>"
    if isinstance(cell, Html):
        return f"<td class='label'>{cell.markup}</td>" if cell.md is None else f"<td>{cell.markup}</td>"
    if cell == NOT_MEASURED:
        return f"<td class='na'>{NOT_MEASURED}</td>"
    return f"<td>{html.escape(str(cell))}</td>"


def _cell_md(cell: Any) -> str:
    if isinstance(cell, V):
        return cell.text
    if isinstance(cell, Html):
        return cell.md if cell.md is not None else _strip(cell.markup)
    return str(cell)


def _strip(markup: str) -> str:
    text = re.sub(r"</?(b|strong)>", "**", markup)
    text = re.sub(r"</?code>", "`", text)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def _html_table(head: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(_cell_html(c) for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


STYLE = (
    "body{font-family:sans-serif;max-width:1150px;margin:2em auto;color:#222;line-height:1.35}"
    "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:left;"
    "vertical-align:top}th{background:#eee}td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "td.na{color:#888;font-style:italic}.src{color:#666;font-size:85%}img{max-width:100%}"
    ".bar{width:260px;height:12px;background:#e0e0e0;border-radius:2px}.bar div{height:12px;border-radius:2px}"
    "pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:85%}table.confusion td{min-width:2.5em}"
)


def render_html(run: Path, sections: list[Section]) -> str:
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>bnn-hw report: {html.escape(run.name)}"
        f"</title><style>{STYLE}</style></head><body>",
        f"<h1>bnn-hw report: {html.escape(str(run))}</h1>",
        f"<p class='src'>bnn-hw <code>{__version__}</code>, written <time>{time.strftime('%Y-%m-%d %H:%M')}</time>. "
        "Every number names its stage file (hover it).</p>",
    ]
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec.title)}</h2>")
        parts += [f"<p>{p}</p>" for p in sec.paragraphs]
        parts += [b.markup for b in sec.blocks if b.markup and b.first]
        parts += [_html_table(h, r) for h, r in sec.tables]
        parts += [b.markup for b in sec.blocks if b.markup and not b.first]
        for name, png in sec.images:
            data = base64.b64encode(png).decode()
            parts.append(f"<img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>")
        if sec.source:
            parts.append(f"<p class='src'>source: {html.escape(', '.join(sec.source))}</p>")
    parts.append("</body></html>")
    html_text = "\n".join(parts)
    return re.sub(r"<span class='v' data-src='([^']*)'", _title_src, html_text)


def _title_src(m: re.Match) -> str:
    return f"<span class='v' title='{m.group(1)}' data-src='{m.group(1)}'"


def render_markdown(run: Path, sections: list[Section], out: Path) -> str:
    lines = [f"# bnn-hw report: {run}", ""]
    for sec in sections:
        lines += [f"## {sec.title}", ""]
        for p in sec.paragraphs:
            lines.append(_strip(p) + "\n")
        lines += [f"{b.md}\n" for b in sec.blocks if b.first and b.md]
        for head, rows in sec.tables:
            lines.append("| " + " | ".join(map(str, head)) + " |")
            lines.append("|" + "---|" * len(head))
            lines += ["| " + " | ".join(_cell_md(c) for c in row) + " |" for row in rows]
            lines.append("")
        for block in (b for b in sec.blocks if not b.first):
            text = block.md if block.md is not None else _strip(block.markup)
            if text:
                lines += [text, ""]
        for name, png in sec.images:
            fileio.write_bytes(out / name, png)
            lines += [f"![{name}]({name})", ""]
        if sec.source:
            lines += [f"source: {', '.join(sec.source)}", ""]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    out = args.out or args.run_dir / "report"
    sections = build_sections(args.run_dir, args.clock_mhz, getattr(args, "device", None), out)
    fileio.writable_dir(out)
    fileio.write_text(out / "report.html", render_html(args.run_dir, sections))
    fileio.write_text(out / "report.md", render_markdown(args.run_dir, sections, out))
    print(f"wrote {out / 'report.html'} and {out / 'report.md'} ({len(sections)} sections)")
    return 0
