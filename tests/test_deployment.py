"""The nightly deployment for real: prefect.yaml deployed to a real server, run by a real worker."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, garden_bin, make_garden


def run(args: list[str], env: dict, cwd: Path = ROOT, timeout: int = 240) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


def test_the_deployment_runs_on_a_worker_and_tends_the_garden(tmp_path, prefect_env):
    prefect = prefect_env["GARDEN_PREFECT"]
    garden = make_garden(tmp_path / "patterns", 30)
    db = tmp_path / "events.db"
    before = {p.name: p.read_bytes() for p in garden.iterdir()}
    run([prefect, "work-pool", "create", "garden-pool", "--type", "process", "--overwrite"], prefect_env)
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
