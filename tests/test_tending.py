"""The tend's steps without Prefect: edits during a run, interrupted writes, the person winning."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest

from conftest import make_garden
from events.projection import load_state
from events.queries import verify
from flows.recording import observe
from events.store import EventStore
from flows import tending
from flows.writing import needs_write
from garden.catalog import load_garden
from garden.policy import Policy
from garden.settings import load_settings

TODAY = dt.date(2026, 11, 22)


@pytest.fixture
def setup(tmp_path):
    make_garden(tmp_path / "patterns", 30)
    settings = load_settings(garden=tmp_path / "patterns", db=tmp_path / "events.db")
    with EventStore(settings.db) as store:
        yield settings, store


def run_until_write(settings, store, policy=Policy()):
    tend = tending.start_tend(settings, policy, store, today=TODAY)
    tending.run_steps(tend, stop_before="write")
    return tend


def test_a_file_edited_during_the_run_is_not_clobbered(setup):
    settings, store = setup
    tend = run_until_write(settings, store)
    targets = [s for s in tend.garden.patterns if needs_write(
        tend.state.block(s), tend.garden.patterns[s].block)]
    assert targets
    victim = settings.garden / f"{targets[0]}.md"
    edited = victim.read_text("utf-8") + "\nA curator's note.\n"
    victim.write_text(edited, "utf-8")
    written = tending.write_step(tend)
    tending.finish_tend(tend)
    assert targets[0] not in written and len(written) == len(targets) - 1
    assert victim.read_text("utf-8") == edited
    assert any("changed on disk since it was read" in e for e in tend.errors)
    # The next observation records the edit; the person wins; the log and files agree again.
    observe(store, load_garden(settings.garden), load_state(store))
    assert load_state(store).patterns[targets[0]].content_hash
    report = verify(store, load_garden(settings.garden))
    assert report.chain is None


def test_a_write_cut_off_before_its_confirmation_is_settled_by_the_next_observation(setup):
    settings, store = setup
    tend = run_until_write(settings, store)
    real_record = tend.recorder.record

    def lose_confirmations(events):  # the process "dies" after the renames, before BlockWritten
        if events and events[0].type == "BlockWritten":
            raise KeyboardInterrupt
        real_record(events)

    tend.recorder.record = lose_confirmations
    with pytest.raises(KeyboardInterrupt):
        tending.write_step(tend)
    garden = load_garden(settings.garden)
    events = observe(store, garden, load_state(store))
    kinds = [row[2] for row in store.rows(after=events.first_seq - 1)] if events.appended else []
    assert kinds and set(kinds) == {"BlockWritten"}  # recovered, not mistaken for external edits
    assert verify(store, garden).ok


def test_an_external_edit_of_the_block_wins(setup):
    settings, store = setup
    tend = run_until_write(settings, store)
    tending.write_step(tend)
    tending.finish_tend(tend)
    path = next(p for p in settings.garden.iterdir() if "last_pruned: 2026-11-22" in p.read_text())
    text = path.read_text("utf-8")
    path.write_text(text.replace("last_pruned: 2026-11-22", "last_pruned: 2026-12-01"), "utf-8")
    second = tending.start_tend(settings, Policy(), store, today=TODAY)
    tending.observe_step(second)
    assert second.recorder.counts["ExternalEditObserved"] == 1
    assert str(second.state.block(path.stem).last_pruned) == "2026-12-01"


def test_a_batch_of_answers_is_appended_in_few_transactions_and_the_log_agrees(setup):
    settings, store = setup
    tend = tending.start_tend(settings, Policy(), store, today=TODAY)
    tending.run_steps(tend, stop_before="propose")
    commits = []
    store.conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    for batch in tending.batches(tend):
        tending.propose_batch(tend, batch, tend.ranking)
    store.conn.set_trace_callback(None)
    assert len(tend.chosen) == 30 and len(commits) <= 2 * len(tending.batches(tend)), commits
    logged = load_state(store)
    assert {s: dict(p.pending) for s, p in logged.patterns.items()} == {
        s: dict(p.pending) for s, p in tend.state.patterns.items()}


def test_answers_recorded_before_an_interrupt_are_in_the_log(setup):
    from flows.asking import ask

    settings, store = setup
    tend = tending.start_tend(settings, Policy(), store, today=TODAY)
    tending.run_steps(tend, stop_before="propose")
    job = tending.ask_job(tend, tend.chosen[:10], tend.ranking)

    def interrupted():  # Ctrl-C while the sixth answer is awaited
        for n, asked in enumerate(ask(job, tend.proposer)):
            if n == 5:
                raise KeyboardInterrupt
            yield asked

    with pytest.raises(KeyboardInterrupt):
        tending.record_batch(tend, job, interrupted())
    called = {row[3] for row in store.rows() if row[2] == "ProposerCalled"}
    assert called == set(tend.chosen[:5])


def test_the_snapshot_a_tend_saves_from_its_own_state_is_the_log_folded_again(setup, monkeypatch):
    from events import projection

    settings, store = setup
    monkeypatch.setattr(projection, "SNAPSHOT_EVERY", 10)  # a small garden's tend is due one
    tend = tending.start_tend(settings, Policy(), store, today=TODAY)
    tending.run_steps(tend)
    tending.finish_tend(tend)
    seq, saved = store.latest_snapshot(projection.FOLD_VERSION)
    folded = load_state(store, use_snapshots=False)
    assert seq == folded.seq == store.head_seq() > 1000
    assert orjson.loads(saved.pop(projection.DUPLICATES_ROW, b"{}")) == folded.duplicates != {}
    assert orjson.loads(saved.pop(projection.FITS_ROW, b"{}")) == folded.fits
    assert saved == dict(folded.patterns.encoded())


def test_the_offline_proposer_is_asked_in_batches_of_500_unless_the_policy_says(setup):
    settings, store = setup
    for policy, sizes in ((Policy(), [500, 500, 200]), (Policy(batch_size=400), [400, 400, 400])):
        tend = tending.start_tend(settings, policy, store, today=TODAY, dry_run=True)
        tend.chosen = [f"p{i}" for i in range(1200)]
        assert [len(batch) for batch in tending.batches(tend)] == sizes
