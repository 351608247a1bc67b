"""A run: RunStarted, the work, then RunCompleted, or RunFailed with what went wrong.

A run that ends publishes the log's head (see `events.heads`), so every run leaves a line in
the head file that a later `garden verify` holds the log to.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from events.store import EventStore
from garden.event import RunCompleted, RunFailed, RunStarted, event, new_id


@dataclass
class Run:
    run_id: str
    counts: dict[str, Any] = field(default_factory=dict)


@contextmanager
def recorded_run(store: EventStore, proposer: str, model: str | None,
                 policy: dict | None = None, options: dict | None = None,
                 run_id: str | None = None) -> Iterator[Run]:
    run = Run(run_id or new_id())
    store.append([event(RunStarted(proposer=proposer, model=model, policy=policy or {},
                                   options=options or {}), run_id=run.run_id)])
    try:
        yield run
    except BaseException as e:
        reason = "interrupted" if isinstance(e, KeyboardInterrupt) else (str(e) or type(e).__name__)
        try:
            store.append([event(RunFailed(error=reason, counts=run.counts), run_id=run.run_id)])
            store.publish_head(run.run_id)
        except Exception:  # the original error matters more than a failed record of it
            pass
        raise
    store.append([event(RunCompleted(counts=run.counts), run_id=run.run_id)])
    store.publish_head(run.run_id)


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
