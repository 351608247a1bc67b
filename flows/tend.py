"""The nightly tend as a Prefect flow: the same flow runs from `garden tend` and from the
`nightly-tend` deployment in prefect.yaml.

Tasks are thin calls into `flows.tending`; proposing runs as one task per batch of patterns (a
Prefect task run costs milliseconds, a pattern far less), with retries: a retried batch skips the
patterns it already answered. With `task_runner="dask"` only the asking of each batch runs as a
task on a Dask cluster (`ask_task`, `flows.cluster`), retried there when it fails or its worker
is lost, and the flow records every answer itself: the flow alone appends and writes. Expected failures (the lock is held, a bad setting) end the flow
in a Failed state with a one-line message and no traceback, the `GardenError` itself its data
(`state.result()` raises it again, with its kind and exit status); the summary is published as a
markdown artifact (key `garden-tend-summary`) for the Prefect UI.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed

from events.store import EventStore
from flows import tending
from flows.asking import AskedBatch, Parcel
from flows.cluster import check_task_runner, dask_runner, propose_on
from flows.lock import garden_lock
from flows.propose import ask_elsewhere
from flows.report import summary_markdown
from garden.errors import GardenError
from garden.policy import load_policy
from garden.settings import Settings, load_settings

ARTIFACT_KEY = "garden-tend-summary"

# Tasks get the run id, not the Tend itself: Prefect walks every task parameter (to find
# upstream futures), and walking a whole garden per task costs seconds.
_ACTIVE: dict[str, tending.Tend] = {}


@task(name="observe", cache_policy=NO_CACHE)
def observe_task(run_id: str) -> int:
    return tending.observe_step(_ACTIVE[run_id])


@task(name="choose-and-rank", cache_policy=NO_CACHE)
def choose_task(run_id: str) -> int:
    return tending.choose_and_rank_step(_ACTIVE[run_id])


@task(name="propose-batch", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def propose_task(run_id: str, slugs: list[str]) -> dict[str, int]:
    tend = _ACTIVE[run_id]
    return tending.propose_batch(tend, slugs, tend.ranking).counts()


@task(name="ask-batch", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def ask_task(parcel: Parcel, settings: Settings) -> AskedBatch:
    """Ask one batch wherever the task runner runs it (a Dask worker): nothing of the garden's
    but the job itself, no log, no files."""
    return ask_elsewhere(parcel.job, settings)


@task(name="decide-and-prune", cache_policy=NO_CACHE)
def decide_task(run_id: str) -> None:
    tending.decide_and_prune_step(_ACTIVE[run_id])


@task(name="write", cache_policy=NO_CACHE)
def write_task(run_id: str) -> int:
    return len(tending.write_step(_ACTIVE[run_id]))


@flow(name="tend", log_prints=False, validate_parameters=True)
def tend_flow(garden: str = "patterns", db: str = ".garden/events.db", proposer: str = "offline",
              limit: int | None = None, patterns: list[str] | None = None, today: str | None = None,
              dry_run: bool = False, progress: bool = False, log_failures: bool = True,
              task_runner: str = "default", dask_address: str | None = None,
              dask_workers: int = 2) -> dict[str, Any]:
    """Tend the garden once: observe, choose, propose, decide, prune, write back, summarise.

    `progress`: a line per step on stderr (`garden tend` on a terminal: a big garden takes
    minutes). `log_failures`: an expected failure is logged too (for a worker's log; `garden
    tend` says it itself). `task_runner`: "dask" asks the proposal batches on a Dask cluster,
    the scheduler at `dask_address` or else a local one of `dask_workers` processes."""
    logger = get_run_logger()
    try:
        settings = load_settings(garden=Path(garden), db=Path(db), proposer=proposer)
        policy = load_policy()
        day = _day(today)
        check_task_runner(task_runner, dask_address, dask_workers)
        runner = {"task_runner": task_runner, "dask_address": dask_address,
                  "dask_workers": None if dask_address else dask_workers} if task_runner == "dask" else None
        with garden_lock(settings.db), EventStore(settings.db) as store:
            return _tend(settings, policy, store, day, limit, patterns, dry_run, progress, runner)
    except GardenError as e:
        if log_failures:
            logger.error(str(e))
        return Failed(message=str(e), data=e)


def _day(today: str | None) -> dt.date:
    if not today:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(today)
    except ValueError:
        raise GardenError(f"--today {today!r} is not a date; give it as YYYY-MM-DD") from None


def _progress_detail(tend: tending.Tend, step: str) -> str:
    if step == "observe":
        return f"{len(tend.garden.patterns)} patterns"
    if step == "propose":
        return f"{len(tend.chosen)} patterns in {len(tending.batches(tend))} batches ({tend.proposer.name})"
    return "..."


def _tend(settings, policy, store, day, limit, patterns, dry_run, progress, runner_options=None) -> dict[str, Any]:
    with tending.collector_for(settings):  # the tend's heap grows by the garden, its state and its events
        return _tend_steps(settings, policy, store, day, limit, patterns, dry_run, progress, runner_options)


def _tend_steps(settings, policy, store, day, limit, patterns, dry_run, progress, runner_options) -> dict[str, Any]:
    clock = time.perf_counter()
    tend = tending.start_tend(settings, policy, store, today=day, limit=limit, patterns=patterns,
                              dry_run=dry_run, runner=runner_options)
    tend.timings["load"] = time.perf_counter() - clock
    run_id = tend.run_id
    _ACTIVE[run_id] = tend
    try:
        with ExitStack() as stack:
            runner = None
            if runner_options:  # reached before anything is observed
                clock = time.perf_counter()
                runner = stack.enter_context(dask_runner(runner_options["dask_address"],
                                                         runner_options["dask_workers"] or 0))
                tend.timings["cluster"] = time.perf_counter() - clock  # its start and its end
            tasks = {"observe": lambda: observe_task(run_id), "choose_and_rank": lambda: choose_task(run_id),
                     "propose": lambda: (propose_on(runner, tend, ask_task) if runner is not None
                                         else [propose_task(run_id, b) for b in tending.batches(tend)]),
                     "decide_and_prune": lambda: decide_task(run_id), "write": lambda: write_task(run_id)}
            for name in tending.steps_of(tend):  # the order `tending.run_steps` runs them in, too
                clock = time.perf_counter()
                if progress:
                    print(f"garden tend: {name.replace('_', ' ')}: {_progress_detail(tend, name)}", file=sys.stderr,
                          flush=True)
                tasks[name]()
                tend.timings[name] = time.perf_counter() - clock
                if name == "propose" and runner is not None:  # its part done, the cluster goes
                    clock = time.perf_counter()
                    stack.close()
                    tend.timings["cluster"] += time.perf_counter() - clock
            tending.close_helper(tend)  # the write step closed it; a dry run has no write step
        result = tending.summary(tend) if dry_run else tending.finish_tend(tend)
    except BaseException as e:
        tending.fail_tend(tend, e)
        raise
    finally:
        _ACTIVE.pop(run_id, None)
    result["error_lines"] = tend.errors + tend.tally.errors
    result["note_lines"] = tend.notes
    if not dry_run:
        create_markdown_artifact(key=ARTIFACT_KEY, markdown=summary_markdown(result),
                                 description=f"graph-garden tend {result['run_id']}")
    return result
