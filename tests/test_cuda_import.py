"""The GPU spoke degrades cleanly: `import cuda_ref` needs neither CuPy nor a GPU, `available()` says why not,
and the GPU entry points fail with one line instead of a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bnn_hw import cuda_ref
from bnn_hw.cli import main
from bnn_hw.errors import BnnError
from bnn_hw.synthetic import random_images, random_model

STATUS = cuda_ref.available()
no_gpu = pytest.mark.skipif(bool(STATUS), reason="a GPU is available here; the no-GPU behaviour cannot be seen")


def test_import_is_light() -> None:
    code = "import sys, cuda_ref, cuda_ref.commands.bench; print([m for m in ('cupy', 'torch') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_available_explains_itself() -> None:
    assert isinstance(STATUS.reason, str) and STATUS.reason
    assert bool(STATUS) == STATUS.ok


@no_gpu
def test_run_without_gpu_is_one_clear_error() -> None:
    model = random_model((4, 4, 1), [8], seed=0)
    with pytest.raises(BnnError, match="cannot run here"):
        cuda_ref.run(model, random_images(model, 2))


@no_gpu
def test_bench_gpu_without_gpu_says_so(capsys) -> None:
    assert main(["bench", "gpu"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not measured" in err[0] and STATUS.reason in err[0]
    assert main(["bench", "gpu", "--if-available"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("bench gpu: not measured")
