"""A person's edit during a tend, and what the log had not written yet: the person wins for what
they changed, and what they did not touch is written on top of their edit (garden.merge)."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest

from conftest import garden_bin, make_garden
from events.store import EventStore
from flows import tending
from garden.catalog import load_garden
from garden.merge import merge_blocks
from garden.model import Entity, GardenBlock, InferredLink
from garden.policy import Policy
from garden.settings import load_settings

TODAY = dt.date(2026, 11, 22)


def link(target, confidence=0.8, kind="enables"):
    return InferredLink(target=target, type=kind, confidence=confidence, reason="r")


def entity(eid, relevance=0.9):
    return Entity(id=eid, type="concept", label=eid.title(), relevance=relevance)


# --- the merge itself ----------------------------------------------------------------------

BASE = GardenBlock(last_pruned=dt.date(2026, 2, 19), entities=(entity("a"), entity("b")),
                   inferred_links=(link("x"), link("y"), link("z")))


def test_the_logs_additions_go_on_top_of_the_persons_block():
    ours = BASE.model_copy(update={"inferred_links": BASE.inferred_links + (link("new", 0.9),),
                                   "entities": BASE.entities + (entity("c"),)})
    theirs = BASE.model_copy(update={"entities": (entity("a", 0.5), entity("mine"))})  # b removed, a changed
    merge = merge_blocks(BASE, ours, theirs)
    assert merge.block == GardenBlock(
        last_pruned=BASE.last_pruned, entities=(entity("a", 0.5), entity("mine"), entity("c")),
        inferred_links=(link("x"), link("y"), link("z"), link("new", 0.9)))
    assert merge.kept == ("link -> new (enables)", "entity c") and merge.yielded == ()


def test_the_person_wins_for_what_they_changed_and_the_rest_takes_the_logs_changes():
    # The log re-scored x, pruned y and z; the person changed x, removed y, left z alone.
    ours = BASE.model_copy(update={"inferred_links": (link("x", 0.95),)})
    theirs = BASE.model_copy(update={"inferred_links": (link("x", 0.5), link("z")),
                                     "last_pruned": dt.date(2026, 3, 1)})
    merge = merge_blocks(BASE, ours, theirs)
    assert merge.block == BASE.model_copy(update={"inferred_links": (link("x", 0.5),),
                                                  "last_pruned": dt.date(2026, 3, 1)})
    assert merge.kept == ("pruned link -> z (enables)",)
    assert merge.yielded == ("link -> x (enables)",)


def test_nothing_unwritten_means_the_persons_block_as_it_is():
    theirs = BASE.model_copy(update={"entities": ()})
    assert merge_blocks(BASE, BASE, theirs).block == theirs
    assert merge_blocks(BASE, BASE, None).block is None
    # A block the person deleted whole gets only what they never saw.
    merge = merge_blocks(BASE, BASE.model_copy(update={"entities": BASE.entities + (entity("c"),)}), None)
    assert merge.block == GardenBlock(entities=(entity("c"),))


# --- a tend with a person's edit between decide and write ----------------------------------


@pytest.fixture
def garden(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 30)
    return load_settings(garden=tmp_path / "patterns", db=tmp_path / "events.db")


def accepted_in(tend, slug):
    """The links the tend accepted for `slug`, as (target, type), in the block's order."""
    in_file = {(l.target, l.type) for l in tend.garden.patterns[slug].block.inferred_links}
    return [(l.target, l.type) for l in tend.state.block(slug).inferred_links if (l.target, l.type) not in in_file]


def test_an_item_accepted_during_an_edit_of_its_block_is_written_on_top_of_it(garden):
    settings = garden
    with EventStore(settings.db) as store:
        tend = tending.start_tend(settings, Policy(), store, today=TODAY)
        tending.run_steps(tend, stop_before="write")
        slug = next(s for s in sorted(tend.garden.patterns)
                    if s.startswith("distributed-leadership-design") and accepted_in(tend, s))
        new_links = accepted_in(tend, slug)
        path = settings.garden / f"{slug}.md"
        # The person edits the block itself: one entity re-scored, one of their own added.
        text = path.read_text("utf-8")
        edited = text.replace('      relevance: 0.95\n', '      relevance: 0.6\n', 1).replace(
            "  entities:\n", '  entities:\n    - id: my-own-entity\n      type: concept\n'
            '      label: "Mine"\n      relevance: 0.7\n', 1)
        assert edited != text
        path.write_text(edited, "utf-8")
        tending.write_step(tend)
        tending.finish_tend(tend)
        assert f"patterns/{slug}.md: changed on disk since it was read; not written (run again to pick up the edit)" \
            in tend.errors
        second = tending.start_tend(settings, Policy(), store, today=TODAY)
        tending.run_steps(second)
        tending.finish_tend(second)
        assert second.errors == []
    block = load_garden(settings.garden).patterns[slug].block
    links = {(l.target, l.type) for l in block.inferred_links}
    assert set(new_links) <= links  # what was accepted is in the file ...
    ids = {e.id: e.relevance for e in block.entities}
    assert ids["my-own-entity"] == 0.7 and ids["shared-responsibility"] == 0.6  # ... and so is the edit
    history = subprocess.run([garden_bin(), "history", slug, "--db", str(settings.db)],
                             capture_output=True, text=True, timeout=60)
    assert history.returncode == 0, history.stderr
    # kept: the accepted links, among the tend's prunes and re-assessments of the other items
    [line] = [l for l in history.stdout.splitlines() if "edited outside graph-garden" in l]
    assert "edited outside graph-garden (block changed; the edit wins); kept on top of the edit, to be written: " in line
    kept = ", ".join(f"link -> {target} ({kind})" for target, kind in new_links)
    assert kept in line
    target = subprocess.run([garden_bin(), "history", slug, "--target", new_links[0][0], "--db", str(settings.db)],
                            capture_output=True, text=True, timeout=60)
    assert "kept on top of the edit, to be written" in target.stdout.strip().splitlines()[-1]
    verify = subprocess.run([garden_bin(), "verify", "--garden", str(settings.garden), "--db", str(settings.db)],
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr


# --- properties ----------------------------------------------------------------------------

from hypothesis import given
from hypothesis import strategies as st

ITEMS = st.lists(st.tuples(st.sampled_from("pqrs"), st.sampled_from([0.6, 0.8, 0.9])), max_size=5)


@given(ITEMS, st.lists(st.sampled_from(["prune", "rescore", "add"]), max_size=4), st.data())
def test_a_merge_with_an_untouched_block_is_the_logs_block(items, changes, data):
    """When the person left the block alone (an edit of the body), the merge is the log's block
    exactly; when the log changed nothing, it is the person's block exactly."""
    base = GardenBlock(inferred_links=tuple(link(t, c) for t, c in items))
    ours = list(base.inferred_links)
    for change in changes:
        if change == "add":
            ours.append(link(data.draw(st.sampled_from("tuvw")), 0.85))
        elif ours:
            n = data.draw(st.integers(0, len(ours) - 1))
            if change == "prune":
                del ours[n]
            else:
                ours[n] = ours[n].model_copy(update={"confidence": 0.99})
    ours_block = base.model_copy(update={"inferred_links": tuple(ours)})
    assert merge_blocks(base, ours_block, base).block == ours_block
    theirs = GardenBlock(inferred_links=tuple(link(t, c) for t, c in data.draw(ITEMS)))
    assert merge_blocks(base, base, theirs).block == theirs


# --- symlinked pattern files ---------------------------------------------------------------


def run(cwd, *args, env=None, timeout=120):
    return subprocess.run([garden_bin(), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


SLUG = "distributed-leadership-design-0000"  # a pattern the first tend of this garden writes


def test_a_symlink_inside_the_garden_is_written_through_and_stays_a_link(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 12)
    link = tmp_path / "patterns" / f"{SLUG}.md"
    target = tmp_path / "patterns" / ".sources" / f"{SLUG}.md"  # a hidden folder is not read itself
    target.parent.mkdir()
    link.rename(target)
    link.symlink_to(f".sources/{SLUG}.md")
    before = target.read_bytes()
    settings = load_settings(garden=tmp_path / "patterns", db=tmp_path / ".garden" / "events.db")
    with EventStore(settings.db) as store:
        tend = tending.start_tend(settings, Policy(), store, today=TODAY)
        tending.run_steps(tend)
        tending.finish_tend(tend)
    assert SLUG in tend.written and tend.errors == [] and tend.notes == []
    assert link.is_symlink() and link.readlink() == Path(f".sources/{SLUG}.md")
    after = target.read_bytes()
    assert after != before and b"last_pruned: 2026-11-22" in after
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temporary file left
    check = run(tmp_path, "check")
    assert check.returncode == 0 and "symlink" not in check.stdout
    verify = run(tmp_path, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_symlink_to_outside_the_garden_is_read_and_never_written(tmp_path, prefect_env):
    make_garden(tmp_path / "patterns", 12)
    link = tmp_path / "patterns" / f"{SLUG}.md"
    outside = tmp_path / "elsewhere" / f"{SLUG}.md"
    outside.parent.mkdir()
    link.rename(outside)
    link.symlink_to(outside)
    before = outside.read_bytes()
    warning = (f"patterns/{SLUG}.md:1:1: warning: a symlink to {outside}, outside the garden: read, never "
               "written (its block is left as it is; put the file itself in the garden to have it tended)")
    check = run(tmp_path, "check")
    # The problems, then check's summary table (results on stdout).
    assert check.returncode == 0 and check.stdout.splitlines()[0] == warning
    assert [line for line in check.stdout.splitlines() if ": warning: " in line] == [warning]
    tend = run(tmp_path, "tend", "--today", "2026-11-22", env=prefect_env, timeout=300)
    assert tend.returncode == 0, tend.stderr
    assert f"note: {warning.replace(':1:1: warning:', ':')}" in tend.stderr.splitlines()
    assert "error:" not in tend.stderr
    assert link.is_symlink() and outside.read_bytes() == before
    assert sum("last_pruned: 2026-11-22" in p.read_text() for p in (tmp_path / "patterns").glob("*.md")) > 0
    history = run(tmp_path, "history", SLUG)
    # (another pattern may suspect it a duplicate: that names it, and changes nothing of it)
    assert [line.split("  ")[-1].strip() for line in history.stdout.splitlines()
            if "suspected duplicate" not in line] == ["first seen: 10 links, 8 entities"]
    verify = run(tmp_path, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
