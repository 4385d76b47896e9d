"""A real HTTP server on 127.0.0.1 (a free port, a thread) answering from a routing function: stands in
for Tempo, Jaeger and Loki, whose servers cannot be installed here, with bodies in their APIs' formats."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiops_dev.controlplane import free_port


@dataclass
class Answer:
    status: int = 200
    body: Any = None  # dict/list: JSON; bytes/str: as is
    delay: float = 0.0


@dataclass
class Request:
    path: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeServer:
    """`route(path, params) -> Answer`; `requests` records what arrived."""

    route: Callable[[str, dict[str, str]], Answer]
    port: int = field(default_factory=free_port)
    requests: list[Request] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeServer:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                parts = urlsplit(self.path)
                params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                fake.requests.append(Request(parts.path, params, dict(self.headers)))
                answer = fake.route(parts.path, params)
                if answer.delay:
                    time.sleep(answer.delay)
                body = answer.body
                if not isinstance(body, bytes | str):
                    body = json.dumps(body)
                raw = body.encode() if isinstance(body, str) else body
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
