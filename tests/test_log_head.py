"""The log tells on whoever cuts it: published heads, `verify --head`, and the log key (HMAC).

A hash chain alone shows a changed byte, not a log cut short or re-hashed from some event on. The
tests here do what an attacker with write access to `.garden/` would (drop the triggers, delete
or rewrite events, recompute every hash with the project's own `chain_hash`) and expect
`garden verify` (the real CLI, in a subprocess) to say what happened.

One real `garden tend` (against the session's Prefect server) builds a tended garden; each test
works on its own copy of it.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import garden_bin, make_garden
from events.store import chain_hash
from flows.report import summary_markdown, summary_rows

KEY = "k3y-for-the-tests-0123456789abcdef"
# A wide review band, so a garden made from three seeds has pending proposals to decide.
POLICY = {"GARDEN_POLICY_AUTO_ACCEPT": "0.95", "GARDEN_POLICY_REVIEW_FLOOR": "0.5",
          "GARDEN_POLICY_MIN_LINK_CONFIDENCE": "0.5"}


def garden(cwd: Path, *args: str, env: dict | None = None, key: str | None = KEY,
           key_file: Path | None = None) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess; with the tests' log key unless told otherwise."""
    env = dict(env or os.environ, **POLICY)
    env.pop("GARDEN_LOG_KEY", None)
    env.pop("GARDEN_LOG_KEY_FILE", None)
    if key:
        env["GARDEN_LOG_KEY"] = key
    if key_file:
        env["GARDEN_LOG_KEY_FILE"] = str(key_file)
    return subprocess.run([garden_bin(), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def heads(cwd: Path) -> list[list[str]]:
    path = cwd / ".garden" / "events.db.heads"
    return [line.split(" ") for line in path.read_text().splitlines()] if path.exists() else []


def connect(cwd: Path) -> sqlite3.Connection:
    return sqlite3.connect(cwd / ".garden" / "events.db", isolation_level=None)


def log_end(cwd: Path) -> int:
    return connect(cwd).execute("SELECT max(seq) FROM events").fetchone()[0]


@pytest.fixture(scope="module")
def tended_template(tmp_path_factory, prefect_env) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("tended")
    make_garden(root / "patterns", 30)
    done = garden(root, "tend", "--today", "2026-11-22", "--json", env=prefect_env)
    assert done.returncode == 0, done.stderr
    return root, json.loads(done.stdout)


@pytest.fixture
def tended(tended_template, tmp_path) -> tuple[Path, dict]:
    root, result = tended_template
    shutil.copytree(root / "patterns", tmp_path / "patterns")
    shutil.copytree(root / ".garden", tmp_path / ".garden")
    return tmp_path, result


def pending_ids(cwd: Path) -> list[str]:
    listing = json.loads(garden(cwd, "review", "--json").stdout)
    return [p["id"] for group in listing for p in group["proposals"]]


def test_every_run_publishes_its_head_and_a_clean_garden_verifies(tended, prefect_env):
    cwd, result = tended
    # The tend's summary carries the head it published, and the head file has it as its one line.
    published = heads(cwd)
    assert len(published) == 1
    seq, digest, when, run = published[0]
    assert result["head"] == {"seq": int(seq), "hash": digest, "published_at": when,
                              "file": ".garden/events.db.heads"}
    assert run == result["run_id"] and int(seq) == log_end(cwd)
    # ... and so does the Prefect artifact of that run.
    prefect = prefect_env["GARDEN_PREFECT"]
    artifact = subprocess.run([prefect, "artifact", "inspect", "garden-tend-summary"], env=prefect_env,
                              capture_output=True, text=True, timeout=120)
    assert f"| log head | #{seq} {digest[:16]} |" in artifact.stdout
    # One line per run: accept, reject, revert each add one, and their heads are the log's.
    ids = pending_ids(cwd)
    assert garden(cwd, "accept", ids[0], "--by", "ana").returncode == 0
    assert garden(cwd, "reject", ids[1], "--by", "ana", "--note", "not related").returncode == 0
    accept_run = heads(cwd)[1][3]
    revert = garden(cwd, "revert", accept_run, "--by", "ana")
    assert revert.returncode == 0, revert.stderr
    assert len(heads(cwd)) == 4 and int(heads(cwd)[-1][0]) == log_end(cwd)
    assert [int(h[0]) for h in heads(cwd)] == sorted(int(h[0]) for h in heads(cwd))
    verify = garden(cwd, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout == (f"verify ok: {log_end(cwd)} events, chain intact, 4 published heads "
                             f"match, MACs checked on {log_end(cwd)} events, 0 file difference(s)\n")
    without_key = garden(cwd, "verify", key=None)
    assert without_key.returncode == 0
    assert "MACs not checked (GARDEN_LOG_KEY is not set)" in without_key.stdout
    # The key is never shown or stored.
    everything = verify.stdout + verify.stderr + revert.stdout + revert.stderr
    stored = (cwd / ".garden" / "events.db").read_bytes() + (cwd / ".garden" / "events.db.heads").read_bytes()
    assert KEY not in everything and KEY.encode() not in stored


def test_deleting_the_last_events_is_caught_by_the_head_file(tended):
    cwd, result = tended
    end = log_end(cwd)
    seq, _, when, run = heads(cwd)[-1]
    conn = connect(cwd)
    conn.execute("DROP TRIGGER events_no_delete")
    conn.execute("DELETE FROM events WHERE seq > ?", [end - 3])
    conn.close()
    verify = garden(cwd, "verify", key=None)
    assert verify.returncode == 1
    assert verify.stdout.splitlines()[0] == (
        f"the log ends at #{end - 3} but its head file says #{end} was published at {when} by run "
        f"{run}: events were removed")


def rewrite_rejection_as_deferral(cwd: Path) -> int:
    """Turn the curator's rejection into a harmless-looking event and re-hash the chain after it,
    as someone with write access but no key would. Returns the rewritten event's seq."""
    conn = connect(cwd)
    conn.execute("DROP TRIGGER events_no_update")
    seq = conn.execute("SELECT seq FROM events WHERE type = 'ProposalRejected' "
                       "AND actor = 'curator:ana'").fetchone()[0]
    conn.execute("UPDATE events SET type = 'ProposalDeferred', payload = ? WHERE seq = ?",
                 [json.dumps({"type": "ProposalDeferred", "proposer": "offline",
                              "reason": "request budget spent"}, separators=(",", ":")), seq])
    prev = conn.execute("SELECT hash FROM events WHERE seq = ?", [seq - 1]).fetchone()[0]
    columns = "seq, id, type, slug, run_id, actor, recorded_at, schema_version, payload"
    for row in conn.execute(f"SELECT {columns} FROM events WHERE seq >= ? ORDER BY seq", [seq]).fetchall():
        prev = chain_hash(prev, row)
        conn.execute("UPDATE events SET hash = ? WHERE seq = ?", [prev, row[0]])
    conn.close()
    return seq


def test_a_rewritten_and_rehashed_log_is_caught_by_the_head_file_and_by_the_key(tended):
    cwd, _ = tended
    ids = pending_ids(cwd)
    assert garden(cwd, "reject", ids[0], "--by", "ana", "--note", "not related").returncode == 0
    seq, _, when, _ = heads(cwd)[-1]
    rewritten = rewrite_rejection_as_deferral(cwd)
    assert ids[0] in pending_ids(cwd)  # the rejection is undone, and the chain holds
    verify = garden(cwd, "verify", key=None)
    assert verify.returncode == 1
    assert verify.stdout.splitlines()[0] == (
        f"event #{seq}'s hash differs from the head published at {when}: the log was rewritten")
    assert "chain intact" in verify.stdout
    # Without the head file, the key alone tells.
    (cwd / ".garden" / "events.db.heads").unlink()
    unkeyed = garden(cwd, "verify", key=None)
    assert unkeyed.returncode == 0  # what a chain alone sees: nothing
    assert "warning: no head file (.garden/events.db.heads)" in unkeyed.stderr
    keyed = garden(cwd, "verify")
    assert keyed.returncode == 1
    row = connect(cwd).execute("SELECT id FROM events WHERE seq = ?", [rewritten]).fetchone()
    assert keyed.stdout.splitlines()[0] == (
        f"event #{rewritten} (ProposalDeferred, id {row[0]}): its MAC does not match GARDEN_LOG_KEY: "
        "the log was rewritten by someone without the key (or the key is not the one it was "
        "recorded with)")
    other = garden(cwd, "verify", key="another-key-0123456789")
    assert other.returncode == 1 and other.stdout.startswith("event #1 (")


def test_a_head_given_by_hand_catches_a_truncation_without_the_head_file(tended):
    cwd, result = tended
    seq, digest = result["head"]["seq"], result["head"]["hash"]
    assert garden(cwd, "verify", "--head", f"{seq}:{digest[:12]}").returncode == 0
    assert garden(cwd, "verify", "--head", f"{seq}:{digest.upper()}").returncode == 0
    short = garden(cwd, "verify", "--head", f"{seq}:{digest[:6]}")
    assert short.returncode == 1
    assert short.stderr == (f"error: --head {seq}:{digest[:6]}: give the sequence number and at least "
                            "12 hex digits of its hash, like 1234:ab12cd34ef56\n")
    conn = connect(cwd)
    conn.execute("DROP TRIGGER events_no_delete")
    conn.execute("DELETE FROM events WHERE seq > ?", [seq - 2])
    conn.close()
    (cwd / ".garden" / "events.db.heads").unlink()
    verify = garden(cwd, "verify", "--head", f"{seq}:{digest[:16]}", key=None)
    assert verify.returncode == 1
    assert verify.stdout.splitlines()[:2] == [
        f"the log ends at #{seq - 2} but --head says #{seq}: events were removed",
        f"the head file .garden/events.db.heads is missing but the log has {seq - 2} events: it was "
        "deleted or moved (every run that records publishes a head there)",
    ]


def test_a_rehashed_log_fails_a_head_given_by_hand(tended):
    cwd, result = tended
    seq, digest = result["head"]["seq"], result["head"]["hash"]
    conn = connect(cwd)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET hash = ? WHERE seq = ?", ["0" * 64, seq])
    conn.close()
    verify = garden(cwd, "verify", "--head", f"{seq}:{digest[:12]}", key=None)
    assert verify.returncode == 1
    assert (f"event #{seq}'s hash does not start with {digest[:12]} given with --head: the log was "
            "rewritten") in verify.stdout.splitlines()


APPENDER = """
import sys
from pathlib import Path
from events.store import EventStore
from garden.event import LinkProposed, event
with EventStore(Path(sys.argv[1]), timeout=60) as store:
    for i in range(40):
        store.append([event(LinkProposed(target=f"t{i}-{j}", link_type="enables", confidence=0.8,
                                         reason="r", proposer="offline"), slug=sys.argv[2])
                      for j in range(25)])
        store.publish_head(run_id=sys.argv[2])
"""


def test_two_processes_appending_at_once_keep_the_head_file_in_step(tmp_path):
    db = tmp_path / ".garden" / "events.db"
    env = dict(os.environ, GARDEN_LOG_KEY=KEY)
    workers = [subprocess.Popen([sys.executable, "-c", APPENDER, str(db), name], env=env)
               for name in ("left", "right")]
    assert [w.wait(120) for w in workers] == [0, 0]
    lines = heads(tmp_path)
    assert len(lines) == 80
    assert all(len(line) == 4 and len(line[1]) == 64 for line in lines)
    seqs = [int(line[0]) for line in lines]
    # In log order; two publishes may name the same head (the other process appended in
    # between, and both then publish its end), never one the log does not have.
    assert seqs == sorted(seqs) and seqs[-1] == 2000
    stored = dict(connect(tmp_path).execute("SELECT seq, hash FROM events"))
    assert all(stored[int(s)] == h for s, h, _, _ in lines)
    verify = garden(tmp_path, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_an_event_recorded_without_the_key_after_keyed_ones_fails_verify(tmp_path):
    make_garden(tmp_path / "patterns", 3)
    assert garden(tmp_path, "observe").returncode == 0
    first = sorted((tmp_path / "patterns").glob("*.md"))[0]
    (first.parent / f"x-{first.name}").write_text(first.read_text().replace("slug: ", "slug: x-", 1))
    assert garden(tmp_path, "observe", key=None).returncode == 0
    verify = garden(tmp_path, "verify")
    assert verify.returncode == 1
    assert verify.stdout.startswith("event #4 (GardenObserved, id ")
    assert verify.stdout.splitlines()[0].endswith(
        "): no MAC, though earlier events have one: recorded without GARDEN_LOG_KEY, or its MAC "
        "was removed")
    short = garden(tmp_path, "verify", key="short")
    assert short.returncode == 1
    assert short.stderr == ("error: GARDEN_LOG_KEY: the key is too short; use at least 16 random "
                            "characters, e.g. the output of `python -c \"import secrets; "
                            "print(secrets.token_hex(32))\"`\n")
    key_file = tmp_path / "log.key"
    key_file.write_text(KEY + "\n")
    from_file = garden(tmp_path, "verify", key=None, key_file=key_file)
    assert from_file.returncode == 1 and from_file.stdout.startswith("event #4 (GardenObserved")


def test_the_summary_shows_the_head():
    result = {"run_id": "R1", "proposer": "offline", "model": None, "today": "2026-11-22",
              "patterns": 3, "tended": 3, "proposed": 1, "rescored": 0, "accepted": 0, "pending": 1,
              "rejected": 0, "pruned": {}, "files_written": 0, "errors": 0, "tokens": 0,
              "head": {"seq": 1234, "hash": "ab12cd34ef56" + "0" * 52, "published_at": "2026-11-22T03:00:00Z",
                       "file": ".garden/events.db.heads"}}
    assert summary_rows(result)[-1] == ("log head", "#1234 ab12cd34ef560000")
    assert ("Log head #1234 `ab12cd34ef56" + "0" * 52 + "`, published in .garden/events.db.heads; keep "
            "it elsewhere too and check the log against it with `garden verify --head "
            "1234:ab12cd34ef560000`.") in summary_markdown(result)


def test_the_event_mac_is_hmac_sha256_of_the_hash():
    import hashlib
    import hmac

    from events.store import EventMac

    for key in (b"k" * 16, KEY.encode(), b"\xff" * 64, bytes(range(200))):
        for digest in ("0" * 64, hashlib.sha256(key).hexdigest()):
            assert EventMac(key)(digest) == hmac.digest(key, digest.encode(), "sha256").hex()
