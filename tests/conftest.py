"""Shared fixtures: small gardens built in tmp_path from the seed patterns."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from browser import browser, page  # noqa: F401  (fixtures: headless chromium; see tests/browser.py)

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "patterns"
CORPUS = ROOT.parent / "shared" / "corpus" / "patterns"

# Unexpected errors always show their traceback under tests, so bugs are not hidden.
os.environ["GARDEN_DEBUG"] = "1"


@pytest.fixture
def seed_garden(tmp_path: Path) -> Path:
    """A copy of the embedded garden (the three seed patterns)."""
    garden = tmp_path / "patterns"
    shutil.copytree(SEEDS, garden)
    return garden


@pytest.fixture
def seed_text() -> str:
    return (SEEDS / "self-leadership-vs-self-management.md").read_text("utf-8")


def needs_corpus():
    return pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus/patterns is not here")


# --- a real Prefect server, one per test session ---------------------------------------------

import json
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def prefect_env(tmp_path_factory):
    """Environment for subprocesses that talk to one real `prefect server start` on 127.0.0.1.

    Started once per session (it takes seconds, more the first time while it migrates its
    database); Prefect's home is a temporary folder, so nothing touches ~/.prefect. Its scheduler
    looks every few seconds rather than every minute, so tests of the schedule are quick.
    """
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = dict(os.environ, PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_API_URL=f"http://127.0.0.1:{port}/api", PREFECT_LOGGING_LEVEL="WARNING")
    env.pop("GARDEN_DEBUG", None)
    prefect = str(Path(sys.executable).with_name("prefect"))
    log = open(home / "server.log", "w")
    server_env = dict(env, PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5",
                      PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS="2")
    server = subprocess.Popen([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=server_env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.time() > deadline:
            server.kill()
            pytest.fail("prefect server did not start: " + (home / "server.log").read_text()[-2000:])
        time.sleep(0.5)
    env["GARDEN_PREFECT"] = prefect
    yield env
    from flows.server import stop_process

    stop_process(server, grace=20)
    log.close()


def garden_bin() -> str:
    return str(Path(sys.executable).with_name("garden"))


def make_garden(root: Path, count: int) -> Path:
    """A garden of `count` patterns made from the seeds: new slugs and titles, and bodies drawn
    from the seeds' sections pooled together, so patterns are alike in varying degrees."""
    import random

    root.mkdir(parents=True, exist_ok=True)
    seeds = sorted(SEEDS.glob("*.md"))
    heads, pool = [], []
    for seed in seeds:
        head, sep, body = seed.read_text("utf-8").partition("\n---\n\n")
        heads.append((seed.stem, head + sep))
        pool += body.split("\n---\n")
    rng = random.Random(7)
    for i in range(count):
        old_slug, head = heads[i % len(heads)]
        slug = f"{old_slug}-{i:04d}"
        head = head.replace(f"slug: {old_slug}", f"slug: {slug}").replace('title: "', f'title: "{i} ', 1)
        body = "\n---\n".join(rng.sample(pool, rng.randint(3, 8)))
        (root / f"{slug}.md").write_text(head + body.rstrip("\n") + "\n", "utf-8")
    return root


def tended_garden(root: Path, monkeypatch, count: int) -> dict:
    """A garden of `count` patterns at root/patterns (root made and made the working folder),
    tended once in this process with the wide review band: the tend's summary."""
    root.mkdir()
    monkeypatch.chdir(root)
    make_garden(root / "patterns", count)
    return tend_in_process(WIDE_REVIEW_POLICY)


def tend_in_process(policy=None, today=None):
    """One tend without Prefect (the Prefect path has its own tests): the same steps and events,
    on ./patterns and ./.garden/events.db."""
    import datetime as dt

    from events.store import EventStore
    from flows import tending
    from garden.policy import Policy
    from garden.settings import load_settings

    settings = load_settings()
    with EventStore(settings.db) as store:
        tend = tending.start_tend(settings, policy or Policy(), store, today=today or dt.date(2026, 11, 22))
        tending.run_steps(tend)
        return tending.finish_tend(tend)


def _wide_review_policy():
    from garden.policy import Policy

    # A wide review band, so a garden made from three seeds has accepted and pending proposals.
    # Offline link confidences are calibrated keep rates (0.98 at most): 0.975 accepts the closest pairs.
    return Policy(auto_accept=0.975, review_floor=0.5, min_link_confidence=0.5)


WIDE_REVIEW_POLICY = _wide_review_policy()


#: Run options and counts that say where a run ran, not what it did (`events_of` leaves them out).
RUNNER_OPTIONS = ("task_runner", "dask_address", "dask_workers", "second_process")


def events_of(root: Path) -> list[tuple]:
    """The log as (type, slug, actor, payload), ids numbered by position and times, run ids and
    the runner's options left out."""
    with sqlite3.connect(root / ".garden" / "events.db") as db:
        rows = db.execute("SELECT id, type, slug, actor, payload FROM events ORDER BY seq").fetchall()
    position = {row[0]: f"#{i}" for i, row in enumerate(rows)}

    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()
                    if k not in RUNNER_OPTIONS and k not in ("latency_ms", "published_at")}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return position.get(value, value) if isinstance(value, str) else value

    return [(kind, slug, actor, plain(json.loads(payload))) for _, kind, slug, actor, payload in rows]


def files_of(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "patterns").glob("*.md"))}


def verify(root: Path) -> None:
    done = subprocess.run([garden_bin(), "verify"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
