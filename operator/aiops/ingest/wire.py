"""Alertmanager's v4 webhook payload, validated, and how one alert group maps onto an Incident.

Pure functions of the notification: the Incident's name (from the groupKey alone, so a retried
notification finds the same object), its manifest, and the per-alert states recorded on it.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aiops import API_VERSION, GROUP
from aiops.api import INCIDENT
from aiops.api.common import UtcDatetime, field_path
from aiops.api.incident import IncidentSource, IncidentSpec, Severity

GROUP_LABEL = f"{GROUP}/alert-group"
ALERTS_ANNOTATION = f"{GROUP}/alerts"
GROUP_KEY_ANNOTATION = f"{GROUP}/alert-group-key"
MAX_RECORDED_ALERTS = 200  # per Incident, in the annotation; resolved ones are dropped first
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


class _Wire(BaseModel):
    # Alertmanager adds fields over time (truncatedAlerts in 0.25): ignore what we do not read.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Alert(_Wire):
    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(min_length=1)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: UtcDatetime = Field(alias="startsAt")  # compared across alerts: naive and aware ones cannot be
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
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, a number past int()'s limit, deep nesting
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
    """The alerts recorded on an Incident; none when the annotation (anyone may edit it) does not read."""
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(ALERTS_ANNOTATION)
    try:
        data = json.loads(raw) if raw else {}
        return {str(k): [str(v[0]), str(v[1])] for k, v in data.items()} if isinstance(data, dict) else {}
    except (ValueError, TypeError, LookupError, RecursionError):  # LookupError: a state that is a mapping
        return {}
