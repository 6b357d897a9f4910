"""Data-parallel training with PyTorch's DistributedDataParallel, launched by `torchrun`.

What a distributed run computes (docs/training.md, "Several GPUs or processes"):
- `--batch-size` is the GLOBAL batch: every process draws the same shuffled order from (seed, epoch) and takes its
  contiguous share of each global batch (shares differ by at most one image). The learning-rate schedule is the
  single-process one, untouched: the recipe sees the same global batches and steps per epoch.
- Each process's loss is its share's loss sum divided by the global batch size and multiplied by the world size, so
  DDP's gradient average is exactly the gradient of the global batch's mean loss, ragged last batch included.
- BatchNorm statistics are synchronized over all processes (`SyncedStats`, two all-reduces per layer: the sum, then
  the centred sum of squares), so the batch mean and variance are those of the global batch, as in one process.
  (torch's SyncBatchNorm runs only on GPUs; this works with gloo on CPUs too.)
- Dropout masks are drawn per process from (seed, epoch, rank).
- Only rank 0 writes the checkpoint, metrics.json and the plot; the checkpoint is the single-process format.
Determinism: for a fixed world size, CPU runs with gloo repeat bit for bit. A run on W processes is not bit-identical
to a single-process run: dropout masks differ and float sums are added in another order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from bnn_hw.errors import BnnError

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the run: rank 0 of 1 when not distributed."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1 or bool(self.backend)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, n: int) -> slice:
        """This process's contiguous share of a global batch of `n` items."""
        return slice(self.rank * n // self.world_size, (self.rank + 1) * n // self.world_size)

    def all_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum over processes, in place (no gradient); a no-op in a single process."""
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


SINGLE = DistContext()


def init_from_env(device: str) -> DistContext:
    """Join the process group `torchrun` describes in the environment: NCCL on GPUs, gloo on CPUs.

    Returns the context; on a GPU the device becomes cuda:LOCAL_RANK (see `device_for`).
    """
    missing = [v for v in TORCHRUN_VARS if v not in os.environ]
    if missing:
        raise BnnError(
            f"--distributed: the environment lacks {', '.join(missing)}; launch with "
            f"`torchrun --nproc-per-node N $(which bnn-hw) train ... --distributed`"
        )
    if not dist.is_available():
        raise BnnError("--distributed: this PyTorch build has no torch.distributed")
    on_gpu = str(device).startswith("cuda")
    backend = "nccl" if on_gpu else "gloo"
    if on_gpu and not dist.is_nccl_available():
        raise BnnError("--distributed --device cuda: this PyTorch build has no NCCL; use --device cpu (gloo)")
    local_rank = int(os.environ["LOCAL_RANK"])
    if on_gpu:
        if local_rank >= torch.cuda.device_count():
            raise BnnError(
                f"--distributed: local rank {local_rank} but only {torch.cuda.device_count()} CUDA devices; "
                f"start at most that many processes per node"
            )
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank, backend=backend)


def device_for(ctx: DistContext, device: str) -> torch.device:
    if ctx.enabled and str(device).startswith("cuda"):
        return torch.device("cuda", ctx.local_rank)
    return torch.device(device)


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


class _AllSum(torch.autograd.Function):
    """Sum over processes with a gradient: the backward pass sums the incoming gradients over processes too
    (every process's loss depends on every process's input through the shared statistics)."""

    @staticmethod
    def forward(ctx: object, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = tensor.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def synced_batch_stats(x: torch.Tensor, dims: list[int]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Global batch mean and biased variance over `dims` (all processes), with gradients; and the global count.

    Two passes (sum, then the centred sum of squares) as a single-process BatchNorm computes them, so the
    statistics do not lose precision to E[x^2] - E[x]^2 cancellation.
    """
    count = torch.tensor([x.numel() // x.shape[1]], dtype=torch.float64, device=x.device)
    dist.all_reduce(count, op=dist.ReduceOp.SUM)
    n = int(count.item())
    total = _AllSum.apply(x.sum(dims))
    mean = total / n
    shape = (1, -1) + (1,) * (x.dim() - 2)
    centred = _AllSum.apply(((x - mean.view(shape)) ** 2).sum(dims))
    return mean, centred / n, n
