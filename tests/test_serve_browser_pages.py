"""`garden serve`'s health page and a pattern page in a real browser (headless Debian chromium,
tests/browser.py): the server-drawn SVG pictures render (boxes of non-zero size) and the pages
log no error.
"""

from __future__ import annotations

import pytest
from browser import run_server

from conftest import WIDE_REVIEW_POLICY, garden_bin, make_garden, tend_in_process


@pytest.fixture
def served(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 30)
    tend_in_process(WIDE_REVIEW_POLICY)
    with run_server([garden_bin(), "serve", "--port", "{port}"], cwd=tmp_path, ready="/api/health") as server:
        yield server


def drawn(locator) -> bool:
    box = locator.bounding_box()
    return box is not None and box["width"] > 0 and box["height"] > 0


def test_the_health_page_and_a_pattern_page_draw_their_pictures_in_a_browser(page, served, tmp_path):
    errors = []
    # A page's own errors; the browser's request for /favicon.ico (which the server has not) is not one.
    page.on("console", lambda m: errors.append(m.text) if m.type == "error"
            and not m.location.get("url", "").endswith("/favicon.ico") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(served.url + "/health")
    for chart in ("#chart-confidence", "#chart-letters", "#chart-links"):
        assert drawn(page.locator(f"{chart} svg")), chart
        bars = page.locator(f"{chart} rect.bar")
        assert any(drawn(bars.nth(i)) for i in range(bars.count())), chart
    assert page.locator("#no-labels").is_visible()  # nobody has decided yet

    slug = sorted(p.stem for p in (tmp_path / "patterns").glob("*.md"))[0]
    page.goto(served.url + f"/patterns/{slug}")
    assert drawn(page.locator("#picture"))
    nodes, edges = page.locator("#picture a.node circle"), page.locator("#picture line.edge")
    assert nodes.count() > 0 and edges.count() >= nodes.count()
    assert all(drawn(nodes.nth(i)) for i in range(nodes.count()))
    assert drawn(page.locator("#history"))
    page.locator("#outgoing a.why").first.click()  # "why is this link here?": its history alone
    page.wait_for_url("**?target=*")
    assert page.locator("#history-for").inner_text().startswith("The history of the link to")
    page.locator("#picture a.node").first.click()  # a neighbour's own page
    page.wait_for_url(lambda url: f"/patterns/{slug}" not in url)
    assert drawn(page.locator("#picture"))
    assert errors == []
