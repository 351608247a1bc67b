"""The pattern page and the health page of `garden serve`: one GardenApp call each
(`pattern`, `health`, the same the API's /api/patterns/{slug} and /api/health answer with), and
their pictures drawn on the server as inline SVG (web/svg.py), each with its numbers as text.

Stable ids, for tests and scripts:
- `/patterns/{slug}[?target=T | ?entity=E]`: `#pattern` (data-slug), `#title`, `#domain`,
  `#block` (the block as the file has it), `#picture` (an svg: the pattern in the middle, each
  link an edge of class inferred|curated and out|in), the lists `#outgoing` (the machine's
  links), `#curated` (the curators') and `#incoming` (both kinds), each `li` with `data-slug`
  and `data-via`; `#history` (a table, one `tr.event` per event with `data-type`), narrowed to
  one link or entity by `?target=` / `?entity=` (`#history-for` says which; the form
  `#history-filter` asks for it, and every link's "why?" goes there).
- `/health`: the figures `#chart-confidence`, `#chart-letters`, `#chart-links` and
  `#chart-precision`, each an svg and a `table.numbers` whose rows carry `data-key` and cells
  `data-value`; `#no-labels` instead of the precision chart while no curator has decided.
- A failure (an unknown pattern: 404): `#error`, with `data-state=error`.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from garden.event import Event
from garden.revert import block_text
from web.common import Web, page
from web.svg import band_chart, bar_chart, neighbour_picture

# Where an event's item, score and reason are, whatever its type (the first field present wins).
ITEM_FIELDS = ("target", "entity_id", "community_id", "other")
SCORE_FIELDS = ("confidence", "new_confidence", "relevance", "new_relevance", "score")
WHY_FIELDS = ("reason", "note", "rule", "error", "outcome")


def routes(web: Web) -> list[Route]:
    app = web.app

    def context(section: str, **more: Any) -> dict[str, Any]:
        return {"section": section, "garden": str(app.settings.garden), **more}

    def failed(request: Request, answer: Response, section: str) -> Response:
        """A GardenApp failure (the JSON answer `Web.call` made of it) as a page, same status."""
        message = json.loads(bytes(answer.body))["error"]
        return page(request, "failed.html", context(section, message=message), status_code=answer.status_code)

    async def pattern_page(request: Request) -> Response:
        slug = request.path_params["slug"]
        target = request.query_params.get("target") or None
        entity = None if target else request.query_params.get("entity") or None
        found = await web.call(app.pattern, slug, target, entity)
        if isinstance(found, Response):
            return failed(request, found, "")
        return page(request, "pattern.html", context(
            "", pattern=found, picture=neighbour_picture(found), history=history_rows(found.history),
            target=target, entity=entity, block_text=shown_block(found.block)))

    async def health_page(request: Request) -> Response:
        report = await web.call(app.health)
        if isinstance(report, Response):
            return failed(request, report, "health")
        return page(request, "health.html", context("health", report=report, charts=health_charts(report)))

    # {slug:path}: any text after /patterns/ is a slug to look up (a "/" in it too: a 404 page).
    return [Route("/patterns/{slug:path}", pattern_page), Route("/health", health_page)]


def shown_block(block: dict | None) -> str:
    """The block as graph-garden writes it into the file."""
    return block_text(block) or "(no graph_garden block)"


def history_rows(events: list[Event]) -> list[dict[str, Any]]:
    """Each event as a row of "why is this here?": when, what, who (actor, run), the item it is
    about (a decision names its proposal's), the score it carried and the reason or note."""
    proposed: dict[str, str] = {}
    rows = []
    for e in events:
        p = e.payload
        item = _first(p, ITEM_FIELDS)
        decided = getattr(p, "proposal_id", None)
        if item is None and decided is not None:
            proposal = getattr(p, "proposal", None) or {}
            item = proposal.get("target") or proposal.get("entity_id") or proposed.get(decided)
        if item is not None and p.type.endswith("Proposed"):
            proposed[e.id] = item
        score = _first(p, SCORE_FIELDS)
        why = [str(v) for v in (getattr(p, f, None) for f in WHY_FIELDS) if v]
        rows.append({"seq": e.seq, "at": e.recorded_at[:19].replace("T", " "), "type": p.type, "actor": e.actor,
                     "run_id": e.run_id, "item": item, "confidence": score, "why": "; ".join(why),
                     "link_type": getattr(p, "link_type", None)})
    return rows


def _first(payload, names: tuple[str, ...]):
    return next((v for v in (getattr(payload, n, None) for n in names) if v is not None), None)


def count(value: float) -> str:
    return f"{value:g}"


def health_charts(report: dict[str, Any]) -> dict[str, Any]:
    """The health report's figures as charts, each with the rows of numbers it draws."""
    histogram = report["confidence_histogram"]  # only the tenths that have links: the chart has all ten
    tenths = [f"{i / 10:.1f}" for i in range(10)] + (["unknown"] if "unknown" in histogram else [])
    confidence = [(k, k if k == "unknown" else f"{k}–{float(k) + 0.1:.1f}", histogram.get(k, 0)) for k in tenths]
    spread = report["targets_by_first_letter"]
    letters = sorted(set(spread["links"]) | set(spread["library"]))
    by_count = report.get("patterns_by_link_count") or {}
    bands = report["measured_precision"]["bands"]
    precision, height = band_chart(bands)
    return {
        "confidence": {"chart": bar_chart([label for _, label, _ in confidence], {"links": [n for *_, n in confidence]}, count),
                       "rows": [(key, label, n) for key, label, n in confidence]},
        "letters": {"chart": bar_chart(letters, {"links": [spread["links"].get(c, 0.0) for c in letters],
                                                 "library": [spread["library"].get(c, 0.0) for c in letters]},
                                       fmt=lambda v: f"{v:.0%}"),
                    "rows": [(c, spread["links"].get(c, 0.0), spread["library"].get(c, 0.0)) for c in letters],
                    "distance": spread["total_variation"]},
        "links": {"chart": bar_chart(list(by_count), {"patterns": list(by_count.values())}, count),
                  "rows": list(by_count.items())},
        "precision": {"bands": precision, "height": height, "rows": list(zip(precision, bands))},
    }
