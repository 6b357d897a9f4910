"""`bnn-hw sweep --scheduler`: a Dask scheduler and workers started here as separate processes on the loopback
interface (bounded in time, stopped by the test): the sweep runs on them, survives a worker killed mid-point, and
refuses a worker without the tools in one line naming it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("amaranth")
pytest.importorskip("distributed")

from bnn_hw.rtl.testing import random_dense_model  # noqa: E402

from bnn_hw import save_model  # noqa: E402
from bnn_hw.cli import main  # noqa: E402

START_TIMEOUT = 60  # seconds for the scheduler and workers to come up
SWEEP_TIMEOUT = 600

pytestmark = pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys is not installed (apt-get install yosys)")


def _dask(what: str, *args: str, env: dict | None = None, log: Path) -> subprocess.Popen:
    """`dask scheduler ...` or `dask worker ...` (the same programs, run with this interpreter)."""
    cmd = [sys.executable, "-m", f"distributed.cli.dask_{what}", *args]
    with log.open("w") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env or dict(os.environ))


def _wait_for(what: str, condition, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout} s")


class LoopbackCluster:
    """A `dask scheduler` and `dask worker`s as child processes, all bound to 127.0.0.1."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen] = []
        sched_file = folder / "scheduler.json"
        self.procs.append(
            _dask("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file",
                  str(sched_file), log=folder / "scheduler.log")
        )  # fmt: skip
        _wait_for("the scheduler file", sched_file.is_file)
        _wait_for("the scheduler address", lambda: "address" in sched_file.read_text())
        self.address = json.loads(sched_file.read_text())["address"]
        assert self.address.startswith("tcp://127.0.0.1:")

    def worker(self, name: str, env: dict | None = None) -> subprocess.Popen:
        proc = _dask("worker", self.address, "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny",
                     "--no-dashboard", "--name", name, env=env, log=self.folder / f"{name}.log")  # fmt: skip
        self.procs.append(proc)
        return proc

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout="20s") as client:
            client.wait_for_workers(n, timeout=START_TIMEOUT)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def cluster(tmp_path):
    c = LoopbackCluster(tmp_path)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cluster") / "tiny.bnn"
    save_model(random_dense_model([64, 10], (8, 8, 1), seed=3, binarize_at=100, name="tiny"), path)
    return path


def test_sweep_on_a_scheduler_survives_a_killed_worker(cluster, model_file, tmp_path, capsys):
    w0 = cluster.worker("w0")
    w1 = cluster.worker("w1")
    cluster.wait_for_workers(2)
    out = tmp_path / "sweep"
    argv = ["sweep", str(model_file), "--pe", "8,4,2", "--simd", "16", "--target", "ice40"]
    argv += ["--scheduler", cluster.address, "-o", str(out)]
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(main(argv)), daemon=True)
    runner.start()
    # both workers busy with a point each (their folders exist), then one of them dies mid-point
    _wait_for("two points in flight", lambda: len(list(out.glob("pe*_simd*"))) >= 2, timeout=SWEEP_TIMEOUT)
    w1.send_signal(signal.SIGKILL)
    w1.wait(timeout=20)
    runner.join(timeout=SWEEP_TIMEOUT)
    assert not runner.is_alive(), "the sweep did not finish after a worker died"
    assert result == [0], capsys.readouterr()
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["failures"] == []
    assert sorted((p["pe"], p["simd"]) for p in summary["points"]) == [(2, 16), (4, 16), (8, 16)]  # nothing lost
    survivors = {p["worker"] for p in summary["points"]}
    assert len(survivors) >= 1 and all(w.startswith("tcp://127.0.0.1:") for w in survivors)
    assert w0.poll() is None  # the other worker kept going
    for p in summary["points"]:  # every point's files are the ones its record names
        folder = out / f"pe{p['pe']}_simd{p['simd']}"
        assert json.loads((folder / "point.json").read_text())["luts"] == p["luts"]


def test_a_worker_without_yosys_is_refused_in_one_line(cluster, model_file, tmp_path, capsys):
    cluster.worker("good")
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # no /usr/bin: no yosys on this worker
    cluster.worker("no-tools", env=env)
    cluster.wait_for_workers(2)
    argv = ["sweep", str(model_file), "--pe", "4", "--simd", "16", "--target", "ice40"]
    assert main([*argv, "--scheduler", cluster.address, "-o", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "worker" in err and "yosys not found" in err, err
    assert not (tmp_path / "s" / "pe4_simd16" / "point.json").exists()


def test_an_unreachable_scheduler_is_one_line(model_file, tmp_path, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens here once the socket closes
    argv = ["sweep", str(model_file), "--pe", "4", "--simd", "16", "--target", "ice40", "-o", str(tmp_path / "s")]
    assert main([*argv, "--scheduler", f"tcp://127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot reach the Dask scheduler" in err, err
