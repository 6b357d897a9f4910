"""The distribution as a user installs it: `pip install bnn-hw` (no extras) is the numpy-only core.

The wheel is built from this checkout and installed with --no-deps into a fresh virtual environment that gets numpy
alone; there the model format, the golden model and the `bnn-hw` command's numpy-only parts must work, and the wheel
must not claim any top-level import name besides `bnn_hw`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CORE_CHECK = r"""
import json, subprocess, sys
import numpy as np
import bnn_hw
from bnn_hw import golden
from bnn_hw.synthetic import random_model
bnn_hw.save_model(random_model((4, 4, 1), [16], num_classes=3, seed=1), "m.bnn")
model = bnn_hw.load_model("m.bnn")
result = golden.run(model, np.random.default_rng(0).integers(0, 256, (5, 4, 4, 1), dtype=np.uint8))
heavy = sorted(m for m in ("torch", "amaranth", "cocotb", "cupy", "matplotlib", "scipy", "sklearn") if m in sys.modules)
print(json.dumps({"classes": result.classes.tolist(), "version": bnn_hw.__version__, "heavy": heavy}))
"""


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Without build isolation when this environment has the setuptools pyproject.toml needs (quick), else with it
    # (pip installs that setuptools into a temporary environment from the package index).
    import setuptools

    recent = int(setuptools.__version__.split(".")[0]) >= 77
    isolation = ["--no-build-isolation"] if recent else []
    proc = _pip("wheel", "-q", "--no-deps", *isolation, "-w", str(out), str(ROOT))
    if proc.returncode != 0:
        pytest.fail(f"pip wheel failed: {proc.stderr[-2000:]}")
    (path,) = out.glob("bnn_hw-*.whl")
    return path


def test_wheel_owns_one_import_name_and_its_data_files(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert top == {"bnn_hw"}, top
    for needed in ("bnn_hw/rtl/__init__.py", "bnn_hw/sim/hdl/bnn_tb.v", "bnn_hw/artifacts.py"):
        assert needed in names, needed
    assert any(n.startswith("bnn_hw/cuda_ref/") and n.endswith(".cu") for n in names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    requires = [ln for ln in text.splitlines() if ln.startswith("Requires-Dist:") and "extra ==" not in ln]
    assert requires == ["Requires-Dist: numpy>=2.0"], requires


def test_core_install_is_numpy_only(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    for args in (("--no-deps", str(wheel)), ("numpy",)):
        proc = _pip("--python", str(python), "install", "-q", "--no-warn-script-location", *args)
        assert proc.returncode == 0, proc.stderr[-2000:]
    listed = _pip("--python", str(python), "list", "--format=freeze")
    installed = {ln.split("==")[0].lower() for ln in listed.stdout.split()}
    assert installed == {"bnn-hw", "numpy"}, installed
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run([str(python), "-c", CORE_CHECK], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.strip().splitlines()[-1]
    assert '"heavy": []' in out and len(out.split('"classes": [')[1].split("]")[0].split(",")) == 5, out
    for name in ("train", "rtl", "sim", "cuda_ref"):  # no global import names claimed
        probe = subprocess.run([str(python), "-c", f"import {name}"], cwd=env_dir, capture_output=True, env=env)
        assert probe.returncode != 0, name
    cli = subprocess.run(
        [str(env_dir / "bin" / "bnn-hw"), "info", "m.bnn"], cwd=tmp_path, capture_output=True, text=True
    )
    assert cli.returncode == 0 and "total" in cli.stdout, cli.stderr
