"""The test suite's browser: Debian's chromium, headless, driven by Playwright; and servers in
subprocesses for it to open.

Playwright comes from PyPI (pinned in the test extra) but never downloads a browser here: it
launches the system's chromium by `executable_path` (`apt-get install -y chromium`; .ci/run does
it). Without chromium every test that asks for `browser` or `page` skips, saying so; with
chromium and a Playwright that cannot drive it, they fail, naming both.

Fixtures (imported by conftest.py):
- `browser`: one headless chromium for the whole session, started by the first test that asks.
- `page`: a fresh page per test, in its own context (no cookies or storage shared between
  tests), 1200x900, actions and waits time out after 10 s rather than Playwright's 30 s.

Servers: `run_server(argv, cwd=...)` is a context manager that starts argv with "{port}"
replaced by a free port on 127.0.0.1, waits until an HTTP request to `ready` gets any answer
(a 401 or 404 is an answer: the server is up), yields a `Server` (url, port, process, output())
and stops it (SIGTERM to its process group, SIGKILL after 10 s).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import pytest

CHROMIUM = os.environ.get("GARDEN_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
NO_CHROMIUM = "Debian's chromium is not installed (apt-get install -y chromium; .ci/run installs it)"
VIEWPORT = {"width": 1200, "height": 900}
ACTION_TIMEOUT_MS = 10_000

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)


# --- servers in subprocesses -----------------------------------------------------------------

class ServerError(Exception):
    """A server under test did not come up."""


@dataclass
class Server:
    url: str  # http://127.0.0.1:<port>, no trailing slash
    port: int
    process: subprocess.Popen
    _log: object

    def output(self) -> str:
        """Everything the server has printed so far (stdout and stderr together)."""
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # any status means something is listening and speaking HTTP
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen, grace: float = 10) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


@contextmanager
def run_server(argv: Sequence[str], *, cwd: str | Path, env: dict | None = None, ready: str = "/",
               timeout: float = 30) -> Iterator[Server]:
    """Start argv ("{port}" in any argument becomes a free port), wait until http://127.0.0.1:port
    + ready answers, yield the Server, stop it on exit. ServerError (with the server's output)
    if it exits first or does not answer within timeout seconds."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([a.replace("{port}", str(port)) for a in argv], cwd=cwd, env=env,
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    server = Server(url, port, process, log)
    try:
        deadline = time.monotonic() + timeout
        while not _answers(url + ready):
            if process.poll() is not None:
                raise ServerError(f"server exited with status {process.returncode} before it answered "
                                  f"on {url}{ready}:\n{server.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise ServerError(f"server did not answer on {url}{ready} within {timeout:g}s:\n"
                                  f"{server.output()[-3000:]}")
            time.sleep(0.05)
        yield server
    finally:
        _stop(process)
        log.close()


# --- the browser -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser():
    if CHROMIUM is None:
        pytest.skip(NO_CHROMIUM)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    from importlib.metadata import version

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
    except Exception as e:  # Playwright's own errors: the launch log follows the first line
        playwright.stop()
        failure = (str(e).strip() or type(e).__name__).splitlines()[0]
    else:
        failure = None
    if failure:
        pytest.fail(f"playwright {version('playwright')} could not launch {CHROMIUM}: {failure} "
                    "(is the playwright pin in pyproject.toml's test extra too old for this chromium?)",
                    pytrace=False)
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()
