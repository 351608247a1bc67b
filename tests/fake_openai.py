"""A fake OpenAI-compatible server on 127.0.0.1, for tests and benchmarks of the LLM proposer.

It serves `POST /v1/chat/completions` from a script: a list of `Reply`s used in order, or a
function `handler(request_json, call_index) -> Reply`; with neither (or once the list runs out)
it answers an empty proposal. It records every request (path, headers, JSON) in `.requests`.
The real openai client talks to it over HTTP, so retries, timeouts and headers are the SDK's own.

    with fake_openai() as server:
        server.script(error(429, "slow down", headers={"Retry-After": "1"}), answer({...}))
        proposer = LLMProposer(api_key="sk-test", base_url=server.base_url, model="m")

No pytest at import time: benchmark scripts can use it as it is.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EMPTY_PROPOSAL = {"inferred_links": [], "entities": []}


@dataclass(frozen=True)
class Reply:
    """One response. `status` 200 answers a chat completion; any other status sends `body`."""

    content: str | None = None
    refusal: str | None = None
    finish_reason: str = "stop"
    status: int = 200
    body: Any = None  # for error statuses: a JSON value, or a string sent as it is
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0  # seconds to wait before answering (more than the client's timeout: a hang)
    prompt_tokens: int = 50
    completion_tokens: int = 20


def answer(content: Any, **kwargs: Any) -> Reply:
    """The assistant answers `content`: a string as it is, anything else as JSON."""
    text = content if isinstance(content, str) else json.dumps(content)
    return Reply(content=text, **kwargs)


def refusal(text: str) -> Reply:
    return Reply(content=None, refusal=text)


def empty() -> Reply:
    return Reply(content="")


def error(status: int, message: str, *, headers: dict[str, str] | None = None,
          type: str = "invalid_request_error", param: str | None = None, code: str | None = None) -> Reply:
    """An OpenAI-style error response."""
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return Reply(status=status, body=body, headers=headers or {})


def hang(seconds: float) -> Reply:
    return Reply(content=json.dumps(EMPTY_PROPOSAL), hang=seconds)


@dataclass(frozen=True)
class Recorded:
    path: str
    headers: dict[str, str]  # names in lower case
    json: Any


Handler = Callable[[Any, int], Reply]


class FakeOpenAI:
    def __init__(self, latency: float = 0.0):
        #: Seconds every response waits before it is sent (for benchmarks).
        self.latency = latency
        self.requests: list[Recorded] = []
        self._replies: list[Reply] = []
        self._handler: Handler | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_request_handler(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,),
                                        name="fake-openai", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with `replies`, in order."""
        with self._lock:
            self._replies = list(replies)
            self._handler = None

    def handle_with(self, handler: Handler) -> None:
        """Answer every request with `handler(request_json, call_index)`."""
        with self._lock:
            self._handler = handler
            self._replies = []

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases hung requests
        self._server.shutdown()
        self._server.server_close()

    def _reply_to(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        with self._lock:
            index = len(self.requests)
            self.requests.append(Recorded(path, headers, body))
            handler = self._handler
            if handler is None:
                return self._replies.pop(0) if self._replies else answer(EMPTY_PROPOSAL)
        return handler(body, index)

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)


def _completion(reply: Reply, request: Any, index: int) -> dict[str, Any]:
    model = request.get("model", "fake") if isinstance(request, dict) else "fake"
    return {
        "id": f"chatcmpl-fake-{index}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply.content, "refusal": reply.refusal},
            "finish_reason": reply.finish_reason,
            "logprobs": None,
        }],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }


def _make_request_handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
        disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}}, {})
                return
            try:
                request = json.loads(raw)
            except json.JSONDecodeError:
                request = raw.decode("utf-8", "replace")
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = fake._reply_to(self.path, headers, request)
            fake._wait(fake.latency + reply.hang)
            if reply.status == 200:
                self._send(200, _completion(reply, request, len(fake.requests)), reply.headers)
            else:
                self._send(reply.status, reply.body, reply.headers)

        def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
            data = body.encode("utf-8") if isinstance(body, str) else json.dumps(body).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test): nobody is listening

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return RequestHandler


@contextmanager
def fake_openai(*replies: Reply, latency: float = 0.0) -> Iterator[FakeOpenAI]:
    """A running fake server for the `with` block, scripted with `replies`."""
    server = FakeOpenAI(latency=latency).start()
    if replies:
        server.script(*replies)
    try:
        yield server
    finally:
        server.stop()
