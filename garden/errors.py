"""The project's errors and the problems it reports about files.

Every error graph-garden raises on purpose derives from `GardenError`; the CLI turns those into a
one-line message and an exit status. A `Problem` is not an exception: it is one finding about one
file (an error or a warning), reported by `garden check` and carried along by the loader so that a
bad file never stops the rest of the garden from loading.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal


class GardenError(Exception):
    """Base of every error graph-garden raises on purpose (shown without a traceback)."""


class PatternError(GardenError):
    """A pattern file cannot be used as asked (it did not parse, or its block cannot be found)."""


class WriteConflictError(GardenError):
    """A file changed on disk after it was read; writing would clobber someone's edit."""


class SettingsError(GardenError):
    """The settings or policy are invalid."""


Level = Literal["error", "warning"]


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
        return f"{self.path}:{self.line}:{self.col}: {self.level}: {self.message}"

    def to_dict(self) -> dict:
        return asdict(self)


def display_path(path: Path) -> str:
    """A path as people typed it: relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
