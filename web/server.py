"""`garden serve`: a review page and a JSON API over the application (`flows.app.GardenApp`).

Every operation is one GardenApp call, the same the CLI makes, so a decision here is the same
event a CLI decision is (`curator:<by>`), written to the file at once. The server's GardenApp
keeps one state (`keep_state`): loaded at the first request, then each request folds in only
what was appended since, by this server or by a tend or command meanwhile (a log replaced
meanwhile is loaded afresh).

Security (the rules are tested in tests/test_serve_security.py):
- `garden serve` binds 127.0.0.1 unless told otherwise, and refuses another address without a
  token (cli/serve.py). Without a token, a request whose Host is not a loopback name is refused
  (403): a page elsewhere cannot reach the server through DNS rebinding.
- With a token, every request needs it: `Authorization: Bearer T` (API), or the cookie the
  login form (`/login`) sets (pages); else 401.
- A state-changing request (POST) to the API must be JSON (`Content-Type: application/json`)
  and carry the header `X-Garden: 1`, which a cross-site form cannot send and a cross-site
  script cannot without a CORS preflight this server never grants; else 403. No GET changes
  anything. The login form is the only form; it changes nothing but the cookie.
- Everything from a file or a model is escaped: templates autoescape, and the page's script
  sets `textContent`, never `innerHTML`, with data from the API.

The review page `/` shows one pending proposal at a time; its ids are stable for scripts and
browser tests:
- `#item` (with `data-id` = the proposal id, `data-slug` = its pattern; empty `data-id` when
  nothing is pending), `#slug`, `#kind`, `#target`, `#score`, `#proposer`, `#reason`, `#diff`;
- `#note` (a text input: the note a rejection carries), `#by` (who decides);
- buttons `#accept`, `#reject`, `#skip`, `#undo`; keys a, r, s, u do the same (not while
  typing in `#note` or `#by`; Enter in `#note` rejects);
- `#status` (what the last action did, or the error it met; `data-state` = ok | error),
  `#counter` ("N decided, M left"), `#empty` (shown when nothing is pending).
Undo reverts the run the last decision made (`POST /api/runs/{id}/revert`).

The JSON API (README: "garden serve"):
- `GET /api/pending[?pattern=&run=&min_confidence=&kind=&proposer=&order=pattern|uncertain&limit=N]`:
  `{"items": [...], "count": N}` (count: all that the filters keep; items: the first `limit`), each item with id, slug, kind, target or entity, confidence,
  link_type, reason, proposer, model, run_id, diff (its pattern's block as accepting every
  pending proposal of that pattern would leave it).
- `POST /api/decisions` `{"id", "decision": "accept"|"reject", "note", "by"}`: 200 with
  `{"decision", "id", "result"}` (result: the CLI's `--json`), 4xx `{"error"}` (409: lock held).
- `GET /api/runs`, `GET /api/runs/{id}` (its diff), `POST /api/runs/{id}/revert` (409 with
  `conflicts`), `GET /api/patterns/{slug}` (its history, block and neighbours: `garden.neighbours`),
  `GET /api/health`. The pattern and health pages are web/pages.py.
"""

from __future__ import annotations

import hmac
import traceback
from urllib.parse import parse_qs
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from flows.app import GardenApp
from flows.curate import QUEUE_ORDERS
from web import pages
from web import runs as runs_pages  # the name `runs` is the API route below
from web.common import COOKIE, WRITE_HEADER, Web, error, host_name, is_loopback, page, session_value

def create_app(garden_app: GardenApp, token: str | None = None) -> Starlette:
    """The web application over one garden. `token`: required of every request when given."""

    web = Web(garden_app)
    call = web.call

    # --- pages --------------------------------------------------------------------------------

    async def review_page(request: Request) -> Response:
        """The first item of the queue the page's filters choose is in the page itself (escaped by
        the template); the script then takes the queue from the API. `?sample=N[&seed=S]`: the
        sampled mode (the script draws the sample)."""
        q = request.query_params
        filters = _queue_filters(q, default_order="uncertain")
        if isinstance(filters, Response):
            return filters
        sample = q.get("sample") or None
        if sample is not None and not (sample.isdigit() and int(sample) > 0):
            return error(400, f"sample must be a positive whole number, not {sample!r}")
        item, left = None, 0
        if sample is None:
            queue = await call(garden_app.queue, **{**filters, "limit": 1})
            if isinstance(queue, Response):
                return queue
            left = queue.count
            if queue.items:
                slug, pid, p = queue.items[0]
                item = _pending_item(slug, pid, p, "\n".join(queue.diffs[pid]), queue.about)
        return page(request, "review.html", {
            "garden": str(garden_app.settings.garden), "item": item, "left": left, "section": "review",
            "filters": {k: q.get(k, "") for k in FILTERS if k != "order"}, "order": filters["order"],
            "sample": sample})

    async def login_page(request: Request) -> Response:
        return page(request, "login.html", {"failed": False}, status_code=401 if token else 200)

    async def login(request: Request) -> Response:
        # The form is urlencoded: parsed here rather than with python-multipart, one dependency fewer.
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        given = (form.get("token") or [""])[0]
        if not token or not hmac.compare_digest(given.encode(), token.encode()):
            return page(request, "login.html", {"failed": True}, status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, session_value(token), httponly=True, samesite="strict")
        return response

    # --- the API ------------------------------------------------------------------------------

    async def pending(request: Request) -> Response:
        filters = _queue_filters(request.query_params)
        if isinstance(filters, Response):
            return filters
        queue = await call(garden_app.queue, **filters)
        if isinstance(queue, Response):
            return queue
        items = [_pending_item(slug, pid, p, "\n".join(queue.diffs[pid]) if pid in queue.diffs else None, queue.about)
                 for slug, pid, p in queue.items]
        return JSONResponse({"items": items, "count": queue.count, "seq": queue.seq})

    async def head(request: Request) -> Response:
        seq = await call(garden_app.head)
        return seq if isinstance(seq, Response) else JSONResponse({"seq": seq})

    async def sample(request: Request) -> Response:
        q = request.query_params
        n, seed = q.get("n", "20"), q.get("seed")
        if not (n.isdigit() and int(n) > 0) or (seed is not None and not seed.isdigit()):
            return error(400, "n (how many) and seed must be whole numbers, n above 0")
        drawn = await call(garden_app.sample, int(n), int(seed) if seed else None, q.get("proposer") or None)
        if isinstance(drawn, Response):
            return drawn
        slugs = {i.slug for i in drawn.items} | {i.proposal.get("target") for i in drawn.items if i.proposal.get("target")}
        about = await call(garden_app.about, slugs)
        items = []
        for item, shown in zip(drawn.items, drawn.to_json()):
            items.append({**_pending_item(item.slug, item.id, item.proposal, shown["diff"], about),
                          "policy": item.policy, "rule": item.rule})
        return JSONResponse({"items": items, "count": len(items), "total": drawn.total, "strata": drawn.strata,
                             "seed": drawn.seed})

    async def decisions(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return error(400, "the body is not JSON: send {\"id\", \"decision\": \"accept\"|\"reject\", \"note\", \"by\"}")
        if not isinstance(body, dict):
            return error(400, "the body must be a JSON object with id and decision")
        pid, decision = body.get("id"), body.get("decision")
        note, by = body.get("note") or None, body.get("by") or None
        if not isinstance(pid, str) or not pid:
            return error(400, "give the proposal's id (\"id\": a string)")
        if decision not in ("accept", "reject"):
            return error(400, f"decision must be \"accept\" or \"reject\", not {decision!r}")
        if not all(v is None or isinstance(v, str) for v in (note, by)):
            return error(400, "note and by must be strings")
        method = garden_app.accept if decision == "accept" else garden_app.reject
        result = await web.change(method, [pid], by=by, note=note)
        if isinstance(result, Response):
            return result
        data = result.to_dict()
        if data["errors"]:  # recorded, but a file could not be written: the page says which
            return error(500, "recorded, but not written: " + "; ".join(data["errors"]), decision=decision,
                          id=pid, result=data)
        return JSONResponse({"decision": decision, "id": pid, "result": data})

    async def runs(request: Request) -> Response:
        found = await call(garden_app.runs)
        if isinstance(found, Response):
            return found
        return JSONResponse({"runs": [r.to_dict() for r in found]})

    async def run_diff(request: Request) -> Response:
        found = await call(garden_app.diff, request.path_params["run_id"])
        return found if isinstance(found, Response) else JSONResponse(found.to_dict())

    async def revert(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        force = body.get("force", False)
        if not isinstance(force, bool):
            return error(400, "force must be true or false")
        done = await web.change(garden_app.revert, request.path_params["run_id"], by=body.get("by") or None,
                              note=body.get("note") or None, force=force)
        if isinstance(done, Response):
            return done
        data = done.to_dict()
        if data["errors"]:
            return error(500, "reverted in the log, but not written: " + "; ".join(data["errors"]), **data)
        return JSONResponse(data)

    async def pattern(request: Request) -> Response:
        found = await call(garden_app.pattern, request.path_params["slug"])
        return found if isinstance(found, Response) else JSONResponse(found.to_dict())

    async def health(request: Request) -> Response:
        report = await call(garden_app.health)
        return report if isinstance(report, Response) else JSONResponse(report)

    routes = [
        Route("/", review_page),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/api/pending", pending),
        Route("/api/sample", sample),
        Route("/api/head", head),
        Route("/api/decisions", decisions, methods=["POST"]),
        Route("/api/runs", runs),
        Route("/api/runs/{run_id}", run_diff),
        Route("/api/runs/{run_id}/revert", revert, methods=["POST"]),
        Route("/api/patterns/{slug}", pattern),
        Route("/api/health", health),
        *runs_pages.routes(web),
        *pages.routes(web),
    ]
    async def guard(request: Request, call_next):
        """The security rules of the module docstring, before any route runs."""
        host = host_name(request.headers.get("host") or "")
        api = request.url.path.startswith("/api/")
        if token is None and not is_loopback(host):
            return error(403, f"this server answers loopback names only (the Host was {host!r}); "
                               "serve with --token to be reached by another name")
        if token is not None and request.url.path != "/login":
            bearer = request.headers.get("authorization", "")
            cookie = request.cookies.get(COOKIE, "")
            ok = (hmac.compare_digest(bearer.encode(), f"Bearer {token}".encode())
                  or hmac.compare_digest(cookie.encode(), session_value(token).encode()))
            if not ok:
                if api:
                    return error(401, "a token is needed: send Authorization: Bearer TOKEN")
                if request.method == "GET":
                    return page(request, "login.html", {"failed": False}, status_code=401)
                return error(401, "a token is needed: log in at /login")
        if request.method not in ("GET", "HEAD", "OPTIONS") and request.url.path != "/login":
            ctype = request.headers.get("content-type", "").split(";")[0].strip()
            if request.headers.get(WRITE_HEADER) != "1" or ctype != "application/json":
                return error(403, "a change must be JSON (Content-Type: application/json) with the "
                                   "header X-Garden: 1")
        try:
            return await call_next(request)
        except Exception:  # a bug: said as JSON, the traceback in the server's log
            traceback.print_exc()
            return error(500, "internal error: graph-garden hit a bug (the traceback is in the server's log)")

    return Starlette(routes=routes, middleware=[Middleware(BaseHTTPMiddleware, dispatch=guard)])


FILTERS = ("pattern", "run", "kind", "proposer", "min_confidence", "max_confidence", "order")


def _queue_filters(q, default_order: str = "pattern") -> dict | Response:
    """The review queue's filters from a query string (`GardenApp.queue`'s keywords), or a 400."""
    numbers = {}
    for name in ("min_confidence", "max_confidence"):
        if q.get(name):
            try:
                numbers[name] = float(q[name])
            except ValueError:
                return error(400, f"{name} must be a number, not {q[name]!r}")
    order = q.get("order") or default_order
    if order not in QUEUE_ORDERS:
        return error(400, f"order must be one of {', '.join(QUEUE_ORDERS)}, not {order!r}")
    kind = q.get("kind") or None
    if kind not in (None, "link", "entity", "prune"):
        return error(400, f"kind must be link, entity or prune, not {kind!r}")
    limit = q.get("limit")
    if limit is not None and not (limit.isdigit() and int(limit) > 0):
        return error(400, f"limit must be a positive whole number, not {limit!r}")
    if q.get("diff", "1") not in ("0", "1"):
        return error(400, f"diff must be 0 (leave the diffs out) or 1, not {q['diff']!r}")
    return {"diffs": q.get("diff", "1") == "1", "pattern": q.get("pattern") or None, "run": q.get("run") or None, "kind": kind,
            "proposer": q.get("proposer") or None, "order": order, "limit": int(limit) if limit else None,
            "min_confidence": numbers.get("min_confidence"), "max_confidence": numbers.get("max_confidence")}


def _pending_item(slug: str, pid: str, p: dict, diff: str | None, about: dict[str, dict] | None = None) -> dict:
    """A pending proposal as the API shows it (the shapes scripts rely on: README), with its
    pattern's title and summary (and a link target's)."""
    kind = p["kind"]
    about = about or {}
    item: dict[str, Any] = {"id": pid, "slug": slug, "kind": kind, "run_id": p.get("run_id"),
                            "proposer": p.get("proposer"), "model": p.get("model"), "reason": p.get("reason"),
                            "diff": diff, "title": about.get(slug, {}).get("title"),
                            "summary": about.get(slug, {}).get("summary")}
    if kind == "link":
        item.update(target=p["target"], link_type=p.get("link_type"), confidence=p["confidence"],
                    target_title=about.get(p["target"], {}).get("title"),
                    target_summary=about.get(p["target"], {}).get("summary"))
    elif kind == "entity":
        item.update(entity=p.get("entity_id"), entity_type=p.get("entity_type"), label=p.get("label"),
                    confidence=p["relevance"])
    else:  # a proposed prune: its item's re-assessed score
        item.update(target=p.get("target"), entity=p.get("entity_id"), rule=p.get("rule"),
                    confidence=p.get("score") or 0.0)
    return item
