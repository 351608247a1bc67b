"""A second process for a tend, on the core it would leave idle.

A tend's own process works on one core: the flow alone folds and appends the events and writes
the files (one writer), and Python's threads share one core. Three parts of a tend are pure
functions of values that can be sent to another process, so on a machine with a core to spare
they run in a helper process too:
- the ranking's tokenising (`garden.candidates.count_sources`), shared (`Helper.share`): the
  helper takes pieces from the front, the flow from the back while the helper's next is not
  ready;
- the offline proposer's asking (`flows.asking`), as on a Dask worker (`flows.cluster`): while
  the helper answers one batch, the flow records the answers of the batch before and builds the
  question of the batch after;
- the preparing of the groups of files to write (`flows.writing.prepare_group`: read the file,
  put the new block in, check that the result reads back right, encode its parse-cache entry),
  shared the same way: the helper prepares groups from the front while the flow writes the
  group before (the atomic swap, its events, the parse cache), and the flow prepares a group
  from the end itself when the helper's next is not ready.
The flow records and writes in the same order, so the log and the files are the ones it would
have made alone (tests/test_helper.py).

The helper is the standard library's `ProcessPoolExecutor` with one process, started by spawn (a
fork would copy Prefect's threads). Like Dask's local cluster, a spawned process imports the
program's `__main__` module again: a script that runs the tend itself must guard its entry point
with `if __name__ == "__main__":` (the `garden` command, pytest and Prefect's workers do), or set
GARDEN_SECOND_PROCESS=off.

It is used when it pays (GARDEN_SECOND_PROCESS=auto, the default): the offline proposer, at
least `MIN_PATTERNS` patterns to ask, and a second core (by the CPUs the process may run on and
its container's CPU quota). It starts when the patterns are chosen, so that it imports its
modules while the flow begins to rank, and goes after the write step (in a dry run, at the end
of the flow). A helper that fails or dies leaves its batch, piece or group, and the rest, to
the flow's process, and the tend says so in its notes. The summary says whether a tend had one
(`second_process`); the helper makes no full garbage collections (`garden.collector`).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TypeVar

from flows.asking import AskedBatch, AskJob
from flows.propose import ask_elsewhere
from garden.collector import no_full_collections
from garden.settings import Settings

#: Patterns to ask below which the helper's start (a second Python importing its modules, about
#: 2 s of the other core) is not paid back: under about three batches of the offline proposer.
MIN_PATTERNS = 1_500

#: How often the helper looks whether the tend that started it is still there.
PARENT_CHECK_SECONDS = 0.5

T = TypeVar("T")
R = TypeVar("R")


def wanted(settings: Settings, proposer_name: str, patterns: int) -> bool:
    """Whether a tend that asks `patterns` patterns asks them in a helper process."""
    if settings.second_process == "off" or proposer_name != "offline" or patterns == 0:
        return False
    if settings.second_process == "on":
        return True
    return patterns >= MIN_PATTERNS and _cores() >= 2


def _cores(cgroup: Path = Path("/sys/fs/cgroup")) -> float:
    """The cores this process may use: the CPUs it may run on, or fewer when its container's
    CPU quota allows fewer (a container limited to one CPU on a many-core host: a helper
    there would only take turns with the flow)."""
    try:
        cores: float = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
    quota = _cpu_quota(cgroup)
    return cores if quota is None else min(cores, quota)


def _cpu_quota(cgroup: Path) -> float | None:
    """The CPU quota of the cgroup mounted at `cgroup`, in CPUs (quota / period): cgroup v2's
    cpu.max ("max 100000" when unlimited), or v1's cpu/cpu.cfs_quota_us (-1 when unlimited);
    None when there is none or it cannot be read."""
    try:
        if (cgroup / "cpu.max").exists():
            quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        else:
            quota = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
        if quota in ("max", "-1") or int(period) <= 0:
            return None
        return int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _watch_parent(parent: int) -> None:
    """In the helper, first: end it when the process that started it is gone (a tend killed with
    SIGKILL cannot shut its pool down, and the helper, which holds both ends of its own pipe,
    would wait for work forever); and leave Ctrl-C, which the terminal sends to the whole
    process group, to the tend, which then shuts the helper down (else it printed a traceback
    under the tend's one-line message)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="garden-parent-watch", daemon=True).start()


def _ready() -> int:
    """Run first in the helper, so that it imports at once what the first batch needs: the
    proposer, and scipy for the ranking's matrix (this module brings `flows.propose`); then
    its garbage collector does only young collections (`no_full_collections`)."""
    import scipy.sparse  # noqa: F401

    import proposers.offline  # noqa: F401

    no_full_collections()
    return os.getpid()


class Helper:
    """One helper process: the proposal batches sent ahead to it (`send` a batch's question,
    `take` its answers, waiting for them), and work it shares with this process (`share`)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_watch_parent, initargs=(os.getpid(),))
        self._ready = self._pool.submit(_ready)
        self._sent: dict[tuple[str, ...], tuple[AskJob, list, Future]] = {}

    def send(self, key: tuple[str, ...], job: AskJob, shipped: AskJob, cached: list) -> None:
        """Ask `shipped` (the job as `tending.shipped_job` ships it) in the helper; `job` and
        `cached` are kept for recording its answers."""
        self._sent[key] = (job, cached, self._pool.submit(ask_elsewhere, shipped, self.settings))

    def pid(self) -> int:
        """The helper process's id, once it has started."""
        return self._ready.result()

    def sent(self, key: tuple[str, ...]) -> bool:
        return key in self._sent

    def take(self, key: tuple[str, ...]) -> tuple[AskJob, list, Future[AskedBatch]]:
        """The job, the cached answers and the future answers of the batch sent as `key`. The
        future raises what the helper raised, or BrokenProcessPool if it died."""
        return self._sent.pop(key)

    def share(self, fn: Callable[[T], R], items: Iterable[T], most_held: int | None = None,
              on_failure: Callable[[BaseException], None] | None = None) -> Iterator[R]:
        """`fn(item)` for each item, in order, as `map` gives them, the work shared between the
        two processes: the helper takes the items from the front, the next one sent before a
        result is waited for; whenever the next result is not ready, this process does the last
        item nobody has taken, and keeps its result until its turn (at most `most_held` of
        them, for memory). They meet where their speeds put them: a helper still starting, or
        slower at `fn` than this process at using the results, is left fewer items.

        A helper that fails or dies (what it raised, or BrokenProcessPool) is shut down and told
        to `on_failure`; this process then does each item not given yet, in order, keeping the
        results it holds. What `fn` raises in this process is raised at its item's turn."""
        items = list(items)
        front, back = 0, len(items)  # the helper has items[:front], this process items[back:]
        waiting: deque[Future] = deque()  # the helper's results not given yet, in order
        done_here: dict[int, R | _Raised] = {}
        helped, taking = True, True  # the helper works; this process takes from the back
        for i in range(len(items)):
            if i not in done_here and helped:
                try:
                    while front < back and len(waiting) < 2:
                        waiting.append(self._pool.submit(fn, items[front]))
                        front += 1
                    while taking and not waiting[0].done() and front < back and \
                            (most_held is None or len(done_here) < most_held):
                        back -= 1
                        done_here[back] = _Raised.calling(fn, items[back])
                        taking = not isinstance(done_here[back], _Raised)  # the rest to the helper
                    result = waiting.popleft().result()
                except Exception as e:  # the helper's failure, or its death: the rest here
                    helped = False
                    self.close(wait=False)
                    if on_failure is not None:
                        on_failure(e)
                else:
                    yield result
                    continue
            done = done_here.pop(i) if i in done_here else fn(items[i])
            if isinstance(done, _Raised):
                raise done.error
            yield done

    def close(self, wait: bool = True) -> None:
        self._sent.clear()
        self._pool.shutdown(wait=wait, cancel_futures=True)


class _Raised:
    """What `fn` raised in this process, kept until its item's turn (`Helper.share`)."""

    def __init__(self, error: Exception):
        self.error = error

    @staticmethod
    def calling(fn: Callable[[T], R], item: T) -> R | _Raised:
        try:
            return fn(item)
        except Exception as e:
            return _Raised(e)


def failure_note(error: BaseException, then: str = "asked that batch and the rest") -> str:
    happened = "stopped" if isinstance(error, BrokenProcessPool) else "failed"
    return f"the second process {happened} ({type(error).__name__}: {error}); the flow {then} itself"
