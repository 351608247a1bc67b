"""A Prefect database migrated by a newer Prefect sharing the same PREFECT_HOME (seen on this
machine: a tool's venv with Prefect 3.9 ran once against ~/.prefect) made `garden tend` print
the temporary server's alembic traceback. It now says what is wrong and what to do, in one line,
before any server starts, and records nothing."""

from __future__ import annotations

import os
import sqlite3
import subprocess

from conftest import garden_bin, make_garden


def test_a_database_of_a_newer_prefect_is_named_with_what_to_do(tmp_path):
    home = tmp_path / "prefect-home"
    home.mkdir()
    with sqlite3.connect(home / "prefect.db") as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('27d8f4e1a6c9')")
    make_garden(tmp_path / "patterns", 3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    done = subprocess.run([garden_bin(), "tend"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    import prefect

    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: Prefect's database {home / 'prefect.db'} was migrated by a newer Prefect (revision "
        f"27d8f4e1a6c9 is unknown to Prefect {prefect.__version__}, which graph-garden uses): move it "
        "aside, or set PREFECT_HOME to another folder, and run again")
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / ".garden" / "events.db").exists()
