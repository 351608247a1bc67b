"""`garden serve`'s review page in a real browser (headless Debian chromium, tests/browser.py):
a curator opens review, accepts with a key, rejects with a note, undoes, opens the run and
reverts it; after each step the files are what the CLI would have left and `garden verify`
agrees. The server is a real `garden serve` subprocess; the truth is read with the real CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from browser import run_server
from playwright.sync_api import expect

from conftest import ROOT, WIDE_REVIEW_POLICY, garden_bin, make_garden, tend_in_process

# The README's picture: refreshed by this test when GARDEN_SCREENSHOTS=1 (not on every run, so a
# test run leaves the checkout as it was).
SCREENSHOT = ROOT / "docs" / "review-page.png"


@pytest.fixture
def tended(tmp_path, monkeypatch) -> dict:
    """40 patterns tended with a wide review band: accepted links written, proposals pending."""
    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 40)
    originals = files_now(tmp_path)
    result = tend_in_process(WIDE_REVIEW_POLICY)
    assert result["pending"] > 1
    return {**result, "root": tmp_path, "originals": originals}


@pytest.fixture
def served(tended):
    with run_server([garden_bin(), "serve", "--port", "{port}"], cwd=tended["root"], ready="/api/pending") as server:
        yield server


def garden(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([garden_bin(), *args], cwd=root, capture_output=True, text=True, timeout=120)


def files_now(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "patterns").glob("*.md"))}


def pending_ids(root: Path) -> set[str]:
    done = garden(root, "review", "--json")
    assert done.returncode == 0, done.stderr
    return {p["id"] for group in json.loads(done.stdout) for p in group["proposals"]}


def verified(root: Path) -> bool:
    done = garden(root, "verify")
    assert done.returncode == 0, done.stdout + done.stderr
    return True


def changes(diff: str) -> set[str]:
    """A diff's changed lines (last_pruned's by its key alone)."""
    lines = {line.strip() for line in diff.splitlines()
             if line[:1] in "+-" and not line.startswith(("+++", "---"))}
    return {line[0] + "last_pruned" if "last_pruned:" in line else line for line in lines}


def status(page):
    return expect(page.locator("#status"))


def test_a_curator_accepts_rejects_with_a_note_and_undoes_in_the_browser(page, served, tended, tmp_path):
    root = tended["root"]
    tended_files, waiting = files_now(root), pending_ids(root)

    # 1. Open review: one proposal, its id on the page, the counter.
    page.goto(served.url + "/", wait_until="networkidle")  # the page has loaded /api/pending
    first = page.get_attribute("#item", "data-id")
    first_slug = page.get_attribute("#item", "data-slug")
    assert first in waiting
    expect(page.locator("#counter")).to_have_text(f"0 decided, {len(waiting)} left")
    shot = tmp_path / "review-page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("GARDEN_SCREENSHOTS") == "1":
        shutil.copyfile(shot, SCREENSHOT)

    # The pattern and the target side by side, from their files; the diff this one accept makes.
    title, summary = page.text_content("#title"), page.text_content("#summary")
    assert title and summary and title in (root / "patterns" / f"{first_slug}.md").read_text()
    target = page.text_content("#target")
    if page.text_content("#kind").startswith("link"):
        assert page.text_content("#target-title") in (root / "patterns" / f"{target}.md").read_text()
    shown_diff = page.text_content("#diff").rstrip("\n")

    # 2. Accept with a key: recorded and written at once, the next proposal shown.
    page.keyboard.press("a")
    status(page).to_have_text(f"accepted {first}; written: {first_slug}")
    made = json.loads(garden(root, "diff", "--json").stdout)  # the last run: this accept
    # What was shown is what was done (the write also stamps last_pruned with today's date).
    assert list(made["patterns"]) == [first_slug]
    assert changes(made["patterns"][first_slug]) - {"-last_pruned", "+last_pruned"} == changes(shown_diff)
    expect(page.locator("#counter")).to_have_text(f"1 decided, {len(waiting) - 1} left")
    assert first not in pending_ids(root)
    accepted_files = files_now(root)
    changed = {name for name in accepted_files if accepted_files[name] != tended_files[name]}
    assert changed == {f"{first_slug}.md"}
    assert verified(root)

    # 3. Reject the next one with a note (Enter in the note rejects): recorded, no file changes.
    second = page.get_attribute("#item", "data-id")
    second_slug = page.get_attribute("#item", "data-slug")
    assert second != first and second in waiting
    page.fill("#note", "<b>not</b> the same idea")
    page.press("#note", "Enter")
    status(page).to_have_text(f"rejected {second}; written: nothing")
    expect(page.locator("#note")).to_have_value("")
    assert second not in pending_ids(root)
    assert files_now(root) == accepted_files
    history = json.loads(garden(root, "history", second_slug, "--json").stdout)
    assert any(e.get("payload", {}).get("note") == "<b>not</b> the same idea" for e in history), history
    assert verified(root)

    # 4. Undo the last decision: the rejection reverted, the proposal pending again.
    page.locator("body").click(position={"x": 5, "y": 5})  # the key goes to the page, not the note
    page.keyboard.press("u")
    status(page).to_contain_text("undone: run ")
    expect(page.locator("#counter")).to_have_text(f"1 decided, {len(waiting) - 1} left")
    assert second in pending_ids(root)
    assert first not in pending_ids(root)
    assert files_now(root) == accepted_files
    assert verified(root)


def test_a_curator_opens_the_run_and_reverts_it_in_the_browser(page, served, tended):
    root, tend = tended["root"], tended["run_id"]
    changed = json.loads(garden(root, "diff", tend, "--json").stdout)["patterns"]
    assert pending_ids(root)

    # 1. Open the runs: the tend's run is listed; click it.
    page.goto(served.url + "/runs")
    expect(page.locator("tr.run")).to_have_count(1)
    expect(page.locator(f'tr.run[data-run="{tend}"]')).to_have_attribute("data-status", "completed")
    page.click(f'tr.run[data-run="{tend}"] a[href="/runs/{tend}"]')

    # 2. Its summary and its diff, one section per changed pattern, lines coloured.
    expect(page.locator("#run")).to_have_attribute("data-run", tend)
    expect(page.locator("#run-status")).to_have_text("completed")
    sections = page.locator("section.pattern-diff")
    expect(sections).to_have_count(len(changed))
    slug = next(iter(changed))
    first = page.locator(f'section.pattern-diff[data-slug="{slug}"]')
    expect(first.locator("pre.diff")).to_have_text(changed[slug] + "\n")
    assert first.locator("span.add").count() > 0 and first.locator("span.del").count() > 0
    expect(first.locator(f'a[href="/patterns/{slug}"]')).to_have_text(slug)

    # 3. Revert, with a note: said, and the run shown as reverted.
    page.fill("#revert-note", "the first night was too eager")
    page.click("#revert")
    expect(page.locator("#revert-status")).to_contain_text(f"reverted run {tend} (run ")
    expect(page.locator("#revert-status")).to_have_attribute("data-state", "ok")
    expect(page.locator("#run")).to_have_attribute("data-status", "reverted")
    expect(page.locator("#run-status")).to_contain_text("reverted by ")
    expect(page.locator("#revert")).to_be_disabled()

    runs = {r["run_id"]: r for r in json.loads(garden(root, "runs", "--json").stdout)}
    assert runs[tend]["status"] == "reverted"
    by = runs[tend]["reverted_by"]
    assert runs[by]["command"] == "revert" and runs[by]["by"] == "web"
    assert files_now(root) == tended["originals"]
    assert pending_ids(root) == set()
    assert verified(root)


def test_filters_and_the_sampled_mode_in_the_browser(page, served, tended):
    root = tended["root"]
    listed = json.loads(garden(root, "review", "--json").stdout)
    links = [p for g in listed for p in g["proposals"] if p["kind"] == "link"]

    # Filters: a form of the page (a GET: nothing changes); the queue then holds links only,
    # highest score first.
    page.goto(served.url + "/", wait_until="networkidle")
    page.select_option("#f-kind", "link")
    page.select_option("#f-order", "confidence")
    page.click("#f-apply")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#counter")).to_have_text(f"0 decided, {len(links)} left")
    best = max(links, key=lambda p: p["confidence"])
    assert page.text_content("#score") == f"{best['confidence']:.2f}"
    assert page.text_content("#kind").startswith("link")
    page.keyboard.press("n")
    assert page.get_attribute("#item", "data-id") != best["id"]
    page.keyboard.press("p")
    assert page.get_attribute("#item", "data-id") == best["id"]

    # The sampled mode (calibration): items the policy decided too; deciding one confirms or
    # overrules the policy, recorded and written as a CLI decision is.
    page.goto(served.url + "/?sample=6&seed=3", wait_until="networkidle")
    status(page).to_contain_text("sampled (seed 3) of ")
    expect(page.locator("#counter")).to_have_text("0 decided, 6 left")
    sampled = json.loads(garden(root, "review", "--sample", "6", "--seed", "3", "--json").stdout)
    assert page.get_attribute("#item", "data-id") == sampled[0]["id"]
    expect(page.locator("#policy")).to_contain_text(sampled[0]["policy"])
    page.keyboard.press("a")
    status(page).to_contain_text(f"accepted {sampled[0]['id']}")
    expect(page.locator("#counter")).to_have_text("1 decided, 5 left")
    assert page.get_attribute("#item", "data-id") == sampled[1]["id"]
    history = json.loads(garden(root, "history", sampled[0]["slug"], "--json").stdout)
    assert any(e["payload"]["type"] == "ProposalAccepted" and e["actor"] == "curator:web"
               and e["payload"]["proposal_id"] == sampled[0]["id"] for e in history)
    assert verified(root)


def test_the_page_notices_a_decision_made_elsewhere_meanwhile(page, served, tended):
    """Another curator (here the CLI) decides the item on screen: within a few seconds the page
    reads the queue again, says why, and shows the next item; nothing is decided twice."""
    root = tended["root"]
    waiting = pending_ids(root)
    page.goto(served.url + "/", wait_until="networkidle")
    shown = page.get_attribute("#item", "data-id")
    done = garden(root, "reject", shown, "--by", "bo", "--note", "decided in a terminal")
    assert done.returncode == 0, done.stderr
    status(page).to_have_text("the log changed meanwhile (a tend or another command): the queue is current again",
                              timeout=15_000)
    assert page.get_attribute("#item", "data-id") != shown
    expect(page.locator("#counter")).to_have_text(f"0 decided, {len(waiting) - 1} left")
    assert verified(root)
