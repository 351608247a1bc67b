"""`garden serve`'s Runs pages over HTTP (a real `garden serve` subprocess, a real garden and
log): the list of runs, a run's diff pattern by pattern, the 404 of an unknown run, escaping,
and the revert API the page's button calls (409 with conflicts, then `force`; a file that cannot
be written). Every path that writes ends with `garden verify`. The page's script is driven in a
browser by tests/test_serve_browser.py."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from conftest import WIDE_REVIEW_POLICY, make_garden, tend_in_process
from served import WRITE, client, garden, remove_inferred_links, served, verified

SCRIPT_REASON = "<script>alert('run')</script> & more"


@pytest.fixture
def tended(tmp_path, monkeypatch) -> dict:
    """40 patterns tended with proposals pending; before the tend, one pattern's link had a reason
    with a script in it (the tend prunes that link: its diff shows the reason)."""
    root = tmp_path / "g"
    root.mkdir()
    monkeypatch.chdir(root)
    make_garden(root / "patterns", 40)
    first = sorted((root / "patterns").glob("*.md"))[0]
    text = first.read_text("utf-8")
    start = text.index('      reason: "')
    end = text.index("\n", start)
    first.write_text(text[:start] + f'      reason: "{SCRIPT_REASON}"' + text[end:], "utf-8")
    result = tend_in_process(WIDE_REVIEW_POLICY)
    assert result["pending"] > 0
    return {"root": root, "run_id": result["run_id"], "scripted": first.stem}


def rows(page: str) -> list[tuple[str, str]]:
    """(run id, status) of every row of the runs table, in order."""
    return re.findall(r'<tr class="run" data-run="([^"]+)" data-status="([^"]+)">', page)


def row(page: str, run_id: str) -> str:
    start = page.index(f'data-run="{run_id}"')
    return page[start:page.index("</tr>", start)]


def test_the_runs_page_lists_every_run_newest_first_with_what_who_and_counts(tended):
    root, tend = tended["root"], tended["run_id"]
    with served(root) as base, client(base) as http:
        item = next(i for i in http.get("/api/pending").json()["items"] if i["kind"] == "link")
        decided = http.post("/api/decisions", json={"id": item["id"], "decision": "accept", "by": "ana"}, headers=WRITE)
        assert decided.status_code == 200, decided.text
        accept_run = decided.json()["result"]["run_id"]
        answer = http.get("/runs")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    listed = json.loads(garden(root, "runs", "--json").stdout)
    assert rows(answer.text) == [(r["run_id"], r["status"]) for r in listed] == [
        (accept_run, "completed"), (tend, "completed")]
    tend_row, accept_row = row(answer.text, tend), row(answer.text, accept_run)
    assert f'<a href="/runs/{tend}">' in tend_row
    assert "<td>tend</td>" in tend_row and "<td>offline/" in tend_row
    counts = listed[1]["counts"]
    assert f"proposed {counts['proposed']}" in tend_row and f"accepted {counts['accepted']}" in tend_row
    assert "<td>accept</td>" in accept_row and "<td>curator:ana</td>" in accept_row
    assert 'aria-current="page">Runs</a>' in answer.text
    assert verified(root)


def test_a_run_s_page_shows_each_changed_pattern_s_diff_line_by_line(tended):
    root, tend = tended["root"], tended["run_id"]
    diff = json.loads(garden(root, "diff", tend, "--json").stdout)
    assert len(diff["patterns"]) > 1
    with served(root) as base, client(base) as http:
        answer = http.get(f"/runs/{tend.lower()}")  # the id as typed: any case
        paged = http.get(f"/runs/{tend}", params={"start": 10, "limit": 5})
        wrong = http.get(f"/runs/{tend}", params={"start": "x"})
    # A page of a run's patterns (a first tend on a large garden changes thousands)
    assert re.findall(r'data-slug="([^"]+)"', paged.text) == list(diff["patterns"])[10:15]
    assert f'Patterns 11 to 15 of {len(diff["patterns"])}.' in paged.text
    assert '<a id="prev-page" href="?start=5&amp;limit=5">' in paged.text
    assert '<a id="next-page" href="?start=15&amp;limit=5">' in paged.text
    assert wrong.status_code == 400
    assert "start must be a whole number and limit a positive one, not &#39;x&#39; and &#39;100&#39;" in wrong.text
    assert answer.status_code == 200 and 'id="diff-pages"' not in answer.text
    page = answer.text
    assert f'id="run" data-run="{tend}" data-status="completed"' in page
    sections = re.findall(r'<section class="pattern-diff" data-slug="([^"]+)">', page)
    assert sections == list(diff["patterns"])
    for slug, text in diff["patterns"].items():
        start = page.index(f'data-slug="{slug}"')
        section = page[start:page.index("</section>", start)]
        assert f'<a href="/patterns/{slug}">{slug}</a>' in section
        lines = re.findall(r'<span class="(add|del|ctx)">(.*)</span>', section)
        assert [html.unescape(t) for _, t in lines] == text.split("\n")
        for cls, t in lines:
            sign = html.unescape(t)[:1]
            assert cls == ("add" if sign == "+" and not t.startswith("+++") else
                           "del" if sign == "-" and not t.startswith("---") else "ctx"), t
        assert {cls for cls, _ in lines} == {"add", "del", "ctx"}
    assert 'id="revert"' in page and 'id="revert-note"' in page


def test_an_unknown_run_is_a_404_page_saying_so(tended):
    with served(tended["root"]) as base, client(base) as http:
        answer = http.get("/runs/01NOSUCHRUN")
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
    assert ('<p id="missing" data-state="error" role="alert">There is no run 01NOSUCHRUN in the log.'
            in answer.text)
    assert "Traceback" not in answer.text


def test_a_script_in_a_reason_shows_as_text_in_the_run_s_diff(tended):
    root, tend = tended["root"], tended["run_id"]
    with served(root) as base, client(base) as http:
        page = http.get(f"/runs/{tend}").text
    start = page.index(f'data-slug="{tended["scripted"]}"')
    section = page[start:page.index("</section>", start)]
    lines = [html.unescape(t) for t in re.findall(r'<span class="del">(.*)</span>', section)]
    assert f'-      reason: "{SCRIPT_REASON}"' in lines  # the removed line shows the reason as text
    assert "&lt;script&gt;alert(" in section and "<script>alert(" not in page


def test_revert_with_a_conflict_is_409_with_the_list_then_force_reverts_and_the_page_says_so(tended):
    root, tend = tended["root"], tended["run_id"]
    with served(root) as base, client(base) as http:
        slug = sorted(http.get(f"/api/runs/{tend}").json()["patterns"])[0]
        path = root / "patterns" / f"{slug}.md"
        remove_inferred_links(path)  # a later change to the same items
        assert garden(root, "observe").returncode == 0
        refused = http.post(f"/api/runs/{tend}/revert", json={"by": "ana"}, headers=WRITE)
        assert refused.status_code == 409, refused.text
        conflicts = refused.json()["conflicts"]
        assert list(conflicts) == [slug] and all(key.startswith("link ") for key in conflicts[slug])
        assert rows(http.get("/runs").text)[0] == (tend, "completed")  # nothing was reverted
        assert verified(root)

        bad = http.post(f"/api/runs/{tend}/revert", json={"force": "yes"}, headers=WRITE)
        assert bad.status_code == 400 and bad.json() == {"error": "force must be true or false"}

        forced = http.post(f"/api/runs/{tend}/revert", json={"by": "ana", "note": "too eager", "force": True},
                           headers=WRITE)
        assert forced.status_code == 200, forced.text
        done = forced.json()
        assert done["reverted_run"] == tend and slug in done["written"] and done["errors"] == []
        listed = http.get("/runs").text
        run_page = http.get(f"/runs/{tend}").text
    assert rows(listed) == [(done["run_id"], "completed"), (tend, "reverted")]
    assert f'by <a href="/runs/{done["run_id"]}">' in row(listed, tend)
    assert f"revert of {tend}" in row(listed, done["run_id"])
    assert f'data-run="{tend}" data-status="reverted"' in run_page
    assert f'<dd id="run-status">reverted by <a href="/runs/{done["run_id"]}">' in run_page
    runs = {r["run_id"]: r for r in json.loads(garden(root, "runs", "--json").stdout)}
    assert runs[tend]["status"] == "reverted" and runs[tend]["reverted_by"] == done["run_id"]
    assert verified(root)


def test_a_revert_that_cannot_write_a_file_is_500_with_the_error_and_a_second_revert_finishes(tended):
    root, tend = tended["root"], tended["run_id"]
    path = root / "patterns" / f"{tended['scripted']}.md"
    aside = root / "aside.md"
    path.rename(aside)  # the file is gone when the revert writes
    with served(root) as base, client(base) as http:
        failed = http.post(f"/api/runs/{tend}/revert", json={"by": "ana"}, headers=WRITE)
        assert failed.status_code == 500, failed.text
        body = failed.json()
        assert body["error"].startswith(f"reverted in the log, but not written: {tended['scripted']}: its file is not")
        assert body["reverted_run"] == tend
        aside.rename(path)
        again = http.post(f"/api/runs/{tend}/revert", json={"by": "ana"}, headers=WRITE)
        assert again.status_code == 200, again.text
        assert again.json()["written"] == [tended["scripted"]] and again.json()["finishing"] == body["run_id"]
    assert verified(root)


def test_in_the_browser_a_conflicting_revert_lists_the_conflicts_in_words_then_reverts_anyway(page, tended):
    from playwright.sync_api import expect

    root, tend = tended["root"], tended["run_id"]
    slug = sorted(json.loads(garden(root, "diff", tend, "--json").stdout)["patterns"])[0]
    path = root / "patterns" / f"{slug}.md"
    head, _, rest = path.read_text("utf-8").partition("  inferred_links:\n")
    tail = rest[rest.index("\n# "):] if "\n# " in rest else rest[rest.index("\ncontributors"):]
    path.write_text(head + "  inferred_links: []" + tail, "utf-8")  # a person's later change
    assert garden(root, "observe").returncode == 0
    with served(root) as base:
        with client(base) as http:  # a 409 changes nothing
            keys = http.post(f"/api/runs/{tend}/revert", json={}, headers=WRITE).json()["conflicts"][slug]
        page.goto(f"{base}/runs/{tend}")
        page.click("#revert")
        expect(page.locator("#revert-status")).to_have_text("not reverted: later changes conflict (listed below)")
        expect(page.locator("#revert-status")).to_have_attribute("data-state", "error")
        conflicts = page.locator("#conflicts li")
        expect(conflicts).to_have_count(len(keys))
        first = conflicts.first.text_content()
        assert re.fullmatch(rf"{re.escape(slug)}: the link to \S+ \(\w+\) was changed again after this run", first), first
        expect(page.locator("#run")).to_have_attribute("data-status", "completed")
        page.click("#revert-force")
        expect(page.locator("#revert-status")).to_contain_text(f"reverted run {tend} (run ")
        expect(page.locator("#revert-status")).to_have_attribute("data-state", "ok")
        expect(page.locator("#conflicts")).to_be_hidden()
        expect(page.locator("#run")).to_have_attribute("data-status", "reverted")
    runs = {r["run_id"]: r["status"] for r in json.loads(garden(root, "runs", "--json").stdout)}
    assert runs[tend] == "reverted"
    assert verified(root)
