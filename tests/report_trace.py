"""Re-derive every number on a `bnn-hw report` page from the stage files it names.

Each number on the page is a `<span class="v" data-src="FILE:KEY;..." data-calc="EXPR">`. This module reads FILE
(JSON in the run folder; a .bnn model as `bnn-hw info` summarises it; `device/NAME` as bnn_hw.devices lists it),
looks KEY up, evaluates EXPR over the values (a, b, c, ...), formats the result as shown and compares it with the
text. It also asserts that no digit is shown outside such a span, except in headings, labels (row names), code
(commands, hashes, versions, paths), links and the page's own date.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

# A number: digits not part of a name (uint8, ice40, synth_ice40.json are names).
NUMBER = re.compile(r"(?<![A-Za-z_\d])\d[\d,.]*(?![A-Za-z_\d])")
# Elements whose text may hold digits that are not measured numbers.
FREE = {"h1", "h2", "h3", "th", "code", "pre", "a", "title", "style", "script", "time"}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.spans: list[dict[str, Any]] = []
        self.loose: list[str] = []  # digits-bearing text outside spans and free elements

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in ("img", "meta", "br", "hr"):
            return
        a = dict(attrs)
        self.stack.append((tag, a))
        if tag == "span" and "v" in a.get("class", "").split():
            self.spans.append({**a, "text": ""})

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        in_span = any(t == "span" and "v" in a.get("class", "").split() for t, a in self.stack)
        if in_span:
            self.spans[-1]["text"] += data
            return
        free = any(t in FREE or "label" in a.get("class", "").split() for t, a in self.stack)
        if not free and NUMBER.search(data):
            self.loose.append(data.strip())


def _resolve(run: Path, ref: str, cache: dict[str, Any]) -> Any:
    name, _, key = ref.partition(":")
    if name not in cache:
        if name.startswith("device/"):
            from bnn_hw.devices import DEVICES

            d = DEVICES[name.split("/", 1)[1]]
            cache[name] = {"luts": d.luts, "ffs": d.ffs, "bram": d.bram}
        elif name.endswith(".bnn"):
            from bnn_hw.commands.info import memory_summary
            from bnn_hw.model import load_model

            cache[name] = {"info": memory_summary(load_model(run / name))}
        else:
            path = run / name
            assert path.is_file(), f"{ref}: the page names {path}, which does not exist"
            cache[name] = json.loads(path.read_text())
    data = cache[name]
    for part in key.split(".") if key else []:
        if isinstance(data, list):
            data = data[int(part)]
        else:
            assert isinstance(data, dict) and part in data, f"{ref}: no key {part!r} in {name}"
            data = data[part]
    return data


def _shown(value: float, digits: int) -> str:
    if digits == 0 and float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.{digits}f}"


def check_page(page: Path, run: Path) -> int:
    """Assert every number on the page re-derives from its stage files; returns how many were checked."""
    parser = _Page()
    parser.feed(page.read_text())
    assert parser.loose == [], f"numbers shown without a source: {parser.loose[:10]}"
    cache: dict[str, Any] = {}
    builtins = {"len": len, "sum": sum, "range": range, "max": max, "min": min}
    for span in parser.spans:
        values = [_resolve(run, ref, cache) for ref in span["data-src"].split(";")]
        if span.get("data-calc"):
            names = {chr(ord("a") + i): v for i, v in enumerate(values)}
            value = eval(span["data-calc"], {"__builtins__": builtins, **names})
        else:
            assert len(values) == 1, span
            value = values[0]
        assert isinstance(value, int | float) and not isinstance(value, bool), (span, value)
        expected = _shown(value * float(span["data-scale"]), int(span["data-digits"]))
        text = span["text"].strip()
        assert text.startswith(expected) and not text[len(expected) : len(expected) + 1].isdigit(), (
            f"{span['data-src']} ({span.get('data-calc')}): page shows {text!r}, the stage files give {expected!r}"
        )
    return len(parser.spans)
