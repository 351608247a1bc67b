"""The layers import one way: cli -> flows -> events, proposers -> garden, never back; and
SQLite (and pickle) only in events/. Read from the source with `ast`, imports inside functions
included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Per package: the top-level modules none of its modules may import.
FORBIDDEN = {
    "garden": {"events", "flows", "cli", "proposers", "web", "sqlite3", "sqlite_utils", "pickle", "prefect", "openai"},
    "events": {"flows", "cli", "web"},
    "proposers": {"flows", "cli", "web"},
    "flows": {"cli", "web"},
    "web": {"cli", "events"},
}


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in a file, `from . import x` resolved within its package."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: within the file's own package
                module = ".".join([path.parent.name, module]).strip(".")
            found.append((node.lineno, module))
    return found


def violations(package: str) -> list[str]:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in imported(path):
            if module.split(".")[0] in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: imports {module}")
    return bad


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(package):
    assert violations(package) == []


def test_the_check_sees_an_import_inside_a_function(tmp_path, monkeypatch):
    (tmp_path / "garden").mkdir()
    (tmp_path / "garden" / "x.py").write_text("def f():\n    import sqlite3\n    from events.store import EventStore\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert violations("garden") == ["garden/x.py:2: imports sqlite3", "garden/x.py:3: imports events.store"]
