"""The Prefect server a `garden tend` talks to: the one PREFECT_API_URL names, checked to answer
before the flow starts, or else a temporary one that lives exactly as long as the tend.

Prefect would start its own temporary server (`SubprocessASGIServer`, when no API URL is set and
`server.ephemeral.enabled`), but only an `atexit` hook stops it: a SIGKILLed tend leaves it
running for good. So the tend starts the same uvicorn command itself, as a child that the kernel
kills when the tend dies, however it dies (PR_SET_PDEATHSIG, Linux), and points PREFECT_API_URL
at it; a normal exit or Ctrl-C stops it on the way out. Elsewhere the child is stopped on the way
out only.

Call `prefect_server()` from the main thread: the death signal follows the thread that started
the child, not the process.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from garden.errors import GardenError

PR_SET_PDEATHSIG = 1
CHECK_TIMEOUT = 3.0  # seconds for a configured server to answer


@contextmanager
def prefect_server(meanwhile: Callable[[], object] | None = None) -> Iterator[str]:
    """The API URL this process's Prefect calls use, for the duration of the block.
    `meanwhile` is called once the server is starting (a temporary one's process is running),
    or at once for a configured one: work for the seconds a start takes (`flows.prepare`)."""
    from prefect.settings import get_current_settings
    from pydantic import ValidationError

    try:
        settings = get_current_settings()
    except ValidationError as e:  # a PREFECT_ variable (or the profile) Prefect cannot read
        problems = "; ".join(f"{'.'.join(map(str, error['loc']))}: {error['msg']} (given {error['input']!r})"
                             for error in e.errors())
        raise GardenError(f"Prefect's settings do not load ({e.title}: {problems}); "
                          "check the PREFECT_ variables and the Prefect profile") from None
    if settings.api.url:
        if meanwhile is not None:
            meanwhile()
        check_server(settings.api.url)
        yield settings.api.url
        return
    if not settings.server.ephemeral.enabled:
        raise GardenError("no Prefect server: set PREFECT_API_URL, or PREFECT_SERVER_EPHEMERAL_ENABLED=true "
                          "for a temporary local one")
    check_database_revision(settings)
    # What Prefect passes its own temporary server: the settings in force here, UI off.
    env = {**os.environ, **settings.to_environment_variables(exclude_unset=True),
           "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
    server, url = _start_server(env, settings.server.ephemeral.startup_timeout_seconds, meanwhile)
    previous = os.environ.get("PREFECT_API_URL")
    _use_api_url(url)
    drain_timeout = 5.0
    try:
        yield url
    except KeyboardInterrupt:  # Ctrl-C: soon, and a server on the same terminal got it too
        drain_timeout = 1.0
        raise
    finally:
        try:
            if server.poll() is None:
                _drain_prefect(drain_timeout)
        finally:
            stop_process(server)
            _use_api_url(previous)


def check_server(url: str, timeout: float = CHECK_TIMEOUT) -> None:
    """Raise a GardenError saying how to fix it if nothing answers at `url`. Any HTTP answer will
    do (a server behind a proxy or Prefect Cloud may want a key for /health)."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout):
            return
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, ConnectionRefusedError):
            why = "connection refused"
        elif isinstance(reason, (TimeoutError, socket.timeout)):
            why = f"no answer in {timeout:g} s"
        else:
            why = str(reason)
    unset = ("unset PREFECT_API_URL" if "PREFECT_API_URL" in os.environ
             else "run `prefect config unset PREFECT_API_URL`")
    raise GardenError(f"cannot reach the Prefect server at {url} ({why}): start it with "
                      f"`prefect server start`, or {unset} to use a temporary local server")


def check_database_revision(settings) -> None:
    """A temporary server's SQLite database migrated by a newer Prefect (one sharing the same
    PREFECT_HOME) makes the server exit at start with an alembic traceback: said plainly instead,
    before it starts. Anything unexpected here (another database, an unreadable file) is left to
    the server itself."""
    import sqlite3

    import prefect

    url = settings.server.database.connection_url
    url = url.get_secret_value() if hasattr(url, "get_secret_value") else str(url or "")
    prefix = "sqlite+aiosqlite:///"
    if not url.startswith(prefix):
        return
    path = Path(url[len(prefix):])
    versions = prefect.__module_path__ / "server" / "database" / "_migrations" / "versions" / "sqlite"
    if not path.is_file() or not versions.is_dir():
        return
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)) as conn:
            found = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error:
        return
    known = {m.group(1) for f in versions.glob("*.py")
             for m in [re.search(r'^revision\s*=\s*"([0-9a-f]+)"', f.read_text(), re.M)] if m}
    unknown = [row[0] for row in found if row[0] not in known]
    if known and unknown:
        raise GardenError(
            f"Prefect's database {path} was migrated by a newer Prefect (revision {unknown[0]} is unknown "
            f"to Prefect {prefect.__version__}, which graph-garden uses): move it aside, or set "
            "PREFECT_HOME to another folder, and run again")


def _start_server(env: dict[str, str], timeout: float,
                  meanwhile: Callable[[], object] | None = None) -> tuple[subprocess.Popen, str]:
    """Start Prefect's server app under uvicorn on a free port; wait until it answers, calling
    `meanwhile` once the first process is started."""
    import prefect

    deadline = time.monotonic() + timeout
    for _attempt in range(3):
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent),
             "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "error", "--lifespan", "on"],
            env=env, preexec_fn=_die_with_parent(os.getpid()))
        url = f"http://127.0.0.1:{port}/api"
        if meanwhile is not None and _attempt == 0:
            meanwhile()
        try:
            if _wait_until_up(server, url, deadline):
                return server, url
        except BaseException:  # Ctrl-C while it starts
            stop_process(server)
            raise
        if server.poll() is None:
            stop_process(server)
            raise GardenError(f"Prefect's temporary server did not start in {timeout:g} s; give it longer "
                              "with PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or start one with "
                              "`prefect server start` and set PREFECT_API_URL")
        if _port_is_free(port):  # it did not exit for want of the port: trying again won't help
            break
    raise GardenError(f"Prefect's temporary server exited at start (status {server.returncode}); "
                      "see its messages above, or start one with `prefect server start` and set "
                      "PREFECT_API_URL")


def _wait_until_up(server: subprocess.Popen, url: str, deadline: float) -> bool:
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def _drain_prefect(timeout: float) -> None:
    """Let Prefect send the logs and events it still holds while the server is there to take
    them (Prefect itself does so at exit, before its own temporary server's atexit stop)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=timeout)
    EventsWorker.drain_all(timeout=timeout)


def stop_process(server: subprocess.Popen, grace: float = 5) -> None:
    """Terminate a child, and kill it if it has not gone within `grace` seconds."""
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(grace)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _use_api_url(url: str | None) -> None:
    """Point every Prefect client of this process at `url` (None: back to none), in this thread
    and in the threads Prefect starts (they read the settings Prefect made at import)."""
    from prefect.context import refresh_global_settings_context

    if url is None:
        os.environ.pop("PREFECT_API_URL", None)
    else:
        os.environ["PREFECT_API_URL"] = url
    refresh_global_settings_context()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _die_with_parent(parent: int):
    """A preexec_fn: the kernel sends the child SIGKILL when its parent (thread) dies."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork, not in the child

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl: nobody will send the signal
            os._exit(1)

    return preexec
