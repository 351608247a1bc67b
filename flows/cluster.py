"""Proposals past one machine: a tend's proposal batches asked on a Dask cluster, through
Prefect's Dask task runner (prefect-dask, the `dask` extra).

`task_runner="dask"` starts a `LocalCluster` of `workers` processes (one thread each), or, with
an `address`, uses the scheduler there (`dask scheduler` on one machine, `dask worker tcp://...`
on the others). Only the asking runs there (`flows.asking`): each batch's answers come back to
the flow, which alone validates and records them, in the batches' order (the default runner's,
so both give the same log) as soon as the batches before them are in. At most
`WINDOW_PER_THREAD` batches per worker thread are out at once: the flow builds questions only a
little ahead of the workers, and holds few answers waiting for an earlier batch.

The cluster is reached before anything is observed, so an unreachable scheduler leaves nothing
in the log but the failed run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flows import tending
from flows.asking import AskedBatch, AskJob, Parcel
from garden.errors import GardenError, SettingsError

TASK_RUNNERS = ("default", "dask")
#: Seconds to wait for a scheduler at --dask-address.
CONNECT_TIMEOUT = 5
WINDOW_PER_THREAD = 4
DASK_MISSING = "--task-runner dask needs prefect-dask: pip install 'graph-garden[dask]'"


def check_task_runner(task_runner: str, address: str | None, workers: int) -> None:
    """Say at once what is wrong with the task runner asked for, before any run starts."""
    if task_runner not in TASK_RUNNERS:
        raise SettingsError(f"unknown task runner {task_runner!r}: use default or dask")
    if task_runner == "default":
        if address:
            raise SettingsError("--dask-address needs --task-runner dask")
        return
    if workers < 1:
        raise SettingsError(f"--dask-workers {workers}: give at least 1")
    try:
        import prefect_dask  # noqa: F401
    except ImportError:
        raise SettingsError(DASK_MISSING) from None


@contextmanager
def dask_runner(address: str | None, workers: int) -> Iterator[Any]:
    """A started `DaskTaskRunner` connected to its cluster, for the duration of the block."""
    from prefect_dask import DaskTaskRunner

    if address:
        runner = DaskTaskRunner(address=address, client_kwargs={"timeout": CONNECT_TIMEOUT})
    else:
        runner = DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                                "dashboard_address": None, "silence_logs": logging.ERROR})
    with runner:
        try:
            runner.client  # noqa: B018  (connects, or starts the local cluster, now)
        except (OSError, TimeoutError, ValueError) as e:
            if not address:
                raise GardenError(f"cannot start a local Dask cluster: {e}") from None
            raise GardenError(f"--dask-address {address}: no Dask scheduler answered within {CONNECT_TIMEOUT} s; "
                              "start one there with `dask scheduler`, or leave --dask-address out for a local "
                              "cluster") from None
        yield runner


def propose_on(runner: Any, tend: tending.Tend, ask_task: Callable[..., AskedBatch]) -> None:
    """Ask every batch of the tend on the runner's cluster and record the answers here."""
    from distributed import as_completed

    batches = tending.batches(tend)
    threads = sum(runner.client.nthreads().values())
    window = WINDOW_PER_THREAD * max(threads, 1)
    jobs: dict[int, tuple[AskJob, list]] = {}
    done: dict[int, AskedBatch] = {}
    out: dict[str, tuple[int, Any]] = {}  # a Dask future's key -> (batch, Prefect future)
    arriving = as_completed(loop=runner.client.loop)
    submitted = recorded = 0
    while recorded < len(batches):
        while submitted < len(batches) and submitted - recorded < window:
            job = tending.ask_job(tend, batches[submitted], tend.ranking)
            shipped, cached = tending.shipped_job(tend, job)
            jobs[submitted] = (job, cached)
            if shipped.requests:
                future = runner.submit(ask_task, {"parcel": Parcel(shipped), "settings": tend.settings})
                out[future.wrapped_future.key] = (submitted, future)
                arriving.add(future.wrapped_future)
            else:
                done[submitted] = AskedBatch([])
            submitted += 1
        if recorded not in done:
            index, future = out.pop(next(arriving).key)
            done[index] = future.result()  # the answers, or the task's error once retries are spent
        while recorded in done:
            job, cached = jobs.pop(recorded)
            batch = done.pop(recorded)
            tending.record_batch(tend, job, cached + batch.asked, batch.cache_puts)
            recorded += 1
