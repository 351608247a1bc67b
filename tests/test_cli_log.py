"""The log commands as a maintainer runs them: observe, verify, replay, history, runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from conftest import CORPUS, needs_corpus

runner = CliRunner()


def garden_cmd(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def observed_garden(seed_garden, monkeypatch):
    monkeypatch.chdir(seed_garden.parent)
    result = garden_cmd("observe")
    assert result.exit_code == 0, result.output
    return seed_garden


def same_tree(a: Path, b: Path) -> bool:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return files_a == files_b and all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)


def flip_byte(db: Path, needle: bytes) -> None:
    raw = bytearray(db.read_bytes())
    at = raw.index(needle)
    raw[at] = ord("0") if raw[at] != ord("0") else ord("1")
    db.write_bytes(bytes(raw))


def test_observe_records_each_pattern_once(observed_garden):
    assert garden_cmd("observe").stdout == (
        "observed 3 patterns: 0 new, 0 edited outside graph-garden, 0 events recorded in "
        ".garden/events.db\n"
    )
    result = garden_cmd("verify", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["events"] == 3


def test_replay_reproduces_the_garden_and_verify_passes(observed_garden, tmp_path):
    result = garden_cmd("replay", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert same_tree(observed_garden, tmp_path / "out")
    assert garden_cmd("replay", "--check").exit_code == 0
    assert garden_cmd("verify").exit_code == 0


def test_an_external_edit_is_recorded_and_the_person_wins(observed_garden):
    path = observed_garden / "distributed-leadership-design.md"
    text = path.read_text("utf-8")
    path.write_text(text.replace("confidence: 0.76", "confidence: 0.5"), "utf-8")
    check = garden_cmd("replay", "--check")
    assert check.exit_code == 1
    assert "inferred links different: abundance-vs-scarcity-mindset/enables" in check.stdout
    assert "1 edited outside graph-garden" in garden_cmd("observe").stdout
    assert garden_cmd("replay", "--check").exit_code == 0
    history = garden_cmd("history", "distributed-leadership-design").stdout.splitlines()
    assert history[-1].endswith("edited outside graph-garden (block changed; the edit wins)")
    filtered = garden_cmd("history", "distributed-leadership-design", "--target",
                          "abundance-vs-scarcity-mindset", "--json")
    assert [e["payload"]["type"] for e in json.loads(filtered.stdout)] == [
        "GardenObserved", "ExternalEditObserved"
    ]


def test_a_flipped_byte_in_the_database_fails_verify_naming_the_event(observed_garden):
    db = observed_garden.parent / ".garden" / "events.db"
    flip_byte(db, b"distributed-leadership-in-complexity.md")
    result = garden_cmd("verify")
    assert result.exit_code == 1
    assert result.stdout.startswith("hash chain broken at event #2 (GardenObserved, id ")
    assert "its content does not match its hash" in result.stdout


def test_replay_until_a_point_and_bad_until(observed_garden, tmp_path):
    result = garden_cmd("replay", "--until", "1", "--out", str(tmp_path / "one"), "--json")
    assert json.loads(result.stdout)["patterns"] == 1
    bad = garden_cmd("replay", "--until", "last tuesday", "--check")
    assert bad.exit_code == 1
    assert bad.stderr == ("error: --until 'last tuesday': give a sequence number, a run id, or a "
                          "time like 2026-11-22T03:00\n")
    assert garden_cmd("replay", "--check", "--until", "2000-01-01T00:00").exit_code == 1


def test_commands_without_a_database_say_what_to_do(seed_garden, monkeypatch):
    monkeypatch.chdir(seed_garden.parent)
    result = garden_cmd("runs")
    assert result.exit_code == 1
    assert result.stderr == "error: .garden/events.db: no event database here; run `garden observe` first\n"
    assert garden_cmd("replay").stderr == (
        "error: give --out DIR to write a replay, or --check to compare (one of them)\n"
    )


@needs_corpus()
def test_the_corpus_replays_byte_for_byte_and_a_flip_is_caught(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(CORPUS, tmp_path / "patterns")
    assert garden_cmd("observe").exit_code == 0
    assert garden_cmd("replay", "--out", "out").exit_code == 0
    assert same_tree(tmp_path / "patterns", tmp_path / "out")
    assert garden_cmd("verify").exit_code == 0
    flip_byte(tmp_path / ".garden" / "events.db", b"alignment-monitoring.md")
    result = garden_cmd("verify")
    assert result.exit_code == 1 and "hash chain broken at event #" in result.stdout
