"""Progress for long work that reads well both on a terminal and in a log file.

On a terminal (stderr is a TTY) `bar(...)` is a tqdm bar that redraws in place. Anywhere else (CI logs, `2> log`,
pipes) it prints one plain line per `every` percent of the total (or, without a total, one line every `interval`
seconds) and a final line, so a log holds a short, readable trace instead of hundreds of carriage-return redraws.
Both honour the same small interface: `update(n)`, `set_postfix(**kw)`, `set_postfix_str(s)`, `write(s)`, `reset()`,
`close()`, `n`, and iteration when made from an iterable. Numpy-free.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO


def is_tty(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def bar(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    enabled: bool = True,
    every: int = 10,
    interval: float = 30.0,
    leave: bool = True,
    **tqdm_kwargs: Any,
):
    """A progress bar: tqdm on a TTY, `LineProgress` otherwise, a silent one when `enabled` is false.

    `BNN_HW_PROGRESS=lines` forces the line form, `=tty` the bar (for tests and for terminals that lie).
    """
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    mode = os.environ.get("BNN_HW_PROGRESS", "")
    if enabled and (mode == "tty" or (mode != "lines" and is_tty())):
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True, **tqdm_kwargs)
    return LineProgress(iterable, total=total, desc=desc, unit=unit, enabled=enabled, every=every, interval=interval)


class LineProgress:
    """tqdm's interface, printed as whole lines: `desc: 30% (300/1000 img, 12.1 s) loss=0.41`."""

    def __init__(
        self,
        iterable: Iterable | None = None,
        *,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        enabled: bool = True,
        every: int = 10,
        interval: float = 30.0,
        stream: TextIO | None = None,
    ):
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.enabled, self.every, self.interval = enabled, max(1, every), interval
        self.stream = stream
        self.n = 0
        self.postfix = ""
        self._start = self._last_time = time.monotonic()
        self._last_step = 0  # the last percentage step printed
        self._closed = False

    def __iter__(self) -> Iterator:
        assert self.iterable is not None, "LineProgress made without an iterable"
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _out(self) -> TextIO:
        return self.stream or sys.stderr

    def _emit(self) -> None:
        elapsed = time.monotonic() - self._start
        if self.total:
            head = f"{100 * self.n // self.total}% ({self.n}/{self.total} {self.unit}, {elapsed:.1f} s)"
        else:
            head = f"{self.n} {self.unit}, {elapsed:.1f} s" if self.n else f"{elapsed:.0f} s"
        line = f"{self.desc}: {head}" if self.desc else head
        if self.postfix:
            line += f" {self.postfix}"
        print(line, file=self._out(), flush=True)
        self._last_time = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        if not self.enabled or self._closed:
            return
        if self.total:
            step = (100 * self.n // self.total) // self.every
            if step > self._last_step and self.n < self.total:
                self._last_step = step
                self._emit()
        elif time.monotonic() - self._last_time >= self.interval:
            self._emit()

    def refresh(self) -> None:
        self.update(0)

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def write(self, s: str, file: TextIO | None = None, end: str = "\n") -> None:
        print(s, file=file or sys.stdout, end=end, flush=True)

    def reset(self, total: int | None = None) -> None:
        self.n, self._last_step = 0, 0
        if total is not None:
            self.total = total
        self._start = self._last_time = time.monotonic()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.enabled and self.n:  # nothing done (an error before the first step): nothing to say
            self._emit()
