"""The real `garden review`, driven through a pseudo-terminal as a curator uses it: one key per
decision, a note for a rejection, then Ctrl-C. What was decided stays decided and written, and
the log agrees with the files (issue 11)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import WIDE_REVIEW_POLICY, garden_bin, make_garden, tend_in_process

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PROMPT = "[a]ccept  [r]eject  [s]kip  [q]uit ? "


class Terminal:
    """`garden ARGS` on a pseudo-terminal of its own (its controlling terminal, so Ctrl-C is
    the terminal's own SIGINT, as for a person)."""

    def __init__(self, cwd: Path, *args: str):
        env = {k: v for k, v in os.environ.items() if k != "GARDEN_DEBUG"}
        env.update(TERM="xterm", COLUMNS="120", LINES="40", PYTHONFAULTHANDLER="1")
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become `garden`
            try:
                # A person's shell gives Ctrl-C its default meaning; a test run in the background
                # (`cmd &` in a script) ignores SIGINT, and that would be inherited across exec.
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                os.chdir(cwd)
                os.execve(garden_bin(), [garden_bin(), *args], env)
            finally:
                os._exit(127)
        self.seen = ""

    def expect(self, text: str, timeout: float = 30) -> str:
        """Read until `text` appears (after what earlier calls consumed); what came before it."""
        deadline = time.time() + timeout
        while text not in self.seen:
            left = deadline - time.time()
            if left <= 0:
                os.kill(self.pid, signal.SIGABRT)  # where it is stuck, from faulthandler
                time.sleep(1)
                if select.select([self.fd], [], [], 1)[0]:
                    self.seen += os.read(self.fd, 100_000).decode("utf-8", "replace")
                raise AssertionError(f"waited {timeout}s for {text!r}; the terminal shows:\n{self.seen[-3000:]}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # the child ended
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"garden ended before {text!r}; the terminal shows:\n{self.seen[-3000:]}")
                self.seen += ANSI.sub("", chunk.decode("utf-8", "replace")).replace("\r\n", "\n")
        before, _, self.seen = self.seen.partition(text)
        return before

    def send(self, data: str) -> None:
        os.write(self.fd, data.encode())

    def wait(self, timeout: float = 30) -> tuple[int, str]:
        """The exit status, and the rest of what it printed."""
        rest, deadline = "", time.time() + timeout
        while time.time() < deadline:
            if select.select([self.fd], [], [], 0.2)[0]:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                rest += ANSI.sub("", chunk.decode("utf-8", "replace")).replace("\r\n", "\n")
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.pid = 0
                return os.waitstatus_to_exitcode(status), self.seen + rest
        os.kill(self.pid, signal.SIGABRT)  # where it is stuck, from faulthandler
        time.sleep(1)
        if select.select([self.fd], [], [], 1)[0]:
            rest += os.read(self.fd, 100_000).decode("utf-8", "replace")
        raise AssertionError(f"garden did not end; the terminal shows:\n{(self.seen + rest)[-3000:]}")

    def close(self) -> None:
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


def garden(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([garden_bin(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def tended(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_garden(tmp_path / "patterns", 30)
    tend_in_process(WIDE_REVIEW_POLICY)
    pending = json.loads(garden(tmp_path, "review", "--json").stdout)
    assert sum(len(group["proposals"]) for group in pending) >= 3
    return tmp_path, pending


def test_review_on_a_terminal_one_key_each_and_ctrl_c_keeps_the_decisions(tended):
    root, pending = tended
    order = [(group["slug"], p["id"]) for group in pending for p in group["proposals"]]
    (first_slug, first), (second_slug, second) = order[0], order[1]
    term = Terminal(root, "review", "--by", "ana")
    try:
        intro = term.expect(PROMPT)
        assert "one key each, no Enter: a accept, r reject (then a note and Enter), s skip, q quit" in intro
        assert first in intro
        term.send("a")  # no Enter
        term.expect(f"accepted {first} (run ")
        term.expect(PROMPT)
        term.send("r")
        term.expect("note (why; Enter when done): ")
        term.send("not the same idea\r")
        term.expect(f"rejected {second} (run ")
        term.expect(PROMPT)
        term.send("\x03")  # Ctrl-C, through the terminal
        status, rest = term.wait()
    finally:
        term.close()
    assert status == 0, rest
    assert "1 accepted, 1 rejected, 0 skipped (each recorded as it was made)" in rest
    assert "Traceback" not in rest

    left = {p["id"] for group in json.loads(garden(root, "review", "--json").stdout) for p in group["proposals"]}
    assert first not in left and second not in left and order[2][1] in left
    assert f"accepted {first} (curator)" in garden(root, "history", first_slug).stdout
    rejected = garden(root, "history", second_slug).stdout
    assert f"rejected {second}: curator (not the same idea)" in rejected
    verify = garden(root, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    for slug in {first_slug, second_slug}:
        history = garden(root, "history", slug).stdout
        assert "edited outside graph-garden" not in history, history
    assert "block written" in garden(root, "history", first_slug).stdout


def test_q_quits_and_a_bad_run_or_pattern_is_an_error(tended):
    root, pending = tended
    term = Terminal(root, "review")
    try:
        term.expect(PROMPT)
        term.send("x")  # not a key it knows: it waits for one it does
        term.send("s")
        term.expect(PROMPT)
        term.send("q")
        status, rest = term.wait()
    finally:
        term.close()
    assert status == 0 and "0 accepted, 0 rejected, 1 skipped" in rest
    bad = garden(root, "review", "--run", "01ZZZZZZZZZZZZZZZZZZZZZZZZ")
    assert (bad.returncode, bad.stderr) == (1, "error: no run 01ZZZZZZZZZZZZZZZZZZZZZZZZ in the log; "
                                                "`garden runs` lists them\n")
    assert garden(root, "verify").returncode == 0
