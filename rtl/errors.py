"""Parameter errors of rtl/ components."""

from __future__ import annotations

from typing import NoReturn


def reject(component: object, message: str) -> NoReturn:
    """Raise ValueError(message) from a component's __init__ without Amaranth later warning that the half-built
    component was "created but never used"."""
    component._MustUse__silence = True  # type: ignore[attr-defined]
    raise ValueError(message)
