"""The Runs pages of `garden serve`: every run of the log, and one run's diff with its revert.

`GET /runs` is a table of the runs, newest first (what `garden runs --json` gives, so the page
costs one scan of the run events, not a load of the state). `GET /runs/{id}` rebuilds what the
run changed from the log (`garden diff RUN`) and shows each changed pattern's block diff as its
own section, a hundred to a page (`?start=N&limit=M`: M from the
Nth); its Revert button posts to the JSON API (`POST /api/runs/{id}/revert`), as the
review page's Undo does. An unknown run is a 404 page saying so.

Stable ids, for scripts and browser tests:
- `/runs`: `#runs` (the table; each row `tr.run` with `data-run` = its id and `data-status`),
  `#no-runs` (when the log has none), `#error` (data-state=error: the log could not be read).
- `/runs/{id}`: `#run` (`data-run`, `data-status`), `#run-what`, `#run-who`, `#run-when`,
  `#run-status` (completed, failed, reverted by RUN, ...), `#counts`, `#diffs` (one
  `section.pattern-diff` per changed pattern, `data-slug`, a link to /patterns/{slug} and a
  `pre.diff` whose lines are `span.add`, `span.del` or `span.ctx`), `#no-changes`, `#changed`
  (how many patterns), `#diff-pages` with `#prev-page` and `#next-page` when there are more;
  `#by` (who reverts), `#revert-note`, `#revert`, `#revert-status` (data-state = ok | error),
  `#conflicts` (one `li` per conflict, in words) and `#revert-force` ("revert anyway") after a
  409; `#missing` on the 404 page.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from web.common import Web, page

PAGE = 100  # patterns' diffs on one page: a first tend changes thousands (11 MB of HTML on 3,600)


def routes(web: Web) -> list[Route]:
    garden = str(web.app.settings.garden)

    async def runs_page(request: Request) -> Response:
        found = await web.call(web.app.runs)
        if isinstance(found, Response):
            return page(request, "runs.html", {"section": "runs", "garden": garden, "runs": [],
                                               "error": _message(found)}, status_code=found.status_code)
        return page(request, "runs.html", {"section": "runs", "garden": garden, "error": None,
                                           "runs": [_row(r.to_dict()) for r in found]})

    async def run_page(request: Request) -> Response:
        run_id = request.path_params["run_id"].upper()
        context = {"section": "runs", "garden": garden, "run_id": run_id, "run": None, "error": None}
        found = await web.call(web.app.runs)
        if isinstance(found, Response):
            return page(request, "run.html", {**context, "error": _message(found)}, status_code=found.status_code)
        summary = next((r for r in found if r.run_id == run_id), None)
        if summary is None:
            return page(request, "run.html", context, status_code=404)
        context["run"] = _row(summary.to_dict())
        q = request.query_params
        start, limit = q.get("start", "0"), q.get("limit", str(PAGE))
        if not (start.isdigit() and limit.isdigit() and int(limit) > 0):
            return page(request, "run.html", {**context, "error": "start must be a whole number and limit a "
                                              f"positive one, not {start!r} and {limit!r}"}, status_code=400)
        start, limit = int(start), int(limit)
        diff = await web.call(web.app.diff, run_id, offset=start, limit=limit)
        if isinstance(diff, Response):
            return page(request, "run.html", {**context, "error": _message(diff)}, status_code=diff.status_code)
        return page(request, "run.html", {
            **context, "counts": diff.counts, "changed": diff.changed, "start": start, "limit": limit,
            "diffs": [(slug, [_line(text) for text in lines]) for slug, lines in diff.diffs.items()]})

    return [Route("/runs", runs_page), Route("/runs/{run_id}", run_page)]


def _message(response: Response) -> str:
    """The message of a JSON error from `Web.call`."""
    return json.loads(bytes(response.body))["error"]


def _row(run: dict) -> dict:
    """A run as the pages show it: what it was, who ran it, when, its counts in a line."""
    command = run.get("command") or "tend"
    if run["proposer"] == "curator" or run.get("by"):
        who = f"curator:{run['by']}" if run.get("by") else "curator"
    else:
        who = (run["proposer"] or "?") + (f"/{run['model']}" if run.get("model") else "")
    what = f"revert of {run['reverts']}" if command == "revert" and run.get("reverts") else command
    counts = ", ".join(f"{key} {value}" for key, value in (run.get("counts") or {}).items()
                       if isinstance(value, int) and value)
    return {**run, "what": what, "who": who, "when": _when(run.get("started")),
            "ended_when": _when(run.get("ended")), "counts_line": counts}


def _when(stamp: str | None) -> str:
    """`2026-11-22T03:00:12.345+00:00` -> `2026-11-22 03:00 UTC`."""
    return f"{stamp[:16].replace('T', ' ')} UTC" if stamp else ""


def _line(text: str) -> tuple[str, str]:
    """A diff line with its class: added, removed, or context (headers count as context)."""
    if text.startswith("+") and not text.startswith("+++"):
        return "add", text
    if text.startswith("-") and not text.startswith("---"):
        return "del", text
    return "ctx", text

