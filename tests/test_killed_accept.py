"""A `garden accept` killed between recording its decisions and writing its files: the next
command that writes finishes the writes, and says so (issue 11)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conftest import garden_bin, make_garden, tend_in_process
from garden.policy import Policy


def garden(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([garden_bin(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def head_seq(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT max(seq) FROM events").fetchone()[0]


def write_started(db: Path, after: int) -> bool:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05) as conn:
            return conn.execute("SELECT 1 FROM events WHERE seq > ? AND type = 'BlockWriteStarted' LIMIT 1",
                                [after]).fetchone() is not None
    except sqlite3.OperationalError:  # busy for a moment: ask again
        return False


def kill_mid_write(base: Path, work: Path, run_id: str, delay: float) -> str:
    """Copy the tended garden, start `garden accept --run RUN`, SIGKILL it `delay` seconds after
    its first write was announced; the child's stdout so far."""
    shutil.copytree(base, work)
    db = work / ".garden" / "events.db"
    before = head_seq(db)
    child = subprocess.Popen([garden_bin(), "accept", "--run", run_id, "--by", "kim"], cwd=work,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not write_started(db, before):
        if child.poll() is not None or time.time() > deadline:
            break
        time.sleep(0.002)
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    stdout, _ = child.communicate(timeout=30)
    return stdout


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """300 patterns, tended once under a wide review band, with proposals pending in most of them (copied by each try)."""
    root = tmp_path_factory.mktemp("killed") / "base"
    make_garden(root / "patterns", 300)
    originals = {p.name: p.read_bytes() for p in (root / "patterns").glob("*.md")}
    here = os.getcwd()
    os.chdir(root)
    try:
        tended = tend_in_process(Policy(auto_accept=0.99, review_floor=0.3, min_link_confidence=0.3))
    finally:
        os.chdir(here)
    return root, tended, originals


def test_the_next_accept_finishes_the_writes_of_a_killed_one(base, tmp_path):
    base, tended, _ = base
    pending = json.loads(garden(base, "review", "--json").stdout)
    slugs = sorted(group["slug"] for group in pending)
    assert len(slugs) > 100  # a write of more than a moment, so a kill can land inside it
    for attempt, delay in enumerate((0, 0.005, 0.02, 0.05, 0.1, 0)):
        work = tmp_path / f"try{attempt}"
        kill_mid_write(base, work, tended["run_id"], delay)
        verify = garden(work, "verify")
        if verify.returncode == 1:  # the decisions are in the log, some files are behind it
            break
    else:
        raise AssertionError("no kill landed between the decisions and the last write")
    assert "(projection differs)" in verify.stdout
    db = work / ".garden" / "events.db"
    with sqlite3.connect(db) as conn:
        killed = conn.execute("SELECT run_id FROM events WHERE type = 'RunStarted' ORDER BY seq DESC").fetchone()[0]
        decided = conn.execute("SELECT count(*) FROM events WHERE type = 'ProposalAccepted' AND run_id = ?",
                               [killed]).fetchone()[0]
    assert decided == sum(len(group["proposals"]) for group in pending)

    again = garden(work, "accept", "--run", tended["run_id"], "--by", "kim")
    # Nothing is left to decide (the killed accept decided it all), but its writes are made.
    assert again.returncode == 1
    assert again.stderr.endswith(f"error: nothing pending for run {tended['run_id']}\n")
    finished = again.stdout.splitlines()[0]
    assert finished.startswith(f"finished what an interrupted run left unwritten ({killed} (accept)): ")
    assert finished.endswith(" files written (as run " + finished.split("(as run ")[1])
    written = int(finished.split("): ")[1].split(" files")[0])
    assert 0 < written <= len(slugs)
    assert not list((work / "patterns").glob(".*.tmp"))
    check = garden(work, "verify")
    assert check.returncode == 0, check.stdout + check.stderr
    # Said once: the next command has nothing left to finish.
    assert "finished what" not in garden(work, "reject", "--pattern", slugs[0]).stdout
    with sqlite3.connect(db) as conn:  # the files it wrote are known as its own, not a person's edits
        assert conn.execute("SELECT count(*) FROM events WHERE type = 'ExternalEditObserved'").fetchone()[0] == 0


def test_a_killed_revert_is_finished_by_the_next_command(base, tmp_path):
    """The same for a revert: its blocks go back exactly as it left them in the log."""
    base, tended, originals = base
    for attempt, delay in enumerate((0, 0.005, 0.02, 0.05, 0)):
        work = tmp_path / f"try{attempt}"
        shutil.copytree(base, work)
        db = work / ".garden" / "events.db"
        before = head_seq(db)
        child = subprocess.Popen([garden_bin(), "revert", tended["run_id"]], cwd=work,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while not write_started(db, before) and child.poll() is None and time.time() < deadline:
            time.sleep(0.002)
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        if garden(work, "verify").returncode == 1:
            break
    else:
        raise AssertionError("no kill landed between the revert's events and its last write")
    # Any writing command finishes it: here a reject of nothing at all (it fails after finishing).
    again = garden(work, "reject", "01ZZZZZZZZZZZZZZZZZZZZZZZZ")
    assert again.returncode == 1
    assert "finished what an interrupted run left unwritten (" in again.stdout
    assert " (revert)): " in again.stdout
    assert {p.name: p.read_bytes() for p in (work / "patterns").glob("*.md")} == originals
    assert garden(work, "verify").returncode == 0
