"""Alertmanager webhook receiver: v4 notifications in, one Incident per alert group out.

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
import hashlib
import hmac
import json
import logging
import re
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aiops import API_VERSION, GROUP, VERSION
from aiops.api import INCIDENT
from aiops.api.common import DNS_LABEL, field_path
from aiops.api.incident import TIMELINE_LIMIT, IncidentPhase, IncidentSource, IncidentSpec, Severity
from aiops.core import kube, metrics
from aiops.core.status import append_timeline, now_utc, rfc3339, set_condition
from aiops.settings import WebhookSettings

log = logging.getLogger(__name__)

PATH = "/webhook/alertmanager"
GROUP_LABEL = f"{GROUP}/alert-group"
ALERTS_ANNOTATION = f"{GROUP}/alerts"
GROUP_KEY_ANNOTATION = f"{GROUP}/alert-group-key"
ALERT_CONDITION = "AlertFiring"
MAX_RECORDED_ALERTS = 200  # per Incident, in the annotation; resolved ones are dropped first
INDEX_SIZE = 100_000  # groups remembered in memory for dedup
WORKERS = 8
CONFLICT_RETRIES = 5
HEX = r"^[0-9a-fA-F]{1,64}$"

SEVERITIES = {
    "critical": Severity.CRITICAL,
    "fatal": Severity.CRITICAL,
    "page": Severity.CRITICAL,
    "emergency": Severity.CRITICAL,
    "high": Severity.HIGH,
    "error": Severity.HIGH,
    "major": Severity.HIGH,
    "warning": Severity.WARNING,
    "warn": Severity.WARNING,
    "medium": Severity.WARNING,
    "low": Severity.LOW,
    "minor": Severity.LOW,
    "info": Severity.INFO,
    "informational": Severity.INFO,
    "none": Severity.INFO,
}


# --- the v4 payload -----------------------------------------------------------------------------


class _Wire(BaseModel):
    # Alertmanager adds fields over time (truncatedAlerts in 0.25): ignore what we do not read.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Alert(_Wire):
    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(min_length=1)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str | None = Field(default=None, alias="generatorURL")
    fingerprint: str = Field(pattern=HEX)

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")


class Notification(_Wire):
    version: Literal["4"]
    group_key: str = Field(alias="groupKey", min_length=1, max_length=4096)
    status: Literal["firing", "resolved"]
    receiver: str = ""
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts")
    alerts: list[Alert] = Field(min_length=1)


def problems(exc: ValidationError) -> list[str]:
    """Every error as `path: message`, paths in the payload's own spelling (alerts[0].startsAt)."""
    out = []
    for err in exc.errors():
        loc = [_ALIASES.get(p, p) if isinstance(p, str) else p for p in err["loc"]]
        out.append(f"{field_path(tuple(loc)) or '(body)'}: {err['msg']}")
    return out


_ALIASES = {"starts_at": "startsAt", "ends_at": "endsAt", "generator_url": "generatorURL", "group_key": "groupKey"}


def parse(body: bytes) -> Notification:
    """The notification, or ValueError with the problems (field paths) for the 400 answer."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest([f"(body): not JSON: {exc}"]) from None
    if not isinstance(data, dict):
        raise BadRequest([f"(body): expected a JSON object, got {type(data).__name__}"])
    try:
        note = Notification.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(problems(exc)) from None
    missing = [f"alerts[{i}].labels.alertname: Field required" for i, a in enumerate(note.alerts) if not a.name]
    if missing:
        raise BadRequest(missing)
    return note


class BadRequest(ValueError):
    def __init__(self, problems: list[str]):
        super().__init__(problems[0])
        self.problems = problems


# --- naming -------------------------------------------------------------------------------------


def group_hash(group_key: str) -> str:
    return hashlib.sha256(group_key.encode()).hexdigest()[:10]


def incident_name(alertname: str, group_key: str) -> str:
    """`am-<alertname>-<hash10>`: DNS-safe, at most 63 characters, the same for every notification of a group."""
    slug = re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", alertname.lower())).strip("-")[:49].strip("-")
    return f"am-{slug or 'alert'}-{group_hash(group_key)}"


def severity(labels: dict[str, str]) -> Severity:
    return SEVERITIES.get(labels.get("severity", "").strip().lower(), Severity.WARNING)


def _ts(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def alert_states(note: Notification) -> dict[str, list[str]]:
    """fingerprint -> [startsAt, status] for the alerts in the notification."""
    return {a.fingerprint.lower(): [_ts(a.starts_at), a.status] for a in note.alerts}


def lead_alert(note: Notification) -> Alert:
    """The group's earliest firing alert (ties: smallest fingerprint); the first alert if none fires."""
    firing = [a for a in note.alerts if a.status == "firing"] or note.alerts
    return min(firing, key=lambda a: (a.starts_at, a.fingerprint.lower()))


def incident_manifest(note: Notification, name: str, namespace: str, states: dict[str, list[str]]) -> dict[str, Any]:
    lead = lead_alert(note)
    ann = {**note.common_annotations, **lead.annotations}
    summary = ann.get("summary") or ann.get("description") or ann.get("message") or ""
    title = f"{lead.name}: {summary}" if summary else f"{lead.name} ({lead.labels.get('namespace', 'cluster')})"
    about = ann.get("description") or ann.get("message") or summary
    origin = f"From Alertmanager {note.external_url or ''} (receiver {note.receiver or '?'}), group {note.group_key}"
    generator = lead.generator_url if lead.generator_url and len(lead.generator_url) <= 2048 else None
    spec = IncidentSpec.model_validate(
        {
            "title": " ".join(title.split())[:256],
            "description": (f"{about}\n\n{origin}" if about else origin)[:16384],
            "severity": severity({**note.common_labels, **lead.labels}),
            "source": IncidentSource.ALERTMANAGER,
            "alert": {
                "name": lead.name[:253],
                "labels": lead.labels,
                "annotations": lead.annotations,
                "fingerprint": lead.fingerprint.lower(),
                "groupKey": note.group_key,
                "startsAt": lead.starts_at,
                "generatorURL": generator,
            },
        }
    )
    return {
        "apiVersion": API_VERSION,
        "kind": INCIDENT.kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                GROUP_LABEL: group_hash(note.group_key),
                f"{GROUP}/source": "alertmanager",
                "app.kubernetes.io/managed-by": "aiops-operator",
            },
            "annotations": {GROUP_KEY_ANNOTATION: note.group_key, ALERTS_ANNOTATION: _dump(states)},
        },
        "spec": spec.wire(),
    }


def _dump(states: dict[str, list[str]]) -> str:
    return json.dumps(states, separators=(",", ":"), sort_keys=True)


def merge(recorded: dict[str, list[str]], incoming: dict[str, list[str]]) -> dict[str, list[str]]:
    """The group's alerts after this notification, at most MAX_RECORDED_ALERTS (resolved dropped first)."""
    out = {**recorded, **incoming}
    if len(out) > MAX_RECORDED_ALERTS:
        resolved = [fp for fp, (_, st) in out.items() if st == "resolved" and fp not in incoming]
        for fp in resolved[: len(out) - MAX_RECORDED_ALERTS]:
            del out[fp]
    return out


def recorded_states(obj: dict[str, Any]) -> dict[str, list[str]]:
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(ALERTS_ANNOTATION)
    try:
        data = json.loads(raw) if raw else {}
        return {str(k): [str(v[0]), str(v[1])] for k, v in data.items()} if isinstance(data, dict) else {}
    except (ValueError, TypeError, IndexError):
        return {}


# --- the cluster side ---------------------------------------------------------------------------


@dataclass
class Placed:
    """What we know about one group's Incident: where it is and which alerts it has recorded."""

    namespace: str
    name: str
    alerts: dict[str, list[str]]
    resolved: bool = False  # the Incident already carries our resolution (or Remediating noted it)


@dataclass
class Result:
    outcome: str  # created | updated | deduplicated | resolved | ignored
    incident: str | None = None
    detail: str = ""


@dataclass
class Ingestor:
    """Applies notifications to Incidents; thread-safe (one lock per group stripe)."""

    default_namespace: str
    api: client.ApiClient | None = None
    clock: Callable[[], datetime] = now_utc
    index: OrderedDict[str, Placed] = field(default_factory=OrderedDict)
    missing_namespaces: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._custom = client.CustomObjectsApi(self.api or kube.api_client())
        self._core = client.CoreV1Api(self.api or kube.api_client())
        self._locks = [threading.Lock() for _ in range(256)]
        self._index_lock = threading.Lock()

    # -- bookkeeping

    def _remember(self, key: str, placed: Placed) -> None:
        with self._index_lock:
            self.index[key] = placed
            self.index.move_to_end(key)
            while len(self.index) > INDEX_SIZE:
                self.index.popitem(last=False)

    def _recall(self, key: str) -> Placed | None:
        with self._index_lock:
            return self.index.get(key)

    # -- the API calls

    def _get(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._custom.get_namespaced_custom_object(GROUP, VERSION, namespace, INCIDENT.plural, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _create(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool] | None:
        """(object, created); None when the namespace does not exist."""
        meta = body["metadata"]
        for _ in range(CONFLICT_RETRIES):
            try:
                obj = self._custom.create_namespaced_custom_object(
                    GROUP, VERSION, meta["namespace"], INCIDENT.plural, body
                )
                return obj, True
            except ApiException as exc:
                if exc.status == 404:
                    return None
                if exc.status != 409:
                    raise
            existing = self._get(meta["namespace"], meta["name"])
            if existing is not None:
                return existing, False
        raise RuntimeError(f"Incident {meta['namespace']}/{meta['name']} keeps vanishing after conflicts")

    def _patch(self, namespace: str, name: str, body: dict[str, Any], status: bool = False) -> dict[str, Any]:
        call = (
            self._custom.patch_namespaced_custom_object_status
            if status
            else self._custom.patch_namespaced_custom_object
        )
        return call(
            GROUP, VERSION, namespace, INCIDENT.plural, name, body, _content_type="application/merge-patch+json"
        )

    def _event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        meta = obj["metadata"]
        now = self.clock()
        try:
            self._core.create_namespaced_event(
                meta["namespace"],
                {
                    "metadata": {"generateName": f"aiops-{meta['name'][:40]}-", "namespace": meta["namespace"]},
                    "involvedObject": {
                        "apiVersion": API_VERSION,
                        "kind": INCIDENT.kind,
                        "name": meta["name"],
                        "namespace": meta["namespace"],
                        "uid": meta["uid"],
                    },
                    "type": type_,
                    "reason": reason,
                    "message": message[:1024],
                    "firstTimestamp": rfc3339(now),
                    "lastTimestamp": rfc3339(now),
                    "count": 1,
                    "source": {"component": "aiops-operator"},
                    "reportingComponent": "aiops-operator",
                },
            )
        except ApiException as exc:  # the status already says it; an Event is a courtesy
            log.warning("Event %s on Incident %s/%s not posted: %s", reason, meta["namespace"], meta["name"], exc)

    # -- placement

    def _namespace(self, note: Notification) -> str:
        ns = note.group_labels.get("namespace") or note.common_labels.get("namespace") or ""
        if ns and re.match(DNS_LABEL, ns) and len(ns) <= 63 and ns not in self.missing_namespaces:
            return ns
        return self.default_namespace

    def _find(self, note: Notification, name: str, primary: str) -> dict[str, Any] | None:
        """After a restart: the group's Incident wherever an earlier notification may have put it."""
        candidates = [primary]
        if "namespace" not in note.group_labels:  # the namespace may differ between notifications
            candidates += sorted({a.labels.get("namespace", "") for a in note.alerts} - {"", primary})
            candidates.append(self.default_namespace)
        for ns in dict.fromkeys(candidates):
            if re.match(DNS_LABEL, ns) and (obj := self._get(ns, name)) is not None:
                return obj
        return None

    def _place(self, note: Notification, key: str, states: dict[str, list[str]]) -> tuple[dict | None, bool]:
        """The group's Incident, created if need be: (object or None when nothing fires, created)."""
        name = incident_name(lead_alert(note).name, note.group_key)
        primary = self._namespace(note)
        if "namespace" not in note.group_labels or not any(a.status == "firing" for a in note.alerts):
            found = self._find(note, name, primary)
            if found is not None:
                return found, False
        if not any(a.status == "firing" for a in note.alerts):
            return None, False
        for ns in dict.fromkeys([primary, self.default_namespace]):
            result = self._create(incident_manifest(note, name, ns, states))
            if result is not None:
                return result
            if ns != self.default_namespace:
                log.info("namespace %r does not exist: Incident %s goes to %r", ns, name, self.default_namespace)
                self.missing_namespaces.add(ns)
        raise LookupError(f"namespace {self.default_namespace!r} (AIOPS_WEBHOOK_NAMESPACE) does not exist")

    # -- one notification

    def apply(self, note: Notification) -> Result:
        key = group_hash(note.group_key)
        incoming = alert_states(note)
        with self._locks[int(key[:2], 16)]:
            placed = self._recall(key)
            if placed and all(placed.alerts.get(fp) == st for fp, st in incoming.items()):
                return Result("deduplicated", f"{placed.namespace}/{placed.name}")
            created = False
            if placed is None:
                obj, created = self._place(note, key, incoming)
                if obj is None:
                    return Result("ignored", None, "resolved alerts of a group with no Incident: nothing to do")
                placed = Placed(
                    obj["metadata"]["namespace"],
                    obj["metadata"]["name"],
                    recorded_states(obj),
                    resolved=(obj.get("status") or {}).get("phase") == IncidentPhase.RESOLVED.value,
                )
            else:
                obj = None
            alerts = merge(placed.alerts, incoming)
            if note.status == "resolved":  # Alertmanager's verdict on the whole group, truncated alerts included
                alerts = {fp: [starts, "resolved"] for fp, (starts, _) in alerts.items()}
            ref = f"{placed.namespace}/{placed.name}"
            changed = alerts != placed.alerts
            if changed:
                obj = self._patch(
                    placed.namespace, placed.name, {"metadata": {"annotations": {ALERTS_ANNOTATION: _dump(alerts)}}}
                )
            placed.alerts = alerts
            outcome = "created" if created else "updated" if changed else "deduplicated"
            all_resolved = all(st == "resolved" for _, st in alerts.values())
            if all_resolved and not placed.resolved:
                obj = obj or self._get(placed.namespace, placed.name)
                if obj is None:  # deleted by someone: forget it, the next firing notification re-creates it
                    with self._index_lock:
                        self.index.pop(key, None)
                    return Result("ignored", ref, "the Incident was deleted")
                detail = self._resolve(obj, note)
                placed.resolved = True
                outcome = "resolved"
                self._remember(key, placed)
                return Result(outcome, ref, detail)
            if not all_resolved and placed.resolved and any(st[1] == "firing" for st in incoming.values()):
                placed.resolved = False  # fired again: a later all-resolved notification is news again
            self._remember(key, placed)
            return Result(outcome, ref)

    def _resolve(self, obj: dict[str, Any], note: Notification) -> str:
        """Resolved, unless a remediation is running; retried on write conflicts. The message."""
        names = sorted({a.name for a in note.alerts})
        for _ in range(CONFLICT_RETRIES):
            status = dict(obj.get("status") or {})
            now = self.clock()
            phase = status.get("phase")
            if phase == IncidentPhase.RESOLVED.value:
                return "already Resolved"
            remediating = phase == IncidentPhase.REMEDIATING.value
            if remediating:
                reason, message = "ResolvedDuringRemediation", "alert resolved; remediation in progress, phase kept"
            else:
                reason, message = "Resolved", "alert resolved in Alertmanager"
            message = f"{', '.join(names)[:200]}: {message}"
            conditions, _ = set_condition(
                list(status.get("conditions") or []),
                ALERT_CONDITION,
                "False",
                reason,
                message,
                obj["metadata"].get("generation"),
                now,
            )
            patch: dict[str, Any] = {
                "conditions": conditions,
                "timeline": append_timeline(list(status.get("timeline") or []), reason, message, now, TIMELINE_LIMIT),
            }
            if not remediating:
                patch.update(phase=IncidentPhase.RESOLVED.value, resolvedAt=rfc3339(now))
            try:
                meta = obj["metadata"]
                self._patch(
                    meta["namespace"],
                    meta["name"],
                    {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": patch},
                    status=True,
                )
            except ApiException as exc:
                if exc.status != 409:
                    raise
                obj = self._get(obj["metadata"]["namespace"], obj["metadata"]["name"])
                if obj is None:
                    return "the Incident was deleted"
                continue
            self._event(obj, "Normal", reason, message)
            return message
        raise RuntimeError(f"Incident {obj['metadata']['name']}: status kept changing under us")


# --- HTTP ---------------------------------------------------------------------------------------


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
        self.ingestor = ingestor or Ingestor(conf.namespace, api)
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
