"""Make tests/data/legacy_log: a small garden and the event log today's code wrote for it.

Run once, with the code of the day (it was made on branch i15-tests, from main at f9a441b, before
issue 15 changed the state and the event schema), and never again: the point of the fixture is
that its log was written by older code. `tests/test_legacy_log.py` replays it with the current
code and expects the very same bytes.

    .venv/bin/python scripts/make_legacy_log.py [OUT]   # default: tests/data/legacy_log

What it does, all through the real `garden` CLI (offline proposer, a temporary Prefect server
for each tend), in a temporary folder:

1. five small patterns cut from the seeds (frontmatter and the first sections of the body),
   one of them a near copy of another (so the offline proposer suspects a duplicate), and a
   garden.toml with a wide review band (so there are pending proposals);
2. `garden tend` (run 1);
3. `garden accept` of a pending link, `garden reject` of another, `garden lift` of that rejection,
   `garden reject` of a third and `garden revert` of that decision's run (ProposalReopened),
   `garden reject` of the duplicate suspicion;
4. a person's edit: a sentence in one body, and one inferred link taken out of another's block;
5. `garden tend` (run 2: observes the edits, and proposes again);
6. `garden revert --force` of run 2, then `garden calibrate --write` (too few labels for a fit:
   it records none);
7. `garden tend` (run 3), `garden verify`, `garden replay --out` (it must equal the files) and
   `garden replay --until RUN1 --out`.

It keeps `patterns/` (the files as they are, which is also what `garden replay --out` gave),
`replayed-run1/` (the garden as of run 1), `log/events.db` with its head file, `garden.toml`,
and `commands.txt` (what ran, and what each printed, for a reader).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "patterns"
GARDEN = str(Path(sys.executable).with_name("garden"))

POLICY = """[policy]
auto_accept = 0.975
review_floor = 0.5
min_link_confidence = 0.5
"""


def cut(seed: Path, slug: str, title: str, sections: int) -> str:
    """The seed's frontmatter with a new slug and title, and its first `sections` body sections."""
    head, sep, body = seed.read_text("utf-8").partition("\n---\n\n")
    head = head.replace(f"slug: {seed.stem}", f"slug: {slug}")
    head = "\n".join(f'title: "{title}"' if line.startswith("title: ") else line for line in head.split("\n"))
    parts = body.split("\n---\n")
    return head + sep + "\n---\n".join(parts[:sections]).rstrip("\n") + "\n"


def main(out: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="legacy-log-"))
    patterns = work / "patterns"
    patterns.mkdir()
    seeds = sorted(SEEDS.glob("*.md"))
    for seed in seeds:
        (patterns / seed.name).write_text(cut(seed, seed.stem, seed.stem.replace("-", " ").title(), 2), "utf-8")
    (patterns / "leadership-by-design.md").write_text(
        cut(seeds[0], "leadership-by-design", "Leadership By Design", 2), "utf-8")
    (patterns / "self-management.md").write_text(
        cut(seeds[2], "self-management", "Self Management", 1), "utf-8")
    (work / "garden.toml").write_text(POLICY, "utf-8")
    env = dict(os.environ, GARDEN_CACHE="false", GARDEN_DB=str(work / "log" / "events.db"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env.pop("PREFECT_API_URL", None)
    transcript = []

    def garden(*args: str, ok=(0,)) -> str:
        done = subprocess.run([GARDEN, *args], cwd=work, env=env, capture_output=True, text=True, timeout=600)
        transcript.append(f"$ garden {' '.join(args)}\n# exit {done.returncode}\n{done.stdout}{done.stderr}")
        if done.returncode not in ok:
            sys.exit(f"garden {' '.join(args)}: exit {done.returncode}\n{done.stdout}{done.stderr}")
        return done.stdout

    run1 = json.loads(garden("tend", "--today", "2026-11-22", "--json"))["run_id"]
    review = json.loads(garden("review", "--list", "--json"))
    links = [{**p, "slug": group["slug"]} for group in review for p in group["proposals"] if p["kind"] == "link"]
    if len(links) < 3:
        sys.exit("fewer than three pending links: widen the review band")
    garden("accept", links[0]["id"], "--by", "ana", "--note", "fits")
    garden("reject", links[1]["id"], "--by", "ana", "--note", "not this one")
    garden("lift", links[1]["slug"], "--target", links[1]["target"], "--type", links[1]["link_type"],
           "--by", "ana", "--note", "ask again")
    undone = json.loads(garden("reject", links[2]["id"], "--by", "ana", "--note", "no", "--json"))["run_id"]
    garden("revert", undone, "--by", "ana", "--note", "that was a slip")  # the proposal is pending again
    duplicates = [m for group in review for m in group["merge_candidates"]]
    if duplicates:
        garden("reject", duplicates[0]["id"], "--by", "ana", "--note", "two ideas")

    edited = patterns / "distributed-leadership-design.md"
    text = edited.read_text("utf-8")
    edited.write_text(text.rstrip("\n") + "\n\nA sentence a person added by hand.\n", "utf-8")
    with_links = next(p for p in sorted(patterns.glob("*.md"))
                      if p != edited and "inferred_links:\n" in p.read_text("utf-8")
                      and "  - target:" in p.read_text("utf-8").split("inferred_links:\n", 1)[1])
    lines = with_links.read_text("utf-8").split("\n")
    start = next(n for n, line in enumerate(lines) if line.strip().startswith("- target:")
                 and n > lines.index(next(l for l in lines if l.strip() == "inferred_links:")))
    end = start + 1
    while end < len(lines) and lines[end].startswith(" " * (len(lines[start]) - len(lines[start].lstrip()) + 2)):
        end += 1
    del lines[start:end]
    with_links.write_text("\n".join(lines), "utf-8")

    run2 = json.loads(garden("tend", "--today", "2026-11-23", "--json"))["run_id"]
    garden("revert", run2, "--by", "ana", "--note", "undo the second night", "--force")
    garden("calibrate", "--write", "--by", "ana", ok=(0, 1))
    garden("tend", "--today", "2026-11-24", "--json")
    garden("verify")
    garden("replay", "--out", str(work / "replayed"))
    garden("replay", "--check")
    garden("replay", "--until", run1, "--out", str(work / "replayed-run1"))

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copytree(patterns, out / "patterns")
    if any((work / "replayed" / p.name).read_bytes() != p.read_bytes() for p in patterns.glob("*.md")):
        sys.exit("the replay differs from the files: not a fixture to keep")
    shutil.copytree(work / "replayed-run1", out / "replayed-run1")
    (out / "log").mkdir()
    for name in ("events.db", "events.db.heads"):
        shutil.copy2(work / "log" / name, out / "log" / name)
    shutil.copy2(work / "garden.toml", out / "garden.toml")
    (out / "commands.txt").write_text(f"# run 1 {run1}, run 2 {run2}\n\n" + "\n".join(transcript), "utf-8")
    shutil.rmtree(work)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "data" / "legacy_log")
