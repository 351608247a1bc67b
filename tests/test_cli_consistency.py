"""Every command alike: --garden and --db everywhere, results on stdout and diagnostics on
stderr, and a run or pattern that is not there is exit 1 with one message (issue 11)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli.main import app
from conftest import WIDE_REVIEW_POLICY, make_garden, tend_in_process

runner = CliRunner()

COMMANDS = ("tend", "check", "propose", "review", "accept", "reject", "lift", "diff", "revert", "runs",
            "history", "health", "report", "calibrate", "observe", "replay", "verify", "serve")


def test_every_command_is_in_the_table():
    assert sorted(c.name for c in app.registered_commands) == sorted(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_garden_and_db(command):
    help_text = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"}).stdout
    assert "--garden" in help_text and "--db" in help_text, help_text


@pytest.fixture
def tended(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 12)
    return tend_in_process(WIDE_REVIEW_POLICY)


BAD_RUN = "01ZZZZZZZZZZZZZZZZZZZZZZZZ"
NO_RUN = f"error: no run {BAD_RUN} in the log; `garden runs` lists them\n"
NO_PATTERN = "error: no pattern 'nope' in the log (run `garden observe`)\n"

MISSING = [
    (["review", "--run", BAD_RUN], NO_RUN),
    (["review", "--run", BAD_RUN.lower()], NO_RUN),
    (["review", "--pattern", "nope"], NO_PATTERN),
    (["history", "nope"], NO_PATTERN),
    (["history", "nope", "--target", "x"], NO_PATTERN),
    (["diff", BAD_RUN], NO_RUN),
    (["revert", BAD_RUN], NO_RUN),
    (["report", BAD_RUN], NO_RUN),
    (["accept", "--run", BAD_RUN], NO_RUN),
    (["accept", "--pattern", "nope"], NO_PATTERN),
    (["reject", "--run", BAD_RUN], NO_RUN),
    (["reject", "--pattern", "nope"], NO_PATTERN),
    (["lift", "nope", "--entity", "x"], NO_PATTERN),
    (["replay", "--check", "--until", BAD_RUN], NO_RUN),
    (["propose", "--pattern", "nope"], "error: no pattern 'nope' in the garden (see `garden check`)\n"),
]


def test_a_missing_run_or_pattern_is_exit_1_everywhere(tended):
    for args, message in MISSING:
        result = runner.invoke(app, args)
        assert (result.exit_code, result.stderr) == (1, message), args
        assert result.stdout == "", args
    assert runner.invoke(app, ["verify"]).exit_code == 0  # and none of them changed anything


def test_interactive_review_without_a_terminal_says_what_to_do(tended):
    result = runner.invoke(app, ["review", "--interactive"], input="a\n")
    assert (result.exit_code, result.stderr) == (
        1, "error: --interactive reads keys from a terminal, and stdin is not one; decide with "
           "`garden accept ID ...` / `garden reject ID ... --note TEXT`\n")


def test_a_known_pattern_with_no_such_link_is_not_an_error(tended):
    slug = sorted(json.loads(runner.invoke(app, ["diff", "--json"]).stdout)["patterns"])[0]
    result = runner.invoke(app, ["history", slug, "--target", "nowhere"])
    assert (result.exit_code, result.stdout) == (0, f"nothing in the log about {slug} and nowhere\n")


def test_results_go_to_stdout_and_only_diagnostics_to_stderr(tended):
    verify = runner.invoke(app, ["verify"])
    assert verify.exit_code == 0
    assert verify.stdout.startswith("verify ok: ") and verify.stderr == ""
    check = runner.invoke(app, ["replay", "--check"])
    assert check.exit_code == 0
    assert check.stdout.startswith("0 difference(s) between the files and the log at #") and check.stderr == ""
    validated = runner.invoke(app, ["check"])
    assert validated.exit_code == 0
    assert "garden check: patterns" in validated.stdout and "files read" in validated.stdout
    assert validated.stderr == ""
    diff = runner.invoke(app, ["diff"])
    assert f"run {tended['run_id']}: " in diff.stdout and diff.stderr == ""
    proposed = runner.invoke(app, ["propose"])
    assert proposed.exit_code == 0 and "patterns asked: " in proposed.stdout and proposed.stderr == ""


def test_a_failed_verify_says_so_on_stdout(tended):
    from pathlib import Path

    path = sorted(Path("patterns").glob("*.md"))[0]
    path.write_text(path.read_text().replace("confidence: 0.", "confidence: 0.0", 1))
    verify = runner.invoke(app, ["verify"])
    assert verify.exit_code == 1
    assert verify.stdout.splitlines()[-1].startswith("verify FAILED: ") and verify.stderr == ""
    check = runner.invoke(app, ["replay", "--check"])
    assert check.exit_code == 1 and check.stdout.splitlines()[-1].startswith("1 difference(s) between")


def test_garden_and_db_elsewhere(tended, tmp_path, monkeypatch):
    import shutil

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.move("patterns", elsewhere / "library")
    shutil.move(".garden", elsewhere / "log")
    where = ["--garden", str(elsewhere / "library"), "--db", str(elsewhere / "log" / "events.db")]
    for args in (["runs"], ["history", "distributed-leadership-design-0000"], ["diff"], ["verify"],
                 ["check"], ["replay", "--check"], ["health"], ["review", "--list"]):
        result = runner.invoke(app, args + where)
        assert result.exit_code == 0, (args, result.output)
