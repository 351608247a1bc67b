"""`garden report --html` opened in headless Chromium: what a curator sees, with no network."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from cli.main import app
from conftest import WIDE_REVIEW_POLICY, make_garden, tend_in_process

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_the_report_shows_summary_diffs_and_pending_in_a_browser(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 30)
    result = tend_in_process(WIDE_REVIEW_POLICY)
    page = tmp_path / "report.html"
    assert CliRunner().invoke(app, ["report", "--html", str(page)]).exit_code == 0

    def chromium(*args):
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args,
                               page.as_uri()], capture_output=True, text=True, timeout=120)

    dom = chromium("--dump-dom").stdout
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))
    assert f"graph-garden run {result['run_id']}" in text
    assert "Summary" in text and f"accepted {result['accepted']}" in text
    changed = re.search(r"Blocks changed \((\d+)\)", text)
    assert changed and int(changed.group(1)) > 0
    assert f"Pending proposals ({result['pending']})" in text
    assert 'class="add"' in dom  # added lines of the diffs are marked for colour
    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", "--window-size=1200,900")
    assert shot.exists() and shot.stat().st_size > 10_000
