"""Published heads: the log's last sequence number and hash, kept outside the database.

A hash chain shows a changed byte, but not a log cut short, nor one rewritten from some event on
with every later hash recomputed: what is left is a valid chain. So at the end of every run that
records events the store publishes the chain's head to a head file beside the log, which only
grows (one line per head, `seq hash time run`, appended with O_APPEND and fsynced; a line is
never rewritten). `garden verify` then checks that every published head is still in the log with
the same hash, and so for a head a person kept elsewhere (`--head SEQ:HASH`).

The file is `<db>.heads` (`.garden/events.db.heads`), or GARDEN_LOG_HEADS names it (another disk,
a synced folder).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from garden.errors import GardenError, display_path

HEADS_ENV = "GARDEN_LOG_HEADS"
MIN_PREFIX = 12  # hex digits of a hash given by hand: 48 bits, too many to forge by trial
SHOWN_PREFIX = 16  # what summaries show, and suggest to keep
_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Head:
    seq: int
    hash: str
    published_at: str
    run_id: str

    def line(self) -> str:
        return f"{self.seq} {self.hash} {self.published_at} {self.run_id}\n"


@dataclass(frozen=True, slots=True)
class GivenHead:
    """A head given by hand: a sequence number and a prefix (or all) of its hash."""

    seq: int
    prefix: str


def heads_path(db: Path, environ: dict[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    chosen = environ.get(HEADS_ENV)
    return Path(chosen).expanduser() if chosen else Path(f"{db}.heads")


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def append_head(path: Path, head: Head) -> None:
    """Append one line in one write, and fsync it (and the folder, when the file is new)."""
    created = not path.exists()
    if created:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, head.line().encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def read_heads(path: Path) -> tuple[list[Head], list[str]]:
    """The heads in the file, and a problem for each line that is not one."""
    shown = display_path(path)
    heads, problems = [], []
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, 1):
        fields = line.split(" ")
        if (len(fields) == 4 and fields[0].isdigit() and int(fields[0]) > 0
                and _HASH.fullmatch(fields[1]) and fields[2] and fields[3]):
            heads.append(Head(int(fields[0]), fields[1], fields[2], fields[3]))
        else:
            problems.append(f"{shown}:{number}: not a head (`seq hash time run`): {line[:120]!r}")
    return heads, problems


def parse_given_head(text: str) -> GivenHead:
    """`1234:ab12cd34ef56...` (at least MIN_PREFIX hex digits of the hash)."""
    seq, sep, digest = text.strip().partition(":")
    digest = digest.lower()
    if (not sep or not seq.isdigit() or int(seq) < 1 or len(digest) < MIN_PREFIX or len(digest) > 64
            or not all(c in "0123456789abcdef" for c in digest)):
        raise GardenError(f"--head {text}: give the sequence number and at least {MIN_PREFIX} hex "
                          "digits of its hash, like 1234:ab12cd34ef56")
    return GivenHead(int(seq), digest)


def check_published(heads: list[Head], end: int, hash_at) -> list[str]:
    """What the log contradicts in the published heads: removed events, rewritten ones.

    `end` is the log's last sequence number, `hash_at(seq)` the hash stored there.
    """
    problems = []
    beyond = [h for h in heads if h.seq > end]
    if beyond:
        last = max(beyond, key=lambda h: h.seq)
        problems.append(f"the log ends at #{end} but its head file says #{last.seq} was published at "
                        f"{last.published_at} by run {last.run_id}: events were removed")
    for head in sorted((h for h in heads if h.seq <= end), key=lambda h: h.seq):
        if hash_at(head.seq) != head.hash:
            problems.append(f"event #{head.seq}'s hash differs from the head published at "
                            f"{head.published_at}: the log was rewritten")
            break
    return problems


def check_given(given: GivenHead, end: int, hash_at) -> list[str]:
    if given.seq > end:
        return [f"the log ends at #{end} but --head says #{given.seq}: events were removed"]
    if not (hash_at(given.seq) or "").startswith(given.prefix):
        return [f"event #{given.seq}'s hash does not start with {given.prefix} given with --head: "
                "the log was rewritten"]
    return []
