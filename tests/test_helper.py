"""The offline proposer asked in a second process (`flows.helper`): the same files and log as
asking in the flow's own process, through `garden tend` and Prefect; a helper killed mid-tend
leaves the flow to ask the rest, and nothing is lost."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import events_of, files_of, garden_bin, make_garden, verify
from events.store import EventStore
from flows import tending
from flows.helper import MIN_PATTERNS, wanted
from garden.candidates import count_sources as real_count_sources
from garden.policy import Policy
from garden.settings import load_settings

TODAY = dt.date(2026, 11, 22)
ULID = re.compile(r'"[0-9A-HJKMNP-TV-Z]{26}"')


def tend_cli(root, env: dict, second_process: str) -> dict:
    done = subprocess.run([garden_bin(), "tend", "--today", TODAY.isoformat(), "--json"], cwd=root,
                          env=dict(env, GARDEN_SECOND_PROCESS=second_process, GARDEN_POLICY_BATCH_SIZE="8"),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_tend_asking_in_a_second_process_writes_and_logs_what_one_process_does(tmp_path, prefect_env):
    here, there = tmp_path / "one", tmp_path / "two"
    make_garden(here / "patterns", 40)
    shutil.copytree(here, there)

    alone = tend_cli(here, prefect_env, "off")
    helped = tend_cli(there, prefect_env, "on")  # 5 batches: answers sent ahead, recorded in order

    assert helped["second_process"] is True and alone["second_process"] is False
    assert helped["tended"] == 40 and helped["proposed"] > 0 and helped["rescored"] > 0
    plain = lambda summary: {k: v for k, v in summary.items()  # noqa: E731
                             if k not in ("run_id", "timings", "head", "second_process")}
    assert plain(helped) == plain(alone)
    assert files_of(there) == files_of(here)
    assert events_of(there) == events_of(here)
    verify(here)
    verify(there)


def tend_here(root, second_process: str, before_proposing=None, before_writing=None, after_batch=None,
              patterns=None):
    """A tend in this process, batches of 8 (of `patterns` only, if given); `before_proposing(tend)`
    is called once the patterns are chosen and ranked, `after_batch(tend, i)` after batch i is
    recorded, `before_writing(tend)` before the write step. Its summary, its notes, and the log
    as (type, slug, payload)."""
    settings = load_settings(garden=root / "patterns", db=root / "events.db", second_process=second_process)
    with EventStore(settings.db) as store:
        tend = tending.start_tend(settings, Policy(batch_size=8), store, today=TODAY, patterns=patterns)
        tending.observe_step(tend)
        tending.choose_and_rank_step(tend)
        if before_proposing is not None:
            before_proposing(tend)
        for i, batch in enumerate(tending.batches(tend)):
            tending.propose_batch(tend, batch, tend.ranking)
            if after_batch is not None:
                after_batch(tend, i)
        tending.decide_and_prune_step(tend)
        if before_writing is not None:
            before_writing(tend)
        tending.write_step(tend)
        result = tending.finish_tend(tend)
        events = [(row[2], row[3], ULID.sub('"<id>"', row[8].replace(str(root), "<root>")))
                  for row in store.rows() if row[2] not in ("RunStarted", "RunCompleted")]
    return result, tend.notes, events


@pytest.mark.parametrize("when", ["before the first batch", "with the third batch sent ahead"])
def test_a_helper_killed_mid_tend_leaves_the_flow_to_ask_and_nothing_is_lost(tmp_path, when):
    make_garden(tmp_path / "a" / "patterns", 40)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    killed = []

    def kill_the_helper(tend, *_):
        if not killed:
            assert tend.helper is not None
            killed.append(tend.helper.pid())
            os.kill(killed[0], signal.SIGKILL)

    alone, _, alone_events = tend_here(tmp_path / "a", "off")
    if when == "before the first batch":
        helped, notes, helped_events = tend_here(tmp_path / "b", "on", before_proposing=kill_the_helper)
    else:  # two batches answered by the helper, recorded; the third sent to it already
        helped, notes, helped_events = tend_here(tmp_path / "b", "on",
                                                 after_batch=lambda tend, i: i == 1 and kill_the_helper(tend))

    assert killed and helped_events == alone_events and len(helped_events) > 100
    assert helped["files_written"] == alone["files_written"] == 40 and helped["errors"] == 0
    assert helped["second_process"] is True
    assert [n for n in notes if n.startswith("the second process stopped (BrokenProcessPool")] == [notes[-1]]
    assert no_children_left()


def test_a_pattern_named_twice_is_asked_once(tmp_path):
    """The next batch's question is built before this one's answers are recorded: a slug in both
    would be asked twice, so the tend chooses each once."""
    make_garden(tmp_path / "a" / "patterns", 20)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    slugs = sorted(p.stem for p in (tmp_path / "a" / "patterns").glob("*.md"))[:10]
    twice = slugs[:8] + slugs[2:3] + slugs[8:]  # the repeat lands in the second batch
    _, _, alone_events = tend_here(tmp_path / "a", "off", patterns=twice)
    helped, _, helped_events = tend_here(tmp_path / "b", "on", patterns=twice)
    assert helped["tended"] == 10 and helped_events == alone_events  # 11 and more events, before


def test_a_tend_on_dask_starts_no_helper(tmp_path):
    make_garden(tmp_path / "patterns", 20)
    settings = load_settings(garden=tmp_path / "patterns", db=tmp_path / "events.db", second_process="on")
    with EventStore(settings.db) as store:
        tend = tending.start_tend(settings, Policy(), store, today=TODAY,
                                  runner={"task_runner": "dask", "dask_address": None, "dask_workers": 2})
        tending.choose_and_rank_step(tend)
        assert tend.chosen and tend.helper is None
        tending.finish_tend(tend)


def test_a_helper_killed_before_the_write_leaves_the_flow_to_prepare_the_files(tmp_path, monkeypatch):
    monkeypatch.setattr("flows.writing.WRITE_GROUP", 7)  # 40 files in 6 groups
    make_garden(tmp_path / "a" / "patterns", 40)
    shutil.copytree(tmp_path / "a", tmp_path / "b")

    def kill_the_helper(tend):
        os.kill(tend.helper.pid(), signal.SIGKILL)

    alone, _, alone_events = tend_here(tmp_path / "a", "off")
    helped, notes, helped_events = tend_here(tmp_path / "b", "on", before_writing=kill_the_helper)

    assert helped_events == alone_events and helped["files_written"] == 40 and helped["errors"] == 0
    assert files_of(tmp_path / "b") == files_of(tmp_path / "a")
    assert notes[-1].startswith("the second process stopped (BrokenProcessPool") and \
        notes[-1].endswith("the flow prepared those files and the rest itself")
    assert no_children_left()


def test_groups_prepared_in_the_helper_are_written_as_the_flow_writes_them_and_it_goes(tmp_path, monkeypatch):
    monkeypatch.setattr("flows.writing.WRITE_GROUP", 7)  # 30 files in 5 groups, each sent ahead
    make_garden(tmp_path / "a" / "patterns", 30)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    pids = []
    alone, _, alone_events = tend_here(tmp_path / "a", "off")
    helped, notes, helped_events = tend_here(tmp_path / "b", "on", lambda tend: pids.append(tend.helper.pid()))
    assert helped_events == alone_events and helped["files_written"] == 30
    assert files_of(tmp_path / "b") == files_of(tmp_path / "a")
    assert not any(n.startswith("the second process") for n in notes)
    assert pids and multiprocessing.active_children() == []
    try:
        os.kill(pids[0], 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive


def test_when_a_second_process_is_used():
    auto, on, off = (load_settings(second_process=mode) for mode in ("auto", "on", "off"))
    assert wanted(auto, "offline", MIN_PATTERNS) == (len(os.sched_getaffinity(0)) >= 2)
    assert not wanted(auto, "offline", MIN_PATTERNS - 1)  # its start would not be paid back
    assert not wanted(auto, "llm", 10_000) and not wanted(on, "llm", 10_000)  # a model's answers come by HTTP
    assert wanted(on, "offline", 1) and not wanted(on, "offline", 0)
    assert not wanted(off, "offline", 10_000)


def test_a_helper_whose_tend_is_killed_goes_too(tmp_path):
    """SIGKILL leaves no shutdown to the tend: its helper sees that its parent is gone."""
    script = ("import time\n"
              "from flows.helper import Helper\n"
              "from garden.settings import load_settings\n"
              "if __name__ == '__main__':\n"
              "    helper = Helper(load_settings())\n"
              "    print(helper.pid(), flush=True)\n"
              "    time.sleep(60)\n")
    (tmp_path / "starts_a_helper.py").write_text(script)
    tend = subprocess.Popen([sys.executable, str(tmp_path / "starts_a_helper.py")], cwd=Path.cwd(),
                            env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])),
                            stdout=subprocess.PIPE, text=True)
    try:
        helper = int(tend.stdout.readline())
        os.kill(helper, 0)  # alive
        tend.kill()
        tend.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(helper):
            time.sleep(0.1)
        assert not _alive(helper)
    finally:
        tend.kill()


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped by its new parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


COMPUTED_HERE: list[int] = []  # the items `square_slowly` did in the tend's process


def square_slowly(item: int) -> tuple[int, int]:
    time.sleep(0.03)
    if multiprocessing.parent_process() is None:  # not in the helper
        COMPUTED_HERE.append(item)
    return item * item, os.getpid()


def square_or_die(item: int) -> int:
    """Squares; the helper dies at item 5."""
    if multiprocessing.parent_process() is not None:
        time.sleep(0.05)
        if item == 5:
            os._exit(1)
    return item * item


def square_or_fail_at_the_end(item: int) -> int:
    if item == 59 and multiprocessing.parent_process() is None:
        raise KeyError(item)
    time.sleep(0.03)
    return item * item


@pytest.mark.parametrize("most_held", [None, 2])
def test_shared_work_comes_back_in_order_done_by_both_processes(most_held):
    """The helper, still starting, takes the front; this process the back, meanwhile."""
    from flows.helper import Helper

    COMPUTED_HERE.clear()
    helper = Helper(load_settings())
    try:
        results, held = [], []
        for i, result in enumerate(helper.share(square_slowly, range(60), most_held=most_held)):
            results.append(result)
            held.append(sum(1 for j in COMPUTED_HERE if j > i))  # done here, not given yet
        helper_pid = helper.pid()
    finally:
        helper.close()
    assert [square for square, _ in results] == [i * i for i in range(60)]
    by = [pid for _, pid in results]
    assert set(by) == {os.getpid(), helper_pid}
    split = by.index(os.getpid())
    assert by[:split] == [helper_pid] * split and by[split:] == [os.getpid()] * (60 - split)  # they met once
    assert sorted(COMPUTED_HERE) == list(range(split, 60))
    if most_held is not None:
        assert max(held) <= most_held


def test_the_ranking_shared_with_a_helper_is_the_ranking_and_survives_its_death(tmp_path, monkeypatch):
    from flows.helper import Helper
    from garden.candidates import rank_patterns

    monkeypatch.setattr("garden.candidates.TOKENIZE_CHUNK", 3)  # 40 patterns in 14 pieces
    make_garden(tmp_path / "patterns", 40)
    settings = load_settings(garden=tmp_path / "patterns", db=tmp_path / "events.db", second_process="on")
    with EventStore(settings.db) as store:
        tend = tending.start_tend(settings, Policy(), store, today=TODAY)
        plain = rank_patterns(tend.garden.patterns.values(), k=settings.candidates)
        tending.choose_and_rank_step(tend)  # starts the helper; the first piece is always its (`share`)
        assert tend.helper is not None and not tend.notes
        shared, tend.ranking = tend.ranking, None
        os.kill(tend.helper.pid(), signal.SIGKILL)
        alone = tending.rank_step(tend)
        assert tend.helper is None
        assert tend.notes[-1].startswith("the second process stopped (BrokenProcessPool") and \
            tend.notes[-1].endswith("the flow tokenised the rest and did the rest of the tend itself")
        tending.finish_tend(tend)
    for ranking in (shared, alone):
        assert ranking.slugs == plain.slugs and ranking.terms.tolist() == plain.terms.tolist()
        assert (ranking.neighbours == plain.neighbours).all() and (ranking.scores == plain.scores).all()
        assert (ranking.matrix != plain.matrix).nnz == 0 and ranking.common_terms == plain.common_terms
    assert no_children_left()


def test_the_helper_makes_no_full_collections():
    """Its heap grows by a quarter time and again as it answers and prepares; a full collection
    each time walked all of it (14 in a first tend of 3,600 patterns, 0.9 s)."""
    import gc

    from flows.helper import Helper

    helper = Helper(load_settings())
    try:
        helper.pid()  # ready: its imports done, its collector set
        assert helper._pool.submit(gc.get_threshold).result()[2] == 2**31 - 1
        assert helper._pool.submit(gc.get_freeze_count).result() > 10_000  # its modules, set aside
    finally:
        helper.close()
    assert gc.get_threshold()[2] != 2**31 - 1  # this process's is its own


@pytest.mark.parametrize("files, cores", [
    ({}, None),  # no cgroup: the CPUs the process may run on
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu.max": "150000 100000\n"}, 1.5),
    ({"cpu.max": "50000 100000\n"}, 0.5),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1.0),
    ({"cpu.max": "garbage\n"}, None),
])
def test_a_container_s_cpu_quota_counts_as_its_cores(tmp_path, files, cores):
    """A container limited to one CPU on a many-core host starts no helper (`auto`)."""
    from flows import helper

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    cpus = len(os.sched_getaffinity(0))
    assert helper._cores(tmp_path) == (cpus if cores is None else min(cpus, cores))


def test_shared_work_with_nothing_to_do_or_nothing_held_here():
    from flows.helper import Helper

    COMPUTED_HERE.clear()
    helper = Helper(load_settings())
    try:
        assert list(helper.share(square_slowly, [])) == []
        assert [r[0] for r in helper.share(square_slowly, range(12), most_held=0)] == [i * i for i in range(12)]
    finally:
        helper.close()
    assert COMPUTED_HERE == []  # nothing may be held here: all of it the helper's


def test_a_helper_that_dies_mid_share_leaves_the_rest_here_in_order():
    from concurrent.futures.process import BrokenProcessPool

    from flows.helper import Helper

    failures = []
    helper = Helper(load_settings())
    try:
        helper.pid()
        results = list(helper.share(square_or_die, range(40), most_held=3, on_failure=failures.append))
    finally:
        helper.close()
    assert results == [i * i for i in range(40)]
    assert len(failures) == 1 and isinstance(failures[0], BrokenProcessPool)
    assert no_children_left()


def test_what_fails_here_is_raised_at_its_turn_after_every_result_before_it():
    from flows.helper import Helper

    failures, given = [], []
    helper = Helper(load_settings())
    try:
        with pytest.raises(KeyError):
            for result in helper.share(square_or_fail_at_the_end, range(60), on_failure=failures.append):
                given.append(result)
    finally:
        helper.close()
    assert given == [i * i for i in range(59)] and failures == []  # not the helper's failure


def test_a_helper_killed_mid_write_leaves_the_flow_to_prepare_the_rest(tmp_path, monkeypatch):
    """Killed after the first group is written, with groups sent to it and held here."""
    from flows import writing

    monkeypatch.setattr("flows.writing.WRITE_GROUP", 3)  # 40 files in 14 groups
    make_garden(tmp_path / "a" / "patterns", 40)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    alone, _, alone_events = tend_here(tmp_path / "a", "off")
    pids, write_group = [], writing._write_group

    def write_then_kill(*args):
        write_group(*args)
        if pids and not pids[1:]:
            os.kill(pids[0], signal.SIGKILL)
            pids.append("killed")

    monkeypatch.setattr(writing, "_write_group", write_then_kill)
    helped, notes, helped_events = tend_here(tmp_path / "b", "on", before_writing=lambda tend: pids.append(tend.helper.pid()))

    assert pids[1:] == ["killed"]
    assert helped_events == alone_events and helped["files_written"] == 40 and helped["errors"] == 0
    assert files_of(tmp_path / "b") == files_of(tmp_path / "a")
    assert [n for n in notes if n.startswith("the second process")] == [notes[-1]]
    assert notes[-1].startswith("the second process stopped (BrokenProcessPool")
    done = subprocess.run([garden_bin(), "verify", "--db", "events.db"], cwd=tmp_path / "b",
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert no_children_left()


HELPER_TO_KILL: list[int] = []


def count_and_kill_the_helper(sources):
    """`count_sources`; in the tend's process, first kills the helper (its pid given)."""
    if HELPER_TO_KILL and multiprocessing.parent_process() is None:
        os.kill(HELPER_TO_KILL.pop(), signal.SIGKILL)
    return real_count_sources(sources)


def test_a_helper_killed_mid_ranking_leaves_the_flow_to_tokenise_the_rest(tmp_path, monkeypatch):
    from flows.helper import Helper
    from garden.candidates import rank_patterns

    monkeypatch.setattr("garden.candidates.TOKENIZE_CHUNK", 3)
    make_garden(tmp_path / "patterns", 60)  # 20 pieces; min_df 2 across them
    settings = load_settings(garden=tmp_path / "patterns", db=tmp_path / "events.db", second_process="on")
    with EventStore(settings.db) as store:
        tend = tending.start_tend(settings, Policy(), store, today=TODAY)
        plain = rank_patterns(tend.garden.patterns.values(), k=settings.candidates)
        tending.choose_step(tend)
        tend.helper = Helper(settings)
        HELPER_TO_KILL[:] = [tend.helper.pid()]
        monkeypatch.setattr("garden.candidates.count_sources", count_and_kill_the_helper)
        ranking = tending.rank_step(tend)
        assert tend.helper is None and HELPER_TO_KILL == []
        assert tend.notes[-1].startswith("the second process stopped (BrokenProcessPool") and \
            tend.notes[-1].endswith("the flow tokenised the rest and did the rest of the tend itself")
        tending.finish_tend(tend)
    assert ranking.terms.tolist() == plain.terms.tolist() and (ranking.neighbours == plain.neighbours).all()
    assert (ranking.matrix != plain.matrix).nnz == 0 and ranking.common_terms == plain.common_terms
    assert no_children_left()


def no_children_left(seconds: float = 10) -> bool:
    """Whether this process's children are all gone, within `seconds`: a pool shut down without
    waiting (its helper failed) ends its process a moment later."""
    deadline = time.monotonic() + seconds
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    return multiprocessing.active_children() == []
