"""Benchmark: `garden serve` on a generated garden: start, the review page, one decision.

Run from the repo root:

    .venv/bin/python scripts/bench_serve.py [--corpus DIR] [--n 3600] [--decisions 100] [--json]

Writes a garden of --n patterns generated from the corpus (scripts/_generate.py) into a temporary
folder, tends it once without Prefect, starts `garden serve` (a subprocess, as a curator starts
it) and times over HTTP: the start (process start to the first answered request), `GET /` (the
review page, with the first item in it: the first request loads the log's state, the server keeps it), `GET /api/pending` (the whole queue), and --decisions
decisions (`POST /api/decisions`, accept and reject alternating) as p50/p95, and the page's
round (`GET /api/pending?limit=20&order=uncertain` then the decision); and the server's
resident memory (VmHWM, its peak) at the end. Nothing is written into the corpus.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _generate import write_garden  # noqa: E402

GARDEN_BIN = str(Path(sys.executable).with_name("garden"))
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "patterns"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def memory_kb(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def tend_wide(root: Path) -> float:
    """One tend without Prefect, with a wide review band (0.3 to 0.999), so
    hundreds of proposals wait for a curator: its seconds."""
    import datetime as dt

    from events.store import EventStore
    from flows import tending
    from garden.policy import Policy
    from garden.settings import load_settings

    settings = load_settings(garden=root / "patterns", db=root / ".garden" / "events.db")
    clock = time.perf_counter()
    with EventStore(settings.db) as store:
        run = tending.start_tend(settings, Policy(auto_accept=0.999, review_floor=0.3, min_link_confidence=0.3),
                                 store, today=dt.date(2026, 11, 22))
        tending.run_steps(run)
        tending.finish_tend(run)
    return time.perf_counter() - clock


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--n", type=int, default=3600)
    parser.add_argument("--decisions", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_garden(args.corpus, root / "patterns", args.n)
        tend_seconds = tend_wide(root)
        port = free_port()
        started = time.perf_counter()
        server = subprocess.Popen([GARDEN_BIN, "serve", "--port", str(port), "--garden", str(root / "patterns"),
                                   "--db", str(root / ".garden" / "events.db")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
            while True:
                try:
                    http.get("/api/runs")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            start = time.perf_counter() - started
            clock = time.perf_counter()
            page = http.get("/")  # the first request loads the log's state (kept after)
            first_page_seconds = time.perf_counter() - clock
            clock = time.perf_counter()
            page = http.get("/")
            page_seconds = time.perf_counter() - clock
            clock = time.perf_counter()
            items = http.get("/api/pending").json()["items"]
            pending_seconds = time.perf_counter() - clock
            times, rounds = [], []
            for i in range(min(args.decisions, len(items))):
                clock = time.perf_counter()
                item = http.get("/api/pending", params={"limit": 20, "order": "uncertain"}).json()["items"][0]  # what the page asks
                asked = time.perf_counter()
                answer = http.post("/api/decisions", headers={"X-Garden": "1"},
                                   json={"id": item["id"], "decision": "accept" if i % 2 == 0 else "reject",
                                         "by": "bench"})
                times.append(time.perf_counter() - asked)
                rounds.append(time.perf_counter() - clock)
                assert answer.status_code == 200, answer.text
            pages = {}
            tend_run = http.get("/api/runs").json()["runs"][-1]["run_id"]  # the oldest: the tend
            for name, path in [("runs", "/runs"), ("the tend's run (first 100 patterns)", f"/runs/{tend_run}"),
                               ("a pattern", f"/patterns/{items[0]['slug']}"), ("health", "/health")]:
                clock = time.perf_counter()
                answer = http.get(path)
                if answer.status_code == 200:
                    pages[name] = round(time.perf_counter() - clock, 3)
            memory = memory_kb(server.pid)
        finally:
            server.terminate()
            server.wait(30)
        verify = subprocess.run([GARDEN_BIN, "verify", "--garden", str(root / "patterns"),
                                 "--db", str(root / ".garden" / "events.db")], capture_output=True, text=True)
    result = {"patterns": args.n, "tend_seconds": round(tend_seconds, 1), "pending": len(items),
              "start_seconds": round(start, 2), "first_review_page_seconds": round(first_page_seconds, 3),
              "review_page_seconds": round(page_seconds, 3),
              "review_page_bytes": len(page.content), "pending_api_seconds": round(pending_seconds, 3),
              "decisions": len(times), "decision_p50_seconds": round(statistics.median(times), 3) if times else None,
              "decision_p95_seconds": round(percentile(times, 95), 3) if times else None,
              "page_round_p50_seconds": round(statistics.median(rounds), 3) if rounds else None,
              "page_round_p95_seconds": round(percentile(rounds, 95), 3) if rounds else None,
              "server_rss_mb": round(memory.get("VmRSS", 0) / 1024), "server_peak_rss_mb": round(memory.get("VmHWM", 0) / 1024),
              "other_pages_seconds": pages, "verify_exit": verify.returncode}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
