"""`garden serve`: the review page and JSON API (web/server.py) on a local port."""

from __future__ import annotations

import ipaddress
import socket
from typing import Annotated, Optional

import typer

from cli.common import DbOption, GardenOption, err, handle_errors, open_app
from garden.errors import GardenError


def is_loopback_host(host: str) -> bool:
    """Whether every address `host` names is a loopback one (a name is resolved)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


@handle_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="The address to listen on; another than a loopback one needs --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="The port to listen on.")] = 8765,
    token: Annotated[Optional[str], typer.Option("--token", envvar="GARDEN_TOKEN", show_envvar=False,
                                                 help="Require this token of every request (Authorization: Bearer, or the login form). [or GARDEN_TOKEN]",
                                                 show_default=False)] = None,
    garden: GardenOption = None, db: DbOption = None,
) -> None:
    """Serve the review page and the JSON API (/api/...) for curators in a browser or scripts.
    Decisions are the CLI's: recorded in the log and written to the files at once."""
    if not is_loopback_host(host) and not token:
        raise GardenError(f"--host {host} is not a loopback address: a token is needed, give --token TOKEN "
                          "(every request must then carry it)")
    app = open_app(garden, db, keep_state=True)  # loaded once, caught up per request
    app.require_garden()
    import uvicorn

    from web.server import create_app

    shown = f"[{host}]" if ":" in host else host
    err.print(f"serving {app.settings.garden} on http://{shown}:{port}/ (Ctrl-C stops)", markup=False)
    uvicorn.run(create_app(app, token or None), host=host, port=port, log_level="warning", access_log=False)
