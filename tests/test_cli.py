"""The command line: help, version, one-line errors, and a numpy-only hub."""

import subprocess
import sys

import pytest

from bnn_hw.cli import COMMANDS, main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bnn_hw", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_subcommand(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("train", "export", "verify", "rtl", "synth", "sim", "bench", "info", "demo"):
        assert f"  {name} " in out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("bnn-hw 0.")


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--bogus"], "unknown option '--bogus'"),
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["info", "--bogus", "x.bnn"], "unrecognized arguments: --bogus"),
        (["info"], "required: model"),
        (["info", "/nonexistent/model.bnn"], "model file not found"),
    ],
)
def test_bad_arguments_give_one_line_and_nonzero_exit(argv, needle):
    proc = run_cli(*argv)
    assert proc.returncode != 0
    assert needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_subcommand_has_help(name):
    proc = run_cli(name, "--help")
    assert proc.returncode == 0, proc.stderr
    assert f"bnn-hw {name}" in proc.stdout


def test_importing_the_hub_and_loading_a_model_needs_numpy_only(tmp_path):
    code = (
        "import sys\n"
        "import bnn_hw, bnn_hw.golden, bnn_hw.reference, bnn_hw.datasets, bnn_hw.cli\n"
        "from bnn_hw.synthetic import random_model\n"
        f"bnn_hw.save_model(random_model((4, 4, 1), [8]), {str(tmp_path / 'm.bnn')!r})\n"
        f"bnn_hw.load_model({str(tmp_path / 'm.bnn')!r})\n"
        "heavy = [m for m in ('torch', 'torchvision', 'amaranth', 'cocotb', 'cupy', 'train', 'rtl', 'sim',"
        " 'cuda_ref', 'matplotlib') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
