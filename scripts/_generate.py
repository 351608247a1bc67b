"""Big gardens for benchmarks, generated from a real corpus (never written into it).

Copy i of the corpus (sources taken in turn, so n patterns are n // len(corpus) + 1 rounds) is
the source pattern with slug `<slug>-g<round>`, title `<title> (g<round>)` and its body's
sections shuffled: the body is split before every line starting with "### " and the sections
after the first such line are put in a random order (the text before it stays first). Everything
else (the rest of the frontmatter, the block, the curated links to the original slugs) is kept.
The same seed gives the same garden.

    from _generate import generate_patterns, tend_once, write_garden
    patterns = generate_patterns(load_garden(corpus).patterns.values(), 20_000)  # in memory
    write_garden(corpus, out_dir, 20_000)  # files <slug>.md in out_dir, for load_garden

Scripts in scripts/ import it as `_generate` (a script's own folder is on sys.path).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from garden.catalog import pattern_files
from garden.document import parse_document
from garden.model import Pattern

_SECTION = re.compile(r"(?m)^(?=### )")


def shuffle_sections(body: str, rng: random.Random) -> str:
    """`body` with its "### " sections in a random order; each section still ends its line."""
    head, *sections = _SECTION.split(body)
    rng.shuffle(sections)
    return head + "".join(s if s.endswith("\n") else s + "\n" for s in sections)


def _names(i: int, sources: int, slug: str, title: str) -> tuple[str, str]:
    round_ = i // sources
    return f"{slug}-g{round_}", f"{title} (g{round_})"


def generate_patterns(sources: Iterable[Pattern], n: int, seed: int = 0) -> list[Pattern]:
    """n Pattern objects built in memory (no files: `path` is a made-up name)."""
    sources = sorted(sources, key=lambda p: p.slug)
    if not sources:
        raise ValueError("no source patterns to generate from")
    rng = random.Random(seed)
    out = []
    for i in range(n):
        src = sources[i % len(sources)]
        slug, title = _names(i, len(sources), src.slug, src.title)
        out.append(src.model_copy(update={
            "slug": slug, "title": title, "path": f"{slug}.md",
            "body_utf8": shuffle_sections(src.body, rng).encode("utf-8"),
            "frontmatter": {**src.frontmatter, "slug": slug, "title": title},
        }))
    return out


def generated_texts(corpus: Path, n: int, seed: int = 0) -> Iterator[tuple[str, str]]:
    """(slug, file text) for n generated files, from the corpus's parseable pattern files."""
    sources = []
    for path in pattern_files(Path(corpus)):
        try:
            doc = parse_document(path, path.read_bytes())
        except Exception:  # not a pattern, or broken: not a source
            continue
        if isinstance(doc.data.get("slug"), str):
            sources.append((doc, len(doc.text) - len(doc.body)))
    if not sources:
        raise ValueError(f"no pattern files to generate from in {corpus}")
    rng = random.Random(seed)
    for i in range(n):
        doc, body_start = sources[i % len(sources)]
        title = doc.data.get("title") if isinstance(doc.data.get("title"), str) else ""
        slug, title = _names(i, len(sources), doc.data["slug"], title.strip())
        fm = re.sub(r"(?m)^slug:.*$", lambda _: f"slug: {slug}", doc.frontmatter, count=1)
        fm = re.sub(r"(?m)^title:.*$", lambda _: f"title: {json.dumps(title)}", fm, count=1)
        text = (doc.text[: doc.fm_start] + fm + doc.text[doc.fm_end : body_start]
                + shuffle_sections(doc.body, rng))
        yield slug, text


def write_garden(corpus: Path, out_dir: Path, n: int, seed: int = 0) -> int:
    """Write n generated pattern files into out_dir (created if needed); returns bytes written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    for slug, text in generated_texts(corpus, n, seed):
        written += (out_dir / f"{slug}.md").write_bytes(text.encode("utf-8"))
    return written


def tend_once(root: Path) -> tuple[float, dict]:
    """Tend `root`/patterns once into `root`/.garden/events.db without Prefect (flows.tending's
    steps, in this process: the events a nightly run records): its seconds and its summary."""
    import datetime as dt
    import time

    from events.store import EventStore
    from flows import tending
    from garden.policy import Policy
    from garden.settings import load_settings

    settings = load_settings(garden=root / "patterns", db=root / ".garden" / "events.db")
    clock = time.perf_counter()
    with EventStore(settings.db) as store:
        run = tending.start_tend(settings, Policy(), store, today=dt.date(2026, 11, 22))
        tending.run_steps(run)
        summary = tending.finish_tend(run)
    return time.perf_counter() - clock, {**summary, "run_id": summary.get("run_id") or run.run_id}
