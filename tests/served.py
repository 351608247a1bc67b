"""`garden serve` in a subprocess on a free loopback port, for the web tests (no pytest here)."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from conftest import garden_bin

WRITE = {"X-Garden": "1"}  # the header every change must carry (with a JSON body)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(root: Path, *args: str, env: dict | None = None):
    """The server over root/patterns and root/.garden/events.db; yields its base URL."""
    port = free_port()
    log = open(root / "serve.log", "w")
    process = subprocess.Popen([garden_bin(), "serve", "--port", str(port), "--garden", str(root / "patterns"),
                                "--db", str(root / ".garden" / "events.db"), *args],
                               stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.time() > deadline:
                    raise RuntimeError("garden serve did not start: " + (root / "serve.log").read_text())
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def garden(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([garden_bin(), *args, "--garden", str(root / "patterns"),
                           "--db", str(root / ".garden" / "events.db")], capture_output=True, text=True)


def verified(root: Path) -> bool:
    done = garden(root, "verify")
    assert done.returncode == 0, done.stdout + done.stderr
    return True


def client(base: str, **kwargs) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=30, **kwargs)


def event_count(root: Path) -> int:
    with sqlite3.connect(root / ".garden" / "events.db") as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def remove_inferred_links(path: Path) -> None:
    """A person removes every inferred link of a pattern's block (a later change to the items a
    tend wrote: a revert of that tend then meets conflicts)."""
    head, _, rest = path.read_text("utf-8").partition("  inferred_links:\n")
    tail = rest[rest.index("\n# "):] if "\n# " in rest else rest[rest.index("\ncontributors"):]
    path.write_text(head + "  inferred_links: []" + tail, "utf-8")
