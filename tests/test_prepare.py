"""What a tend reads while Prefect's server starts (`flows.prepare`): taken only when the files
are still the bytes it read, and then the tend records exactly what it would have."""

from __future__ import annotations

import datetime as dt
import re
import shutil

import numpy as np

from conftest import make_garden
from events.store import EventStore
from flows import tending
from flows.prepare import Preparation
from garden.candidates import rank_patterns
from garden.catalog import load_garden
from garden.policy import Policy
from garden.settings import load_settings

TODAY = dt.date(2026, 11, 22)
ULID = re.compile(r'"[0-9A-HJKMNP-TV-Z]{26}"')


def tend_here(root, preparation=None):
    """A tend in this process (as `garden tend` runs its flow), with `preparation` prepared of it
    first if given (called with the folder once it is prepared); its summary, the log's events as
    (type, slug, payload) in order (the folder's path as <root>, event ids as <id>), and the Tend."""
    settings = load_settings(garden=root / "patterns", db=root / "events.db")
    prepared = Preparation(settings) if preparation else None
    try:
        if prepared is not None:
            prepared.start()
            prepared.read.wait(60)
            preparation(root / "patterns")
        with EventStore(settings.db) as store:
            tend = tending.start_tend(settings, Policy(), store, today=TODAY)
            tending.run_steps(tend)
            result = tending.finish_tend(tend)
            events = [(row[2], row[3], ULID.sub('"<id>"', row[8].replace(str(root), "<root>")))
                      for row in store.rows() if row[2] not in ("RunStarted", "RunCompleted")]
        return result, events, tend
    finally:
        if prepared is not None:
            prepared.close()


def test_the_prepared_garden_is_taken_and_changes_nothing(tmp_path):
    make_garden(tmp_path / "a" / "patterns", 40)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    untended = load_garden(tmp_path / "a" / "patterns")
    plain, plain_events, _ = tend_here(tmp_path / "a")
    prepared, prepared_events, tend = tend_here(tmp_path / "b", preparation=lambda garden: None)
    assert plain["prepared"] == []
    assert prepared["prepared"] == ["garden"]
    assert len(prepared_events) > 100 and prepared_events == plain_events
    fresh = rank_patterns(untended.patterns.values(), k=tend.settings.candidates)
    assert tend.ranking.slugs == fresh.slugs
    assert np.array_equal(tend.ranking.neighbours, fresh.neighbours)


def test_a_file_changed_after_it_was_prepared_is_read_again(tmp_path):
    make_garden(tmp_path / "patterns", 20)
    edited = sorted((tmp_path / "patterns").glob("*.md"))[3]

    def edit(garden):
        edited.write_text(edited.read_text().replace("\n---\n", "\n---\n\nA sentence added after the preparation.\n", 1))

    result, events, tend = tend_here(tmp_path, preparation=edit)
    assert result["prepared"] == []
    pattern = tend.garden.patterns[edited.stem]
    assert "A sentence added after the preparation." in pattern.body
    assert result["files_written"] > 0


def test_files_added_after_the_preparation_are_read_by_the_tend(tmp_path):
    settings = load_settings(garden=tmp_path / "patterns", db=tmp_path / "events.db")
    prepared = Preparation(settings)  # no folder yet: nothing to read
    try:
        prepared.start()
        prepared.read.wait(60)
        make_garden(tmp_path / "patterns", 10)
        assert prepared.garden() is None
        with EventStore(settings.db) as store:
            tend = tending.start_tend(settings, Policy(), store, today=TODAY)
            tending.run_steps(tend)
            result = tending.finish_tend(tend)
        assert result["prepared"] == [] and result["patterns"] == 10
    finally:
        prepared.close()
