"""A kept state (`GardenApp(keep_state=True)`, what `garden serve` uses): loaded once, then each
call folds in only what was appended since, by this object or by any other command; equal at
every step to the state a fresh load gives; loaded afresh when the log was replaced or a call
failed half way. A real garden and a real SQLite log throughout."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import WIDE_REVIEW_POLICY, tend_in_process, tended_garden
from events.projection import load_state
from events.store import EventStore
from flows.app import GardenApp
from garden.errors import GardenError
from garden.settings import load_settings
from test_app import verified


@pytest.fixture
def tended(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "a"
    assert tended_garden(root, monkeypatch, 30)["pending"] > 3
    return root


def apps(root: Path) -> tuple[GardenApp, GardenApp]:
    settings = load_settings(garden=root / "patterns", db=root / ".garden" / "events.db")
    return GardenApp(settings, keep_state=True), GardenApp(settings)


def pending(app: GardenApp) -> list[str]:
    return [pid for proposals in app.review().found.values() for pid in proposals]


def same_as_a_fresh_load(app: GardenApp) -> bool:
    kept = app._kept
    with EventStore(app.settings.db) as store:
        fresh = load_state(store, use_snapshots=False)
    assert kept is not None and kept.seq <= fresh.seq
    assert sorted(kept.patterns) == sorted(fresh.patterns)
    assert all(kept.patterns[slug] == fresh.patterns[slug] for slug in fresh.patterns)
    assert (kept.fits, kept.duplicates) == (fresh.fits, fresh.duplicates)
    return True


def test_one_load_serves_many_calls_and_sees_what_other_commands_appended(tended):
    kept, other = apps(tended)
    ids = pending(kept)
    accepted = kept.accept([ids[0]], by="ana")
    assert same_as_a_fresh_load(kept)
    other.reject([ids[1]], by="bo", note="another command, meanwhile")  # not through the kept state
    assert pending(kept) == ids[2:]
    assert same_as_a_fresh_load(kept)
    kept.revert(accepted.run_id, by="ana")
    assert pending(kept) == [ids[0], *ids[2:]]
    kept.health()
    kept.sample(3, seed=1)
    assert same_as_a_fresh_load(kept)
    assert kept.state_loads.count(None) == 1  # the current state: once, however many calls
    assert verified(tended)


def test_a_log_replaced_meanwhile_is_loaded_afresh(tended):
    kept, _ = apps(tended)
    before = pending(kept)
    # The log deleted and a new one begun by a tend (its seqs start again at 1, its ids its own).
    (tended / ".garden" / "events.db").unlink()
    tend_in_process(WIDE_REVIEW_POLICY)
    after = pending(kept)
    assert after and set(after).isdisjoint(before)  # the new log's proposals, not the old ones
    assert kept.state_loads.count(None) == 2
    assert same_as_a_fresh_load(kept)


def test_a_failed_call_leaves_no_kept_state_behind(tended):
    kept, _ = apps(tended)
    ids = pending(kept)
    with pytest.raises(GardenError):
        kept.accept(["P-NO-SUCH-PROPOSAL"], by="ana")
    assert kept._kept is None
    kept.accept([ids[0]], by="ana")
    assert kept.state_loads.count(None) == 2
    assert same_as_a_fresh_load(kept)
    assert verified(tended)
