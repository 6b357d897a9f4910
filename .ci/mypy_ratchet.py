"""mypy in two parts: the numpy-only core strictly (must stay at or below its baseline, aiming at 0), everything else
at mypy's default settings on a ratchet (its error count may not grow). Counts are kept in .ci/mypy-baseline.

Usage: python .ci/mypy_ratchet.py SITE [--update]   (SITE: an unpacked wheel, so that the spokes, which live in
top-level folders mapped into bnn_hw by setuptools, are where mypy looks for bnn_hw.train, bnn_hw.rtl, ...).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / ".ci" / "mypy-baseline"


def count(cmd: list[str], cwd: Path, keep=lambda path: True) -> tuple[int, list[str]]:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    errors = [ln for ln in proc.stdout.splitlines() if re.match(r"^\S+\.py:\d+: error:", ln) and keep(ln)]
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and not errors and "error" in proc.stdout):
        sys.exit(f"mypy failed to run:\n{proc.stdout}{proc.stderr}")
    return len(errors), errors


def main() -> int:
    site, update = Path(sys.argv[1]).resolve(), "--update" in sys.argv[2:]
    core_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["files"]
    mypy = [sys.executable, "-m", "mypy", "--no-incremental"]
    core, core_errors = count([*mypy], ROOT)  # [tool.mypy] in pyproject.toml: the core files, strict
    rest, rest_errors = count(
        [*mypy, "--config-file", "/dev/null", "--ignore-missing-imports", "--follow-imports=silent", "-p", "bnn_hw"],
        site,
        keep=lambda line: line.split(":", 1)[0] not in core_files,
    )
    have = dict(ln.split("=", 1) for ln in BASELINE.read_text().split() if "=" in ln) if BASELINE.exists() else {}
    limits = {"core": int(have.get("core", 0)), "rest": int(have.get("rest", 0))}
    print(f"mypy: core (strict) {core} errors (baseline {limits['core']}), rest {rest} (baseline {limits['rest']})")
    if update:
        BASELINE.write_text(f"core={core}\nrest={rest}\n")
        print(f"wrote {BASELINE}")
        return 0
    failed = False
    for name, n, errors in (("core", core, core_errors), ("rest", rest, rest_errors)):
        if n > limits[name]:
            print("\n".join(errors))
            print(f"mypy {name}: {n} errors, more than the baseline {limits[name]}: fix the new ones")
            failed = True
        elif n < limits[name]:
            print(f"mypy {name}: {n} < baseline {limits[name]}: lower it (python .ci/mypy_ratchet.py SITE --update)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
