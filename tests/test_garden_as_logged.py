"""A curator's command over a garden the log knows file for file reads no file it does not
write; any file the log does not know as it is sends it back to reading the whole garden."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from conftest import WIDE_REVIEW_POLICY, make_garden, tend_in_process
from events.parse_cache import open_parse_cache
from events.projection import load_state
from events.store import EventStore
from garden.catalog import garden_as_logged
from garden.settings import load_settings


def garden_cmd(*args):
    return CliRunner().invoke(app, list(args))


def as_logged():
    settings = load_settings()
    with EventStore(settings.db) as store:
        state = load_state(store)
    known = {s: (state.patterns[s].path, state.patterns[s].content_hash) for s in state.patterns}
    return garden_as_logged(settings.garden, known, open_parse_cache(settings))


def test_an_unchanged_garden_is_read_on_demand_and_a_changed_one_is_not(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 6)
    tend_in_process(WIDE_REVIEW_POLICY)
    garden = as_logged()
    assert garden is not None and garden.as_logged and len(garden.patterns) == 6
    slug = sorted(garden.patterns)[0]
    assert garden.patterns[slug].slug == slug and garden.patterns.get("nothing-here") is None
    files = sorted((tmp_path / "patterns").glob("*.md"))
    # A person's edit: the whole garden is read (and the accept observes the edit).
    original = files[0].read_bytes()
    files[0].write_bytes(original + b"\nA line added by hand.\n")
    assert as_logged() is None
    files[0].write_bytes(original)
    assert as_logged() is not None
    # A file the log does not know (a new one, even one that is not a pattern).
    (tmp_path / "patterns" / "README.md").write_text("# notes\n", "utf-8")
    assert as_logged() is None
    (tmp_path / "patterns" / "README.md").unlink()
    # A symlink, even to the same bytes.
    elsewhere = tmp_path / "elsewhere.md"
    elsewhere.write_bytes(files[1].read_bytes())
    saved = files[1].read_bytes()
    files[1].unlink()
    os.symlink(elsewhere, files[1])
    assert as_logged() is None
    files[1].unlink()
    files[1].write_bytes(saved)
    # The garden copied elsewhere: the log's paths are the old ones, the files the same.
    import shutil

    settings = load_settings()
    with EventStore(settings.db) as store:
        state = load_state(store)
    known = {s: (state.patterns[s].path, state.patterns[s].content_hash) for s in state.patterns}
    moved = shutil.copytree(tmp_path / "patterns", tmp_path / "moved" / "patterns")
    assert garden_as_logged(moved, known) is not None
    # A file gone.
    files[2].unlink()
    assert as_logged() is None


def test_an_accept_over_either_reads_the_same_and_verify_agrees(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 8)
    tend_in_process(WIDE_REVIEW_POLICY)
    review = json.loads(garden_cmd("review", "--json").stdout)
    slugs = [group["slug"] for group in review if group["proposals"]][:2]
    assert len(slugs) == 2
    # On demand: nothing changed since the tend.
    assert as_logged() is not None
    first = garden_cmd("accept", "--pattern", slugs[0], "--by", "cur", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["written"] == [slugs[0]]
    # A person edits another file's body: read whole, the edit observed, then the accept written.
    edited = Path(load_settings().garden) / f"{slugs[1]}.md"
    edited.write_text(edited.read_text("utf-8") + "\nA sentence added by hand.\n", "utf-8")
    assert as_logged() is None
    second = garden_cmd("accept", "--pattern", slugs[1], "--by", "cur", "--json")
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["written"] == [slugs[1]]
    history = garden_cmd("history", slugs[1], "--json")
    assert "ExternalEditObserved" in history.stdout
    assert "A sentence added by hand." in edited.read_text("utf-8")
    assert garden_cmd("verify").exit_code == 0


def test_health_from_the_log_equals_health_from_the_files(tmp_path, monkeypatch):
    """Health of a garden as the log knows it reads no file; it says what reading them says."""
    from flows.app import GardenApp
    from garden.catalog import load_garden
    from garden.health import garden_health

    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 12)
    tend_in_process(WIDE_REVIEW_POLICY)
    settings = load_settings()
    app = GardenApp(settings)
    with EventStore(settings.db) as store:
        state = load_state(store)
    library = app._library_as_logged(state)
    assert library is not None and sum(len(p.curated) for p in library.patterns.values()) > 0
    garden = load_garden(settings.garden, cache=None)
    known = {slug: state.patterns[slug] for slug in garden.patterns}
    from_files = garden_health(garden, {s: k.block for s, k in known.items()}, {s: k.tended for s, k in known.items()},
                               {s: k.reassessed for s, k in known.items()}, state.duplicates)
    from_log = app.health()
    assert {k: v for k, v in from_log.items() if k != "measured_precision"} == from_files
    # An edit the log has not seen: health reads the files, and sees it.
    path = sorted((tmp_path / "patterns").glob("*.md"))[0]
    path.write_text(path.read_text("utf-8").replace('title: "', 'title: "Renamed ', 1), "utf-8")
    assert app._library_as_logged(state) is None
    assert app.health()["patterns"] == 12


def test_a_file_deleted_and_another_copied_is_not_the_garden_the_log_knows(tmp_path, monkeypatch):
    """Same count of files, each with a hash the log knows: but one is gone and one is a copy of
    another elsewhere (a duplicate slug), so the garden is read whole and health says so."""
    import shutil

    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns" / "sub", 3)
    tend_in_process(WIDE_REVIEW_POLICY)
    files = sorted((tmp_path / "patterns" / "sub").glob("*.md"))
    files[1].unlink()
    shutil.copy(files[0], tmp_path / "patterns" / files[0].name)
    assert as_logged() is None
    health = json.loads(garden_cmd("health", "--json").stdout)
    assert health["patterns"] == 1
