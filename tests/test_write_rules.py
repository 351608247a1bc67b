"""Rules that lived in two places, now in one: what a block is written back as (replay and the
writer), a run's lifecycle (curators' commands and a tend), and reading a stored block."""

from __future__ import annotations

import datetime as dt


from conftest import WIDE_REVIEW_POLICY, make_garden
from events.heads import read_heads
from events.projection import load_state
from events.queries import list_runs
from events.replay import projected_block, projected_bytes
from events.store import EventStore
from flows import tending
from garden.settings import load_settings
from garden.writer import prepare_write


def tended(tmp_path):
    settings = load_settings(garden=make_garden(tmp_path / "patterns", 3), db=tmp_path / "events.db")
    store = EventStore(settings.db)
    tend = tending.start_tend(settings, WIDE_REVIEW_POLICY, store, today=dt.date(2026, 11, 22))
    tending.run_steps(tend)
    tending.finish_tend(tend)
    return settings, store


def test_replay_writes_each_block_back_as_the_writer_does(tmp_path):
    """The old text when the log knows it, else emitted afresh: one rule (`garden.document.put_block`)."""
    settings, store = tended(tmp_path)
    with store:
        state = load_state(store)
        for path in sorted(settings.garden.glob("*.md")):
            known = state.patterns[path.stem]
            lines = path.read_text("utf-8").split("\n")  # the block taken out, so neither is a no-op
            start = lines.index("graph_garden:")
            end = next(n for n in range(start + 1, len(lines)) if lines[n] and not lines[n].startswith(" "))
            path.write_text("\n".join(lines[:start] + lines[end:]), "utf-8")
            raw = path.read_bytes()
            block, text = projected_block(known)
            ready = prepare_write(path, block, None, None, text, known.banner_added)
            assert ready is not None and block is not None  # emitted afresh: the tend changed it
            assert projected_bytes(known, path, raw, known.banner_added) == ready.data


def test_a_failed_tend_ends_as_every_failed_run_does(tmp_path):
    """RunFailed with the reason, and the log's head published (as `recorded_run` does)."""
    settings, store = tended(tmp_path)
    with store:
        heads = len(read_heads(store.heads)[0])
        tend = tending.start_tend(settings, WIDE_REVIEW_POLICY, store, today=dt.date(2026, 11, 23))
        tending.fail_tend(tend, KeyboardInterrupt())
        run = list_runs(store)[0]
        assert (run.run_id, run.status, run.error) == (tend.run_id, "failed", "interrupted")
        assert len(read_heads(store.heads)[0]) == heads + 1


def test_a_stored_block_is_read_one_way():
    import garden.model
    import garden.state

    assert garden.state.as_block is garden.model.as_block
    assert garden.model.as_block(None) is None
    block = garden.model.as_block({"last_pruned": "2026-11-22", "entities": [], "communities": [],
                                   "inferred_links": []})
    assert garden.model.as_block(block) is block and block.last_pruned == dt.date(2026, 11, 22)


def test_the_flow_and_run_steps_take_the_steps_from_one_list(tmp_path):
    """`flows.tend` runs `tending.steps_of(tend)` as tasks, `run_steps` in this process: a dry
    run leaves out the write in both."""
    settings = load_settings(garden=make_garden(tmp_path / "patterns", 2), db=tmp_path / "events.db")
    with EventStore(settings.db) as store:
        dry = tending.start_tend(settings, WIDE_REVIEW_POLICY, store, today=dt.date(2026, 11, 22), dry_run=True)
        assert tending.steps_of(dry) == ("observe", "choose_and_rank", "propose", "decide_and_prune")
        tending.run_steps(dry)
        assert dry.recorder.counts["BlockWriteStarted"] == 0 and dry.chosen
