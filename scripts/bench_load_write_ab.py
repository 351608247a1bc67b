"""Benchmark: loading a big garden and writing every block, this checkout against another revision.

Run from the repo root:

    .venv/bin/python scripts/bench_load_write_ab.py [--base REV] [--patterns N] [--repeat N]

The `garden` package of `--base` (default: main) is extracted with `git archive` into a temporary
folder and imported beside this checkout's as `garden_base` (its `garden.` imports renamed), so
both run in one process, interleaved, on the same files: a garden of N patterns generated from
../shared/corpus/patterns (`_generate.write_garden`). Figures, best of `--repeat`:

- load: `load_garden(root, keep_bodies=False)` with no parse cache (a first tend's load);
- write: `prepare_write` of a changed block for every pattern, as a first tend writes them: one
  more inferred link and today's `last_pruned` over a block, a new block where there is none
  (the splice and its check; no commit, so no fsync). Both sides must make the same bytes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

from _generate import write_garden

import garden.catalog
import garden.writer

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus" / "patterns"


def import_base(rev: str, into: Path):
    """(catalog, writer, model) of `rev`'s garden package, imported as garden_base."""
    archive = subprocess.run(["git", "archive", rev, "garden"], cwd=REPO, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    (into / "garden").rename(into / "garden_base")
    for path in (into / "garden_base").glob("*.py"):
        text = path.read_text("utf-8")
        text = re.sub(r"\bfrom garden(\.| import)", r"from garden_base\1", text)
        path.write_text(re.sub(r"\bimport garden\.", "import garden_base.", text), "utf-8")
    sys.path.insert(0, str(into))
    import garden_base.catalog
    import garden_base.model
    import garden_base.writer

    return garden_base.catalog, garden_base.writer, garden_base.model


def changed_blocks(catalog, model, root: Path) -> list:
    """(pattern, block to write) for every pattern, in the classes of that side's model."""
    today = dt.date(2026, 12, 1)
    link = model.InferredLink(target="zz-elsewhere", type="enables", confidence=0.71, reason="a new link")
    out = []
    for slug, pattern in sorted(catalog.load_garden(root, keep_bodies=False).patterns.items()):
        block = pattern.block or model.GardenBlock()
        out.append((pattern, block.model_copy(update={
            "last_pruned": today, "inferred_links": (*block.inferred_links, link)})))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="main", help="the revision to compare with (default main)")
    parser.add_argument("--patterns", type=int, default=3600, help="size of the generated garden")
    parser.add_argument("--repeat", type=int, default=3, help="passes per side; best kept")
    args = parser.parse_args()
    if not CORPUS.is_dir():
        sys.exit(f"corpus folder not found: {CORPUS}")
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        root = Path(tmp) / "patterns"
        write_garden(CORPUS, root, args.patterns)
        base_catalog, base_writer, base_model = import_base(args.base, Path(tmp) / "base")
        sides = {
            args.base: (base_catalog, base_writer, changed_blocks(base_catalog, base_model, root)),
            "this checkout": (garden.catalog, garden.writer, changed_blocks(garden.catalog, garden.model, root)),
        }
        best: dict[tuple[str, str], float] = {}
        written = {}
        for _ in range(max(1, args.repeat)):
            for name, (catalog, writer, todo) in sides.items():
                gc.collect()
                start = time.perf_counter()
                catalog.load_garden(root, keep_bodies=False)
                loaded = time.perf_counter()
                written[name] = [writer.prepare_write(Path(p.path), block, p.content_hash, p).data
                                 for p, block in todo]
                done = time.perf_counter()
                for stage, spent in (("load", loaded - start), ("write", done - loaded)):
                    best[name, stage] = min(best.get((name, stage), float("inf")), spent)
        if len({tuple(data) for data in written.values()}) != 1:
            sys.exit("the two sides wrote different bytes")
    print(f"{args.patterns} generated patterns, best of {args.repeat}; both sides wrote the same bytes")
    for stage in ("load", "write"):
        before, after = best[args.base, stage], best["this checkout", stage]
        print(f"{stage:>5}: {args.base} {before:.2f} s, this checkout {after:.2f} s "
              f"({100 * (before - after) / before:.0f}% less)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
