"""The browser harness itself: Debian's chromium driven by Playwright against a server in a
subprocess, on a small static page with a key handler and a form (no garden code involved).

If these fail while chromium is installed, the harness is broken (most likely the Playwright pin
in pyproject.toml's test extra no longer drives this chromium), not the page under test.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from browser import ServerError, run_server

ROOT = Path(__file__).resolve().parents[1]

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>harness</title></head>
<body>
<h1>Harness</h1>
<p>Decisions: <span id="count">0</span>; last key: <span id="key">none</span></p>
<form id="decide" method="post" action="/nowhere">
  <label>Note <input id="note" name="note" autocomplete="off"></label>
  <button type="submit">Reject</button>
</form>
<ul id="log"></ul>
<script>
  const count = document.getElementById("count");
  const log = document.getElementById("log");
  function record(text) {
    count.textContent = String(Number(count.textContent) + 1);
    const li = document.createElement("li");
    li.textContent = text;  // text, never markup
    log.appendChild(li);
  }
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT") return;  // typing a note is not a decision
    document.getElementById("key").textContent = e.key;
    if (e.key === "a") record("accepted");
  });
  document.getElementById("decide").addEventListener("submit", (e) => {
    e.preventDefault();
    const note = document.getElementById("note");
    record("rejected: " + note.value);
    note.value = "";
  });
</script>
</body></html>
"""


@pytest.fixture
def static_site(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(PAGE, "utf-8")
    with run_server([sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1"],
                    cwd=site, ready="/index.html") as server:
        yield server


def test_a_key_a_note_and_a_submit_change_the_page_and_a_screenshot_is_saved(page, static_site, tmp_path):
    page.goto(static_site.url + "/index.html")
    assert page.title() == "harness"
    assert page.text_content("#count") == "0"

    page.keyboard.press("a")
    assert page.text_content("#key") == "a"
    assert page.text_content("#count") == "1"

    page.fill("#note", "<b>not</b> the same pattern")
    page.click("button[type=submit]")
    assert page.text_content("#count") == "2"
    assert page.locator("#log li").all_text_contents() == ["accepted", "rejected: <b>not</b> the same pattern"]
    assert page.locator("#log b").count() == 0  # the note shows as text
    assert page.input_value("#note") == ""

    shot = tmp_path / "harness.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 2_000


def test_each_test_gets_a_fresh_page(page):
    assert page.url == "about:blank"
    assert page.viewport_size == {"width": 1200, "height": 900}


def test_a_server_that_exits_before_it_listens_fails_with_its_output(tmp_path):
    argv = [sys.executable, "-c", "import sys; print('cannot bind {port}'); sys.exit(3)"]
    with pytest.raises(ServerError) as info:
        with run_server(argv, cwd=tmp_path, timeout=20):
            pass
    message = str(info.value)
    assert message.startswith("server exited with status 3 before it answered on http://127.0.0.1:")
    assert "cannot bind" in message


def test_a_server_that_never_answers_is_stopped_after_the_timeout(tmp_path):
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    with pytest.raises(ServerError) as info:
        with run_server(argv, cwd=tmp_path, timeout=1):
            pass
    assert str(info.value).startswith("server did not answer on http://127.0.0.1:")
    assert "within 1s" in str(info.value)


def test_playwright_matches_the_pin_in_the_test_extra():
    """A venv made before the pin moved (or without the test extra) says so here, by name."""
    import tomllib

    from packaging.requirements import Requirement

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["optional-dependencies"]["test"]
    pin = next((Requirement(r) for r in extra if Requirement(r).name == "playwright"), None)
    assert pin is not None, "pyproject.toml's test extra does not name playwright (tests/browser.py needs it)"
    try:
        installed = version("playwright")
    except PackageNotFoundError:
        pytest.fail(f"playwright is not installed; the test extra wants {pin}: pip install -e '.[test]'")
    assert pin.specifier.contains(installed), f"playwright {installed} installed, the test extra wants {pin}"
