"""I/O like a serious tool (docs/cli.md "Files"): full disks, read-only folders, /dev/full, a folder where a file is
expected and the reverse, a closed pipe, paths with spaces and non-ASCII characters, and runs that do not overwrite
earlier results silently. Every failure is one line and a non-zero exit, and no truncated file is left.

Read-only and full file systems are real small tmpfs mounts (root ignores permission bits, so chmod cannot make a
read-only folder); where mounting is not permitted the test skips and says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bnn_hw import fileio
from bnn_hw.cli import main
from bnn_hw.errors import BnnError
from bnn_hw.model import save_model
from bnn_hw.synthetic import random_model


def _mount(target: Path, options: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True, text=True, timeout=30
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({(proc.stderr or proc.stdout).strip() or 'mount failed'})")


def _umount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=30)


@pytest.fixture
def small_fs(tmp_path):
    """An empty 64 KiB tmpfs: room for a probe, not for a design."""
    mnt = tmp_path / "small"
    _mount(mnt, "size=64k")
    yield mnt
    _umount(mnt)


@pytest.fixture
def full_fs(tmp_path):
    """A tmpfs with no free byte left."""
    mnt = tmp_path / "full"
    _mount(mnt, "size=64k")
    with contextlib.suppress(OSError), open(mnt / "filler", "wb") as f:
        while True:
            f.write(b"\0" * 4096)
            f.flush()
    yield mnt
    _umount(mnt)


@pytest.fixture
def readonly_fs(tmp_path):
    """A read-only tmpfs holding a folder `keep/` with one file, made before the remount."""
    mnt = tmp_path / "ro"
    _mount(mnt, "size=1m")
    (mnt / "keep").mkdir()
    (mnt / "keep" / "old.txt").write_text("old\n")
    proc = subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        _umount(mnt)
        pytest.skip(f"cannot remount a tmpfs read-only here ({proc.stderr.strip()})")
    yield mnt
    _umount(mnt)


@pytest.fixture
def model_file(tmp_path) -> Path:
    path = tmp_path / "m.bnn"
    save_model(random_model((8, 8, 1), [48, 24], seed=3), path)
    return path


def one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file() and p.name != "filler") if folder.exists() else []


# ---------------------------------------------------------------------------------------------- full disk


def test_rtl_on_a_small_disk_leaves_no_truncated_verilog(model_file, small_fs, capsys):
    # The probe fits, the Verilog does not: the write fails, and neither bnn_top.v nor a temporary file is left.
    assert main(["rtl", str(model_file), "-o", str(small_fs / "b"), "-q"]) == 1
    one_line_error(capsys, "no space left", "bnn_top.v")
    assert leftovers(small_fs) == []


def test_rtl_on_a_full_disk_fails_before_elaboration(model_file, full_fs, capsys):
    assert main(["rtl", str(model_file), "-o", str(full_fs / "b"), "-q"]) == 1
    one_line_error(capsys, "no space left")
    assert leftovers(full_fs) == []


def test_a_failed_atomic_write_keeps_the_previous_file(small_fs):
    target = small_fs / "report.json"
    target.write_text('{"old": true}\n')
    with pytest.raises(BnnError, match="no space left") as exc:
        fileio.write_text(target, "x" * 200_000)
    assert "\n" not in str(exc.value)
    assert target.read_text() == '{"old": true}\n'
    assert leftovers(small_fs) == ["report.json"]


def test_train_on_a_full_disk_fails_before_training(small_fs, capsys):
    # 64 KiB cannot hold the checkpoint: refused before the first epoch, not after the last.
    argv = ["train", "--dataset", "digits", "--hidden", "16", "--epochs", "50", "-o", str(small_fs / "run"), "-q"]
    assert main(argv) == 1
    one_line_error(capsys, "free", "--out")
    assert leftovers(small_fs) == []


def test_a_checkpoint_that_does_not_fit_is_one_line_and_leaves_nothing(small_fs):
    # What a disk that fills up during training meets at the next save: one line, no half-written checkpoint.
    from bnn_hw.train.checkpoint import save_checkpoint
    from bnn_hw.train.models import build_model, make_config

    from bnn_hw.datasets import dataset_info

    info = dataset_info("digits")
    config = make_config("mlp", info.input_shape, info.num_classes, hidden=[256, 256])
    with pytest.raises(BnnError, match="no space left") as exc:
        save_checkpoint(small_fs / "checkpoint.pt", build_model(config), config, info, epoch=1)
    assert "\n" not in str(exc.value)
    assert leftovers(small_fs) == []


@pytest.mark.slow  # a Yosys run (about 30 s on 2 loaded cores)
def test_synth_on_a_disk_that_fills_up_is_one_line(tmp_path, capsys):
    import shutil

    if shutil.which("yosys") is None:
        pytest.skip("yosys not installed")
    mnt = tmp_path / "fs"
    _mount(mnt, "size=120k")  # the build fits, Yosys' log and report do not
    try:
        path = tmp_path / "m.bnn"
        save_model(random_model((4, 4, 1), [8], seed=1), path)
        assert main(["rtl", str(path), "-o", str(mnt / "b"), "-q", "--pe", "4", "--simd", "8"]) == 0
        capsys.readouterr()
        assert main(["synth", str(mnt / "b"), "--target", "ice40", "-q"]) == 1
        one_line_error(capsys)
        assert not (mnt / "b" / "synth_ice40.json").exists()
    finally:
        _umount(mnt)


def test_dev_full(model_file, capsys):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    assert main(["info", str(model_file), "--json", "/dev/full"]) == 1
    one_line_error(capsys, "/dev/full", "no space left")
    with pytest.raises(BnnError, match="no space left"):
        save_model(random_model((4, 4, 1), [8]), "/dev/full")
    assert Path("/dev/full").is_char_device()  # written in place, never replaced by a regular file


# ---------------------------------------------------------------------------------------------- read-only


def test_read_only_output_folders(model_file, readonly_fs, capsys):
    assert main(["rtl", str(model_file), "-o", str(readonly_fs / "b"), "-q"]) == 1
    one_line_error(capsys, "read-only")
    assert main(["rtl", str(model_file), "-o", str(readonly_fs / "keep"), "-q"]) == 1
    one_line_error(capsys, "read-only")
    argv = ["train", "--dataset", "digits", "--hidden", "16", "--epochs", "50", "-o", str(readonly_fs / "keep"), "-q"]
    assert main(argv) == 1
    one_line_error(capsys, "read-only")
    assert main(["info", str(model_file), "--json", str(readonly_fs / "keep" / "old.txt")]) == 1
    one_line_error(capsys, "read-only")
    assert (readonly_fs / "keep" / "old.txt").read_text() == "old\n"


def test_sim_checks_the_build_folder_before_simulating(model_file, tmp_path, capsys):
    # A build on a file system that became read-only: `sim` says so before building the simulator.
    mnt = tmp_path / "build_fs"
    _mount(mnt, "size=4m")
    try:
        assert main(["rtl", str(model_file), "-o", str(mnt / "b"), "-q", "--pe", "8", "--simd", "8"]) == 0
        proc = subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            pytest.skip(f"cannot remount a tmpfs read-only here ({proc.stderr.strip()})")
        capsys.readouterr()
        assert main(["sim", str(mnt / "b"), "--random-images", "--images", "2", "--simulator", "icarus"]) == 1
        one_line_error(capsys, "read-only")
    finally:
        _umount(mnt)


# ------------------------------------------------------------------------------- files versus folders


def test_a_folder_where_a_file_is_expected(model_file, tmp_path, capsys):
    folder = tmp_path / "folder"
    folder.mkdir()
    assert main(["info", str(model_file), "--json", str(folder)]) == 1
    one_line_error(capsys, "folder")
    assert main(["export", str(tmp_path / "absent.pt"), "-o", str(folder)]) == 1
    one_line_error(capsys, "is a folder; name a file")
    assert main(["bench", "cpu", "--model", str(model_file), "-o", str(folder), "-q"]) == 1
    one_line_error(capsys, "is a folder; name a file")


def test_a_file_where_a_folder_is_expected(model_file, tmp_path, capsys):
    file = tmp_path / "file.txt"
    file.write_text("not a folder\n")
    assert main(["train", "--dataset", "digits", "--hidden", "8", "--epochs", "9", "-o", str(file), "-q"]) == 1
    one_line_error(capsys, "is a file")
    assert main(["rtl", str(model_file), "-o", str(file), "-q"]) == 1
    one_line_error(capsys, "is a file, not a folder")
    assert main(["rtl", str(model_file), "-o", str(file / "sub"), "-q"]) == 1
    one_line_error(capsys, "not a folder")
    assert file.read_text() == "not a folder\n"


# ------------------------------------------------------------------------------------------- broken pipe


@pytest.mark.parametrize(
    "args",
    [["info", "MODEL", "--json"], ["info", "MODEL"], ["--help"], ["--version"], ["rtl", "--help"]],
    ids=["json", "table", "help", "version", "command-help"],
)
def test_a_closed_pipe_ends_quietly(model_file, args):
    # argparse itself ignores a failed write of a command's --help and exits 0; everything else exits 1
    proc = subprocess.Popen(
        [sys.executable, "-m", "bnn_hw", *[str(model_file) if a == "MODEL" else a for a in args]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before the first write (`| head` that has finished)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == (0 if args[-1] == "--help" and len(args) > 1 else 1)
    assert "Traceback" not in err and "BrokenPipe" not in err and err.strip() == "", err


# ------------------------------------------------------------------------------------- no silent overwrite


def test_sweep_without_out_uses_one_folder_per_model(tmp_path, monkeypatch, capsys):
    from bnn_hw.rtl import synthesis

    from bnn_hw.flow import sweep

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(synthesis, "find_yosys", lambda: "yosys")

    def no_point(*args, **kwargs):
        raise BnnError("not synthesized in this test")

    monkeypatch.setattr(sweep, "_point", no_point)
    folders = []
    for seed in (1, 2):
        model = random_model((4, 4, 1), [8], seed=seed)
        path = tmp_path / f"m{seed}.bnn"
        save_model(model, path)
        assert main(["sweep", str(path), "--pe", "2", "--simd", "4", "--jobs", "1"]) == 1
        capsys.readouterr()
        folders.append(tmp_path / "runs" / "sweep" / f"{model.name}-{model.hash[:12]}")
    assert folders[0] != folders[1] and all(f.is_dir() for f in folders)


def test_sim_keeps_the_previous_report(tmp_path):
    from bnn_hw.sim.commands import sim

    report = tmp_path / "sim_report.json"
    report.write_text(json.dumps({"simulator": "icarus", "passed": True}))
    kept = sim._keep_previous(report)
    assert kept is not None and kept.parent == tmp_path / sim.HISTORY and "icarus" in kept.name
    assert json.loads(kept.read_text())["simulator"] == "icarus" and not report.exists()
    report.write_text(json.dumps({"simulator": "icarus"}))
    os.utime(report, (kept.stat().st_mtime, kept.stat().st_mtime))  # same second: a second, distinct name
    assert sim._keep_previous(report) != kept
    assert sim._keep_previous(tmp_path / "absent.json") is None


# ----------------------------------------------------------------------------- spaces and non-ASCII paths


@pytest.mark.parametrize(
    "simulator, waves",
    [("icarus", True), pytest.param("verilator", False, marks=pytest.mark.slow)],  # a 20-40 s Verilator build
)
def test_simulators_work_in_paths_with_spaces_and_non_ascii(tmp_path, capsys, simulator, waves):
    # GNU Make (Verilator) refuses spaces, Icarus' $writememh non-ASCII names: both are in this path.
    from bnn_hw.sim.tools import find_simulator

    try:
        find_simulator(simulator)
    except BnnError as exc:
        pytest.skip(f"{simulator} not available: {exc}")
    folder = tmp_path / "with space" / "ünïcode"
    folder.mkdir(parents=True)
    model = folder / "m.bnn"
    save_model(random_model((4, 4, 1), [8], seed=1), model)
    assert main(["rtl", str(model), "-o", str(folder / "b"), "-q", "--pe", "4", "--simd", "8"]) == 0
    capsys.readouterr()
    argv = ["sim", str(folder / "b"), "--random-images", "--images", "3", "--simulator", simulator, "-q"]
    assert main(argv + (["--waves"] if waves else [])) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    report = json.loads((folder / "b" / "sim_report.json").read_text())
    assert report["passed"] and report["simulator"] == simulator
    assert "simulating in" in out  # the scratch folder is named
    if waves:
        wave_line = next(ln for ln in out.splitlines() if ln.strip().startswith("waveform"))
        assert Path(wave_line.split(None, 1)[1]).is_file(), wave_line


# ----------------------------------------------------------------------------------------- bench cpu


def test_bench_cpu_says_how_many_images_it_runs_and_writes_into_the_run_folder(tmp_path):
    from bnn_hw.cuda_ref.bench_common import load_workload
    from bnn_hw.cuda_ref.commands.bench import default_out

    run = tmp_path / "run"
    (run / "rtl").mkdir(parents=True)
    model = run / "model.bnn"
    save_model(random_model((28, 28, 1), [16], seed=2), model)
    assert default_out("cpu", str(model)) == run / "bench" / "cpu.json"
    assert default_out("cpu", str(tmp_path / "loose.bnn")) == Path("runs/bench/cpu.json")
    work = load_workload(str(model), 300)
    assert len(work.images) == 300
    assert "10000" not in work.images_note and ("300" in work.images_note or "random" in work.images_note)
