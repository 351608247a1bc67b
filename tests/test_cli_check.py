"""`garden check` as a user runs it: messages, summary, JSON and exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


def test_check_on_the_embedded_garden_passes(seed_garden, monkeypatch):
    monkeypatch.chdir(seed_garden.parent)
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert "patterns" in result.stdout and "3" in result.stdout


def test_check_reports_problems_and_exits_1(seed_garden, monkeypatch):
    monkeypatch.chdir(seed_garden.parent)
    (seed_garden / "bad.md").write_text("---\nslug: bad\ntitle: [x\n---\n")
    result = runner.invoke(app, ["check", "--garden", "patterns"])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[:1] == [
        "patterns/bad.md:4:1: error: broken YAML: did not find expected ',' or ']' "
        "(while parsing a flow sequence)"
    ]


def test_check_json_and_warnings_only_exit_0(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    garden = tmp_path / "g"
    garden.mkdir()
    (garden / "old.md").write_text(
        "---\nslug: old\ngraph_garden:\n  last_pruned: '2026-02-16'\n  entities: []\n---\n"
    )
    result = runner.invoke(app, ["check", "--garden", "g", "--json"])
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["ok"] is True
    assert payload["summary"]["warnings"] == 1
    assert payload["problems"] == [
        {"path": "g/old.md", "line": 4, "col": 3, "level": "warning",
         "message": "last_pruned is a quoted date '2026-02-16'; read as 2026-02-16",
         "code": "legacy-date"}
    ]


def test_missing_garden_is_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["check", "--garden", "nowhere"])
    assert result.exit_code == 1
    assert result.stderr == "error: nowhere: no such folder; pass --garden DIR\n"


def test_the_console_script_runs(seed_garden):
    script = Path(sys.executable).with_name("garden")
    done = subprocess.run([str(script), "check", "--garden", str(seed_garden)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
