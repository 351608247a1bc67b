"""Replay equals the live state, over generated histories of real operations.

A small real garden (files from `make_garden`), a real SQLite log, and histories drawn by
hypothesis of what happens to a garden: tends (the steps of `flows.tending`, with the offline
proposer and the in-memory Recorder production uses), a person's edits to a file (its block by
hand, or its body), a curator's accept and reject of pending proposals (`flows.curate.decide`, as
`garden accept` / `garden reject` call it), lifts of rejections, reverts of earlier runs (any
run: a tend, a decision, a lift, a revert), and snapshots saved along the way.

After every step the state a command would work from is compared with a fresh fold of the log
(`load_state(store, use_snapshots=False)`), as JSON: after a tend, the tend's own in-memory state
(`Recorder.state`); after any step, `load_state` from snapshots. At the end, every earlier point
is folded again (with and without snapshots) and compared with what was seen then, a last tend
settles the files, and `garden verify` (the CLI) agrees with them.

The older property test (tests/test_projection.py) folds synthetic events; this one runs the
code that writes them.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from conftest import WIDE_REVIEW_POLICY, garden_bin, make_garden
from events.parse_cache import open_parse_cache
from events.projection import load_state, save_snapshot
from events.queries import curator_labels, list_runs
from events.store import EventStore
from flows import calibration, curate, tending
from flows.recording import catch_up
from garden.catalog import load_garden
from garden.errors import GardenError
from garden.settings import load_settings

POLICY = WIDE_REVIEW_POLICY.model_copy(update={"retend_after_days": 0})  # every tend asks again
PATTERNS = 4


def fresh(store) -> bytes:
    return load_state(store, use_snapshots=False).to_json()


def block_lines(lines: list[str]) -> tuple[int, int] | None:
    """The lines of a file's graph_garden block: from its key to the next top-level line."""
    start = next((n for n, line in enumerate(lines) if line.startswith("graph_garden:")), None)
    if start is None:
        return None
    end = start + 1
    while end < len(lines) and (lines[end].startswith(" ") or not lines[end].strip()):
        end += 1
    return start, end


def edit_block(text: str, how: str, other: str) -> str:
    """A person's edit of the block, by hand: a score changed, an item taken out, a link added,
    or the whole block deleted."""
    lines = text.split("\n")
    span = block_lines(lines)
    if span is None:
        return text
    start, end = span
    if how == "score":
        for n in range(start, end):
            if re.match(r"\s+(confidence|relevance): ", lines[n]):
                key, _ = lines[n].split(":", 1)
                lines[n] = f"{key}: 0.51"
                break
    elif how == "drop":
        first = next((n for n in range(start, end) if lines[n].startswith("    - ")), None)
        if first is not None:
            last = first + 1
            while last < end and lines[last].startswith("      "):
                last += 1
            del lines[first:last]
    elif how == "add":
        at = next((n for n in range(start, end) if lines[n] == "  inferred_links:"), None)
        if at is not None:
            lines[at + 1:at + 1] = [f"    - target: {other}", "      type: related", "      confidence: 0.9",
                                    '      reason: "a person put it here"']
    elif how == "delete":
        del lines[start:end]
    return "\n".join(lines)


class History(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="replay-property-"))
        self.garden = make_garden(self.tmp / "patterns", PATTERNS)
        self.slugs = sorted(p.stem for p in self.garden.glob("*.md"))
        self.settings = load_settings(garden=self.garden, db=self.tmp / ".garden" / "events.db")
        self.settings.db.parent.mkdir()
        self.store = EventStore(self.settings.db)
        self.day = dt.date(2026, 11, 22)
        self.seen: dict[int, bytes] = {}  # the state at each point, as a fresh fold gave it then
        self.log: list[str] = []

    def teardown(self):
        try:
            self.store.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- what happens to a garden ---------------------------------------------------------

    def tend(self) -> None:
        tend = tending.start_tend(self.settings, POLICY, self.store, today=self.day)
        tending.run_steps(tend)
        tending.finish_tend(tend)
        self.day += dt.timedelta(days=1)
        assert tend.recorder.state.to_json() == fresh(self.store), "the tend's in-memory state differs from the log's"

    @initialize()
    def first_tend(self):
        self.log.append("tend")
        self.tend()

    @rule()
    def another_tend(self):
        self.log.append("tend")
        self.tend()

    @rule(which=st.integers(0, PATTERNS - 1), how=st.sampled_from(["score", "drop", "add", "delete", "body"]),
          other=st.integers(0, PATTERNS - 1))
    def person_edits(self, which, how, other):
        path = self.garden / f"{self.slugs[which]}.md"
        text = path.read_text("utf-8")
        if how == "body":
            new = text.rstrip("\n") + f"\n\nA sentence added by hand on {self.day}.\n"
        else:
            new = edit_block(text, how, self.slugs[other])
        self.log.append(f"edit {self.slugs[which]} {how}")
        path.write_text(new, "utf-8")

    def command(self, name: str, call) -> None:
        """A curator's command as the CLI makes it: the garden read afresh, what killed runs
        left finished, then the command; its expected failures are messages, not bugs."""
        garden = load_garden(self.settings.garden, cache=open_parse_cache(self.settings))  # as cli.log.open_garden
        self.log.append(name)
        state = load_state(self.store)  # once, kept current by the command (as GardenApp does)
        try:
            curate.finish_unfinished(self.store, garden, "ana", state)
            call(garden, state)
        except GardenError as e:
            self.log.append(f"  -> {str(e).splitlines()[0]}")
            return
        catch_up(self.store, state)  # the run's end (RunCompleted) is recorded after the command's work
        assert state.to_json() == fresh(self.store), f"{name}: the command's state differs from the log's"

    @rule(accept=st.booleans(), pick=st.integers(0, 50), write=st.booleans())
    def curator_decides(self, accept, pick, write):
        state = load_state(self.store)
        pending = [pid for slug in sorted(state.patterns) for pid in state.patterns[slug].pending]
        pending += sorted(curate.pending_duplicates(state))
        if not pending:
            return
        ids = [pending[pick % len(pending)]]
        self.command(f"{'accept' if accept else 'reject'} {ids[0]}{'' if write else ' --no-write'}",
                     lambda garden, state: curate.decide(self.store, garden, state, ids, None, None, accept, "ana", None,
                                                  write=write, today=self.day))

    @rule(accept=st.booleans(), which=st.integers(0, PATTERNS - 1))
    def curator_decides_a_pattern(self, accept, which):
        """`garden accept --pattern SLUG`: every pending proposal of the pattern at once."""
        slug = self.slugs[which]
        self.command(f"{'accept' if accept else 'reject'} --pattern {slug}",
                     lambda garden, state: curate.decide(self.store, garden, state, None, slug, None, accept, "ana", None,
                                                  today=self.day))

    @rule()
    def calibrate(self):
        """`garden calibrate --write`: a fit where the labels suffice (CalibrationFitted)."""
        labels = curator_labels(self.store)
        if labels:
            self.command(f"calibrate --write ({len(labels)} labels)",
                         lambda garden, state: calibration.write_fits(self.store, labels, 0.6, "ana"))

    @rule(accept=st.booleans(), pick=st.integers(0, 200))
    def curator_overrules_or_confirms(self, accept, pick):
        """A decision from a sampled review: on an item the policy accepted or rejected."""
        items = [i.id for i in curate.machine_items(self.store, load_state(self.store)).values()
                 if i.policy != "pending"]
        if not items:
            return
        ids = [items[pick % len(items)]]
        self.command(f"{'accept' if accept else 'reject'} {ids[0]} (sampled)",
                     lambda garden, state: curate.decide(self.store, garden, state, ids, None, None, accept, "ana", None,
                                                  today=self.day))

    @rule(stop_before=st.sampled_from(tending.STEPS[1:]))
    def tend_killed(self, stop_before):
        """A tend whose process died before a step: no RunCompleted, nothing more recorded."""
        self.log.append(f"tend killed before {stop_before}")
        tend = tending.start_tend(self.settings, POLICY, self.store, today=self.day)
        tending.run_steps(tend, stop_before=stop_before)
        assert tend.recorder.state.to_json() == fresh(self.store), "the tend's in-memory state differs from the log's"

    @rule(pick=st.integers(0, 50))
    def curator_lifts(self, pick):
        state = load_state(self.store)
        declined = [(slug, key) for slug in sorted(state.patterns)
                    for key in sorted(state.patterns[slug].declined) if not key.startswith("prune|")]
        if not declined:
            return
        slug, key = declined[pick % len(declined)]
        first, second = key.split("|")
        target, link_type, entity = (None, None, second) if first == "entity" else (first, second, None)
        self.command(f"lift {slug} {key}", lambda garden, state: curate.lift_rejection(
            self.store, state, slug, target, link_type, entity, "ana", None))

    @rule(pick=st.integers(0, 50), force=st.booleans(), write=st.booleans())
    def curator_reverts(self, pick, force, write):
        runs = [r.run_id for r in reversed(list_runs(self.store))]
        run_id = runs[pick % len(runs)]
        self.command(f"revert {run_id}{' --force' if force else ''}{'' if write else ' --no-write'}",
                     lambda garden, state: curate.revert(self.store, garden, run_id, "ana", None, force, write=write,
                                                         today=self.day, state=state))

    @rule(which=st.integers(0, PATTERNS - 1))
    def person_edits_while_a_tend_writes(self, which):
        """A person saves a file between a tend's decisions and its write: the write is refused
        for that file (a conflict), and the next observation records the edit."""
        self.log.append(f"tend, with {self.slugs[which]} edited before its write")
        tend = tending.start_tend(self.settings, POLICY, self.store, today=self.day)
        tending.run_steps(tend, stop_before="write")
        path = self.garden / f"{self.slugs[which]}.md"
        path.write_text(path.read_text("utf-8") + "\nSaved during the tend.\n", "utf-8")
        tending.write_step(tend)
        tending.finish_tend(tend)
        self.day += dt.timedelta(days=1)
        assert tend.recorder.state.to_json() == fresh(self.store), "the tend's in-memory state differs from the log's"

    @rule()
    def snapshot(self):
        self.log.append("snapshot")
        save_snapshot(self.store, load_state(self.store))

    # --- what must hold --------------------------------------------------------------------

    @invariant()
    def snapshots_agree_with_a_fresh_fold(self):
        state = fresh(self.store)
        assert load_state(self.store).to_json() == state, "load_state from snapshots differs from a fresh fold"
        self.seen[self.store.head_seq()] = state

    def check_history(self):
        """Every point seen again, folded from the first event and from snapshots; then a last
        tend settles the files and `garden verify` agrees with them."""
        for seq, state in self.seen.items():
            assert load_state(self.store, seq, use_snapshots=False).to_json() == state, f"at #{seq}"
            assert load_state(self.store, seq).to_json() == state, f"at #{seq}, from snapshots"
        self.tend()
        done = subprocess.run([garden_bin(), "verify", "--garden", str(self.garden), "--db", str(self.settings.db)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, "\n".join(self.log) + "\n" + done.stdout + done.stderr


class CheckedHistory(History):
    def teardown(self):
        try:
            self.check_history()
        finally:
            super().teardown()


# REPLAY_EXAMPLES=200 REPLAY_STEPS=25 to hunt further (a few seconds an example); by default 25 histories
# of up to 10 steps (about half a minute).
CheckedHistory.TestCase.settings = settings(max_examples=int(os.environ.get("REPLAY_EXAMPLES", 25)),
                                            stateful_step_count=int(os.environ.get("REPLAY_STEPS", 10)), deadline=None,
                                            suppress_health_check=list(HealthCheck))
test_replay_equals_the_live_state = CheckedHistory.TestCase



def test_a_tend_after_a_killed_one_counts_the_events_that_close_it(tmp_path):
    """Found by the history above: a tend closes the runs a killed process left open
    (RunFailed), and its in-memory state must include those events, or every event it folds
    carries a sequence number one short of the log's."""
    settings_ = load_settings(garden=make_garden(tmp_path / "patterns", 3), db=tmp_path / "events.db")
    with EventStore(settings_.db) as store:
        killed = tending.start_tend(settings_, POLICY, store, today=dt.date(2026, 11, 22))
        tending.run_steps(killed, stop_before="propose")  # the process dies here
        tend = tending.start_tend(settings_, POLICY, store, today=dt.date(2026, 11, 22))
        tending.run_steps(tend)
        tending.finish_tend(tend)
        assert [r.status for r in list_runs(store)] == ["completed", "failed"]
        assert tend.recorder.state.to_json() == fresh(store)


def test_a_tend_writes_what_a_revert_recorded_without_writing(tmp_path):
    """Found by the history above: `garden revert RUN --no-write` of a tend that only stamped
    last_pruned restores the old date in the log; the next tend ("writes the files") compared
    blocks without last_pruned, so never wrote them, and `garden verify` failed from then on."""
    garden = make_garden(tmp_path / "patterns", 3)
    settings_ = load_settings(garden=garden, db=tmp_path / "events.db")
    with EventStore(settings_.db) as store:
        for day in (22, 23):
            if day == 23:
                first = list_runs(store)[0].run_id
                curate.revert(store, load_garden(garden), first, "ana", None, False, write=False,
                              today=dt.date(2026, 11, 22), state=load_state(store))
            tend = tending.start_tend(settings_, POLICY, store, today=dt.date(2026, 11, day))
            tending.run_steps(tend)
            tending.finish_tend(tend)
            assert tend.recorder.state.to_json() == fresh(store)
    done = subprocess.run([garden_bin(), "verify", "--garden", str(garden), "--db", str(settings_.db)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_block_left_without_items_is_not_put_into_a_file_that_has_none(tmp_path):
    """Found by the history above: after a `revert --no-write`, a person deleted the block; the
    observation kept the revert's unwritten items, the tend pruned them, and the log was left
    with an empty block. The tend did not write it (an empty block is not put into a file that
    has none), but `garden verify` and `garden replay` wanted it there. One rule now
    (`garden.model.block_for_file`) for the tend, a revert, replay and verify."""
    garden = make_garden(tmp_path / "patterns", 4)
    settings_ = load_settings(garden=garden, db=tmp_path / "events.db")
    with EventStore(settings_.db) as store:
        tend = tending.start_tend(settings_, POLICY, store, today=dt.date(2026, 11, 22))
        tending.run_steps(tend)
        tending.finish_tend(tend)
        curate.revert(store, load_garden(garden), tend.run_id, "ana", None, False, write=False,
                      today=dt.date(2026, 11, 22), state=load_state(store))
        path = sorted(garden.glob("*.md"))[0]
        path.write_text(edit_block(path.read_text("utf-8"), "delete", ""), "utf-8")
        tend = tending.start_tend(settings_, POLICY, store, today=dt.date(2026, 11, 23))
        tending.run_steps(tend)
        tending.finish_tend(tend)
        assert tend.recorder.state.patterns[path.stem].block == {
            "last_pruned": None, "entities": [], "communities": [], "inferred_links": []}
    before = path.read_bytes()
    for args in (["verify"], ["replay", "--out", str(tmp_path / "out")]):
        done = subprocess.run([garden_bin(), *args, "--garden", str(garden), "--db", str(settings_.db)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "out" / path.name).read_bytes() == before == path.read_bytes()
