"""Writing many files for the cost of one sync (`garden.writer.commit_writes`): every new version
to its temporary file, one sync of the file system, then each swapped in after its own last
check. A file edited meanwhile is left alone (the edit kept) and the others are written; no
temporary file is left behind. Real files on the real file system."""

from __future__ import annotations

import shutil
from itertools import groupby
from pathlib import Path

from conftest import SEEDS
from events.store import EventStore
from garden import writer
from garden.document import hash_bytes
from garden.errors import WriteConflictError
from garden.writer import commit_writes, prepare_write
from test_write_race import NEW_BLOCK


def seeds_in(folder: Path) -> list[Path]:
    paths = []
    for seed in sorted(SEEDS.glob("*.md")):
        if "graph_garden" in seed.read_text(encoding="utf-8"):
            shutil.copy(seed, folder / seed.name)
            paths.append(folder / seed.name)
    assert len(paths) >= 3
    return paths


def test_every_file_is_written_and_no_temporary_file_is_left(tmp_path):
    paths = seeds_in(tmp_path)
    prepared = [prepare_write(p, NEW_BLOCK, hash_bytes(p.read_bytes())) for p in paths]
    assert commit_writes(prepared) == [tmp_path] * len(paths)
    assert [p.read_bytes() for p in paths] == [ready.data for ready in prepared]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)


def test_a_file_edited_after_it_was_prepared_is_left_alone_and_the_others_written(tmp_path):
    paths = seeds_in(tmp_path)
    prepared = [prepare_write(p, NEW_BLOCK, hash_bytes(p.read_bytes())) for p in paths]
    edited = paths[1].read_bytes() + b"\nA person's edit.\n"
    paths[1].write_bytes(edited)
    results = commit_writes(prepared)
    assert isinstance(results[1], WriteConflictError)
    assert str(results[1]) == (f"{paths[1]}: changed on disk while graph-garden was writing; not written "
                               "(run again to pick up the edit)")
    assert paths[1].read_bytes() == edited
    assert [p.read_bytes() for i, p in enumerate(paths) if i != 1] == [r.data for i, r in enumerate(prepared) if i != 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)


def test_without_syncfs_each_file_is_fsynced_and_written_the_same(tmp_path, monkeypatch):
    """Not Linux: an fsync per temporary file instead of one sync of the file system."""
    monkeypatch.setattr(writer, "_syncfs", None)
    paths = seeds_in(tmp_path)
    prepared = [prepare_write(p, NEW_BLOCK, hash_bytes(p.read_bytes())) for p in paths]
    assert commit_writes(prepared) == [tmp_path] * len(paths)
    assert [p.read_bytes() for p in paths] == [ready.data for ready in prepared]


def test_a_file_moved_away_before_the_write_is_its_own_error(tmp_path):
    paths = seeds_in(tmp_path)
    prepared = [prepare_write(p, NEW_BLOCK, hash_bytes(p.read_bytes())) for p in paths]
    (tmp_path / "elsewhere").mkdir()
    moved = paths[0].rename(tmp_path / "elsewhere" / paths[0].name)
    results = commit_writes(prepared)
    assert isinstance(results[0], FileNotFoundError)  # said as "cannot write it" by the tend
    assert not paths[0].exists() and moved.read_bytes() != prepared[0].data
    assert [p.read_bytes() for p in paths[1:]] == [r.data for r in prepared[1:]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([p.name for p in paths[1:]] + ["elsewhere"])


def test_a_tend_s_writes_leave_no_replaced_version_behind(tmp_path, monkeypatch):
    """The replaced versions are deleted by a thread while the next group is prepared; all of
    them by the time the write step returns."""
    from conftest import make_garden, tend_in_process
    from flows import writing

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(writing, "WRITE_GROUP", 7)  # several groups in a small garden
    make_garden(tmp_path / "patterns", 30)
    before = sorted(p.name for p in (tmp_path / "patterns").iterdir())
    assert tend_in_process()["files_written"] > 14
    assert sorted(p.name for p in (tmp_path / "patterns").iterdir()) == before
    with EventStore(tmp_path / ".garden" / "events.db") as store:
        writes = [(row[2], row[3]) for row in store.rows() if row[2].startswith("BlockWrit")]
    # Each group is announced, then confirmed, before the next is announced: Started x7,
    # Written x7, Started x7, ...
    runs = [(kind, [slug for _, slug in items]) for kind, items in groupby(writes, key=lambda w: w[0])]
    assert [kind for kind, _ in runs] == ["BlockWriteStarted", "BlockWritten"] * (len(runs) // 2)
    assert len(runs) >= 6 and all(len(slugs) <= 7 for _, slugs in runs)
    for (_, started), (_, confirmed) in zip(runs[0::2], runs[1::2]):
        assert started == confirmed
