"""Data-parallel training (train.distributed): torchrun + gloo on the CPU, what a multi-GPU NCCL run does on GPUs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from bnn_hw.cli import main  # noqa: E402

TORCHRUN_TIMEOUT = 240  # seconds; the run itself takes ~20 s here


def _torchrun(out: Path, *extra: str) -> subprocess.CompletedProcess:
    bnn_hw_script = Path(sys.executable).with_name("bnn-hw")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        str(bnn_hw_script), "train", "--dataset", "digits", "--epochs", "2", "--threads", "1", "--quiet",
        "--distributed", "--out", str(out), *extra,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TORCHRUN_TIMEOUT, env=env)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_run_writes_one_checkpoint_that_exports_bit_exact(tmp_path, capsys):
    from bnn_hw.train.checkpoint import load_checkpoint

    runs = []
    for name in ("a", "b"):
        proc = _torchrun(tmp_path / name)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append(tmp_path / name)
        # rank 0 alone reports and writes: one summary line pair, one checkpoint, metrics, curve
        assert proc.stdout.count("test accuracy") == 1
    files = sorted(p.name for p in runs[0].iterdir())
    assert files == ["checkpoint.pt", "metrics.json", "training_curve.png"]
    first, second = (load_checkpoint(run / "checkpoint.pt") for run in runs)
    assert first.train["world_size"] == 2 and first.train["backend"] == "gloo"
    # a fixed world size on the CPU repeats bit for bit
    sa, sb = first.model.state_dict(), second.model.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert first.metrics["test_acc"] > 0.5  # 10 classes: far above chance after 2 epochs

    model = tmp_path / "ddp.bnn"
    assert main(["export", str(runs[0] / "checkpoint.pt"), "-o", str(model)]) == 0
    capsys.readouterr()
    assert main(["verify", str(model), "--against", str(runs[0] / "checkpoint.pt")]) == 0
    assert "BIT-EXACT" in capsys.readouterr().out


def test_distributed_without_torchrun_is_one_line(tmp_path, capsys, monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    assert main(["train", "--dataset", "digits", "--epochs", "1", "--out", str(tmp_path / "r"), "--distributed"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "torchrun" in err and "RANK" in err


def _gradient_worker(rank: int, port: int, out: str) -> None:
    """One process of a 2-process group: the gradient of one step on its share of a fixed global batch."""
    import torch.distributed as dist
    from bnn_hw.train.distributed import DistContext
    from bnn_hw.train.loop import _distributed_forward, squared_hinge
    from bnn_hw.train.models import build_model, make_config

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        ctx = DistContext(rank=rank, world_size=2, backend="gloo")
        result = _one_step_gradients(ctx, _distributed_forward, squared_hinge, build_model, make_config)
        torch.save(result, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _one_step_gradients(ctx, distributed_forward, criterion, build_model, make_config) -> dict:
    torch.manual_seed(5)
    model = build_model(
        make_config("mlp", (8, 8, 1), 10, hidden=[32, 16], dropout_in=0.0, dropout_hidden=0.0, binarize_input=None)
    )
    gen = torch.Generator().manual_seed(9)
    x = torch.randint(0, 17, (13, 8, 8, 1), generator=gen).float()  # 13: the two shares are 6 and 7 images
    y = torch.randint(0, 10, (13,), generator=gen)
    forward = distributed_forward(model, ctx, torch.device("cpu"))
    part = ctx.share(13)
    xs, ys = x[part], y[part]
    loss = criterion(forward(xs), ys)
    (loss * (len(ys) * ctx.world_size / 13) if ctx.enabled else loss).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    buffers = {name: b.clone() for name, b in model.named_buffers() if "running" in name}
    return {"grads": grads, "buffers": buffers}


def test_two_processes_compute_the_single_process_gradient_and_statistics(tmp_path):
    """Loss scaling + synced BatchNorm: DDP's averaged gradient is the global batch's, ragged shares included."""
    import torch.multiprocessing as mp
    from bnn_hw.train.distributed import SINGLE
    from bnn_hw.train.loop import _distributed_forward, squared_hinge
    from bnn_hw.train.models import build_model, make_config

    reference = _one_step_gradients(SINGLE, _distributed_forward, squared_hinge, build_model, make_config)
    mp_ctx = mp.get_context("spawn")
    port = _free_port()
    procs = [mp_ctx.Process(target=_gradient_worker, args=(r, port, str(tmp_path))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        if p.exitcode is None:
            p.kill()
        assert p.exitcode == 0
    results = {r: torch.load(tmp_path / f"rank{r}.pt") for r in range(2)}
    assert results[0]["grads"].keys() == reference["grads"].keys()
    for rank in (0, 1):
        for name, grad in reference["grads"].items():
            # float sums in another order: equal to rounding, not bit for bit (the claim here is the math)
            torch.testing.assert_close(results[rank]["grads"][name], grad, rtol=1e-4, atol=1e-6)
        for name, buf in reference["buffers"].items():
            torch.testing.assert_close(results[rank]["buffers"][name], buf, rtol=1e-5, atol=1e-6)
    assert all(bool(g.abs().sum() > 0) for g in reference["grads"].values())  # every layer is really compared
    assert reference["buffers"]  # BatchNorm statistics exist and are compared
