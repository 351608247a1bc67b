"""A log written by older code, replayed by the current code, gives the same files.

tests/data/legacy_log was made once by scripts/make_legacy_log.py with the code as it was before
issue 15 (the state as dicts, event schema as then): tends, a curator's accept, reject and lift,
a revert of a decision (ProposalReopened), a person's edits, a revert of a tend, a duplicate
suspicion dismissed. Whatever the state's representation and the event schema become, reading
that log must give the files it gave then. Never regenerate the fixture to make this pass.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from conftest import garden_bin

DATA = Path(__file__).parent / "data" / "legacy_log"
RUN1 = "01M8R7YZ4EKC0XE8CPCAHPH94Q"  # the first tend (commands.txt)


def copy_fixture(tmp_path: Path) -> Path:
    root = tmp_path / "legacy"
    shutil.copytree(DATA, root)
    return root


def garden(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": str(Path(garden_bin()).parent), "GARDEN_CACHE": "false", "GARDEN_DEBUG": "1"}
    return subprocess.run([garden_bin(), *args, "--garden", "patterns", "--db", "log/events.db"], cwd=root,
                          env=env, capture_output=True, text=True, timeout=120)


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.md"))}


def test_the_fixture_is_what_it_claims():
    assert len(files(DATA / "patterns")) == 5
    assert files(DATA / "patterns") != files(DATA / "replayed-run1")
    assert RUN1.startswith("01") and len(RUN1) == 26


def test_an_old_log_replays_to_the_same_files_and_verifies(tmp_path):
    root = copy_fixture(tmp_path)
    done = garden(root, "replay", "--out", "now")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "replayed 5 patterns as of event #283 into now"
    assert files(root / "now") == files(DATA / "patterns")

    done = garden(root, "replay", "--until", RUN1, "--out", "then")
    assert done.returncode == 0, done.stderr
    assert files(root / "then") == files(DATA / "replayed-run1")

    check = garden(root, "replay", "--check", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    verify = garden(root, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.startswith("verify ok: 283 events, chain intact, 10 published heads match")
    assert files(root / "patterns") == files(DATA / "patterns")  # replay and verify write nothing there


def test_an_old_log_keeps_its_pending_proposals_and_decisions(tmp_path):
    """What a curator would see: the pending proposals (the reopened one among them) and the
    dismissed duplicate, as the old code left them."""
    root = copy_fixture(tmp_path)
    done = garden(root, "review", "--list", "--json")
    assert done.returncode == 0, done.stderr
    review = json.loads(done.stdout)
    pending = sorted((g["slug"], p["id"], p["kind"]) for g in review for p in g["proposals"])
    assert pending == EXPECTED_PENDING
    merges = sorted(m["other"] for g in review for m in g["merge_candidates"])
    assert merges == ["self-management"]  # the other suspicion (leadership-by-design) was dismissed


EXPECTED_PENDING = [  # the first is the one a revert of its rejection reopened (ProposalReopened)
    ("distributed-leadership-in-complexity", "01M8R7Z0ACQ0F0A6RHCX57DXFJ", "link"),
    ("distributed-leadership-in-complexity", "01M8R7Z0ACQ0F0A6RHCX57DXFK", "link"),
    ("leadership-by-design", "01M8R7Z0ADJVVWNVD806F5DN3J", "link"),
    ("self-leadership-vs-self-management", "01M8R7Z0AFKFPWB2GA8RM83K81", "link"),
]
