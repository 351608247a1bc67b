"""The nightly deployment for real: prefect.yaml deployed to a real server, run by a real worker."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, garden_bin, make_garden


def run(args: list[str], env: dict, cwd: Path = ROOT, timeout: int = 240) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


def api(env: dict, method: str, path: str, body: dict | None = None):
    """One call to the Prefect server's REST API (asked again while it answers 503, which its
    SQLite database says when busy)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(env["PREFECT_API_URL"] + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    for attempt in range(10):
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read()
            return json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            if e.code != 503 or attempt == 9:
                raise
            time.sleep(0.5)


def delete_deployment(env: dict) -> None:
    try:
        found = api(env, "GET", "/deployments/name/tend/nightly-tend")
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return
        raise
    api(env, "DELETE", f"/deployments/{found['id']}")  # and its scheduled runs


@pytest.fixture
def garden_pool(prefect_env) -> str:
    """The `prefect` command, with the work pool made and no `tend/nightly-tend` deployment on
    the shared server, before and after: no test's worker meets another test's runs (nor a
    scheduled 03:00 run that would tend this repository's own patterns)."""
    prefect = prefect_env["GARDEN_PREFECT"]
    run([prefect, "work-pool", "create", "garden-pool", "--type", "process", "--overwrite"], prefect_env)
    delete_deployment(prefect_env)
    yield prefect
    delete_deployment(prefect_env)


def test_the_deployment_runs_on_a_worker_and_tends_the_garden(tmp_path, prefect_env, garden_pool):
    prefect = garden_pool
    garden = make_garden(tmp_path / "patterns", 30)
    db = tmp_path / "events.db"
    before = {p.name: p.read_bytes() for p in garden.iterdir()}
    run([prefect, "--no-prompt", "deploy", "--name", "nightly-tend"], prefect_env)
    inspect = run([prefect, "deployment", "inspect", "tend/nightly-tend"], prefect_env).stdout
    assert "'cron': '0 3 * * *'" in inspect and "'timezone': 'UTC'" in inspect
    run([prefect, "deployment", "run", "tend/nightly-tend", "--param", f"garden={garden}",
         "--param", f"db={db}", "--param", "today=2026-11-22"], prefect_env)
    run([prefect, "worker", "start", "--pool", "garden-pool", "--run-once"], prefect_env, timeout=300)
    after = {p.name: p.read_bytes() for p in garden.iterdir()}
    changed = [name for name in before if before[name] != after[name]]
    assert changed and all(b"last_pruned: 2026-11-22" in after[name] for name in changed)
    runs = json.loads(run([garden_bin(), "runs", "--db", str(db), "--json"], prefect_env).stdout)
    assert [r["status"] for r in runs] == ["completed"]
    assert runs[0]["counts"]["files_written"] == len(changed)
    verify = subprocess.run([garden_bin(), "verify", "--garden", str(garden), "--db", str(db)],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout
