"""Benchmark: how much of a tend's `git diff` is restyling noise inside `graph_garden` blocks.

Run from the repo root:

    .venv/bin/python scripts/bench_diff_noise.py [--corpus DIR] [--today 2026-11-22] [--json]

It copies the corpus (default ../shared/corpus/patterns) into a temporary folder, `git init`s
and commits it, runs one default tend in this process (offline proposer, default policy: the
steps of `flows.tending` without Prefect, as tests/conftest.py `tend_in_process` does) and
classifies every added or removed line of `git diff -U0`:

- item: the line lies inside a list item (entity, community, inferred link) that the tend added,
  removed or changed (its value as read differs: a rescored link, a re-typed one);
- last_pruned: the line of the block's `last_pruned`;
- structure: a line a changed item needs (a list header going from `[]` to items or back), or
  part of a block (or its GROUP 6 banner) put into a file that had none;
- noise: any other line inside a block: an item whose value did not change but whose text did,
  or a header restyled (`communities: []` added where the key was absent);
- outside: a line outside every block (should be 0).

The noise share is noise / all added and removed lines. It also prints the write stage's time
(`flows.tending.write_step`, timed alone) and how many files the tend wrote.

With `--add-one-link` it does not tend: it adds one link (and today's last_pruned) to every
block of the copy through `garden.writer.prepare_write`, the case of a tend that adds one link
to each inherited block, and classifies that diff the same way.

Items are matched by identity (a link by target and type as read, an entity or a community by
id); a line's item is found from the YAML node marks of the block (PyYAML compose): an item owns
the lines from its first line to the line before the next item or key.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from garden.block import LISTS, read_block  # noqa: E402
from garden.document import parse_document  # noqa: E402
from garden.errors import PatternError  # noqa: E402

DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "patterns"
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def tend(root: Path, today: dt.date) -> dict:
    """One default tend of root/patterns, in this process; the write stage timed alone."""
    from events.store import EventStore
    from flows import tending
    from garden.policy import Policy
    from garden.settings import load_settings

    here = os.getcwd()
    os.chdir(root)
    try:
        settings = load_settings()
        with EventStore(settings.db) as store:
            started = time.perf_counter()
            run = tending.start_tend(settings, Policy(), store, today=today)
            tending.run_steps(run, stop_before="write")
            before_write = time.perf_counter()
            tending.write_step(run)
            write_time = time.perf_counter() - before_write
            result = tending.finish_tend(run)
            result["write_seconds"] = write_time
            result["tend_seconds"] = time.perf_counter() - started
            return result
    finally:
        os.chdir(here)


def add_one_link(root: Path, today: dt.date) -> dict:
    """Instead of a tend: one new link and today's date in every block of root/patterns,
    written through `prepare_write` (what a tend does to a block it adds one link to)."""
    from garden.model import InferredLink
    from garden.writer import prepare_write

    link = InferredLink(target="bench-added-link", type="complementary", confidence=0.9,
                        reason="Shared terms: bench")
    written = errors = 0
    started = time.perf_counter()
    for path in sorted((root / "patterns").glob("*.md")):
        try:
            doc = parse_document(path, path.read_bytes())
            block = read_block(doc.data.get("graph_garden"))[0] if doc.block_span else None
            if block is None:
                continue
            new = block.model_copy(update={"inferred_links": (*block.inferred_links, link),
                                           "last_pruned": today})
            prepared = prepare_write(path, new)
        except PatternError:
            errors += 1
            continue
        path.write_bytes(prepared.data)
        written += 1
    seconds = time.perf_counter() - started
    return {"files_written": written, "errors": errors, "write_seconds": seconds,
            "tend_seconds": seconds}


def _identity(name: str, item) -> tuple:
    return (name, item.target, item.type) if name == "inferred_links" else (name, item.id)


class BlockLines:
    """One version of a file's block: which file line belongs to which item or key."""

    def __init__(self, text: str | None, path: Path):
        self.span: tuple[int, int] | None = None  # 1-based file lines, inclusive
        self.owner: dict[int, tuple] = {}  # file line -> ("item", identity) | ("key", name)
        self.items: dict[tuple, object] = {}
        self.empty: dict[str, bool] = {name: True for name in LISTS}
        if text is None:
            return
        try:
            doc = parse_document(path, text.encode("utf-8"))
        except PatternError:
            return
        if doc.block_span is None:
            return
        first = doc.line_of(doc.block_span[0])
        block_text = doc.block_text
        last = first + block_text.count("\n") - (1 if block_text.endswith("\n") else 0)
        self.span = (first, last)
        block, _ = read_block(doc.data.get("graph_garden"))
        if block is None:
            return
        for name in LISTS:
            self.empty[name] = not getattr(block, name)
        root = yaml.compose(block_text.replace("\r\n", "\n"), Loader=yaml.SafeLoader)
        mapping = root.value[0][1]
        if not isinstance(mapping, yaml.MappingNode):
            return
        keys = [(key.value, key.start_mark.line, value) for key, value in mapping.value]
        block_end = last - first  # 0-based line of the block's last line
        self.owner[first] = ("key", "graph_garden")
        for n, (name, line, value) in enumerate(keys):
            end = keys[n + 1][1] - 1 if n + 1 < len(keys) else block_end
            for ln in range(line, end + 1):
                self.owner[first + ln] = ("key", name)
            if name not in LISTS or not isinstance(value, yaml.SequenceNode):
                continue
            items = getattr(block, name)
            starts = [node.start_mark.line for node in value.value]
            if len(starts) != len(items):
                continue
            for i, item in enumerate(items):
                identity = _identity(name, item)
                self.items.setdefault(identity, item)
                stop = starts[i + 1] - 1 if i + 1 < len(starts) else end
                for ln in range(starts[i], stop + 1):
                    self.owner[first + ln] = ("item", identity)


def classify(root: Path) -> Counter:
    """Every added or removed line of the tend's diff, by kind (see the module docstring)."""
    counts: Counter = Counter()
    changed = git(root, "diff", "--name-only", "--", "patterns").split()
    for name in changed:
        path = root / name
        try:
            old_text = git(root, "show", f"HEAD:{name}")
        except subprocess.CalledProcessError:
            old_text = None
        new_text = path.read_text(encoding="utf-8") if path.exists() else None
        old, new = BlockLines(old_text, path), BlockLines(new_text, path)
        diff = git(root, "diff", "-U0", "--no-color", "--", name)
        old_line = new_line = 0
        for line in diff.splitlines():
            hunk = _HUNK.match(line)
            if hunk:
                old_line, new_line = int(hunk.group(1)), int(hunk.group(3))
                continue
            if line.startswith(("---", "+++")) or not line[:1] in "+-" or not line:
                continue
            if line.startswith("-"):
                counts["removed"] += 1
                counts[_kind(old_line, old, new)] += 1
                old_line += 1
            else:
                counts["added"] += 1
                counts[_kind(new_line, new, old)] += 1
                new_line += 1
    return counts


def _kind(line: int, this: BlockLines, other: BlockLines) -> str:
    """The kind of a changed line of `this` version, compared with the `other` version."""
    if other.span is None and this.span is not None:
        return "structure"  # a whole block (and its banner) put in or taken out
    if this.span is None or not this.span[0] <= line <= this.span[1]:
        return "outside"
    owner = this.owner.get(line)
    if owner is None:
        return "noise"
    kind, what = owner
    if kind == "item":
        return "item" if other.items.get(what) != this.items[what] else "noise"
    if what == "last_pruned":
        return "last_pruned"
    if what in LISTS and this.empty[what] != other.empty[what]:
        return "structure"
    return "noise"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--today", type=dt.date.fromisoformat, default=dt.date(2026, 11, 22))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--add-one-link", action="store_true",
                        help="instead of a tend, add one link to every block (times parse + prepare)")
    parser.add_argument("--keep", type=Path, help="keep the tended copy (a git repo) in this new folder")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        sys.exit(f"{args.corpus}: no such folder; pass --corpus DIR")
    with tempfile.TemporaryDirectory(prefix="bench-diff-noise-") as tmp:
        root = Path(tmp)
        shutil.copytree(args.corpus, root / "patterns")
        git(root, "init", "-q")
        git(root, "add", "patterns")
        git(root, "-c", "user.name=bench", "-c", "user.email=bench@example.invalid",
            "commit", "-q", "-m", "corpus")
        result = (add_one_link if args.add_one_link else tend)(root, args.today)
        counts = classify(root)
        if args.keep:
            shutil.copytree(root, args.keep, symlinks=True)
    total = counts["added"] + counts["removed"]
    figures = {
        "files_written": result["files_written"],
        "errors": result["errors"],
        "write_seconds": round(result["write_seconds"], 3),
        "tend_seconds": round(result["tend_seconds"], 3),
        "added": counts["added"],
        "removed": counts["removed"],
        **{kind: counts[kind] for kind in ("item", "last_pruned", "structure", "noise", "outside")},
        "noise_share": round(counts["noise"] / total, 4) if total else 0.0,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"files written: {figures['files_written']} (errors {figures['errors']}); "
          f"write stage {figures['write_seconds']:.2f} s of a {figures['tend_seconds']:.1f} s tend")
    print(f"diff lines: {figures['added']} added, {figures['removed']} removed, {total} in all")
    for kind in ("item", "last_pruned", "structure", "noise", "outside"):
        share = counts[kind] / total if total else 0.0
        print(f"  {kind:<12} {counts[kind]:>7}  {share:6.1%}")
    print(f"noise share: {figures['noise_share']:.1%}")


if __name__ == "__main__":
    main()
