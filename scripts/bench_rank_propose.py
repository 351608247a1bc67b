"""Benchmark: the rank and propose stages of a first offline tend, in this process, and what they made.

Run from the repo root:

    .venv/bin/python scripts/bench_rank_propose.py GARDEN_DIR [--dump OUT] [--repeat 3]
    .venv/bin/python scripts/bench_rank_propose.py GARDEN_DIR --against OTHER_SOURCE_TREE [--repeat 3]

GARDEN_DIR is copied to a temporary folder each time (nothing is written into it), then the
steps of `flows.tending` run as `run_steps` runs them, with the default Policy and the offline
proposer: observe, choose, rank (`rank_step`), and propose batch by batch, each batch timed in
three parts: building the requests (`ask_job`: `build_requests`), asking (`ask`: the offline
proposer's answers, re-assessments and duplicate suspicions) and recording (`record_batch`).
Each figure is given as wall time and as the process's CPU time (`*_cpu`, `time.process_time`),
which other processes on a shared machine disturb less.

With --dump, the ranking (neighbours, scores, the matrix, terms, common_terms) and every event
the propose stage recorded, in order, without ids, times and run ids, are written to OUT.npz and
OUT.jsonl, so that two versions of the code can be compared value for value (`cmp`).

With --against, each repetition runs this tree and OTHER_SOURCE_TREE (e.g. `git archive` of
main, unpacked) in turn as child processes, A/B interleaved, and prints the best of each.
Goal (issue 17, helper task): rank and propose faster with exactly the same output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_once(garden_dir: Path, dump: Path | None) -> dict[str, float]:
    """One first tend's rank and propose stages on a copy of garden_dir: their seconds."""
    from events.store import EventStore
    from flows import tending
    from flows.asking import ask
    from garden.candidates import warm_ranking_imports
    from garden.policy import Policy
    from garden.settings import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(garden_dir, root / "patterns")
        settings = load_settings(garden=root / "patterns", db=root / ".garden" / "events.db")
        recorded = []
        with EventStore(settings.db) as store:
            tend = tending.start_tend(settings, Policy(), store, today=dt.date(2026, 11, 22))
            tending.observe_step(tend)
            tending.choose_step(tend)
            warm_ranking_imports()  # as a tend does while Prefect's server starts
            times = {}
            clock, cpu = time.perf_counter(), time.process_time()
            tend.ranking = tending.rank_step(tend)
            times["rank"], times["rank_cpu"] = time.perf_counter() - clock, time.process_time() - cpu
            record = tend.recorder.record

            def keep(events):
                recorded.extend(events)
                record(events)

            tend.recorder.record = keep
            spent = dict.fromkeys(("build", "ask", "record", "build_cpu", "ask_cpu", "record_cpu"), 0.0)
            for batch in tending.batches(tend):
                marks = [(time.perf_counter(), time.process_time())]
                job = tending.ask_job(tend, batch, tend.ranking)
                marks.append((time.perf_counter(), time.process_time()))
                asked = list(ask(job, tend.proposer))
                marks.append((time.perf_counter(), time.process_time()))
                tending.record_batch(tend, job, asked)
                marks.append((time.perf_counter(), time.process_time()))
                for part, (before, after) in zip(("build", "ask", "record"), zip(marks, marks[1:])):
                    spent[part] += after[0] - before[0]
                    spent[part + "_cpu"] += after[1] - before[1]
            times["propose"] = spent["build"] + spent["ask"] + spent["record"]
            times["propose_cpu"] = spent["build_cpu"] + spent["ask_cpu"] + spent["record_cpu"]
            times.update(spent)
            if dump is not None:
                write_dump(dump, tend.ranking, recorded)
    return times


def write_dump(out: Path, ranking, events) -> None:
    import numpy as np

    m = ranking.matrix
    np.savez(out.with_suffix(".npz"), slugs=np.array(ranking.slugs), neighbours=ranking.neighbours,
             scores=ranking.scores, terms=ranking.terms, data=m.data, indices=m.indices,
             indptr=m.indptr, common=np.array(sorted(ranking.common_terms)))
    with open(out.with_suffix(".jsonl"), "w", encoding="utf-8") as f:
        for e in events:
            payload = e.payload.model_dump(mode="json")
            payload.pop("proposal_id", None)
            f.write(json.dumps({"type": e.type, "slug": e.slug, "actor": e.actor, "payload": payload},
                               sort_keys=True) + "\n")


def child(tree: Path, garden_dir: Path) -> dict[str, float]:
    """One run_once in a child process whose imports come from `tree`."""
    code = (f"import sys; sys.path[:0] = [{str(tree)!r}, {str(REPO / 'scripts')!r}]; "
            "import json, bench_rank_propose as b; "
            f"print(json.dumps(b.run_once(__import__('pathlib').Path({str(garden_dir)!r}), None)))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GARDEN_", "PREFECT_"))}
    done = subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("garden", type=Path)
    parser.add_argument("--dump", type=Path)
    parser.add_argument("--against", type=Path, help="another source tree, run A/B interleaved")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    garden = args.garden.resolve()
    if args.against is None:
        for i in range(args.repeat):
            times = run_once(garden, args.dump if i == 0 else None)
            print(" ".join(f"{k} {v:.2f}s" for k, v in times.items()), flush=True)
        return 0
    runs: dict[str, list[dict]] = {"this": [], "other": []}
    for _ in range(args.repeat):
        for name, tree in (("other", args.against.resolve()), ("this", REPO)):
            times = child(tree, garden)
            runs[name].append(times)
            print(f"{name:5} " + " ".join(f"{k} {v:.2f}s" for k, v in times.items()), flush=True)
    for name, found in runs.items():
        best = {k: min(t[k] for t in found) for k in found[0]}
        print(f"best of {len(found)}, {name} ({args.against if name == 'other' else REPO}): "
              + " ".join(f"{k} {v:.2f}s" for k, v in best.items()))
    print("load:", os.getloadavg())
    return 0


if __name__ == "__main__":
    sys.exit(main())
