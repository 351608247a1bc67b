"""Shared fixtures: small gardens built in tmp_path from the seed patterns."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "patterns"
CORPUS = ROOT.parent / "shared" / "corpus" / "patterns"

# Unexpected errors always show their traceback under tests, so bugs are not hidden.
os.environ["GARDEN_DEBUG"] = "1"


@pytest.fixture
def seed_garden(tmp_path: Path) -> Path:
    """A copy of the embedded garden (the three seed patterns)."""
    garden = tmp_path / "patterns"
    shutil.copytree(SEEDS, garden)
    return garden


@pytest.fixture
def seed_text() -> str:
    return (SEEDS / "self-leadership-vs-self-management.md").read_text("utf-8")


def needs_corpus():
    return pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus/patterns is not here")
