"""The curator's morning as issue 11 found it: `garden runs` counts that add up, a report of the
night's tend after the morning's accepts, and a refusal that names the decision in force."""

from __future__ import annotations

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from cli.main import app
from conftest import SEEDS, WIDE_REVIEW_POLICY, make_garden, tend_in_process
from fake_openai import answer, fake_openai

runner = CliRunner()
SLUGS = sorted(p.stem for p in SEEDS.glob("*.md"))


def garden_cmd(*args):
    return runner.invoke(app, list(args))


def test_runs_shows_pending_and_invalid_and_the_counts_add_up(seed_garden, monkeypatch):
    """On a garden's first tend every answer is accounted for:
    proposed + invalid = accepted + rejected + pending (rejected includes the invalid)."""
    monkeypatch.chdir(seed_garden.parent)

    def reply(request, index):
        return answer({
            "inferred_links": [  # one of the three is the pattern itself: invalid
                {"target": SLUGS[0], "type": "complementary", "confidence": 0.99, "reason": "Accepted."},
                {"target": SLUGS[1], "type": "requires", "confidence": 0.8, "reason": "For a curator."},
                {"target": SLUGS[2], "type": "tools", "confidence": 0.3, "reason": "Rejected."},
                {"target": "nowhere", "type": "enables", "confidence": 0.9, "reason": "Invalid."},
            ],
            "entities": [
                {"id": "Bad Id", "type": "concept", "label": "X", "relevance": 0.9},
                {"id": "shared-leadership", "type": "concept", "label": "Shared Leadership", "relevance": 0.8},
            ],
        })

    with fake_openai() as server:
        server.handle_with(reply)
        for name, value in {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": server.base_url,
                            "GARDEN_MODEL": "fake-model", "GARDEN_PROPOSER": "llm"}.items():
            monkeypatch.setenv(name, value)
        tended = tend_in_process(WIDE_REVIEW_POLICY)
    (run,) = json.loads(garden_cmd("runs", "--json").stdout)
    c = run["counts"]
    assert c["invalid"] >= 6 and c["pending"] > 0 and c["accepted"] > 0 and c["rejected"] > c["invalid"]
    assert c["proposed"] + c["invalid"] == c["accepted"] + c["rejected"] + c["pending"]
    shown = garden_cmd("runs").stdout
    assert (f"proposed {c['proposed']}, accepted {c['accepted']}, rejected {c['rejected']} "
            f"({c['invalid']} invalid), pending {c['pending']}, ") in shown
    assert tended["run_id"] in shown


@pytest.fixture
def tended(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 12)
    return tend_in_process(WIDE_REVIEW_POLICY)


def pending_ids():
    return [p["id"] for g in json.loads(garden_cmd("review", "--json").stdout) for p in g["proposals"]]


def test_report_after_the_mornings_accepts_shows_the_nights_tend(tended, tmp_path):
    accept = garden_cmd("accept", pending_ids()[0], "--by", "ana", "--json")
    assert accept.exit_code == 0, accept.output
    curator_run = json.loads(accept.stdout)["run_id"]
    page = tmp_path / "night.html"
    result = garden_cmd("report", "--html", str(page))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote night.html: run {tended['run_id']} (the last tend), ")
    html = page.read_text()
    assert f"graph-garden run <code>{tended['run_id']}</code>" in html
    assert (f'<p class="which">the last tend: run {tended["run_id"]}, a tend (offline/tfidf-v1), started '
            in html)
    assert "(`garden report RUN` shows another run)" in html
    chosen = garden_cmd("report", curator_run, "--html", str(page))
    assert chosen.exit_code == 0 and f"run {curator_run} (given)" in chosen.stdout
    assert f'<p class="which">run {curator_run}, garden accept by ana, started ' in page.read_text()


def test_an_id_no_longer_pending_names_the_decision_in_force(tended):
    pid = pending_ids()[0]
    accept = json.loads(garden_cmd("accept", pid, "--by", "ana", "--json").stdout)
    assert garden_cmd("revert", accept["run_id"], "--by", "ana").exit_code == 0
    assert pid in pending_ids()
    reject = garden_cmd("reject", pid, "--by", "bo", "--note", "on second thought", "--json")
    assert reject.exit_code == 0, reject.output
    (seq,) = sqlite3.connect(".garden/events.db").execute(
        "SELECT seq FROM events WHERE type = 'ProposalRejected' AND run_id = ?",
        [json.loads(reject.stdout)["run_id"]]).fetchone()
    again = garden_cmd("accept", pid)
    assert again.exit_code == 1
    assert again.stderr.startswith(f"error: proposal {pid} was already rejected (event #{seq} by curator:bo, ")
    assert garden_cmd("verify").exit_code == 0
