"""The Alertmanager webhook receiver: v4 notifications in, one Incident per alert group out.

    POST /webhook/alertmanager   Authorization: Bearer <AIOPS_WEBHOOK_TOKEN>

- **Checks, in order**: bearer token (constant-time compare; 401), body size (Content-Length or
  what arrives; 413), per-client token bucket (429 with Retry-After), JSON and the v4 schema (400
  naming every bad field, e.g. `alerts[0].fingerprint: Field required`). A rejected request changes
  nothing in the cluster.
- **Grouping**: one Incident per Alertmanager group. Its name is derived from the groupKey alone,
  `am-<alertname>-<sha256(groupKey)[:10]>`, so a retried or repeated notification finds the same
  object (create-or-get: a 409 returns the stored one). The Incident lives in the group's
  `namespace` label (groupLabels, else commonLabels) when that namespace exists, else in
  AIOPS_WEBHOOK_NAMESPACE. Title, labels, annotations, fingerprint, startsAt and generatorURL come
  from the group's earliest firing alert; the Incident's target follows from the alert labels.
- **Dedup**: every alert of the group is recorded on the Incident in the `aiops.dev/alerts`
  annotation as fingerprint -> [startsAt, status]. A notification whose alerts are all already
  recorded with the same startsAt and status is answered 200 without any API call (an in-memory
  index; after a restart it is rebuilt from the annotation on first contact).
- **Resolution**: when the notification's status is resolved (Alertmanager's verdict on the whole
  group) or every recorded alert of the group is resolved, the Incident moves to
  Resolved (resolvedAt, condition AlertFiring=False, an Event, a timeline entry), unless it is
  Remediating: then only the condition and the Event say the alert resolved. A resolved alert for a
  group never seen firing creates nothing.
- **Nothing lost once accepted**: 200 is sent only after the Incident exists and the alerts are
  recorded on it; an API server error gives 503 so Alertmanager retries.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from kubernetes import client
from pydantic import ValidationError

from aiops.core import kube, metrics
from aiops.ingest.ingestor import Ingestor
from aiops.ingest.wire import BadRequest, parse, problems
from aiops.settings import WebhookSettings

log = logging.getLogger(__name__)

PATH = "/webhook/alertmanager"
WORKERS = 8


class TokenBucket:
    """Per-client token buckets: `rate` requests per second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, max(burst, 1)
        self.buckets: dict[str, tuple[float, float]] = {}

    def take(self, source: str, now: float | None = None) -> float:
        """0 when allowed, else the seconds until a token is available."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, last = self.buckets.get(source, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens >= 1:
            self.buckets[source] = (tokens - 1, now)
            return 0.0
        self.buckets[source] = (tokens, now)
        if len(self.buckets) > 10_000:  # forget idle clients (their buckets are full again anyway)
            self.buckets = {k: v for k, v in self.buckets.items() if now - v[1] < self.burst / self.rate}
        return (1 - tokens) / self.rate


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


class Receiver:
    """The HTTP server, in its own thread and event loop, so kopf's loop never waits for it."""

    def __init__(self, conf: WebhookSettings, api: client.ApiClient | None = None, ingestor: Ingestor | None = None):
        self.conf = conf
        self.ingestor = ingestor or Ingestor(conf.namespace, kube.ApiServer(api))
        self.limiter = TokenBucket(conf.rate, conf.burst)
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="alertmanager")
        self.port: int | None = None
        self._token = conf.token.encode()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # -- the request

    async def handle(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        outcome, response = await self._handle(request)
        metrics.WEBHOOK_REQUESTS.labels(outcome).inc()
        metrics.WEBHOOK_LATENCY.observe(time.monotonic() - started)
        return response

    async def _handle(self, request: web.Request) -> tuple[str, web.Response]:
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self._token):
            return "unauthorized", _json(
                401, {"error": "missing or wrong bearer token"}, {"WWW-Authenticate": 'Bearer realm="aiops"'}
            )
        too_large = _json(413, {"error": f"body larger than {self.conf.max_body} bytes"})
        if (request.content_length or 0) > self.conf.max_body:
            return "too_large", too_large
        wait = self.limiter.take(request.remote or "?")
        if wait:
            retry = max(1, int(wait + 0.999))
            return "rate_limited", _json(
                429, {"error": f"rate limit: {self.conf.rate:g} requests/s per client"}, {"Retry-After": str(retry)}
            )
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return "too_large", too_large
        try:
            note = parse(body)
        except BadRequest as exc:
            return "invalid", _json(400, {"error": f"invalid notification: {exc}", "problems": exc.problems[:50]})
        try:
            result = await asyncio.get_running_loop().run_in_executor(self.pool, self.ingestor.apply, note)
        except ValidationError as exc:  # the Incident built from the alert fails the schema
            found = problems(exc)
            return "invalid", _json(400, {"error": f"alert does not make a valid Incident: {found[0]}"})
        except Exception as exc:  # the API server is down or refuses: Alertmanager retries on 5xx
            log.warning("notification for group %r not applied: %s", note.group_key[:200], exc)
            return "error", _json(503, {"error": f"not stored, retry: {str(exc)[:500]}"})
        return result.outcome, _json(
            200,
            {
                "status": result.outcome,
                "incident": result.incident,
                "alerts": len(note.alerts),
                "detail": result.detail,
            },
        )

    async def healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    # -- the server

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.conf.max_body)
        app.router.add_post(PATH, self.handle)
        app.router.add_get("/healthz", self.healthz)
        return app

    def _ssl(self) -> ssl.SSLContext | None:
        if not self.conf.tls_cert:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.conf.tls_cert, self.conf.tls_key)
        return ctx

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.conf.host, self.conf.port, ssl_context=self._ssl(), backlog=1024)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def start(self) -> Receiver:
        """Listens in a daemon thread; returns once bound (raises OSError/SSLError if it cannot)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._start())
            except BaseException as exc:  # noqa: BLE001  (handed to the starting thread)
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="alertmanager-receiver", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        scheme = "https" if self.conf.tls_cert else "http"
        log.info("Alertmanager receiver on %s://%s:%d%s", scheme, self.conf.host, self.port, PATH)
        return self

    def stop(self) -> None:
        if self._loop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self.pool.shutdown(wait=False)
