"""Real receivers on 127.0.0.1 for the notification channels: HTTP servers in a thread (a scripted one for
webhooks, Slack's Web API, a CloudEvents sink with failure injection) and an SMTP server (aiosmtpd) with
STARTTLS on a self-signed certificate made here.

Every receiver records what reached it under a lock: ThreadingHTTPServer answers each request in a
thread of its own, and the outbox tests deliver from several workers at once.
"""

from __future__ import annotations

import http.server
import itertools
import json
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from aiops.controllers import admission
from aiops_dev.controlplane import free_port


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = b""  # dict/list: JSON; str/bytes: as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering: a server too slow for the client's timeout


class HttpReceiver:
    """An HTTP server on 127.0.0.1 answering every request with `answer(request)`; `requests` in order. With
    `tls` (certificate and key files, e.g. from `self_signed`) it serves HTTPS."""

    def __init__(self, answer: Callable[[Received], Reply], tls: tuple[Path, Path] | None = None):
        self.answer = answer
        self.tls = tls
        self.lock = threading.Lock()
        self.requests: list[Received] = []

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HttpReceiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                headers = {name.lower(): value for name, value in self.headers.items()}
                request = Received(self.command, self.path, headers, self.rfile.read(length))
                with receiver.lock:
                    receiver.requests.append(request)
                reply = receiver.answer(request)
                time.sleep(reply.delay)
                body = reply.body
                if not isinstance(body, bytes | str):
                    body = json.dumps(body)
                raw = body.encode() if isinstance(body, str) else body
                try:
                    self.send_response(reply.status)
                    for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    pass

            do_GET = do_POST = do_PUT = _handle

            def log_message(self, *args):
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Server(http.server.ThreadingHTTPServer):
    # socketserver's listen backlog of 5 is below two outbox workers' 16 concurrent sends: the SYNs over it are
    # dropped and retried 1 s and 3 s later, and under load such a send times out before the server reads it
    # (an attempt the receiver never saw). A real receiver listens with a backlog in the hundreds.
    request_queue_size = 128


def scripted(*replies: Reply) -> HttpReceiver:
    """Answers with `replies` in turn, the last one for every request after."""
    queue = itertools.chain(replies, itertools.repeat(replies[-1]))
    lock = threading.Lock()

    def answer(_: Received) -> Reply:
        with lock:
            return next(queue)

    return HttpReceiver(answer)


class SlackApi:
    """Slack's Web API as far as the channel uses it: chat.postMessage and chat.update with a bot token,
    messages kept per (channel, ts), answers in Slack's shape (HTTP 200, `ok` and `error`).

    `errors` are answered first, one per request: a Slack error code (HTTP 200, ok false) or an HTTP status
    (an int; 429 carries Retry-After)."""

    def __init__(self, token: str, channels: tuple[str, ...] = ("C0123ABCD",), errors: tuple[str | int, ...] = ()):
        self.token = token
        self.channels = channels
        self.errors = list(errors)
        self.messages: dict[tuple[str, str], dict] = {}
        self.calls: list[str] = []
        self._ts = itertools.count(1)
        self.http = HttpReceiver(self._answer)
        self.lock = self.http.lock

    @property
    def url(self) -> str:
        return self.http.url

    def __enter__(self) -> SlackApi:
        self.http.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.__exit__(*exc)

    def _answer(self, request: Received) -> Reply:
        method = request.path.rsplit("/", 1)[-1]
        with self.lock:
            self.calls.append(method)
            injected = self.errors.pop(0) if self.errors else None
        if isinstance(injected, int):
            return Reply(injected, {"ok": False, "error": "ratelimited"}, {"Retry-After": "7"})
        if injected:
            return Reply(200, {"ok": False, "error": injected})
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(200, {"ok": False, "error": "invalid_auth"})
        body = request.json()
        channel = body.get("channel")
        if channel not in self.channels:
            return Reply(200, {"ok": False, "error": "channel_not_found"})
        with self.lock:
            if method == "chat.postMessage":
                ts = f"1700000000.{next(self._ts):06d}"
            elif method == "chat.update" and (channel, body.get("ts")) in self.messages:
                ts = body["ts"]
            elif method == "chat.update":
                return Reply(200, {"ok": False, "error": "message_not_found"})
            else:
                return Reply(200, {"ok": False, "error": "unknown_method"})
            self.messages[(channel, ts)] = body
        return Reply(200, {"ok": True, "channel": channel, "ts": ts})


class CloudEventsReceiver:
    """A CloudEvents 1.0 sink (structured JSON mode) that keeps each accepted event once, by `id`.

    `fail_ratio` of the requests, drawn from a seeded generator, are refused before they are read: half
    with 500, half with 429 and `Retry-After: retry_after`. The others are parsed with the CloudEvents SDK
    (a malformed event gets 400), their `Idempotency-Key` must equal the `id`, and with `token` set the
    bearer token must match (401). An event whose id was accepted before counts in `duplicates`."""

    def __init__(self, fail_ratio: float = 0.0, retry_after: str = "1", seed: int = 0, token: str | None = None):
        self.fail_ratio = fail_ratio
        self.retry_after = retry_after
        self.token = token
        self.random = random.Random(seed)
        self.events: dict[str, CloudEvent] = {}
        self.duplicates = 0
        self.refused: dict[int, int] = {500: 0, 429: 0}
        self.rejected: list[str] = []
        self.http = HttpReceiver(self._answer)
        self.lock = self.http.lock

    @property
    def url(self) -> str:
        return self.http.url

    def __enter__(self) -> CloudEventsReceiver:
        self.http.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.__exit__(*exc)

    def _answer(self, request: Received) -> Reply:
        with self.lock:
            fail = self.random.random() < self.fail_ratio
            status = self.random.choice((500, 429)) if fail else 0
            if fail:
                self.refused[status] += 1
        if status == 429:
            return Reply(429, {"error": "slow down"}, {"Retry-After": self.retry_after})
        if status:
            return Reply(500, {"error": "injected failure"})
        if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
            return self._reject(401, "bad or missing bearer token")
        if not request.headers.get("content-type", "").startswith("application/cloudevents+json"):
            return self._reject(415, f"not structured mode: {request.headers.get('content-type')}")
        try:
            event = from_http(HTTPMessage(request.headers, request.body), JSONFormat(), CloudEvent)
        except (BaseCloudEventException, ValueError) as exc:
            return self._reject(400, f"not a CloudEvent: {exc}")
        if request.headers.get("idempotency-key") != event.get_id():
            return self._reject(400, "Idempotency-Key differs from the event id")
        with self.lock:
            if event.get_id() in self.events:
                self.duplicates += 1
            else:
                self.events[event.get_id()] = event
        return Reply(202, {"accepted": event.get_id()})

    def _reject(self, status: int, why: str) -> Reply:
        with self.lock:
            self.rejected.append(why)
        return Reply(status, {"error": why})


def self_signed(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate for `host` that is its own CA (the operator's own, for its admission webhooks), and its
    key: (cert, key) paths. A client verifies the server by naming the certificate as its CA file."""
    cert, key = admission.self_signed([host])
    cert_path, key_path = folder / "server.crt", folder / "server.key"
    cert_path.write_bytes(cert)
    key_path.write_bytes(key)
    return cert_path, key_path


@dataclass(frozen=True)
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


class SmtpReceiver:
    """aiosmtpd on 127.0.0.1 that requires STARTTLS (its certificate at `ca_file`) and, with `users`, a
    login; it keeps every message it accepts in `mails`. `data_reply` (e.g. "451 4.3.0 try later") is
    answered to DATA instead of accepting the message."""

    def __init__(self, folder: Path, users: dict[str, str] | None = None, data_reply: str | None = None):
        self.ca_file, key_file = self_signed(folder)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.ca_file, key_file)
        self.users = users or {}
        self.data_reply = data_reply
        self.mails: list[Mail] = []
        self.lock = threading.Lock()
        self.port = free_port()
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=True,
            authenticator=self._authenticate,
            auth_required=bool(self.users),
        )

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and self.users.get(auth_data.login.decode()) == (
            auth_data.password.decode()
        )
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 235 or 535 itself

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.data_reply:
            return self.data_reply
        with self.lock:
            self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"

    def __enter__(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
