"""`garden tend` as the nightly job runs it: a real Prefect flow, the lock, dry runs, crashes.

Tends run as subprocesses against one shared real Prefect server (the `prefect_env` fixture).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import garden_bin, make_garden
from flows.lock import garden_lock


def tend(cwd: Path, env: dict, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([garden_bin(), "tend", "--today", "2026-11-22", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def snapshot(garden: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(garden.iterdir())}


def count_events(db: Path, kind: str | None = None) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(db)
    sql = "SELECT count(*) FROM events" + (" WHERE type = ?" if kind else "")
    try:
        return conn.execute(sql, [kind] if kind else []).fetchone()[0]
    except sqlite3.OperationalError:  # created a moment ago, not migrated yet
        return 0
    finally:
        conn.close()


@pytest.fixture
def small_garden(tmp_path) -> Path:
    make_garden(tmp_path / "patterns", 60)
    return tmp_path


def test_a_tend_writes_changed_blocks_and_a_second_changes_nothing(small_garden, prefect_env):
    first = tend(small_garden, prefect_env, "--json")
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr and "database is locked" not in first.stderr
    result = json.loads(first.stdout)
    assert result["tended"] == 60 and result["proposed"] > 0 and result["files_written"] > 0
    assert result["prepared"] == ["garden"]  # read while Prefect started
    for name in ("run_id", "accepted", "pending", "rejected", "pruned", "errors", "tokens"):
        assert name in result
    written = [p for p in (small_garden / "patterns").iterdir() if "last_pruned: 2026-11-22" in p.read_text()]
    assert len(written) == result["files_written"]
    before = snapshot(small_garden / "patterns")
    second = json.loads(tend(small_garden, prefect_env, "--json").stdout)
    assert (second["tended"], second["files_written"], second["proposed"]) == (0, 0, 0)
    assert second["prepared"] == ["garden"]
    assert snapshot(small_garden / "patterns") == before
    verify = subprocess.run([garden_bin(), "verify"], cwd=small_garden, capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout


def test_dry_run_records_and_writes_nothing(small_garden, prefect_env):
    before = snapshot(small_garden / "patterns")
    done = tend(small_garden, prefect_env, "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["dry_run"] and result["proposed"] > 0 and result["accepted"] > 0
    assert snapshot(small_garden / "patterns") == before
    assert count_events(small_garden / ".garden" / "events.db") == 0


def test_a_second_tend_exits_2_while_the_lock_is_held(small_garden, prefect_env):
    db = small_garden / ".garden" / "events.db"
    with garden_lock(db):
        done = tend(small_garden, prefect_env)
    assert done.returncode == 2
    assert "error: another tend is running on .garden/events.db (pid" in done.stderr
    assert "Traceback" not in done.stderr


def test_limit_tends_in_rotation(small_garden, prefect_env):
    first = json.loads(tend(small_garden, prefect_env, "--limit", "25", "--json").stdout)
    second = json.loads(tend(small_garden, prefect_env, "--limit", "25", "--json").stdout)
    third = json.loads(tend(small_garden, prefect_env, "--limit", "25", "--json").stdout)
    assert (first["tended"], second["tended"], third["tended"]) == (25, 25, 10)
    db = small_garden / ".garden" / "events.db"
    assert count_events(db, "ProposerCalled") == 60


def test_sigkill_at_any_moment_then_tend_again_finishes_the_work(tmp_path, prefect_env):
    make_garden(tmp_path / "patterns", 240)
    db = tmp_path / ".garden" / "events.db"
    for threshold in (1, 300, 1200):  # events recorded before the kill: observe, propose, later
        child = subprocess.Popen([garden_bin(), "tend", "--today", "2026-11-22"], cwd=tmp_path,
                                 env=prefect_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        start = count_events(db)
        deadline = time.time() + 120
        while child.poll() is None and count_events(db) < start + threshold and time.time() < deadline:
            time.sleep(0.02)
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait()
    final = tend(tmp_path, prefect_env, "--json")
    assert final.returncode == 0, final.stderr
    verify = subprocess.run([garden_bin(), "verify"], cwd=tmp_path, capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    conn = sqlite3.connect(db)
    proposals = Counter(conn.execute(
        "SELECT slug, json_extract(payload, '$.target'), json_extract(payload, '$.link_type') "
        "FROM events WHERE type = 'LinkProposed'").fetchall())
    asked = Counter(r[0] for r in conn.execute("SELECT slug FROM events WHERE type = 'ProposerCalled'"))
    statuses = conn.execute(
        "SELECT type FROM events WHERE type IN ('RunCompleted', 'RunFailed')").fetchall()
    conn.close()
    assert proposals and max(proposals.values()) == 1, "a proposal was recorded twice"
    assert len(asked) == 240 and max(asked.values()) == 1
    assert ("RunCompleted",) in statuses
    assert ("RunFailed",) in statuses  # the kills landed mid-run: their runs were closed as interrupted
    assert not list((tmp_path / "patterns").glob(".*.tmp"))
    again = json.loads(tend(tmp_path, prefect_env, "--json").stdout)
    assert again["files_written"] == 0
