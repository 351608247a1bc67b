"""The full garbage collections a long piece of work pauses (`garden.collector`): none while it
runs, the process's thresholds back as they were after, whichever thread leaves last."""

from __future__ import annotations

import datetime as dt
import gc
import sys
import threading

import pytest

from conftest import make_garden
from events.store import EventStore
from flows import tending
from garden.catalog import load_garden
from garden.collector import full_collections_paused
from garden.policy import Policy
from garden.settings import load_settings


def full_collections(work) -> int:
    """How many full (oldest-generation) collections ran while `work()` ran."""
    seen = []

    def note(phase, info):
        if phase == "start" and info["generation"] == 2:
            seen.append(info)

    gc.callbacks.append(note)
    try:
        work()
    finally:
        gc.callbacks.remove(note)
    return len(seen)


def grow_the_heap():
    """Keep half a million small containers: enough growth to set off full collections."""
    kept = [(i, [i]) for i in range(500_000)]
    return len(kept)


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="3.14's collector is incremental: no full "
                    "collections to pause, and the third threshold is not used")
def test_a_growing_heap_sets_off_full_collections_but_not_while_paused():
    before = gc.get_threshold()
    gc.collect()
    assert full_collections(grow_the_heap) > 0  # the control: the test can fail

    def paused():
        with full_collections_paused():
            grow_the_heap()

    gc.collect()
    assert full_collections(paused) == 0
    assert gc.get_threshold() == before


def test_the_last_to_leave_puts_the_thresholds_back_even_after_an_error():
    before = gc.get_threshold()
    inner_left, seen, outer_may_leave = threading.Event(), threading.Event(), threading.Event()
    seen_in_thread = []

    def other_thread():
        with full_collections_paused():
            inner_left.wait(10)
            seen_in_thread.append(gc.get_threshold())
            seen.set()
            outer_may_leave.wait(10)

    thread = threading.Thread(target=other_thread)
    thread.start()
    try:
        with full_collections_paused():
            raise KeyError("inside")
    except KeyError:
        pass
    inner_left.set()
    seen.wait(10)
    assert seen_in_thread and seen_in_thread[0][:2] == before[:2] and seen_in_thread[0][2] > 10**9
    assert gc.get_threshold() != before  # the other thread still works
    outer_may_leave.set()
    thread.join(10)
    assert gc.get_threshold() == before


def thresholds_during(work) -> list[int]:
    """The full-collection threshold each collection saw while `work()` ran."""
    thresholds = []

    def note(phase, info):
        if phase == "start":
            thresholds.append(gc.get_threshold()[2])

    gc.callbacks.append(note)
    try:
        work()
    finally:
        gc.callbacks.remove(note)
    return thresholds


def test_reading_and_tending_a_garden_run_without_full_collections(tmp_path):
    """Every collection while `load_garden` reads and while `tending.run_steps` runs the steps of
    a tend sees the pause (the flow's `_tend`, `GardenApp.verify` and `replay` are decorated with
    it the same way)."""
    make_garden(tmp_path / "patterns", 30)
    settings = load_settings(garden=tmp_path / "patterns", db=tmp_path / "events.db")
    before = gc.get_threshold()
    read = thresholds_during(lambda: load_garden(tmp_path / "patterns"))
    with EventStore(settings.db) as store:
        tend = tending.start_tend(settings, Policy(), store, today=dt.date(2026, 11, 22))
        tended = thresholds_during(lambda: tending.run_steps(tend))
        tending.finish_tend(tend)
    assert read and tended and min(read + tended) > 10**9
    assert gc.get_threshold() == before


def test_a_tend_with_a_model_collects_as_usual():
    """A model's tend waits on HTTP for hours: its clients' cyclic garbage must not build up."""
    before = gc.get_threshold()
    with tending.collector_for(load_settings(proposer="llm")):
        assert gc.get_threshold() == before
    with tending.collector_for(load_settings(proposer="offline")):
        assert gc.get_threshold()[2] > 10**9
    assert gc.get_threshold() == before
