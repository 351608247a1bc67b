"""Print the messages the LLM proposer sends for one pattern: the system prompt and the user message.

Run from the repo root:

    .venv/bin/python scripts/show_prompt.py [--garden DIR] [--slug SLUG] [--markdown]

The garden defaults to the seed patterns (./patterns) and the pattern to its first slug; the
request is built as a tend builds it (`make_request` over the garden's ranking, with the garden's
entity types), from the blocks in the files. `--markdown` prints the body of docs/llm-prompt.md
(regenerate that file with `scripts/show_prompt.py --markdown > docs/llm-prompt.md`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]  # the package, also when not installed

from garden.candidates import make_request, rank_patterns  # noqa: E402
from garden.catalog import load_garden  # noqa: E402
from garden.proposal import entity_type_counts  # noqa: E402
from proposers.llm import PROMPT_VERSION, build_messages  # noqa: E402

DOC_HEAD = """\
# The prompt the LLM proposer sends

With `--proposer llm`, graph-garden asks the model about one pattern at a time, in one Chat
Completions call of two messages: the system prompt below, the same for every pattern, and a
user message holding the pattern as one JSON document (its text cut to 6,000 characters). The
model answers one JSON object (`inferred_links`, `entities`), asked for with a strict JSON
schema (`response_format`), or as a JSON object from a server that has no schema support. Every
item it returns is checked as the offline proposer's are: an existing link or entity it returns
is a re-assessment (`LinkRescored`, `EntityRescored`), anything else a new proposal the policy
decides, and an item that breaks a rule is rejected with the reason in `garden runs`.

Prompt version: `{version}` (recorded on every proposal; a new version is a new cache key, so
cached answers to an older prompt are not reused).

This page is generated: `.venv/bin/python scripts/show_prompt.py --markdown > docs/llm-prompt.md`
(the example is the seed pattern `{slug}` of `patterns/`, with the blocks in its files).

## System prompt

```text
{system}
```

## User message for `{slug}`

The document is sent as one line of JSON; shown here indented.

```json
{user}
```
"""


def messages_for(garden_dir: Path, slug: str | None = None, k: int = 20) -> tuple[str, list[dict[str, str]]]:
    """The slug asked about and the messages `build_messages` makes for it."""
    garden = load_garden(garden_dir)
    slug = slug or sorted(garden.patterns)[0]
    garden.require([slug])
    ranking = rank_patterns(garden.patterns.values(), k=k)
    types = entity_type_counts(p.block for p in garden.patterns.values())
    pattern = garden.patterns[slug]
    request = make_request(pattern, pattern.block, ranking, garden.patterns, k, entity_types=types)
    return slug, build_messages(request)


def markdown(slug: str, messages: list[dict[str, str]]) -> str:
    system, user = messages
    return DOC_HEAD.format(version=PROMPT_VERSION, slug=slug, system=system["content"],
                           user=json.dumps(json.loads(user["content"]), indent=2, ensure_ascii=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--garden", type=Path, default=REPO / "patterns")
    parser.add_argument("--slug")
    parser.add_argument("--markdown", action="store_true", help="print docs/llm-prompt.md")
    args = parser.parse_args(argv)
    slug, messages = messages_for(args.garden, args.slug)
    if args.markdown:
        sys.stdout.write(markdown(slug, messages))
    else:
        for message in messages:
            print(f"--- {message['role']} ---")
            print(message["content"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
