"""A command's state: loaded once, kept current by folding in what the command appends.

Loading the state folds the log from a snapshot; a command that appends (an accept, a revert)
needs the state after its own events too. Folding only the events appended since (`catch_up`)
gives the same state as loading it again, for the cost of the new events. The tend's in-memory
`Recorder` (flows/tending.py) does the same for a dry run's events, which are never appended.
"""

from __future__ import annotations

from collections.abc import Callable

from events.observe import observe_garden
from garden.state import State, apply
from events.store import AppendResult, EventStore
from garden.catalog import Garden
from garden.event import Event


def catch_up(store: EventStore, state: State) -> State:
    """Fold into `state` the events appended since it was folded: what the command itself
    appended, as a rule (the caller holds the lock). A command keeps one state current this way
    instead of loading it again after each append."""
    for row in store.rows(after=state.seq):
        apply(state, row)
    return state


def recorder(store: EventStore, state: State) -> Callable[[list[Event]], AppendResult]:
    """Append events and fold them into `state` (see `catch_up`)."""
    def record(events: list[Event]) -> AppendResult:
        result = store.append(events)
        catch_up(store, state)
        return result

    return record


def observe(store: EventStore, garden: Garden, state: State, run_id: str | None = None) -> AppendResult:
    """Record what the files hold that the log does not know yet, into the log and `state`."""
    return recorder(store, state)(observe_garden(garden, catch_up(store, state), run_id))
