"""Backends the core dispatches to without importing a spoke: entry points that pyproject.toml declares.

Every installed copy of bnn-hw is searched (not only the first that importlib.metadata finds), so a stale
`bnn_hw.egg-info` left in a source checkout that is on sys.path cannot hide the installed entry points.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, distributions


def entry_points(group: str) -> dict[str, EntryPoint]:
    """{name: entry point} of `group` across every installed distribution (first one wins per name)."""
    found: dict[str, EntryPoint] = {}
    for dist in distributions():
        for ep in dist.entry_points:
            if ep.group == group:
                found.setdefault(ep.name, ep)
    return found
