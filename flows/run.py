"""A run: RunStarted, the work, then RunCompleted, or RunFailed with what went wrong.

A run that ends publishes the log's head (see `events.heads`), so every run leaves a line in
the head file that a later `garden verify` holds the log to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from events.store import EventStore
from garden.event import Event, RunCompleted, RunFailed, RunStarted, event, new_id

Record = Callable[[list[Event]], Any]  # appends events (a store's `append`, or a tend's Recorder)


@dataclass
class Run:
    run_id: str
    counts: dict[str, Any] = field(default_factory=dict)


# The lifecycle, in one place for every kind of run: `recorded_run` (curators' commands,
# `garden propose`) and a tend (`flows.tending`, whose steps run between its start and end).


def start_run(record: Record, run_id: str, proposer: str, model: str | None, policy: dict | None = None,
              options: dict | None = None) -> None:
    record([event(RunStarted(proposer=proposer, model=model, policy=policy or {}, options=options or {}),
                  run_id=run_id)])


def complete_run(record: Record, store: EventStore | None, run_id: str, counts: dict[str, Any]):
    """RunCompleted, then the log's head published (`store` None: a dry run, nothing published)."""
    record([event(RunCompleted(counts=counts), run_id=run_id)])
    return None if store is None else store.publish_head(run_id)


def fail_run(record: Record, store: EventStore | None, run_id: str, error: BaseException,
             counts: dict[str, Any]) -> None:
    """RunFailed with what went wrong, and the head published; never raises (the original error
    matters more than a failed record of it)."""
    reason = "interrupted" if isinstance(error, KeyboardInterrupt) else (str(error) or type(error).__name__)
    try:
        record([event(RunFailed(error=reason, counts=counts), run_id=run_id)])
        if store is not None:
            store.publish_head(run_id)
    except Exception:
        pass


@contextmanager
def recorded_run(store: EventStore, proposer: str, model: str | None,
                 policy: dict | None = None, options: dict | None = None,
                 run_id: str | None = None) -> Iterator[Run]:
    run = Run(run_id or new_id())
    start_run(store.append, run.run_id, proposer, model, policy, options)
    try:
        yield run
    except BaseException as e:
        fail_run(store.append, store, run.run_id, e, run.counts)
        raise
    complete_run(store.append, store, run.run_id, run.counts)


def close_orphaned_runs(store: EventStore) -> int:
    """Record RunFailed for runs that started and never ended (their process was killed).

    Only called while holding the garden's lock, so no such run is still going.
    """
    started, ended = {}, set()
    for row in store.rows(types=("RunStarted", "RunCompleted", "RunFailed")):
        if row[2] == "RunStarted":
            started[row[4]] = row
        else:
            ended.add(row[4])
    orphans = [run for run in started if run not in ended]
    store.append([event(RunFailed(error="interrupted: the process ended before the run finished"),
                        run_id=run) for run in orphans])
    return len(orphans)
