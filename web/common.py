"""What every page and API route of `garden serve` shares: the templates, JSON errors, and
`Web` (the garden's application with the server's one-change-at-a-time lock)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response
from starlette.templating import Jinja2Templates

from flows.app import GardenApp
from garden.errors import GardenError, UnknownPatternError

# Autoescape everywhere (not only for .html): a value from a file or a model is text.
TEMPLATES = Jinja2Templates(env=jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")), autoescape=True))
COOKIE = "garden_session"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
WRITE_HEADER = "x-garden"


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def session_value(token: str) -> str:
    """The cookie's value: derived from the token, so the token itself never sits in a cookie."""
    return hmac.new(token.encode(), b"garden-session", hashlib.sha256).hexdigest()


def host_name(header: str) -> str:
    """The name in a Host header, without its port (`[::1]:8765` -> `[::1]`)."""
    if header.startswith("["):
        return header.split("]")[0] + "]"
    return header.rsplit(":", 1)[0]


def error(status: int, message: str, **details: Any) -> JSONResponse:
    return JSONResponse({"error": message, **details}, status_code=status)


def garden_error(e: GardenError) -> JSONResponse:
    """The project's error as JSON: 409 for a held lock (exit status 2) or a revert's conflicts,
    404 for a pattern the garden does not have, else 400 (the request named something that
    cannot be done)."""
    details = getattr(e, "details", {}) or {}
    if getattr(e, "exit_code", 1) == 2 or "conflicts" in details:
        status = 409
    else:
        status = 404 if isinstance(e, UnknownPatternError) else 400
    return error(status, str(e), **details)



@dataclass
class Web:
    """The garden's application as the routes call it. `writes`: one change at a time from this
    server, so a second decision waits for the first rather than meeting its lock (which would
    read as "another tend is running")."""

    app: GardenApp
    writes: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def call(self, fn, *args, **kwargs) -> Any:
        """One GardenApp call off the event loop; its expected failure as a JSON error (check
        with `isinstance(result, Response)`)."""
        try:
            return await run_in_threadpool(fn, *args, **kwargs)
        except GardenError as e:
            return garden_error(e)

    async def change(self, fn, *args, **kwargs) -> Any:
        """A call that changes the garden: one at a time."""
        async with self.writes:
            return await self.call(fn, *args, **kwargs)


def page(request, name: str, context: dict, status_code: int = 200) -> Response:
    """A page from web/templates (autoescaped)."""
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status_code)
