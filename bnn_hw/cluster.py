"""Dask clusters for the work that outgrows one machine (sweep points, simulation shards).

One code path: without a scheduler address a `distributed.LocalCluster` sized to this machine is started (and
stopped) here; with `tcp://HOST:PORT` the same tasks go to a running `dask scheduler` and its `dask worker`s. Dask is
an optional dependency (the `dist` extra) imported only when a cluster is asked for, so the core stays numpy-only.
Workers must see the same files at the same paths (a shared file system) and have the same tools installed;
`require_on_workers` checks the tools before any work is submitted (docs/cluster.md).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bnn_hw.errors import BnnError

SCHEDULER_RE = re.compile(r"^(tcp|tls|inproc)://[^\s:/]+(:\d{1,5})?$")
CONNECT_TIMEOUT_S = 15


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise BnnError(
            "this needs Dask distributed, which is not installed; install it with `pip install 'bnn-hw[dist]'` "
            "(dask[distributed])"
        ) from None
    return distributed


def check_scheduler_address(address: str) -> str:
    if not SCHEDULER_RE.match(address):
        raise BnnError(
            f"--scheduler {address!r} is not a scheduler address; use tcp://HOST:PORT (e.g. tcp://node1:8786)"
        )
    return address


@contextmanager
def dask_client(scheduler: str | None = None, n_workers: int | None = None, *, processes: bool = True) -> Iterator[Any]:
    """A `distributed.Client`: to `scheduler` when given, else to a LocalCluster of `n_workers` one-thread worker
    processes (default: one per CPU core; `processes=False`: worker threads in this process), closed on exit."""
    distributed = _import_distributed()
    if scheduler is not None:
        check_scheduler_address(scheduler)
        try:
            client = distributed.Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
        except OSError as exc:
            raise BnnError(
                f"cannot reach the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT_S} s ({exc}); start one "
                "with `dask scheduler` and workers with `dask worker ADDRESS`"
            ) from None
        try:
            if not client.scheduler_info().get("workers"):
                client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError):
            client.close()
            raise BnnError(
                f"the Dask scheduler at {scheduler} has no workers; start some with `dask worker {scheduler}`"
            ) from None
        try:
            yield client
        finally:
            client.close()
        return
    workers = n_workers or os.cpu_count() or 1
    if workers < 1:
        raise BnnError(f"a local cluster needs at least one worker, got {workers}")
    cluster = distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=processes,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def as_completed(futures: Any) -> Iterator[Any]:
    """`distributed.as_completed`: futures in the order they finish."""
    return _import_distributed().as_completed(futures)


def require_on_workers(client: Any, check: Callable[[], str | None], what: str) -> None:
    """Run `check` on every worker (it returns None when the worker is fit, else why not); refuse in one line naming
    the first worker that is not."""
    answers = client.run(check)
    for worker, why in sorted(answers.items()):
        if why:
            raise BnnError(f"worker {worker} cannot run {what}: {why}")


def worker_address() -> str:
    """The address of the worker this task runs on ('local' outside a worker)."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "local"
