"""The event log's contract: one suite, run against every store (`events.log.EventLog`).

The SQLite store (on a file in tmp_path) and the in-memory store must behave alike: append and
its idempotency, atomic batches, order, reads by pattern, run, type and range, get, the hash
chain, and snapshots (kept, thinned, found at or before a point). What only a file can do
(triggers, two processes at once, a byte changed behind the store's back) is in test_store.py.
"""

from __future__ import annotations

import pytest

from events.log import MAX_SNAPSHOTS, EventLog, snapshots_to_keep
from events.memory import MemoryEventStore
from events.projection import FOLD_VERSION, load_state, save_snapshot
from events.store import EventStore
from garden.event import (
    GardenObserved,
    LinkProposed,
    ProposalAccepted,
    RunCompleted,
    RunStarted,
    event,
)


def observed(slug: str):
    return event(GardenObserved(path=f"{slug}.md", format="v7.1", content_hash="h", text_hash="t",
                                block=None, block_text=None), slug=slug)


def proposed(slug: str, target: str, run: str | None = None, confidence: float = 0.8):
    return event(LinkProposed(target=target, link_type="enables", confidence=confidence,
                              reason="r", proposer="offline"), slug=slug, run_id=run,
                 actor="proposer:offline/tfidf")


def accepted(slug: str, proposal, run: str | None = None):
    return event(ProposalAccepted(proposal_id=proposal.id, rule="curator"), slug=slug, run_id=run, actor="curator:ann")


@pytest.fixture(params=["sqlite", "memory"])
def store(request, tmp_path):
    if request.param == "memory":
        yield MemoryEventStore()
        return
    with EventStore(tmp_path / "events.db", key=None) as sqlite:
        yield sqlite


def test_both_stores_are_event_logs(store):
    assert isinstance(store, EventLog)


def test_append_gives_contiguous_sequence_numbers(store):
    first = store.append([observed("a"), observed("b")])
    second = store.append([proposed("a", "b"), proposed("a", "c"), proposed("b", "a")])
    assert (first.first_seq, first.last_seq, first.appended) == (1, 2, 2)
    assert (second.first_seq, second.last_seq, second.appended) == (3, 5, 3)
    assert [e.seq for e in store.events()] == [1, 2, 3, 4, 5]
    assert store.head_seq() == 5
    assert store.append([]).appended == 0


def test_the_same_event_is_stored_once(store):
    e = proposed("a", "b")
    assert store.append([e, e]).appended == 1
    result = store.append([e, proposed("a", "c")])
    assert (result.appended, result.skipped, result.first_seq, result.last_seq) == (1, 1, 2, 2)
    again = store.append([e])
    assert (again.appended, again.skipped, again.first_seq) == (0, 1, None)
    assert store.head_seq() == 2


def test_a_failing_batch_stores_nothing(store):
    store.append([observed("a")])

    class Boom(Exception):
        pass

    def batch():
        yield proposed("a", "b")
        raise Boom

    with pytest.raises(Boom):
        store.append(batch())
    broken = proposed("a", "c").model_copy(update={"recorded_at": object()})
    with pytest.raises(Exception):
        store.append([proposed("a", "d"), broken])
    assert store.head_seq() == 1
    assert [r[0] for r in store.rows()] == [1]
    assert store.verify_chain() is None
    assert store.append([proposed("a", "e")]).first_seq == 2  # no gap where the batch failed


def test_events_round_trip_through_rows(store):
    e = proposed("a", "b", run="R1")
    store.append([e])
    (back,) = list(store.events())
    assert back.model_dump(exclude={"seq", "hash"}) == e.model_dump(exclude={"seq", "hash"})
    assert store.get(e.id) == back
    assert store.get("01NOTSTORED0000000000000000") is None
    assert back.hash == store.hash_at(1) and store.hash_at(2) is None


def test_reads_by_pattern_run_type_and_range(store):
    store.append([event(RunStarted(proposer="offline"), run_id="R1"), observed("a"),
                  proposed("a", "x", run="R1"), proposed("b", "y", run="R1"),
                  event(RunCompleted(counts={"proposed": 2}), run_id="R1"),
                  proposed("a", "z", run="R2")])
    assert [e.seq for e in store.events(slug="a")] == [2, 3, 6]
    assert [e.seq for e in store.events(run_id="R1")] == [1, 3, 4, 5]
    assert [e.seq for e in store.events(types=["LinkProposed"])] == [3, 4, 6]
    assert [e.seq for e in store.events(types=[])] == []
    assert [e.seq for e in store.events(after=2, until=4)] == [3, 4]
    assert [e.seq for e in store.events(after=4)] == [5, 6]
    assert [e.seq for e in store.events(until=0)] == []
    assert [r[0] for r in store.rows(slug="a", newest_first=True)] == [6, 3, 2]
    assert [r[0] for r in store.rows(slug="a", run_id="R1", types=["LinkProposed"])] == [3]
    assert [r[0] for r in store.rows(types=["RunStarted", "RunCompleted"], newest_first=True)] == [5, 1]
    assert store.run_end_seq("R1") == 5 and store.run_end_seq("R9") is None


def test_seq_at_a_time(store):
    first, second = observed("a"), observed("b")
    store.append([first])
    store.append([second])
    assert store.seq_at(first.recorded_at) == 1
    assert store.seq_at(second.recorded_at) == 2
    assert store.seq_at("2000-01-01T00:00:00+00:00") == 0


def test_the_chain_and_the_head(store):
    assert store.publish_head() is None  # nothing to publish yet
    store.append([observed("a"), proposed("a", "b", run="R1")])
    head = store.publish_head("R1")
    assert (head.seq, head.hash, head.run_id) == (2, store.hash_at(2), "R1")
    assert store.verify_chain() is None


def test_both_stores_store_the_same_rows(tmp_path):
    """The same appends give the same rows, hashes and all: a log can move between them."""
    batches = [[observed("a"), observed("b")], [proposed("a", "b", run="R1"), proposed("b", "a", run="R1")]]
    memory = MemoryEventStore()
    with EventStore(tmp_path / "events.db", key=None) as sqlite:
        for batch in batches:
            sqlite.append(batch)
            memory.append(batch)
        assert list(memory.rows()) == list(sqlite.rows())


# --- snapshots -----------------------------------------------------------------------------


def test_a_snapshot_is_found_at_or_before_a_point(store):
    store.append([observed("a"), observed("b"), observed("c")])
    assert store.latest_snapshot(FOLD_VERSION) is None
    store.save_snapshot(1, FOLD_VERSION, [("a", b"one")])
    store.save_snapshot(3, FOLD_VERSION, [("a", b"three"), ("b", b"b")])
    assert store.latest_snapshot(FOLD_VERSION) == (3, {"a": b"three", "b": b"b"})
    assert store.latest_snapshot(FOLD_VERSION, until=2) == (1, {"a": b"one"})
    assert store.latest_snapshot(FOLD_VERSION, until=0) is None
    assert store.latest_snapshot(FOLD_VERSION + 1) is None  # another fold's snapshots are not used
    store.save_snapshot(3, FOLD_VERSION, [("a", b"again")])  # the same point again: replaced
    assert store.latest_snapshot(FOLD_VERSION) == (3, {"a": b"again"})
    assert store.snapshot_seqs() == [1, 3]
    store.drop_snapshots()
    assert store.latest_snapshot(FOLD_VERSION) is None and store.snapshot_seqs() == []


def test_older_snapshots_are_thinned_not_dropped(store):
    for seq in range(100, 5_100, 100):  # 50 snapshots, 100 events apart
        store.save_snapshot(seq, FOLD_VERSION, [("a", str(seq).encode())])
    kept = store.snapshot_seqs()
    assert len(kept) <= MAX_SNAPSHOTS
    assert kept[-3:] == [4_800, 4_900, 5_000]  # the newest few
    assert kept[0] <= 1_000  # and some far back, spaced wider the further back they are
    gaps = [b - a for a, b in zip(kept, kept[1:])]
    assert gaps == sorted(gaps, reverse=True), kept


def test_the_thinning_rule():
    assert snapshots_to_keep([]) == set()
    assert snapshots_to_keep([5, 10]) == {5, 10}
    seqs = range(20_000, 2_000_001, 20_000)  # a hundred snapshots, 20,000 events apart
    kept = sorted(snapshots_to_keep(seqs))
    assert len(kept) == MAX_SNAPSHOTS
    assert kept[-3:] == [1_960_000, 1_980_000, 2_000_000]
    gaps = [b - a for a, b in zip(kept, kept[1:])]
    assert gaps == sorted(gaps, reverse=True)  # sparser further back
    assert kept[0] < 1_000_000  # the state a million events ago is not folded from the start


class _Counting:
    """A store whose reads are counted: how many rows a load folded, and from where."""

    def __init__(self, store):
        self._store, self.read, self.after = store, 0, []

    def rows(self, **filters):
        self.after.append(filters.get("after", 0))
        for row in self._store.rows(**filters):
            self.read += 1
            yield row

    def __getattr__(self, name):
        return getattr(self._store, name)


def _history(store, rounds: int) -> list[int]:
    """Rounds of proposals and accepts over three patterns, a snapshot after each; the seqs."""
    store.append([observed(s) for s in "abc"])
    ends = []
    for r in range(rounds):
        made = [proposed(s, f"t{r}", run=f"R{r}") for s in "abc"]
        store.append(made)
        store.append([accepted(p.slug, p, run=f"R{r}") for p in made[:2]])
        ends.append(store.head_seq())
        save_snapshot(store, load_state(store, use_snapshots=False))
    return ends


def test_an_old_point_is_folded_from_a_snapshot_near_it(store):
    ends = _history(store, 12)
    assert len(store.snapshot_seqs()) > 1
    for until in (ends[2], ends[5] - 1, ends[8], ends[-1]):
        counting = _Counting(store)
        state = load_state(counting, until)
        start = store.latest_snapshot(FOLD_VERSION, until)[0]
        assert counting.after == [start] and counting.read == until - start
        assert until - start < ends[-1] // 2  # near it, not the first event
        assert state.to_json() == load_state(store, until, use_snapshots=False).to_json()
