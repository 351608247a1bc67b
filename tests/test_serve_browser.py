"""`garden serve`'s review page in a real browser (headless Debian chromium, tests/browser.py):
a curator opens review, accepts with a key, rejects with a note, undoes, opens the run and
reverts it; after each step the files are what the CLI would have left and `garden verify`
agrees. The server is a real `garden serve` subprocess; the truth is read with the real CLI.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from browser import run_server

from conftest import ROOT, WIDE_REVIEW_POLICY, garden_bin, make_garden, tend_in_process

pytestmark = pytest.mark.skip(reason=(
    "the review page of `garden serve` is not on this branch yet (i16-serve had no commit by 09:35 "
    "UTC); steps: open /review, accept with a key, reject with a note, undo, open the run, revert it, "
    "with the file and `garden verify` agreeing after each"))

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


def test_a_curator_reviews_undoes_and_reverts_in_the_browser(page, served, tended):
    root = tended["root"]
    tended_files, waiting = files_now(root), pending_ids(root)

    # 1. Open review: one proposal shown, its id on the page, the counter says how many are left.
    page.goto(served.url + "/review")
    first = page.get_attribute("[data-proposal-id]", "data-proposal-id")
    assert first in waiting
    page.screenshot(path=str(SCREENSHOT))

    # 2. Accept with a key: the proposal is decided and written at once.
    page.keyboard.press("a")
    page.wait_for_function(f"document.querySelector('[data-proposal-id]')?.dataset.proposalId !== '{first}'")
    assert first not in pending_ids(root)
    assert files_now(root) != tended_files
    assert verified(root)
    accepted_files = files_now(root)

    # 3. Reject the next one with a note: decided, no file changes.
    second = page.get_attribute("[data-proposal-id]", "data-proposal-id")
    page.keyboard.press("r")
    page.fill("[name=note]", "<b>not</b> the same idea")
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.querySelector('[data-proposal-id]')?.dataset.proposalId !== '{second}'")
    assert second not in pending_ids(root)
    assert files_now(root) == accepted_files
    assert verified(root)

    # 4. Undo the last decision: the rejection is gone, the proposal pending again.
    page.keyboard.press("u")
    page.wait_for_function(f"document.querySelector('[data-proposal-id]')?.dataset.proposalId === '{second}'")
    assert second in pending_ids(root)
    assert files_now(root) == accepted_files
    assert verified(root)

    # 5. Open the tend's run: its summary and diff.
    page.goto(served.url + "/runs")
    page.click(f"a[href$='{tended['run_id']}']")
    assert tended["run_id"] in page.text_content("body")

    # 6. Revert it: the tend's proposals withdrawn, its writes undone; the CLI agrees.
    page.click("button:has-text('Revert')")
    page.wait_for_selector("text=reverted")
    runs = {r["run_id"]: r["status"] for r in json.loads(garden(root, "runs", "--json").stdout)}
    assert runs[tended["run_id"]] == "reverted"
    assert verified(root)
