"""Nothing from a file, a model's answer or a cache runs code or escapes (issue 11).

Each test plays the attacker with real files, a real SQLite cache, the real `garden` CLI (in a
subprocess where the output's exact bytes matter) and a fake OpenAI server over HTTP.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import sqlite3
import subprocess
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from cli.main import app
from conftest import SEEDS, garden_bin, tend_in_process
from fake_openai import answer, fake_openai

runner = CliRunner()


def garden(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([garden_bin(), *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "GARDEN_DEBUG": "1", **(env or {})}, timeout=120)


@pytest.fixture
def here(seed_garden: Path, monkeypatch) -> Path:
    """The working directory: the seed garden in ./patterns, the log in ./.garden."""
    monkeypatch.chdir(seed_garden.parent)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GARDEN_MODEL", "GARDEN_PROPOSER"):
        monkeypatch.delenv(name, raising=False)
    return seed_garden.parent


# --- the parse cache holds data, never code ---------------------------------------------------


class _Payload:
    """Unpickling this creates `marker` (what an attacker's payload would run instead)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _set_every_row(cache: Path, data: bytes) -> int:
    conn = sqlite3.connect(cache)
    with conn:
        changed = conn.execute("UPDATE parsed SET data = ?", (data,)).rowcount
    conn.close()
    return changed


def test_a_poisoned_parse_cache_runs_no_code_and_is_parsed_again(here):
    first = garden("check", cwd=here)
    assert first.returncode == 0, first.stderr
    cache = here / ".garden" / "parse-cache.db"
    marker = here / "pwned"
    assert _set_every_row(cache, pickle.dumps(_Payload(marker))) == 3

    poisoned = garden("check", cwd=here)
    assert not marker.exists()
    assert (poisoned.returncode, poisoned.stdout, poisoned.stderr) == (0, first.stdout, first.stderr)
    # The re-parse replaced the poisoned rows: the next run is warm again, with the same output.
    assert pickle.dumps(_Payload(marker)) not in cache.read_bytes()
    assert garden("check", cwd=here).stdout == first.stdout


GARBAGE = {
    "bytes": b"garbage",
    "wrong-shape": b'{"pattern": 1}',
    "wrong-list": orjson.dumps([None, "x"]),
    "invalid-pattern": orjson.dumps({"pattern": {"json": {"slug": 7}, "typed": []}, "problems": []}),
    "misplaced-typed-value": orjson.dumps({"pattern": {"json": {"slug": "x"}, "typed": [[["slug"], "date", "2026-01-01"]]},
                                           "problems": []}),
    "bad-problem": orjson.dumps({"pattern": None, "problems": [["p", "1", 1, "fatal", "m", "c"]]}),
}


def test_a_garbage_cache_row_is_a_miss(here):
    first = garden("check", "--json", cwd=here)
    assert first.returncode == 0, first.stderr
    for name, data in GARBAGE.items():
        assert _set_every_row(here / ".garden" / "parse-cache.db", data) == 3
        again = garden("check", "--json", cwd=here)
        assert (again.returncode, again.stdout, again.stderr) == (0, first.stdout, first.stderr), name


def test_the_cache_gives_back_exactly_what_parsing_gives(here, monkeypatch):
    """Every YAML value a frontmatter can hold survives the cache as itself (a write compares
    the file's other keys with them)."""
    from events.parse_cache import ParseCache
    from garden.catalog import load_garden

    (here / "patterns" / "odd.md").write_text(
        "---\nslug: odd\ncreated: 2026-01-05\nwhen: 2026-01-05 10:20:30+02:00\n"
        "1: one\nnull: nothing\n2026-02-01: a date key\nnan: .nan\ninf: -.inf\nbig: 123456789012345678901234567890\n"
        "blob: !!binary aGVsbG8=\nset: !!set {a: null}\nnested: {a: [1, 2.5, true, {b: ~}]}\n"
        '"\\0odd": zero\nempty: {}\n'
        "graph_garden:\n  last_pruned: 2026-01-01\n  entities:\n    - id: x\n      extra: 2026-01-02\n"
        "---\nbody\n", "utf-8")
    cache = here / "cache.db"
    cold = load_garden(here / "patterns", cache=ParseCache(cache))

    def no_parsing(*args):
        raise AssertionError("parsed again: the cache did not answer")

    monkeypatch.setattr("garden.catalog.parse_document", no_parsing)
    warm = load_garden(here / "patterns", cache=ParseCache(cache))
    def without_nan(patterns):  # nan is not equal to itself
        return {slug: p.model_copy(update={"frontmatter": {k: v for k, v in p.frontmatter.items() if k != "nan"}})
                for slug, p in patterns.items()}

    assert without_nan(warm.patterns) == without_nan(cold.patterns) and warm.problems == cold.problems
    fm = warm.patterns["odd"].frontmatter
    assert math.isnan(fm["nan"]) and fm[1] == "one" and fm[None] == "nothing"
    assert fm["blob"] == b"hello" and fm["set"] == {"a"} and fm["\0odd"] == "zero"


# --- a slug check rejects is never a link target ----------------------------------------------

BAD_SLUGS = {
    "dotdot.md": "../../etc/x",
    "absolute.md": "/etc/passwd",
    "newline.md": "self-leadership-vs-self-management\\nforged",
}


def _bad_copies(patterns: Path) -> None:
    """Copies of a seed (so they rank first for it) whose slugs `check` rejects."""
    seed = (patterns / "self-leadership-vs-self-management.md").read_text("utf-8")
    for name, slug in BAD_SLUGS.items():
        text = seed.replace("slug: self-leadership-vs-self-management", f'slug: "{slug}"', 1)
        assert text != seed
        (patterns / name).write_text(text, "utf-8")


def test_a_rejected_slug_is_never_ranked_proposed_or_written(here):
    _bad_copies(here / "patterns")
    before = {name: (here / "patterns" / name).read_bytes() for name in BAD_SLUGS}
    summary = tend_in_process()
    assert summary["proposed"] > 0  # the seeds link to each other: the tend did its work
    for path in (here / "patterns").iterdir():
        text = path.read_text("utf-8")
        assert "etc/" not in text.partition("graph_garden:")[2], path.name
        assert "forged" not in text.partition("graph_garden:")[2], path.name
    assert {name: (here / "patterns" / name).read_bytes() for name in BAD_SLUGS} == before
    events = sqlite3.connect(here / ".garden" / "events.db").execute("SELECT payload FROM events").fetchall()
    assert not [p for (p,) in events if "etc/" in p or "forged" in p]
    verify = garden("verify", cwd=here)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_every_proposers_targets_must_be_valid_slugs():
    from garden.proposal import ProposalRequest
    from garden.validate import check_answer

    request = ProposalRequest(slug="a", title="A", summary="", keywords=(), text="", text_hash="h",
                              existing_links=(), existing_entities=(), curated={}, candidates=())
    bad = ["../../etc/x", "/etc/passwd", "b\nforged", "b\x1b[31m"]
    links = [{"target": t, "type": "enables", "confidence": 0.9, "reason": "r"} for t in [*bad, "b"]]
    checked = check_answer(request, {"inferred_links": links, "entities": []}, {"a", "b", *bad})
    assert [link.target for link in checked.links] == ["b"]
    assert [i.reason for i in checked.invalid] == [f"target {t!r} is not a valid slug" for t in bad]


# --- the API key never leaves the proposer ----------------------------------------------------

KEY = "sk-proj-Zq81xKv0aB7tSECRETtail9f3"


def _echo_authorization(server):
    """A server that puts the Authorization header it received into every field it answers."""

    def reply(body, index):
        auth = server.requests[index].headers["authorization"]  # "Bearer sk-..."
        document = json.loads(body["messages"][1]["content"])
        key = auth.removeprefix("Bearer ")
        links = [{"target": c["slug"], "type": "complementary", "confidence": 0.95,
                  "reason": f"the server saw {auth}; tail {key[-12:]}; bare {key[3:]}"}
                 for c in document["candidates"]]
        entities = [{"id": key.lower(), "type": "secret", "label": f"key {key}", "relevance": 0.95},
                    {"id": "echoed-key", "type": f"t {key}", "label": f"Label {auth}", "relevance": 0.9}]
        return answer({"inferred_links": links, "entities": entities})

    server.handle_with(reply)


def test_a_server_that_echoes_the_key_leaves_it_nowhere(here, monkeypatch):
    with fake_openai() as server:
        _echo_authorization(server)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("GARDEN_MODEL", "fake-model")
        monkeypatch.setenv("GARDEN_PROPOSER", "llm")
        summary = tend_in_process()
        assert len(server.requests) == 3 and summary["accepted"] > 0
        # A second tend of the same patterns answers from the response cache: scrubbed too.
        proposed = runner.invoke(app, ["propose", "--proposer", "llm", "--json"])
        assert proposed.exit_code == 0, proposed.output
        report = runner.invoke(app, ["report", summary["run_id"], "--html", "night.html"])
        assert report.exit_code == 0, report.output
        history = runner.invoke(app, ["history", "self-leadership-vs-self-management"])
    secrets = [s.lower() for s in (KEY, KEY[3:], KEY[-12:])]
    written = [p for p in (here / "patterns").iterdir() if "[redacted]" in p.read_text("utf-8")]
    assert written, "the echoed reasons were written, without the key"
    for path in [*(here / "patterns").iterdir(), *(here / ".garden").iterdir(), here / "night.html"]:
        data = path.read_bytes().lower()
        assert not [s for s in secrets if s.encode() in data], path
    for output in (proposed.output, report.output, history.output):
        assert not [s for s in secrets if s in output.lower()]
    assert "[redacted]" in history.output
    verify = garden("verify", cwd=here)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_scrub_removes_the_key_in_every_form():
    from proposers.llm import scrub_answer

    raw = {"a": [f"Bearer {KEY}", f"...{KEY[-10:]}", KEY[3:], {KEY: "v"}], "n": 1, "ok": "keep these words"}
    assert scrub_answer(raw, KEY) == {
        "a": ["Bearer [redacted]", "...[redacted]", "[redacted]", {"[redacted]": "v"}], "n": 1,
        "ok": "keep these words"}


# --- file content cannot forge or colour check's output ---------------------------------------

FORGED = "x\nfake.md:1:1: error: forged\x1b[31m"


def test_a_slug_with_control_characters_is_one_escaped_line(here):
    (here / "patterns" / "bad.md").write_text(
        '---\nslug: "x\\nfake.md:1:1: error: forged\\e[31m"\ntitle: t\n---\nbody\n', "utf-8")
    (here / "patterns" / "y\nforged.md").write_text('---\nslug: "y\\nforged"\n---\nbody\n', "utf-8")
    result = garden("check", cwd=here)
    assert result.returncode == 1
    assert "\x1b" not in result.stdout + result.stderr
    assert [line for line in result.stdout.splitlines() if "forged" in line] == [
        'patterns/bad.md:2:1: error: slug "x\\nfake.md:1:1: error: forged\\x1b[31m" is not a valid '
        "slug: use letters, digits, '-', '_' and '.' only, starting with a letter or digit "
        '(such as the file name, "bad")',
        'patterns/y\\nforged.md:2:1: error: slug "y\\nforged" is not a valid slug: use letters, '
        "digits, '-', '_' and '.' only, starting with a letter or digit",
    ]
    as_json = garden("check", "--json", cwd=here)
    problems = json.loads(as_json.stdout)["problems"]
    assert [(p["path"], p["code"]) for p in problems if p["level"] == "error"] == [
        ("patterns/bad.md", "invalid-slug"), ("patterns/y\nforged.md", "invalid-slug")]
    assert FORGED in problems[0]["message"]


def test_escape_text_shows_control_characters_as_escapes():
    from garden.errors import Problem, escape_text

    assert escape_text(FORGED) == "x\\nfake.md:1:1: error: forged\\x1b[31m"
    assert escape_text("tab\there\r\u2028\u202e\x00 é — ok") == "tab\\there\\r\\u2028\\u202e\\x00 é — ok"
    assert str(Problem("a\nb.md", 1, 2, "error", FORGED, "c")) == (
        "a\\nb.md:1:2: error: x\\nfake.md:1:1: error: forged\\x1b[31m")


def test_history_and_health_escape_what_a_block_says(here):
    """A hand-written block's link target with a newline and an ESC: pruned by the tend, named by
    `history` and `health`, each on one line, with no terminal escape."""
    path = here / "patterns" / "distributed-leadership-design.md"
    text = path.read_text("utf-8").replace(
        "  inferred_links:\n",
        '  inferred_links:\n    - target: "gone\\e[31m\\n#1 forged"\n      type: enables\n'
        '      confidence: 0.1\n      reason: "r"\n', 1)
    path.write_text(text, "utf-8")
    health = garden("health", cwd=here)
    tend_in_process()
    history = garden("history", "distributed-leadership-design", cwd=here)
    for result in (health, history):
        assert result.returncode == 0, result.stderr
        output = result.stdout + result.stderr
        assert "\x1b" not in output
        assert [line for line in output.splitlines() if "forged" in line] == [
            line for line in output.splitlines() if "gone\\x1b[31m\\n#1 forged" in line]
    # re-assessed first (a target not in the garden scores 0), then pruned
    assert [line for line in history.stdout.splitlines() if "forged" in line][-1].endswith(
        'pruned link -> gone\\x1b[31m\\n#1 forged (enables) by min_link_confidence {"confidence": 0.0, "threshold": 0.65}')
