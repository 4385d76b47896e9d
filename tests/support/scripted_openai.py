"""A real OpenAI-compatible HTTP server on 127.0.0.1 that answers from a script, for deterministic
failure injection: each POST /v1/chat/completions takes the next Reply from the queue (content,
an HTTP error, a delay, a dropped connection, a crash halfway through the body) and its body is recorded for
assertions.

    with ScriptedOpenAI(status(429, retry_after="2"), answer({...})) as server:
        diagnose(GatewayConfig(base_url=server.url, model=server.model), ...)
        server.requests[1]["messages"]
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Reply:
    """One scripted answer to a chat-completion request."""

    status: int = 200
    content: str | None = None  # the assistant message of a 200 chat completion
    refusal: str | None = None  # OpenAI's structured-output refusal, with no content
    finish_reason: str = "stop"  # "length" when max_tokens cut the reply
    body: str | None = None  # sent as is instead of a chat completion
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0  # wait before answering, e.g. longer than the client's timeout
    drop: bool = False  # close the connection without a response
    cut: bool = False  # send the headers and half the body, then close: a server that crashed mid-response
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tool_calls: tuple[tuple[str, str, str], ...] = ()  # (id, function name, arguments as sent: a JSON string)


def tool_calls(*calls: tuple[str, dict | str], **usage: int) -> Reply:
    """A 200 chat completion that calls tools: (name, arguments) each, ids call_1, call_2, ..."""
    usage = {"prompt_tokens": 100, "completion_tokens": 20, **usage}
    made = tuple(
        (f"call_{i}", name, args if isinstance(args, str) else json.dumps(args))
        for i, (name, args) in enumerate(calls, 1)
    )
    return Reply(tool_calls=made, finish_reason="tool_calls", **usage)


def content(text: str | None, *, refusal: str | None = None, finish_reason: str = "stop", **usage: int) -> Reply:
    """A 200 chat completion whose assistant message is `text`, whatever it is (JSON, prose, nothing)."""
    usage = {"prompt_tokens": 100, "completion_tokens": 20, **usage}
    return Reply(content=text, refusal=refusal, finish_reason=finish_reason, **usage)


def answer(obj: object, **usage: int) -> Reply:
    """A 200 chat completion whose assistant message is `obj` as JSON."""
    return content(json.dumps(obj), **usage)


def status(code: int, *, message: str | None = None, retry_after: str | None = None, body: str | None = None) -> Reply:
    """An HTTP error; the body is an OpenAI-style error object unless given raw."""
    if body is None:
        body = json.dumps({"error": {"message": message or f"scripted HTTP {code}", "type": "scripted", "code": code}})
    headers = (("Retry-After", retry_after),) if retry_after is not None else ()
    return Reply(status=code, body=body, headers=headers)


def dropped() -> Reply:
    """The connection closes after the request is read, with no response."""
    return Reply(drop=True)


def delayed(seconds: float, reply: Reply) -> Reply:
    return replace(reply, delay_s=seconds)


def cut(reply: Reply) -> Reply:
    """The reply's status line, its headers (the full Content-Length) and half its body; then the connection
    closes, as when the model server crashes while it answers."""
    return replace(reply, cut=True)


class ScriptedOpenAI:
    """The server; start and stop it with `with`. The port is bound at construction."""

    def __init__(self, *replies: Reply, model: str = "scripted-model"):
        self.model = model
        self.requests: list[dict] = []  # chat-completion request bodies, in arrival order
        self.unscripted = 0  # requests that came after the script ran out (answered 500)
        self._script = deque(replies)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.scripted = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def url(self) -> str:
        """The base URL a client is given, ending in /v1."""
        return f"http://127.0.0.1:{self._server.server_port}/v1"

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._script)

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def __enter__(self) -> ScriptedOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()  # wakes delayed replies, which then drop their connection
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _take(self, body: dict) -> Reply | None:
        with self._lock:
            self.requests.append(body)
            if self._script:
                return self._script.popleft()
            self.unscripted += 1
            return None

    def _completion(self, reply: Reply) -> dict:
        with self._lock:
            n = len(self.requests)
        return {
            "id": f"chatcmpl-scripted-{n}",
            "object": "chat.completion",
            "created": 0,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": reply.content,
                        "refusal": reply.refusal,
                        **(
                            {
                                "tool_calls": [
                                    {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                                    for i, n, a in reply.tool_calls
                                ]
                            }
                            if reply.tool_calls
                            else {}
                        ),
                    },
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            },
        }


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output to the assertions

    def do_GET(self) -> None:
        scripted: ScriptedOpenAI = self.server.scripted  # type: ignore[attr-defined]
        if self.path != "/v1/models":
            self._send(404, json.dumps({"error": {"message": f"no route GET {self.path}"}}))
            return
        models = {"object": "list", "data": [{"id": scripted.model, "object": "model", "owned_by": "scripted"}]}
        self._send(200, json.dumps(models))

    def do_POST(self) -> None:
        scripted: ScriptedOpenAI = self.server.scripted  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/v1/chat/completions":
            self._send(404, json.dumps({"error": {"message": f"no route POST {self.path}"}}))
            return
        reply = scripted._take(json.loads(raw))
        if reply is None:
            self._send(500, json.dumps({"error": {"message": "the scripted server has no reply left"}}))
            return
        if reply.delay_s and scripted._stopping.wait(reply.delay_s):
            return  # stopping: drop rather than keep the test waiting
        if reply.drop:
            return  # nothing written; the connection closes when the handler returns
        body = reply.body if reply.body is not None else json.dumps(scripted._completion(reply))
        self._send(reply.status, body, reply.headers, cut=reply.cut)

    def _send(self, code: int, body: str, headers: tuple[tuple[str, str], ...] = (), cut: bool = False) -> None:
        data = body.encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data[: len(data) // 2] if cut else data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (its timeout); that is the point of a delayed reply
