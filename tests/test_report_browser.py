"""The `bnn-hw report` page in a real headless browser (Debian's chromium): a screenshot, no broken image, no console
message. A deliberately broken page checks that the checks can fail. Slow; skipped, with the reason, without chromium
(`apt-get install chromium`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from bnn_hw.cli import main

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
]

# Appended to a copy of the page: after the load event, list every <img> that did not decode.
PROBE = """<script>window.addEventListener('load', function () {
  var bad = [], n = 0;
  for (var img of document.images) { n++; if (!img.complete || img.naturalWidth === 0) bad.push(img.alt || 'img' + n); }
  var p = document.createElement('pre'); p.id = 'bnn-image-check';
  p.textContent = 'images=' + n + ' broken=' + JSON.stringify(bad); document.body.appendChild(p);
});</script>"""


def _chromium(tmp_path, url, *flags):
    profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *flags,
        url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def render_and_check(page, tmp_path):
    """(screenshot path, console messages, number of images, broken images) of `page` in headless chromium."""
    shot = tmp_path / f"{page.stem}.png"
    proc = _chromium(
        tmp_path,
        page.resolve().as_uri(),
        "--enable-logging=stderr",
        "--v=0",
        f"--screenshot={shot}",
        "--window-size=1200,2400",
        "--hide-scrollbars",
    )
    assert shot.is_file(), f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    console = re.findall(r":CONSOLE[^\]]*\] (.*)", proc.stderr)
    probed = tmp_path / f"{page.stem}_probe.html"
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    shutil.copytree(page.parent, tmp_path / "assets", dirs_exist_ok=True)  # relative files, if a page has any
    (tmp_path / "assets" / probed.name).write_text(probed.read_text())
    dom = _chromium(
        tmp_path, (tmp_path / "assets" / probed.name).as_uri(), "--virtual-time-budget=10000", "--dump-dom"
    ).stdout
    m = re.search(r"images=(\d+) broken=(\[.*?\])", dom)
    assert m, f"the image probe did not run: {dom[-500:]}"
    return shot, console, int(m.group(1)), json.loads(m.group(2))


@pytest.fixture
def report_page(run_dir):
    assert main(["report", str(run_dir)]) == 0
    return run_dir / "report" / "report.html"


def test_report_renders_in_headless_chromium(report_page, tmp_path):
    shot, console, n_images, broken = render_and_check(report_page, tmp_path)
    assert console == [], f"console messages: {console}"
    assert n_images == report_page.read_text().count("<img") >= 1 and broken == []
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2400, 1200)
    top = pixels[:1200, :, :3].reshape(-1, 3)
    assert (top.min(axis=1) < 0.5).mean() > 0.005, "the screenshot is (nearly) blank"  # text, tables, the plot


def test_the_checks_catch_a_broken_page(tmp_path):
    page = tmp_path / "pages" / "bad.html"
    page.parent.mkdir()
    page.write_text(
        "<!doctype html><html><body><h1>bad</h1><img alt='gone' src='missing.png'>"
        "<img alt='fine' src='data:image/gif;base64,"
        "R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7' width=1>"
        "<script>console.error('boom'); notAFunction();</script></body></html>"
    )
    _, console, n_images, broken = render_and_check(page, tmp_path)
    assert any("boom" in c for c in console) and any("notAFunction" in c for c in console)
    assert n_images == 2 and broken == ["gone"]


FULL_CONFIG = """
model:
  train: {dataset: digits, hidden: [16], epochs: 3, batch_size: 32}
folding: {pe: 4, simd: 16, layers: {layer1: {pe: 2}}}
interface: {pixels_per_beat: 2}
target: {device: ecp5-25k, pnr: true, clock_mhz: 50, timeout: 1800}
sim: {images: 20, simulator: verilator}
bench: {images: 500, repeats: 1}
sweep: {pe: [2, 4], simd: [16]}
"""
SECTIONS = (
    "Model",
    "Training",
    "Export agreement",
    "Accuracy per class",
    "Hardware folding",
    "Synthesis",
    "RTL simulation",
    "Clock and latency",
    "Throughput comparison",
    "Design-space sweep",
    "Reproducibility",
)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """`bnn-hw build` of a small trained digits MLP with synthesis, ECP5 place and route, Verilator simulation, the
    CPU benchmark and a two-point sweep: a run in which every section of the report has its data."""
    if shutil.which("yosys") is None:
        pytest.skip("yosys is not installed (make system)")
    pytest.importorskip("torch")
    from bnn_hw.rtl.pnr import tool

    from bnn_hw.errors import BnnError

    try:
        tool("ecp5")
    except BnnError as exc:
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("full")
    (root / "full.yaml").write_text(FULL_CONFIG)
    assert main(["build", str(root / "full.yaml"), "-q"]) == 0
    return root / "runs" / "full"


def test_full_run_report_has_every_section_filled_and_traced(full_run, tmp_path):
    from report_trace import check_page

    page = full_run / "report" / "report.html"
    text = page.read_text()
    for title in SECTIONS:
        assert f"<h2>{title}" in text, title
    # measured wherever it can be: before the sweep (whose points are not placed and routed, so their clock is the
    # assumed one, labelled), only the GPU benchmark is missing on a machine without a GPU
    before_sweep = text.split("<h2>Design-space sweep")[0]
    assert before_sweep.count("not measured") == 1 and "<td class='na'>not measured</td>" in before_sweep
    assert "assumed" not in before_sweep and "measured: " in before_sweep and "post-route Fmax" in before_sweep
    assert "(assumed, not measured)" in text.split("<h2>Design-space sweep")[1]
    assert "Utilisation after place and route" in text and "Utilisation of Lattice ECP5 LFE5U-25F" in text
    assert check_page(page, full_run) > 150
    shot, console, n_images, broken = render_and_check(page, tmp_path)
    assert console == [], f"console messages: {console}"
    assert n_images == text.count("<img") >= 2 and broken == []  # training curve and Pareto plot
    shutil.copy(shot, full_run / "report" / "screenshot.png")
