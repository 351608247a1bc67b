"""Benchmark: parsing pattern files and writing an unchanged block back, ours against the usual tools.

Run from the repo root:

    .venv/bin/python scripts/bench_parse_write.py [--corpus DIR] [--repeat N] [--json]

The corpus (default ../shared/corpus/patterns) is copied to a temporary folder first; nothing is
ever written into it. On the same files, in the same run, it measures:

- ours: `parse_document` + `read_pattern` (parse); `prepare_write(path, pattern.block, hash, pattern)` (+ `commit_write`) with
  the block the file already has (no-op write: re-reads and hashes the file on disk, and does not
  parse it again when the hash is the one read);
  both together per file (files without a block count their parse only); and a forced re-emit,
  `replace_block(doc, block)` with the same block, i.e. the splice the writer would make if the
  content had changed ("re-emitted unchanged block differs" counts files whose bytes would move).
- python-frontmatter: `frontmatter.loads(text)` + `frontmatter.dumps(post)` (its defaults),
  written out as `frontmatter.dump` would and compared byte for byte with the original.
- ruamel.yaml round-trip (typ='rt', preserve_quotes, wide lines) of the whole frontmatter, split
  by hand between the first two `---` lines, reassembled and compared byte for byte.
- PyYAML's C loader alone, `yaml.load(fm, Loader=yaml.CSafeLoader)`, as a floor for parsing, and
  ours (`garden.yaml_fast.load_yaml`: the same values from the same C parser, in less time).

Times use time.perf_counter around the in-memory work of each file (the no-op write includes its
own disk read); each approach runs over every file `--repeat` times and the fastest total is kept.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import frontmatter
import yaml
from ruamel.yaml import YAML

from garden import yaml_fast
from garden.catalog import pattern_files, read_pattern
from garden.document import parse_document, replace_block
from garden.errors import GardenError
from garden.writer import commit_write, prepare_write

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "patterns"


def split_frontmatter(text: str) -> tuple[str, str, str] | None:
    """(opening line, frontmatter, rest from the closing `---` line on), or None."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return None
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            return lines[0], "".join(lines[1:i]), "".join(lines[i:])
    return None


def run_ours(files, originals, times, counts):
    """One pass of parse, no-op write and forced re-emit over the working copies."""
    parse_t, write_t, both_t, emit_t = [], [], [], []
    changed = differs = failed = write_failed = unparsed = 0
    for path in files:
        raw = originals[path]
        start = time.perf_counter()
        try:
            doc = parse_document(path, raw)
            pattern, _ = read_pattern(doc)
        except GardenError:
            doc = pattern = None
        unparsed += pattern is None
        parsed = time.perf_counter() - start
        parse_t.append(parsed)
        if pattern is None or pattern.block is None:
            both_t.append(parsed)
            continue
        start = time.perf_counter()
        try:
            ready = prepare_write(path, pattern.block, pattern.content_hash, pattern)  # as flows.writing
            if ready is not None:
                commit_write(ready)
        except GardenError:
            write_failed += 1
        wrote = time.perf_counter() - start
        write_t.append(wrote)
        both_t.append(parsed + wrote)
        if path.read_bytes() != raw:
            changed += 1
            path.write_bytes(raw)  # restore for the next repeat
        start = time.perf_counter()
        try:
            differs += replace_block(doc, pattern.block) != raw
        except GardenError:
            failed += 1
        emit_t.append(time.perf_counter() - start)
    for name, t in (("parse", parse_t), ("write", write_t), ("both", both_t), ("emit", emit_t)):
        times.setdefault(name, []).append(t)
    counts.update(parse=(None, len(files), unparsed), write=(changed, len(write_t), write_failed),
                  both=(changed, len(files), write_failed), emit=(differs, len(emit_t), failed))


def run_other(key, files, transform, saved_bytes, times, counts):
    """Time `transform(path)` per file; count files whose saved bytes differ from the original."""
    spent, changed, failed = [], 0, 0
    for path in files:
        start = time.perf_counter()
        try:
            result = transform(path)
        except Exception:
            result, failed = None, failed + 1
        spent.append(time.perf_counter() - start)
        if result is not None and saved_bytes is not None:
            changed += saved_bytes(path, result) != path.read_bytes()
    times.setdefault(key, []).append(spent)
    counts[key] = (None if saved_bytes is None else changed, len(files), failed)


def other_approaches(files, texts, out_dir):
    """(key, transform, saved_bytes) for python-frontmatter, ruamel.yaml and the C loader."""
    yml = YAML(typ="rt")
    yml.preserve_quotes = True
    yml.width = 1 << 20
    splits = {p: split_frontmatter(texts[p]) for p in files}

    def fm_save(path, result):  # as frontmatter.dump(post, path) saves it
        out = out_dir / path.name
        out.write_text(result, encoding="utf-8")
        return out.read_bytes()

    def ruamel_round_trip(path):
        opening, fm, rest = splits[path]  # TypeError (counted as failed) if no frontmatter
        buf = io.StringIO()
        yml.dump(yml.load(fm), buf)
        return opening + buf.getvalue() + rest

    return [
        ("frontmatter", lambda p: frontmatter.dumps(frontmatter.loads(texts[p])), fm_save),
        ("ruamel", ruamel_round_trip, lambda p, result: result.encode("utf-8")),
        ("csafe", lambda p: yaml.load(splits[p][1], Loader=yaml.CSafeLoader), None),
        ("fast", lambda p: yaml_fast.load_yaml(splits[p][1]), None),
    ]


ROWS = [
    ("parse", "ours: parse (parse_document + read_pattern)"),  # failed: no pattern read
    ("write", "ours: no-op prepare_write (files with a block)"),
    ("both", "ours: parse + no-op write"),
    ("emit", "ours: forced re-emit (re-emitted unchanged block differs)"),
    ("frontmatter", "python-frontmatter loads + dumps"),
    ("ruamel", "ruamel.yaml rt load + dump of frontmatter"),
    ("csafe", "PyYAML CSafeLoader parse only"),
    ("fast", "ours: the same YAML parse (garden.yaml_fast)"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of pattern files")
    parser.add_argument("--repeat", type=int, default=3, help="passes per approach; best total kept")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        sys.exit(f"corpus folder not found: {args.corpus} (pass --corpus DIR)")

    with tempfile.TemporaryDirectory(prefix="bench-garden-") as tmp:
        work, out_dir = Path(tmp) / "corpus", Path(tmp) / "out"
        shutil.copytree(args.corpus, work, copy_function=shutil.copyfile)
        out_dir.mkdir()
        files = pattern_files(work)
        if not files:
            sys.exit(f"no .md files under {args.corpus}")
        originals = {p: p.read_bytes() for p in files}
        texts = {p: raw.decode("utf-8", errors="replace") for p, raw in originals.items()}
        others = other_approaches(files, texts, out_dir)
        times: dict[str, list[list[float]]] = {}
        counts: dict[str, tuple] = {}
        for _ in range(max(1, args.repeat)):
            run_ours(files, originals, times, counts)
            for key, transform, saved_bytes in others:
                run_other(key, files, transform, saved_bytes, times, counts)

    rows = []
    for key, label in ROWS:
        best = min(times[key], key=sum) or [0.0]
        changed, total, failed = counts[key]
        rows.append({
            "approach": label,
            "ms_per_file_mean": round(1000 * statistics.fmean(best), 3),
            "ms_per_file_median": round(1000 * statistics.median(best), 3),
            "files_changed": changed, "files_total": total, "files_failed": failed,
        })
    meta = {"corpus": str(args.corpus), "files": len(files), "repeat": args.repeat,
            "python": platform.python_version(), "cpu_count": os.cpu_count()}
    if args.json:
        print(json.dumps({**meta, "results": rows}, indent=2))
        return 0
    print(f"corpus: {meta['corpus']}\nfiles: {meta['files']}  python: {meta['python']}  "
          f"cpus: {meta['cpu_count']}  repeat: {meta['repeat']} (best total kept)\n")
    width = max(len(r["approach"]) for r in rows)
    print(f"{'approach':<{width}}  {'ms/file mean':>12}  {'ms/file median':>14}  files changed / total")
    print("-" * (width + 56))
    for r in rows:
        changed = "-" if r["files_changed"] is None else r["files_changed"]
        failed = f" ({r['files_failed']} failed)" if r["files_failed"] else ""
        print(f"{r['approach']:<{width}}  {r['ms_per_file_mean']:>12.3f}  "
              f"{r['ms_per_file_median']:>14.3f}  {changed} / {r['files_total']}{failed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
