"""`garden serve`'s pattern page and health page over HTTP: a real server (a `garden serve`
subprocess) over a tended garden, its truth read from the files and the real CLI.

One garden for the module (tended once; nothing here writes after the setup): a pattern whose
title holds a `<script>`, a rejection whose note holds one, and a few curator decisions so the
precision chart has labels.
"""

from __future__ import annotations

import json
import os
import re
from html import unescape
from pathlib import Path

import frontmatter
import pytest

from conftest import WIDE_REVIEW_POLICY, make_garden, tend_in_process
from served import client, garden, served, verified

SCRIPT_TITLE = "<script>alert(1)</script> & co"
SCRIPT_NOTE = "<script>alert(2)</script> too vague"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("pages")
    make_garden(root / "patterns", 40)
    first = sorted((root / "patterns").glob("*.md"))[0]
    first.write_text(first.read_text("utf-8").replace('title: "0 ', f'title: "{SCRIPT_TITLE} 0 ', 1), "utf-8")
    before = os.getcwd()
    os.chdir(root)
    try:
        assert tend_in_process(WIDE_REVIEW_POLICY)["pending"] > 4
    finally:
        os.chdir(before)
    pending = [{**p, "slug": g["slug"]} for g in json.loads(garden(root, "review", "--json").stdout)
               for p in g["proposals"]]
    links = [p for p in pending if p["kind"] == "link"]
    rejected, accepted = links[0], [p["id"] for p in pending if p is not links[0]][:3]
    assert garden(root, "reject", rejected["id"], "--by", "ana", "--note", SCRIPT_NOTE).returncode == 0
    assert garden(root, "accept", *accepted, "--by", "ana").returncode == 0
    assert verified(root)
    with served(root) as base, client(base) as http:
        yield {"root": root, "http": http, "rejected": rejected, "script_slug": first.stem}


def section(html: str, element_id: str, end: str) -> str:
    """The page's text from the element with this id to the first `end` after it."""
    start = html.index(f'id="{element_id}"')
    return html[start:html.index(end, start)]


def listed(html: str, element_id: str) -> list[tuple[str, str]]:
    """(slug, via) of every item of one of the neighbour lists."""
    return re.findall(r'<li data-slug="([^"]*)" data-via="([^"]*)"', section(html, element_id, "</ul>"))


def history_rows(html: str) -> list[str]:
    return re.findall(r'<tr class="event" data-type="[^"]*" data-seq="[^"]*">.*?</tr>', section(html, "history", "</table>"),
                      re.S)


def front(path: Path) -> dict:
    return frontmatter.loads(path.read_text("utf-8")).metadata


def links_in_files(root: Path) -> dict[str, dict]:
    """Each pattern's inferred link targets and curated targets, read from its file."""
    found = {}
    for path in sorted((root / "patterns").glob("*.md")):
        meta = front(path)
        curated = [r["slug"] for rs in (meta.get("relationships") or {}).values() for r in rs or []]
        inferred = [link["target"] for link in (meta.get("graph_garden") or {}).get("inferred_links") or []]
        found[meta["slug"]] = {"inferred": inferred, "curated": curated, "title": meta["title"]}
    return found


def a_linked_pattern(site) -> str:
    """A pattern with inferred links both ways and curated links."""
    files = links_in_files(site["root"])
    return next(slug for slug, f in files.items() if f["inferred"] and f["curated"] and slug != site["script_slug"]
                and any(slug in g["inferred"] for g in files.values()))


def test_the_pattern_page_shows_its_block_its_neighbours_both_ways_and_its_history(site):
    root, http = site["root"], site["http"]
    slug = a_linked_pattern(site)
    files = links_in_files(root)
    answer = http.get(f"/patterns/{slug}")
    assert answer.status_code == 200
    html = answer.text
    assert f'<h1 id="title">{files[slug]["title"]}</h1>' in html

    # The block as the file has it.
    text = (root / "patterns" / f"{slug}.md").read_text("utf-8")
    block = text[text.index("graph_garden:\n"):]
    block = block[:block.index("\n", block.index("  inferred_links:"))]  # up to the first link
    assert block in unescape(section(html, "block", "</pre>"))

    # Neighbours both ways, as the files say.
    assert listed(html, "outgoing") == [(t, "inferred") for t in files[slug]["inferred"]]
    assert listed(html, "curated") == [(t, "curated") for t in sorted(set(files[slug]["curated"]))]
    incoming = sorted((other, "inferred") for other, f in files.items() if slug in f["inferred"])
    incoming += sorted((other, "curated") for other, f in files.items() if slug in f["curated"] and other != slug)
    assert listed(html, "incoming") == incoming
    picture = section(html, "picture", "</svg>")
    for other in {o for o, _ in listed(html, "outgoing") + listed(html, "curated") + incoming}:
        assert f'href="/patterns/{other}"' in picture
    assert picture.count('class="edge inferred out"') == len(files[slug]["inferred"])
    assert picture.count('class="edge inferred in"') == sum(v == "inferred" for _, v in incoming)

    # The history: every event, each link's reason beside it, runs linked to their page.
    events = json.loads(garden(root, "history", slug, "--json").stdout)
    rows = history_rows(html)
    assert len(rows) == len(events)
    proposed = next(e for e in events if e["payload"]["type"] == "LinkProposed")
    row = next(r for r in rows if f'data-seq="{proposed["seq"]}"' in r)
    assert proposed["payload"]["target"] in row and unescape(row).count(proposed["payload"]["reason"]) == 1
    assert f'<a href="/runs/{proposed["run_id"]}">' in row


def test_target_narrows_the_history_to_one_link(site):
    root, http = site["root"], site["http"]
    slug = a_linked_pattern(site)
    target = links_in_files(root)[slug]["inferred"][0]
    html = http.get(f"/patterns/{slug}", params={"target": target}).text
    events = json.loads(garden(root, "history", slug, "--target", target, "--json").stdout)
    rows = history_rows(html)
    assert len(rows) == len(events) < len(json.loads(garden(root, "history", slug, "--json").stdout))
    assert all(target in row for row in rows)
    assert f"The history of the link to <strong>{target}</strong>" in html
    assert f'href="?target={target}#history">why?</a>' in html  # each link asks the same


def test_a_rejection_s_note_and_a_title_with_a_script_show_as_text(site):
    http, rejected = site["http"], site["rejected"]
    html = http.get(f"/patterns/{rejected['slug']}", params={"target": rejected["target"]}).text
    assert "&lt;script&gt;alert(2)&lt;/script&gt; too vague" in html
    page = http.get(f"/patterns/{site['script_slug']}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in section(page, "title", "</h1>")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section(page, "picture", "</svg>")
    linking = next(o for o, _ in listed(page, "incoming"))  # its title on another's page too
    other = http.get(f"/patterns/{linking}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in other
    for text in (html, page, other):
        assert "<script>alert" not in text


def test_an_unknown_pattern_is_a_404_page_saying_so(site):
    http = site["http"]
    answer = http.get("/patterns/no-such-pattern")
    assert answer.status_code == 404
    assert ('<p id="error" data-state="error">no pattern &#39;no-such-pattern&#39; in the log '
            "(run `garden observe`)</p>") in answer.text
    odd = http.get("/patterns/%3Cscript%3Ealert(3)%3C%2Fscript%3E")
    assert odd.status_code == 404 and "&lt;script&gt;alert(3)" in odd.text and "<script>alert" not in odd.text
    api = http.get("/api/patterns/no-such-pattern")
    assert api.status_code == 404 and api.json() == {"error": "no pattern 'no-such-pattern' in the log (run `garden observe`)"}


def test_the_api_gives_a_pattern_s_neighbours_beside_its_history(site):
    root, http = site["root"], site["http"]
    slug = a_linked_pattern(site)
    files = links_in_files(root)
    found = http.get(f"/api/patterns/{slug}").json()
    assert found["history"] == json.loads(garden(root, "history", slug, "--json").stdout)
    assert (found["slug"], found["title"], found["domain"]) == (slug, files[slug]["title"],
                                                              front(root / "patterns" / f"{slug}.md")["ontology"]["domain"])
    assert [link["target"] for link in found["block"]["inferred_links"]] == files[slug]["inferred"]
    assert [(n["slug"], n["via"], n["direction"]) for n in found["outgoing"]] == [
        (t, "inferred", "out") for t in files[slug]["inferred"]]
    assert [n["slug"] for n in found["curated"]] == sorted(set(files[slug]["curated"]))
    assert {(n["slug"], n["via"]) for n in found["incoming"]} == set(listed(http.get(f"/patterns/{slug}").text, "incoming"))
    link = found["outgoing"][0]
    assert link["title"] == files[link["slug"]]["title"] and 0 < link["confidence"] <= 1 and link["reason"]
    assert all(n["title"] is None for n in found["curated"] if n["slug"] not in files)  # outside the garden


def numbers(html: str, chart: str, column: int = 0) -> dict[str, float]:
    """A chart's table: each row's data-key and the data-value of its `column`-th value cell."""
    rows = re.findall(r'<tr data-key="([^"]*)">(.*?)</tr>', section(html, chart, "</figure>"), re.S)
    return {unescape(key): float(re.findall(r'data-value="([^"]*)"', cells)[column]) for key, cells in rows}


def test_the_health_page_draws_the_figures_garden_health_reports(site):
    root, http = site["root"], site["http"]
    report = json.loads(garden(root, "health", "--json").stdout)
    answer = http.get("/health")
    assert answer.status_code == 200
    html = answer.text
    for chart in ("chart-confidence", "chart-letters", "chart-links", "chart-precision"):
        assert "<svg" in section(html, chart, "</figure>"), chart
    confidence = numbers(html, "chart-confidence")
    assert {k: v for k, v in confidence.items() if v} == report["confidence_histogram"]
    assert len(confidence) >= 10
    letters = report["targets_by_first_letter"]
    assert numbers(html, "chart-letters", 0) == {k: letters["links"].get(k, 0.0) for k in letters["library"] | letters["links"]}
    assert numbers(html, "chart-letters", 1) == {k: letters["library"].get(k, 0.0) for k in letters["library"] | letters["links"]}
    assert f'<span id="letter-distance">{letters["total_variation"]}</span>' in html
    assert numbers(html, "chart-links") == report["patterns_by_link_count"]
    assert sum(report["patterns_by_link_count"].values()) == report["patterns"]
    bands = report["measured_precision"]["bands"]
    assert bands and list(numbers(html, "chart-precision").values()) == [b["precision"] for b in bands]
    assert list(numbers(html, "chart-precision", 1).values()) == [b["n"] for b in bands]
    assert 'aria-current="page">Health' in html


def test_the_health_page_says_when_no_curator_has_decided_yet(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 6)
    tend_in_process(WIDE_REVIEW_POLICY)
    with served(tmp_path) as base, client(base) as http:
        html = http.get("/health").text
    assert "No curator labels yet" in section(html, "no-labels", "</p>")
    assert "<svg" not in section(html, "chart-precision", "</figure>")
