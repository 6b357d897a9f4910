"""Scoreboard: every result the DUT hands out, in order, against the reference, every bit.

The DUT's result stream carries no tag, so "which image is this" can only be inferred: a result equal to the expected
one at its position is correct; one equal to another image's expected result is a reordered or duplicated result; an
expected result that never appears is lost; anything after the last expected result is an extra. Results compared
are the whole (class, scores) tuple, i.e. every bit of the payload. Works for results pushed one at a time by a
cocotb monitor and for a whole list collected by the HDL harness.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

Result = tuple[int, tuple[int, ...]]  # (class, scores)


@dataclass
class Mismatch:
    position: int  # index in the received sequence (or the expected index for `lost`)
    kind: str  # wrong | reordered | duplicate | extra | lost | unknown-bits
    detail: str
    expected: dict[str, Any] | None = None  # {"class": c, "scores": [...]}
    got: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_dict(r: Result | None) -> dict[str, Any] | None:
    return None if r is None else {"class": r[0], "scores": list(r[1])}


@dataclass
class Scoreboard:
    """Expected results in input order; `push` each received result, then `finish`."""

    expected_classes: np.ndarray
    expected_scores: np.ndarray
    first_index: int = 0  # image number of expected[0], for messages
    received: list[Result | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._expected: list[Result] = [
            (int(c), tuple(int(s) for s in row))
            for c, row in zip(self.expected_classes.tolist(), self.expected_scores.tolist(), strict=True)
        ]
        self._where: dict[Result, list[int]] = defaultdict(list)
        for i, r in enumerate(self._expected):
            self._where[r].append(i)

    def push(self, cls: int | None, scores: tuple[int, ...] | list[int] | None = None) -> bool:
        """Record one received result (None for a payload with x/z bits); True when it matches its position."""
        r = None if cls is None else (int(cls), tuple(int(s) for s in scores))
        pos = len(self.received)
        self.received.append(r)
        return pos < len(self._expected) and r == self._expected[pos]

    def push_many(self, classes: np.ndarray, scores: np.ndarray, valid: list[bool] | None = None) -> None:
        for i, (c, row) in enumerate(zip(classes.tolist(), scores.tolist(), strict=True)):
            self.push(None if valid is not None and not valid[i] else c, row)

    @property
    def matched(self) -> int:
        return sum(1 for i, r in enumerate(self.received[: len(self._expected)]) if r == self._expected[i])

    def finish(self) -> list[Mismatch]:
        """All discrepancies; empty means every expected result arrived once, in order, bit-exact, and nothing else.

        The received sequence is aligned to the expected one (longest matching blocks, difflib), so one duplicated
        or lost result is reported once instead of shifting every later comparison.
        """
        exp, rec = self._expected, self.received
        sm = difflib.SequenceMatcher(None, exp, rec, autojunk=False)
        pool: dict[Result, list[int]] = defaultdict(list)  # expected results not matched in order
        pending: list[tuple[int, int | None]] = []  # (received position, paired expected index) not matched
        for tag, i1, i2, j1, j2 in sm.get_opcodes():
            if tag == "equal":
                continue
            for i in range(i1, i2):
                pool[exp[i]].append(i)
            for k, j in enumerate(range(j1, j2)):
                pending.append((j, i1 + k if tag == "replace" and i1 + k < i2 else None))
        out: list[Mismatch] = []
        reported: set[int] = set()  # expected indices already explained
        for pos, paired in pending:
            r = rec[pos]
            pexp = exp[paired] if paired is not None else None
            if r is None:
                out.append(Mismatch(pos, "unknown-bits", f"result {pos} has x/z bits", _as_dict(pexp), None))
                if paired is not None:
                    reported.add(paired)
            elif pool.get(r):
                j = pool[r].pop(0)
                reported.add(j)
                out.append(
                    Mismatch(
                        pos,
                        "reordered",
                        f"result {pos} is image {self.first_index + j}'s result, out of order",
                        _as_dict(exp[j]),
                        _as_dict(r),
                    )
                )
            elif r in self._where:
                j = self._where[r][0]
                out.append(
                    Mismatch(
                        pos,
                        "duplicate",
                        f"result {pos} repeats image {self.first_index + j}'s result",
                        _as_dict(exp[j]),
                        _as_dict(r),
                    )
                )
            elif paired is not None:
                reported.add(paired)
                out.append(
                    Mismatch(
                        pos,
                        "wrong",
                        f"image {self.first_index + paired} (result {pos}): {_diff(exp[paired], r)}",
                        _as_dict(exp[paired]),
                        _as_dict(r),
                    )
                )
            elif pos >= len(exp):
                out.append(
                    Mismatch(
                        pos,
                        "extra",
                        f"result {pos} arrived after all {len(exp)} expected results and matches no image",
                        None,
                        _as_dict(r),
                    )
                )
            else:
                out.append(Mismatch(pos, "extra", f"result {pos} matches no image's result", None, _as_dict(r)))
        for idxs in pool.values():
            for j in idxs:
                if j not in reported:
                    out.append(
                        Mismatch(
                            j,
                            "lost",
                            f"image {self.first_index + j}'s result never arrived "
                            f"({len(rec)} results for {len(exp)} images)",
                            _as_dict(exp[j]),
                        )
                    )
        out.sort(key=lambda m: (m.kind == "lost", m.position))
        return out


def _diff(exp: Result, got: Result) -> str:
    parts = []
    if exp[0] != got[0]:
        parts.append(f"class {got[0]} != expected {exp[0]}")
    bad = [n for n, (a, b) in enumerate(zip(exp[1], got[1], strict=True)) if a != b]
    if bad:
        shown = ", ".join(f"score[{n}] {got[1][n]} != {exp[1][n]}" for n in bad[:3])
        parts.append(shown + (f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""))
    return "; ".join(parts)
