"""Proposals past one machine: `garden tend --task-runner dask` asks the proposal batches on a
Dask cluster (prefect-dask) and the flow alone records the answers.

Tends run as `garden` subprocesses against the session's real Prefect server (`prefect_env`); the
model side is the fake OpenAI-compatible server over HTTP (tests/fake_openai.py).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from conftest import _free_port, events_of, files_of, garden_bin, make_garden, verify
from fake_openai import fake_openai

pytest.importorskip("prefect_dask", reason="the dask extra is not installed")

TODAY = "2026-11-22"


def tend(cwd: Path, env: dict, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([garden_bin(), "tend", "--today", TODAY, "--json", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
@pytest.fixture
def batches_of_8(prefect_env):
    # 40 patterns in 5 batches, so the workers answer several batches, out of order.
    return dict(prefect_env, GARDEN_POLICY_BATCH_SIZE="8")


def test_a_tend_on_two_dask_workers_writes_and_logs_what_the_default_runner_does(tmp_path, batches_of_8):
    here, there = tmp_path / "default", tmp_path / "dask"
    make_garden(here / "patterns", 40)
    make_garden(there / "patterns", 40)

    default = tend(here, batches_of_8)
    dask = tend(there, batches_of_8, "--task-runner", "dask", "--dask-workers", "2")

    assert default.returncode == 0, default.stderr
    assert dask.returncode == 0, dask.stderr
    summary = json.loads(dask.stdout)
    assert summary["tended"] == 40 and summary["proposed"] > 0 and summary["rescored"] > 0
    assert {k: v for k, v in summary.items() if k not in ("run_id", "timings", "head")} == \
        {k: v for k, v in json.loads(default.stdout).items() if k not in ("run_id", "timings", "head")}
    assert files_of(there) == files_of(here)
    ours, theirs = events_of(there), events_of(here)
    assert ours == theirs
    assert any(kind == "DuplicateSuspected" for kind, *_ in ours)  # the ranking's slice was enough
    started = next(payload for kind, _, _, payload in _raw_events(there) if kind == "RunStarted")
    assert started["options"]["task_runner"] == "dask" and started["options"]["dask_workers"] == 2
    verify(here)
    verify(there)


def _raw_events(root: Path) -> list[tuple]:
    with sqlite3.connect(root / ".garden" / "events.db") as db:
        rows = db.execute("SELECT type, slug, actor, payload FROM events ORDER BY seq").fetchall()
    return [(kind, slug, actor, json.loads(payload)) for kind, slug, actor, payload in rows]


def test_a_killed_worker_is_retried_and_every_pattern_is_answered_once(tmp_path, prefect_env):
    psutil = pytest.importorskip("psutil")
    make_garden(tmp_path / "patterns", 40)
    with fake_openai(latency=0.4) as server:
        env = dict(prefect_env, GARDEN_POLICY_BATCH_SIZE="5", OPENAI_API_KEY="sk-test-dask",
                   OPENAI_BASE_URL=server.base_url, GARDEN_MODEL="fake-model", GARDEN_CONCURRENCY="1",
                   GARDEN_TIMEOUT="20", GARDEN_MAX_RETRIES="0")
        child = subprocess.Popen([garden_bin(), "tend", "--today", TODAY, "--json", "--proposer", "llm",
                                  "--task-runner", "dask", "--dask-workers", "2"], cwd=tmp_path, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 90
            while len(server.requests) < 3:  # batches are in flight on both workers
                assert child.poll() is None and time.time() < deadline, child.communicate()
                time.sleep(0.05)
            workers = dask_workers(psutil, child.pid)
            assert len(workers) == 2
            os.kill(workers[0].pid, signal.SIGKILL)
            out, err = child.communicate(timeout=150)
        finally:
            if child.poll() is None:
                child.kill()
    assert child.returncode == 0, err
    summary = json.loads(out)
    assert summary["tended"] == 40 and summary["failed"] == 0
    answered = [slug for kind, slug, _, _ in _raw_events(tmp_path) if kind == "ProposerCalled"]
    assert sorted(answered) == sorted(p.stem for p in (tmp_path / "patterns").glob("*.md"))
    assert len(server.requests) > 40  # the killed worker's batch was asked again
    verify(tmp_path)


def dask_workers(psutil, pid: int) -> list:
    """The Dask worker processes a tend started (its local cluster's, spawned by their nannies)."""
    found = []
    for process in psutil.Process(pid).children(recursive=True):
        try:
            if "spawn_main" in " ".join(process.cmdline()):
                found.append(process)
        except psutil.NoSuchProcess:
            pass
    return found


def test_an_unreachable_scheduler_is_one_line_and_only_the_failed_run(tmp_path, prefect_env):
    make_garden(tmp_path / "patterns", 3)
    address = f"tcp://127.0.0.1:{_free_port()}"
    done = tend(tmp_path, prefect_env, "--task-runner", "dask", "--dask-address", address)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: --dask-address {address}: no Dask scheduler answered within 5 s; start one there with "
        "`dask scheduler`, or leave --dask-address out for a local cluster"]
    assert [kind for kind, *_ in _raw_events(tmp_path)] == ["RunStarted", "RunFailed"]


def test_without_prefect_dask_the_message_says_what_to_install(tmp_path):
    shadow = tmp_path / "shadow" / "prefect_dask"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named prefect_dask')\n")
    make_garden(tmp_path / "patterns", 3)
    env = dict(os.environ, PYTHONPATH=str(shadow.parent))
    done = subprocess.run([garden_bin(), "tend", "--task-runner", "dask"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (
        1, "error: --task-runner dask needs prefect-dask: pip install 'graph-garden[dask]'\n")
    assert not (tmp_path / ".garden" / "events.db").exists()


def test_the_offline_proposer_reads_no_more_of_the_ranking_than_a_batch_ships(tmp_path):
    """Re-assessment and duplicate suspicions on a batch's slice of the ranking are those on the
    whole ranking (what a Dask worker gets is enough)."""
    from events.projection import load_state
    from events.store import EventStore
    from flows.propose import build_requests
    from garden.candidates import rank_patterns
    from garden.catalog import load_garden
    from proposers.offline import OfflineProposer

    garden = load_garden(make_garden(tmp_path / "patterns", 60))
    with EventStore(tmp_path / "events.db") as store:
        state = load_state(store)
    ranking = rank_patterns(garden.patterns.values())
    proposer = OfflineProposer()
    slugs = sorted(garden.patterns)
    suspected = 0
    for start in range(0, len(slugs), 8):
        requests = build_requests(garden, state, ranking, slugs[start : start + 8])
        part = proposer.ranking_for(requests, ranking)
        assert part.matrix.nnz < ranking.matrix.nnz  # the vectors the batch reads, not all
        for request in requests:
            assert proposer.reassess(request, part) == proposer.reassess(request, ranking)
            assert proposer.suspect_duplicates(request, part) == proposer.suspect_duplicates(request, ranking)
            suspected += len(proposer.suspect_duplicates(request, ranking))
    assert suspected > 0
