"""SIGKILL in the middle of appending a large batch: the batch is wholly there or wholly absent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from events.store import EventStore

CHILD = """
import sys
from pathlib import Path
from events.store import EventStore
from garden.event import LinkProposed, event
batch = [event(LinkProposed(target=f"t{i}", link_type="enables", confidence=0.8, reason="r" * 40,
                            proposer="offline"), slug=f"s{i % 500}") for i in range(int(sys.argv[2]))]
with EventStore(Path(sys.argv[1])) as store:
    print("appending", flush=True)
    store.append(batch)
    print("done", flush=True)
"""

BATCH = 150_000


def test_sigkill_mid_batch_leaves_all_or_nothing(tmp_path):
    db = tmp_path / "events.db"
    counts = []
    for delay in (0.05, 0.3, 0.8):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(BATCH)],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "appending"
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        with EventStore(db) as store:
            total = store.head_seq()
            assert total % BATCH == 0, f"a partial batch is visible: {total} events"
            assert store.integrity_errors() == []
            assert store.verify_chain() is None
            counts.append(total)
    print("events after each kill:", counts)
    # At least one kill must have landed mid-append for the test to mean anything.
    assert counts[0] == 0, counts  # killed 50 ms into a ~2 s append: nothing of it is visible
