"""The project's errors and the problems it reports about files.

Every error graph-garden raises on purpose derives from `GardenError`; the CLI turns those into a
one-line message and an exit status. A `Problem` is not an exception: it is one finding about one
file (an error or a warning), reported by `garden check` and carried along by the loader so that a
bad file never stops the rest of the garden from loading.

A problem quotes what the file says (a slug, a title, a value), so it is shown through
`escape_text`: a newline or a terminal escape in a file cannot forge a line of `garden check` or
colour a terminal. The `--json` output keeps the raw values (JSON escapes them itself).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal


class GardenError(Exception):
    """Base of every error graph-garden raises on purpose (shown without a traceback)."""


class PatternError(GardenError):
    """A pattern file cannot be used as asked (it did not parse, or its block cannot be found)."""


class WriteConflictError(GardenError):
    """A file changed on disk after it was read; writing would clobber someone's edit."""


class UnknownPatternError(GardenError):
    """A pattern asked for by its slug that the log (or the garden's files) does not have."""

    def __init__(self, slug: str, where: Literal["log", "garden"] = "log"):
        hint = "run `garden observe`" if where == "log" else "see `garden check`"
        super().__init__(f"no pattern {slug!r} in the {where} ({hint})")


class SettingsError(GardenError):
    """The settings or policy are invalid."""


Level = Literal["error", "warning"]

#: C0 and C1 controls, DEL, the Unicode line and paragraph separators, and the bidirectional
#: overrides (which make a terminal show text in another order than it is).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(found: re.Match) -> str:
    char = found.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_text(text: str) -> str:
    """`text` on one line, with every control character shown as its escape (a newline as
    `\\n`, ESC as `\\x1b`), for messages that quote what a file or an answer says."""
    return _CONTROL.sub(_escape, text)


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding about one file, printed as `path:line:col: level: message`."""

    path: str
    line: int
    col: int
    level: Level
    message: str
    code: str

    def __str__(self) -> str:
        return escape_text(f"{self.path}:{self.line}:{self.col}: {self.level}: {self.message}")

    def to_dict(self) -> dict:
        return asdict(self)


def display_path(path: Path) -> str:
    """A path as people typed it: relative to the working directory when it is below it."""
    try:
        return str(real_path(Path(path)).relative_to(_real_folder(".", os.getcwd())))
    except ValueError:
        return str(path)


def real_path(path: Path) -> Path:
    """`path.resolve()`, made cheap for many files in few folders: a file that is not a symlink
    resolves to its folder's resolution and its own name, and folders' resolutions are
    remembered until `forget_folders()` (which loading a garden calls first)."""
    if path.name in ("", ".", "..") or path.is_symlink():
        return path.resolve()
    return _real_folder(str(path.parent), os.getcwd()) / path.name


@functools.lru_cache(maxsize=256)
def _real_folder(folder: str, cwd: str) -> Path:
    """A folder resolved (a relative one from `cwd`, which is part of the key for that)."""
    return Path(folder).resolve()


def forget_folders() -> None:
    """Resolve folders afresh from now on (one may have been moved or replaced by a symlink)."""
    _real_folder.cache_clear()
