"""A curator's session on a copy of the real library sample, end to end (skips without it):
tend, review, accept some, reject some, tend again, revert the first run; the log verifies and
the files equal the projection at every step."""

from __future__ import annotations

import json
import shutil
import sqlite3

from typer.testing import CliRunner

from cli.main import app
from conftest import CORPUS, needs_corpus, tend_in_process
from garden.policy import Policy

runner = CliRunner()


def cmd(*args):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, f"garden {' '.join(args)}: {result.output}"
    return result


def verified():
    cmd("verify")
    assert json.loads(cmd("replay", "--check", "--json").stdout)["differences"] == []
    return True


@needs_corpus()
def test_a_curator_session_on_the_corpus(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(CORPUS, tmp_path / "patterns")
    originals = {p.name: p.read_bytes() for p in (tmp_path / "patterns").iterdir()}
    first = tend_in_process()
    assert first["files_written"] > 0 and verified()

    review = json.loads(cmd("review", "--json").stdout)
    links = [(g["slug"], p) for g in review for p in g["proposals"] if p["kind"] == "link"]
    accepted = [p["id"] for _, p in links[:5]]
    rejected = links[5:10]
    cmd("accept", *accepted, "--by", "ana")
    cmd("reject", *[p["id"] for _, p in rejected], "--by", "ana", "--note", "not the same idea")
    assert verified()

    second = tend_in_process(Policy(retend_after_days=0))
    assert second["tended"] == 600 and verified()
    conn = sqlite3.connect(".garden/events.db")
    for slug, p in rejected:
        n = conn.execute(
            "SELECT count(*) FROM events WHERE type = 'LinkProposed' AND slug = ? AND "
            "json_extract(payload, '$.target') = ?", [slug, p["target"]]).fetchone()[0]
        assert n == 1, f"{slug} -> {p['target']} was proposed again after a curator rejected it"

    runs = json.loads(cmd("runs", "--json").stdout)
    assert [r["status"] for r in runs].count("completed") == len(runs)
    diff = json.loads(cmd("diff", first["run_id"], "--json").stdout)
    assert len(diff["patterns"]) > 0
    revert = runner.invoke(app, ["revert", first["run_id"], "--by", "maint", "--json"])
    if revert.exit_code != 0:  # the curator's and the second night's changes touch the run's items
        assert "later events changed what run" in revert.stderr
        revert = runner.invoke(app, ["revert", first["run_id"], "--by", "maint", "--force", "--json"])
    assert revert.exit_code == 0, revert.output
    assert verified()
    health = json.loads(cmd("health", "--json").stdout)
    assert health["patterns"] == 600
    # Only graph_garden blocks ever changed: every file is its original outside the block.
    from garden.document import parse_document

    for name, raw in originals.items():
        now = (tmp_path / "patterns" / name).read_bytes()
        a, b = parse_document(tmp_path / name, raw), parse_document(tmp_path / name, now)
        strip = lambda d: d.text[: d.block_span[0]] + d.text[d.block_span[1]:] if d.block_span else d.text
        if b.block_span and not a.block_span:
            continue  # a block was added where the spec puts it
        assert strip(a) == strip(b), name
