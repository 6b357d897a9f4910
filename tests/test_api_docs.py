"""docs/api.md's examples run as written: every ```python block, in order, in one namespace, in an empty folder.

Blocks marked `<!-- test: slow -->` (Yosys, Verilator, a sweep) run with the slow tests; the quick ones, which never
depend on a slow one, run in the default suite."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parent.parent / "docs" / "api.md"
BLOCK = re.compile(r"<!-- test: (fast|slow) -->\s*```python\n(.*?)```", re.S)


def _blocks() -> list[tuple[str, str]]:
    return BLOCK.findall(PAGE.read_text())


def test_every_python_block_is_marked():
    assert PAGE.read_text().count("```python") == len(_blocks()) >= 8


def _run(blocks: list[tuple[str, str]], tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "api_docs"}
    for i, (kind, code) in enumerate(blocks):
        try:
            exec(compile(code, f"{PAGE.name} block {i + 1} ({kind})", "exec"), namespace)
        except Exception as exc:  # name the block that failed
            raise AssertionError(f"docs/api.md block {i + 1} ({kind}) failed: {type(exc).__name__}: {exc}") from exc


def test_quick_examples_run(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("amaranth")
    _run([b for b in _blocks() if b[0] == "fast"], tmp_path, monkeypatch)
    out = capsys.readouterr().out
    assert "test accuracy" in out and "cycles per image (predicted)" in out
    assert "rtl: unknown option lanes=" in out
    assert (tmp_path / "runs/tiny/report/report.html").is_file()


@pytest.mark.slow
def test_all_examples_run(tmp_path, monkeypatch, capsys):
    import shutil

    for tool in ("yosys", "iverilog"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (make system)")
    _run(_blocks(), tmp_path, monkeypatch)
    out = capsys.readouterr().out
    assert "cycles per image (measured)" in out and "Pareto:" in out
    assert (tmp_path / "runs/tiny-build/report/report.html").is_file()
