"""The application facade (`flows.app.GardenApp`) driven directly: one load of the state per
command, results equal to what the CLI prints with --json, exit statuses carried by the errors,
and the lock taken by the facade itself. A real garden and a real SQLite log throughout."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app as cli
from conftest import ROOT, make_garden, tended_garden
from flows.app import GardenApp
from flows.lock import LockedError, garden_lock
from garden.errors import GardenError
from garden.settings import load_settings

runner = CliRunner()


def garden_cmd(*args):
    return runner.invoke(cli, list(args))


def app_at(root: Path) -> GardenApp:
    return GardenApp(load_settings(garden=root / "patterns", db=root / ".garden" / "events.db"))


def verified(root: Path) -> bool:
    done = garden_cmd("verify", "--garden", str(root / "patterns"), "--db", str(root / ".garden" / "events.db"))
    assert done.exit_code == 0, done.stdout
    return True


def cli_json(root: Path, *args: str):
    done = garden_cmd(*args, "--garden", str(root / "patterns"), "--db", str(root / ".garden" / "events.db"),
                      "--json")
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def without_run_ids(result: dict, *run_ids: str) -> str:
    """A result as JSON with the runs it made (new ids each time) named by their order."""
    text = json.dumps(result, sort_keys=True)
    for n, run_id in enumerate(run_ids):
        text = text.replace(run_id, f"<run {n}>")
    return text


@pytest.fixture
def tended(tmp_path, monkeypatch) -> Path:
    """A tended garden of 40 patterns with proposals pending; its log at ./.garden/events.db."""
    root = tmp_path / "a"
    assert tended_garden(root, monkeypatch, 40)["pending"] > 0
    return root


def twin(root: Path) -> Path:
    """A copy of the garden and its log, byte for byte: the same command on both gives the same
    result (but for the ids of the runs it makes)."""
    other = root.parent / "b"
    shutil.copytree(root, other)
    return other


def first_pending(app: GardenApp) -> tuple[str, str]:
    found = app.review().found
    slug = next(iter(found))
    return slug, next(iter(found[slug]))


def test_review_loads_the_state_once_and_equals_the_cli_json(tended):
    app = app_at(tended)
    review = app.review()
    assert app.state_loads == [None]
    assert review.to_json() == cli_json(tended, "review")
    assert review.count == sum(len(g["proposals"]) for g in review.to_json())


def test_accept_loads_the_state_once_and_returns_what_the_cli_prints(tended):
    other = twin(tended)
    app = app_at(tended)
    slug, pid = first_pending(app)
    app.state_loads.clear()
    result = app.accept([pid], by="ana")
    assert app.state_loads == [None]  # the decision, the writes and their confirmations: one load
    assert result.written == [slug] and not result.errors
    printed = cli_json(other, "accept", pid, "--by", "ana")
    assert without_run_ids(result.to_dict(), result.run_id) == without_run_ids(printed, printed["run_id"])
    assert (tended / "patterns" / f"{slug}.md").read_bytes() == (other / "patterns" / f"{slug}.md").read_bytes()
    assert verified(tended) and verified(other)


def test_reject_returns_what_the_cli_prints_and_deciding_again_is_an_error_of_status_1(tended):
    other = twin(tended)
    app = app_at(tended)
    slug, pid = first_pending(app)
    result = app.reject([pid], by="ana", note="not this")
    printed = cli_json(other, "reject", pid, "--by", "ana", "--note", "not this")
    assert without_run_ids(result.to_dict(), result.run_id) == without_run_ids(printed, printed["run_id"])
    app.state_loads.clear()
    with pytest.raises(GardenError) as again:
        app.reject([pid], by="ana")
    assert getattr(again.value, "exit_code", 1) == 1
    assert str(again.value).startswith(f"proposal {pid} was already rejected (event #")
    assert str(again.value).endswith("; nothing was decided")
    assert app.state_loads == [None]
    assert verified(tended)


def test_revert_loads_the_current_state_once_and_returns_what_the_cli_prints(tended):
    app = app_at(tended)
    slug, pid = first_pending(app)
    accepted = app.accept([pid], by="ana")
    other = twin(tended)
    app.state_loads.clear()
    reverted = app.revert(accepted.run_id, by="ana")
    # The current state once; the two points a run's diff needs (before it, after it) from snapshots.
    assert app.state_loads.count(None) == 1 and len(app.state_loads) == 3
    assert all(isinstance(until, int) for until in app.state_loads if until is not None)
    assert reverted.result.written == [slug] and reverted.plan.reopened[0][1] == pid
    printed = cli_json(other, "revert", accepted.run_id, "--by", "ana")
    assert (without_run_ids(reverted.to_dict(), reverted.result.run_id)
            == without_run_ids(printed, printed["run_id"]))
    assert pid in {p for g in app.review().to_json() for p in [q["id"] for q in g["proposals"]]}
    assert verified(tended) and verified(other)
    with pytest.raises(GardenError) as twice:
        app.revert(accepted.run_id)
    assert str(twice.value) == (f"run {accepted.run_id} was already reverted by run {reverted.result.run_id}; "
                                f"revert {reverted.result.run_id} to restore it")


def test_lift_and_diff(tended):
    app = app_at(tended)
    slug, pid = first_pending(app)
    proposal = app.review().found[slug][pid]
    rejected = app.reject([pid], by="ana")
    changes = app.diff(rejected.run_id)
    assert changes.to_dict() == cli_json(tended, "diff", rejected.run_id)
    options = ({"entity": proposal["entity_id"]} if proposal["kind"] == "entity"
               else {"target": proposal["target"], "link_type": proposal["link_type"]})
    app.state_loads.clear()
    lifted = app.lift(slug, by="ana", **options)
    assert app.state_loads == [None] and lifted.finished is None
    with pytest.raises(GardenError) as again:
        app.lift(slug, by="ana", **options)
    assert str(again.value).startswith(f"{slug}: no curator rejection of ")
    assert verified(tended)


def test_writing_methods_take_the_lock_themselves(tended):
    app = app_at(tended)
    slug, pid = first_pending(app)
    before = (tended / "patterns" / f"{slug}.md").read_bytes()
    with garden_lock(app.settings.db):  # another command holds it
        for call in (lambda: app.accept([pid]), lambda: app.reject([pid]), lambda: app.observe(),
                     lambda: app.revert("01ZZZZZZZZZZZZZZZZZZZZZZZZ"), lambda: app.propose()):
            with pytest.raises(LockedError) as held:
                call()
            assert held.value.exit_code == 2
            assert str(held.value).startswith("another tend is running on ")
    assert (tended / "patterns" / f"{slug}.md").read_bytes() == before
    assert app.accept([pid]).written == [slug]
    assert verified(tended)


def test_health_loads_the_state_once_and_equals_the_cli_json(tended):
    app = app_at(tended)
    report = app.health()
    assert app.state_loads == [None]
    assert report == cli_json(tended, "health")


def test_propose_is_one_call_into_flows_and_keeps_its_state_current(tended):
    app = app_at(tended)
    slug, _ = first_pending(app)
    app.state_loads.clear()
    proposed = app.propose([slug])
    assert app.state_loads == [None]
    assert proposed.tally.asked == 1 and proposed.proposer == "offline"
    assert set(proposed.to_dict()) == {"run_id", "proposer", "model", "counts", "errors", "proposals"}
    assert [r.run_id for r in app.runs()][0] == proposed.run_id
    assert verified(tended)


def test_expected_failures_carry_their_exit_status(tmp_path):
    app = GardenApp(load_settings(garden=tmp_path / "nowhere", db=tmp_path / "events.db"))
    with pytest.raises(GardenError) as missing:
        app.accept(["X"])
    assert str(missing.value) == f"{tmp_path / 'nowhere'}: no such folder; pass --garden DIR"
    assert getattr(missing.value, "exit_code", 1) == 1
    assert not (tmp_path / "events.db").exists()  # said before anything was created


TEND_BY_FACADE = """
import json, sys
from flows.app import GardenApp
from garden.settings import load_settings
app = GardenApp(load_settings())
try:
    result = app.tend(today="2026-11-22", progress=sys.argv[1] == "progress")
except Exception as e:
    print(json.dumps({"error": type(e).__name__, "exit_code": getattr(e, "exit_code", 1), "message": str(e)}))
else:
    print(json.dumps({"run_id": result["run_id"], "tended": result["tended"]}))
"""


def test_the_tend_flow_returns_its_failure_as_the_error_itself(tmp_path, prefect_env):
    """Through a real Prefect server: a held lock comes back as LockedError (not a message to
    parse), and progress is a flow parameter, not an environment variable."""
    make_garden(tmp_path / "patterns", 12)
    env = {k: v for k, v in prefect_env.items() if not k.startswith("GARDEN_") or k == "GARDEN_PREFECT"}

    def run(mode: str) -> tuple[dict, str]:
        done = subprocess.run([sys.executable, "-c", TEND_BY_FACADE, mode], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr

    with garden_lock(tmp_path / ".garden" / "events.db"):
        failed, said = run("quiet")
    assert failed["error"] == "LockedError" and failed["exit_code"] == 2
    assert failed["message"].startswith("another tend is running on .garden/events.db (pid")
    assert "another tend is running" not in said  # the caller says it; the flow did not log it
    done, said = run("progress")
    assert done["tended"] == 12
    assert "garden tend: observe: 12 patterns" in said
    assert verified(tmp_path)


def test_cli_modules_make_no_store_or_state_calls_of_their_own():
    """The CLI parses, calls the facade and prints: no event store, projection or lock of its own."""
    for path in sorted((ROOT / "cli").glob("*.py")):
        text = path.read_text("utf-8")
        for name in ("EventStore", "load_state", "garden_lock", "record_observation", "GARDEN_CLI",
                     "GARDEN_PROGRESS", ".prefix"):
            assert name not in text, f"{path.name} uses {name}"


def test_json_output_is_the_text_rich_printed(capsys):
    """--json is written at once (rich's renderer takes seconds on a big review), the same text."""
    import io

    from rich.console import Console

    from cli.common import print_json

    data = {"slug": "caf\u00e9-\u4e2d", "reason": "a\u0085b\u007f\u2028c \"q\" \\ \x1b[31m\nline",
            "n": [1, 2.5, -0.0, 1e-07, 123456789012345678901234567890, None, True], "empty": {}, "list": [],
            "nested": [{"a": {"b": []}}]}
    rich_out = io.StringIO()
    Console(file=rich_out, highlight=False, soft_wrap=True, width=200).print_json(json.dumps(data))
    print_json(data)
    assert capsys.readouterr().out == rich_out.getvalue()
