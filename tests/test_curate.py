"""Curators and maintainers: review, accept, reject, lift, diff, revert, health, report."""

from __future__ import annotations

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from cli.main import app
from conftest import WIDE_REVIEW_POLICY, make_garden, tend_in_process

runner = CliRunner()


def garden_cmd(*args, input=None):
    return runner.invoke(app, list(args), input=input)


POLICY = WIDE_REVIEW_POLICY


def tend_here(policy=POLICY):
    return tend_in_process(policy)


@pytest.fixture
def tended(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 40)
    originals = {p.name: p.read_bytes() for p in (tmp_path / "patterns").glob("*.md")}
    result = tend_here()
    assert result["pending"] > 0
    return {**result, "originals": originals}


def files_now():
    from pathlib import Path

    return {p.name: p.read_bytes() for p in Path("patterns").glob("*.md")}


def pending():
    return json.loads(garden_cmd("review", "--json").stdout)


def verified():
    result = garden_cmd("verify")
    assert result.exit_code == 0, result.stdout
    return True


def test_review_lists_pending_with_diffs_and_ids(tended):
    listing = pending()
    assert listing and all(group["proposals"] or group["merge_candidates"] for group in listing)
    first = listing[0]
    assert first["diff"].startswith(f"--- a/{first['slug']}\n+++ b/{first['slug']}")
    result = garden_cmd("review", "--list", "--pattern", first["slug"])
    assert result.exit_code == 0
    assert first["proposals"][0]["id"] in result.stdout
    assert "decide with `garden accept ID ...`" in result.stderr


def test_accept_writes_at_once_and_deciding_twice_changes_nothing(tended):
    group = pending()[0]
    pid = group["proposals"][0]["id"]
    before = open(f"patterns/{group['slug']}.md").read()
    result = garden_cmd("accept", pid, "--by", "ana", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["written"] == [group["slug"]]
    assert open(f"patterns/{group['slug']}.md").read() != before
    again = garden_cmd("accept", pid, "--by", "ana")
    assert again.exit_code == 1
    assert f"error: proposal {pid} was already accepted (event #" in again.stderr
    assert "by curator:ana" in again.stderr and again.stderr.endswith("; nothing was decided\n")
    unknown = garden_cmd("reject", "01ZZZZZZZZZZZZZZZZZZZZZZZZ")
    assert unknown.stderr == ("error: no proposal 01ZZZZZZZZZZZZZZZZZZZZZZZZ in the log (`garden review` "
                              "lists the pending ones); nothing was decided\n")
    assert verified()


def test_a_rejected_link_is_not_proposed_again_until_lifted(tended):
    group = next(g for g in pending() if any(p["kind"] == "link" for p in g["proposals"]))
    link = next(p for p in group["proposals"] if p["kind"] == "link")
    result = garden_cmd("reject", link["id"], "--by", "bo", "--note", "not related")
    assert result.exit_code == 0, result.output
    tend_here(POLICY.model_copy(update={"retend_after_days": 0}))
    conn = sqlite3.connect(".garden/events.db")
    again = conn.execute(
        "SELECT count(*) FROM events WHERE type = 'LinkProposed' AND slug = ? AND "
        "json_extract(payload, '$.target') = ? AND json_extract(payload, '$.link_type') = ?",
        [group["slug"], link["target"], link["link_type"]]).fetchone()[0]
    assert again == 1  # only the first proposal; the second tend did not propose it again
    lifted = garden_cmd("lift", group["slug"], "--target", link["target"], "--type", link["link_type"])
    assert lifted.exit_code == 0, lifted.output
    tend_here(POLICY.model_copy(update={"retend_after_days": 0}))
    again = conn.execute(
        "SELECT count(*) FROM events WHERE type = 'LinkProposed' AND slug = ? AND "
        "json_extract(payload, '$.target') = ?", [group["slug"], link["target"]]).fetchone()[0]
    assert again == 2
    assert verified()


def test_diff_and_revert_of_a_run_and_of_the_revert(tended):
    first_run = tended["run_id"]
    files = {p: open(p).read() for p in sorted(__import__("glob").glob("patterns/*.md"))}
    diff = garden_cmd("diff", first_run, "--json")
    changed = json.loads(diff.stdout)["patterns"]
    assert changed and all(text.startswith("--- a/") for text in changed.values())
    assert json.loads(diff.stdout)["counts"]["accepted"] > 0
    revert = garden_cmd("revert", first_run, "--by", "maint", "--note", "bad night", "--json")
    assert revert.exit_code == 0, revert.output
    reverting_run = json.loads(revert.stdout)["run_id"]
    # Every file is back byte for byte: blocks the run created gone, stamps and styles as they were.
    assert files_now() == tended["originals"]
    runs = {r["run_id"]: r["status"] for r in json.loads(garden_cmd("runs", "--json").stdout)}
    assert runs[first_run] == "reverted"
    assert verified()
    twice = garden_cmd("revert", first_run)
    assert twice.exit_code == 1
    assert twice.stderr == (f"error: run {first_run} was already reverted by run {reverting_run}; "
                            f"revert {reverting_run} to restore it\n")
    again = garden_cmd("revert", reverting_run, "--by", "maint", "--json")
    assert again.exit_code == 0, again.output
    runs = {r["run_id"]: r["status"] for r in json.loads(garden_cmd("runs", "--json").stdout)}
    assert runs[first_run] == "restored"
    for path, text in files.items():
        body = open(path).read()
        assert body == text, f"{path} differs after reverting the revert"
    assert verified()


def test_revert_stops_on_conflicts_unless_forced(tended):
    first_run = tended["run_id"]
    changed = json.loads(garden_cmd("diff", first_run, "--json").stdout)["patterns"]
    slug = sorted(changed)[0]
    text = open(f"patterns/{slug}.md").read()
    # A person removes every inferred link the run wrote: a later change to the same items.
    head, sep, rest = text.partition("  inferred_links:\n")
    tail = rest[rest.index("\n# "):] if "\n# " in rest else rest[rest.index("\ncontributors"):]
    open(f"patterns/{slug}.md", "w").write(head + "  inferred_links: []" + tail)
    assert garden_cmd("observe").exit_code == 0
    blocked = garden_cmd("revert", first_run)
    assert blocked.exit_code == 1
    assert f"later events changed what run {first_run} changed; nothing was reverted" in blocked.stderr
    assert f"  {slug}: link " in blocked.stderr
    as_json = garden_cmd("revert", first_run, "--json")
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert report["reverted_run"] == first_run and list(report["conflicts"]) == [slug]
    assert report["error"].startswith("later events changed")
    forced = garden_cmd("revert", first_run, "--force")
    assert forced.exit_code == 0, forced.output
    assert verified()


def test_health_and_report(tended, tmp_path):
    health = json.loads(garden_cmd("health", "--json").stdout)
    assert health["patterns"] == 40 and health["links"] > 0
    assert set(health["targets_by_first_letter"]["library"]) == {"d", "s"}
    assert health["never_tended"]["count"] == 0
    page = tmp_path / "report.html"
    result = garden_cmd("report", tended["run_id"], "--html", str(page))
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert f"graph-garden run <code>{tended['run_id']}</code>" in html


def pending_ids():
    return {p["id"] for group in pending() for p in group["proposals"]}


def test_revert_puts_back_files_that_had_no_block(tmp_path, monkeypatch):
    from pathlib import Path

    from garden.document import parse_document, put_block_text

    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 12)
    for path in sorted(Path("patterns").glob("*.md"))[::3]:  # a third of them without a block
        doc = parse_document(path, path.read_bytes())
        path.write_bytes(put_block_text(doc, None, None))
        assert b"graph_garden:" not in path.read_bytes()
    originals = files_now()
    run = tend_here()
    assert files_now() != originals
    # A replay to the tend's observation (before its writes) gives the files as they were.
    seen = sqlite3.connect(".garden/events.db").execute(
        "SELECT max(seq) FROM events WHERE type = 'GardenObserved'").fetchone()[0]
    assert garden_cmd("replay", "--until", str(seen), "--out", "before").exit_code == 0
    assert {p.name: p.read_bytes() for p in Path("before").glob("*.md")} == originals
    result = garden_cmd("revert", run["run_id"], "--json")
    assert result.exit_code == 0, result.output
    assert files_now() == originals
    assert verified()


def test_revert_never_overwrites_an_edit_the_log_has_not_seen(tended):
    first_run = tended["run_id"]
    slug = sorted(json.loads(garden_cmd("diff", first_run, "--json").stdout)["patterns"])[0]
    path = f"patterns/{slug}.md"
    text = open(path).read()
    head, sep, rest = text.partition("  inferred_links:\n")
    tail = rest[rest.index("\n# "):] if "\n# " in rest else rest[rest.index("\ncontributors"):]
    edited = head + "  inferred_links: []" + tail
    open(path, "w").write(edited)  # no `garden observe`: revert must notice it by itself
    blocked = garden_cmd("revert", first_run)
    assert blocked.exit_code == 1
    assert f"  {slug}: link " in blocked.stderr
    assert open(path).read() == edited
    history = garden_cmd("history", slug).stdout
    assert "edited outside graph-garden (block changed; the edit wins)" in history
    assert verified()


def test_reverting_a_reject_undoes_it(tended):
    group = next(g for g in pending() if any(p["kind"] == "link" for p in g["proposals"]))
    link = next(p for p in group["proposals"] if p["kind"] == "link")
    reject = garden_cmd("reject", link["id"], "--by", "bo", "--json")
    assert reject.exit_code == 0, reject.output
    assert link["id"] not in pending_ids()
    undo = garden_cmd("revert", json.loads(reject.stdout)["run_id"], "--json")
    assert undo.exit_code == 0, undo.output
    assert json.loads(undo.stdout)["reopened"] == [link["id"]]
    assert link["id"] in pending_ids()
    assert "reopened 1" in garden_cmd("runs").stdout
    # The rejection no longer holds the link back: it can be lifted no more, and accepted now.
    lift = garden_cmd("lift", group["slug"], "--target", link["target"], "--type", link["link_type"])
    assert lift.exit_code == 1 and "no curator rejection" in lift.stderr
    assert garden_cmd("accept", link["id"]).exit_code == 0
    assert verified()


def test_reverting_an_accept_puts_the_file_and_the_proposal_back(tended):
    group = pending()[0]
    pid = group["proposals"][0]["id"]
    before = files_now()
    accept = garden_cmd("accept", pid, "--json")
    assert accept.exit_code == 0 and files_now() != before
    undo = garden_cmd("revert", json.loads(accept.stdout)["run_id"])
    assert undo.exit_code == 0, undo.output
    assert files_now() == before
    assert pid in pending_ids()
    assert verified()


def test_reverting_the_revert_of_a_tend_brings_its_proposals_back(tended):
    waiting = pending_ids()
    assert waiting
    revert = garden_cmd("revert", tended["run_id"], "--json")
    assert set(json.loads(revert.stdout)["withdrawn"]) == waiting
    assert pending_ids() == set()
    again = garden_cmd("revert", json.loads(revert.stdout)["run_id"], "--json")
    assert again.exit_code == 0, again.output
    assert pending_ids() == waiting
    assert verified()


def test_a_chain_of_reverts_alternates_exactly(tended):
    """tend, revert, revert the revert, revert that: every other step is the same garden and
    the same pending proposals."""
    tended_files, waiting = files_now(), pending_ids()
    run = tended["run_id"]
    for step in range(3):
        result = garden_cmd("revert", run, "--json")
        assert result.exit_code == 0, result.output
        run = json.loads(result.stdout)["run_id"]
        undone = step % 2 == 0
        assert files_now() == (tended["originals"] if undone else tended_files)
        assert pending_ids() == (set() if undone else waiting)
        assert verified()
    assert json.loads(result.stdout)["redecided"]  # the third revert withdrew them all again


def test_reverting_the_revert_of_an_accept_accepts_again(tended):
    pid = next(iter(pending_ids()))
    accept = garden_cmd("accept", pid, "--json")
    accepted_files = files_now()
    undo = garden_cmd("revert", json.loads(accept.stdout)["run_id"], "--json")
    assert pid in pending_ids()
    redo = garden_cmd("revert", json.loads(undo.stdout)["run_id"], "--json")
    assert redo.exit_code == 0, redo.output
    assert json.loads(redo.stdout)["redecided"] == [pid]
    assert pid not in pending_ids() and files_now() == accepted_files
    history = garden_cmd("history", json.loads(accept.stdout)["decided"][0]["slug"], "--json")
    assert history.exit_code == 0
    assert verified()



def test_revert_puts_back_one_copy_of_a_link_given_twice(tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 6)
    path = sorted(Path("patterns").glob("*.md"))[0]
    text = path.read_text()
    head, sep, rest = text.partition("  inferred_links:\n")
    first = rest[: rest.index("    - target:", 4)]  # the first link, all its lines
    weak = first.replace(first.split("confidence: ")[1].split("\n")[0], "0.3")
    path.write_text(head + sep + first + weak + rest[len(first):])
    originals = files_now()
    run = tend_here()
    # Both copies are re-assessed (the target is not in this garden: 0) and pruned, one event each.
    assert path.read_text().count(first.splitlines()[0]) == 0
    changed = json.loads(garden_cmd("diff", run["run_id"], "--json").stdout)["patterns"]
    assert path.stem in changed
    result = garden_cmd("revert", run["run_id"], "--json")
    assert result.exit_code == 0, result.output
    assert files_now() == originals
    assert verified()


def test_revert_reports_each_file_it_could_not_put_back(tended):
    from pathlib import Path

    changed = sorted(json.loads(garden_cmd("diff", tended["run_id"], "--json").stdout)["patterns"])
    gone, broken = Path(f"patterns/{changed[0]}.md"), Path(f"patterns/{changed[1]}.md")
    kept = {gone: gone.read_bytes(), broken: broken.read_bytes()}
    gone.unlink()
    broken.write_bytes(broken.read_bytes().replace(b"slug:", b"slug: [", 1))
    result = garden_cmd("revert", tended["run_id"], "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    named = " ".join(report["errors"])
    assert changed[0] in named and changed[1] in named and len(report["errors"]) == 2
    assert f"run `garden revert {tended['run_id']}` again" in result.stderr
    # Every other file is back as it was.
    for name, data in files_now().items():
        if name not in (gone.name, broken.name):
            assert data == tended["originals"][name]
    # The files come back as they were; the same command finishes the revert.
    for path, data in kept.items():
        path.write_bytes(data)
    again = garden_cmd("revert", tended["run_id"], "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["finishing"] and sorted(json.loads(again.stdout)["written"]) == changed[:2]
    assert files_now() == tended["originals"]
    done = garden_cmd("revert", tended["run_id"])
    assert done.exit_code == 1 and "already reverted" in done.stderr
    assert verified()


KILLED_ACCEPT = """
import datetime as dt, os, sys
from pathlib import Path
from events.projection import load_state
from events.store import EventStore
from flows.writing import write_changed_blocks
from garden.catalog import load_garden
from garden.event import ProposalAccepted, RunStarted, event, new_id

with EventStore(Path(".garden/events.db")) as store:
    garden = load_garden(Path("patterns"))
    slug, pid = sys.argv[1], sys.argv[2]
    run = new_id()
    print(run, flush=True)
    store.append([event(RunStarted(proposer="curator"), run_id=run),
                  event(ProposalAccepted(proposal_id=pid, rule="curator"), slug=slug, run_id=run,
                        actor="curator:kim")])
    announced = []

    def record(events):  # the process dies after the files are renamed, before they are confirmed
        if announced:
            os._exit(9)
        announced.append(events)
        store.append(events)

    write_changed_blocks(record, garden, load_state(store), dt.date(2026, 11, 25), run, only={slug})
"""


def test_revert_of_a_run_killed_after_its_writes_puts_the_stamp_back(tended):
    import subprocess
    import sys

    group = pending()[0]
    before = files_now()
    child = subprocess.run([sys.executable, "-c", KILLED_ACCEPT, group["slug"], group["proposals"][0]["id"]],
                           capture_output=True, text=True)
    assert child.returncode == 9, child.stderr
    killed = child.stdout.strip()
    assert "last_pruned: 2026-11-25" in open(f"patterns/{group['slug']}.md").read()
    result = garden_cmd("revert", killed, "--json")
    assert result.exit_code == 0, result.output
    assert files_now() == before
    assert verified()



def test_revert_after_a_body_edit_puts_the_block_text_back_exactly(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 12)
    for path in Path("patterns").glob("*.md"):  # a style of its own: confidences written 0.920
        path.write_text(re.sub(r"(confidence: 0\.\d\d)\n", r"\g<1>0\n", path.read_text()))
    originals = files_now()
    run = tend_here()
    slug = sorted(json.loads(garden_cmd("diff", run["run_id"], "--json").stdout)["patterns"])[0]
    path = Path(f"patterns/{slug}.md")
    path.write_bytes(path.read_bytes() + b"\nA curator's note at the end.\n")
    assert garden_cmd("observe").exit_code == 0  # the log now holds the tended text as the newest
    result = garden_cmd("revert", run["run_id"], "--json")
    assert result.exit_code == 0, result.output
    assert path.read_bytes() == originals[path.name] + b"\nA curator's note at the end.\n"
    assert verified()
    assert garden_cmd("replay", "--out", "replayed").exit_code == 0  # a replay writes the same text
    assert Path(f"replayed/{path.name}").read_bytes() == path.read_bytes()


def test_revert_keeps_a_banner_the_file_had_before_the_run(tmp_path, monkeypatch):
    from pathlib import Path

    from garden.document import parse_document

    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 12)
    for path in sorted(Path("patterns").glob("*.md"))[::3]:  # the block out, its banner left
        doc = parse_document(path, path.read_bytes())
        start, end = doc.block_span
        path.write_text(doc.text[:start] + doc.text[end:])
    originals = files_now()
    run = tend_here()
    assert garden_cmd("revert", run["run_id"]).exit_code == 0
    assert files_now() == originals
    assert verified()


def test_a_crlf_file_saved_with_lf_since_is_reverted_in_lf(tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 9)
    for path in Path("patterns").glob("*.md"):
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    run = tend_here()
    slug = sorted(json.loads(garden_cmd("diff", run["run_id"], "--json").stdout)["patterns"])[0]
    path = Path(f"patterns/{slug}.md")
    path.write_bytes(path.read_bytes().replace(b"\r\n", b"\n"))  # an editor saved it with LF
    result = garden_cmd("revert", run["run_id"])
    assert result.exit_code == 0, result.output
    assert b"\r" not in path.read_bytes()
    assert verified()


def test_reverting_a_forced_revert_does_not_bring_back_what_a_later_run_pruned(tended):
    from conftest import tend_in_process
    import datetime as dt

    link = next(p for g in pending() for p in g["proposals"] if p["kind"] == "link")
    accept = json.loads(garden_cmd("accept", link["id"], "--json").stdout)
    slug = accept["decided"][0]["slug"]
    tend_in_process(POLICY.model_copy(update={"min_link_confidence": link["confidence"] + 0.01}),
                    today=dt.date(2026, 11, 25))
    # A curator's link is never pruned by a rule: the tend proposes it, and a curator agrees.
    [prune] = [p for g in pending() for p in g["proposals"] if p["kind"] == "prune" and g["slug"] == slug]
    assert garden_cmd("accept", prune["id"]).exit_code == 0

    def links_in_file():
        return open(f"patterns/{slug}.md").read().count(f"target: {link['target']}\n")

    assert links_in_file() == 0  # the later tend pruned it
    assert garden_cmd("revert", accept["run_id"]).exit_code == 1  # a conflict: the link changed since
    forced = json.loads(garden_cmd("revert", accept["run_id"], "--force", "--json").stdout)
    assert link["id"] in pending_ids()
    again = garden_cmd("revert", forced["run_id"], "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["redecided"] == [link["id"]]
    assert link["id"] not in pending_ids() and links_in_file() == 0
    assert verified()
