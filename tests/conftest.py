"""Shared fixtures: small gardens built in tmp_path from the seed patterns."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

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

import socket
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
    database); Prefect's home is a temporary folder, so nothing touches ~/.prefect.
    """
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = dict(os.environ, PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_API_URL=f"http://127.0.0.1:{port}/api", PREFECT_LOGGING_LEVEL="WARNING")
    env.pop("GARDEN_DEBUG", None)
    prefect = str(Path(sys.executable).with_name("prefect"))
    log = open(home / "server.log", "w")
    server = subprocess.Popen([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
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
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def garden_bin() -> str:
    return str(Path(sys.executable).with_name("garden"))


def make_garden(root: Path, count: int) -> Path:
    """A garden of `count` patterns made from the seeds: new slugs and titles, sections reordered."""
    import random

    root.mkdir(parents=True, exist_ok=True)
    seeds = sorted(SEEDS.glob("*.md"))
    rng = random.Random(7)
    for i in range(count):
        text = seeds[i % len(seeds)].read_text("utf-8")
        old_slug = seeds[i % len(seeds)].stem
        slug = f"{old_slug}-{i:04d}"
        head, sep, body = text.partition("\n---\n\n")
        sections = body.split("\n---\n")
        rng.shuffle(sections)
        head = head.replace(f"slug: {old_slug}", f"slug: {slug}").replace('title: "', f'title: "{i} ', 1)
        (root / f"{slug}.md").write_text(head + sep + "\n---\n".join(sections), "utf-8")
    return root
