"""Applies Alertmanager notifications to Incidents: create-or-get one per group, record its alerts, resolve it.

Thread-safe (one lock per group stripe); an in-memory index answers repeated notifications without an
API call. Writes go through a kube.Client and the status through a StatusBuilder, like the controllers.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from aiops.api import INCIDENT
from aiops.api.common import DNS_LABEL, ConditionStatus
from aiops.api.conditions import ConditionType, Reason
from aiops.api.incident import IncidentPhase, IncidentStatus
from aiops.core import kube
from aiops.core.sharding import shard_labels
from aiops.core.status import CONFLICT_RETRIES, StatusBuilder, now_utc
from aiops.ingest.wire import (
    ALERTS_ANNOTATION,
    Notification,
    _dump,
    alert_states,
    group_hash,
    incident_manifest,
    incident_name,
    lead_alert,
    merge,
    recorded_states,
)

log = logging.getLogger(__name__)
INDEX_SIZE = 100_000  # groups remembered in memory for dedup


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
    client: kube.Client = field(default_factory=kube.ApiServer)
    clock: Callable[[], datetime] = now_utc
    index: OrderedDict[str, Placed] = field(default_factory=OrderedDict)
    missing_namespaces: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
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

    def _create(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool] | None:
        """(object, created); None when the namespace does not exist."""
        for _ in range(CONFLICT_RETRIES):
            try:
                return self.client.create(INCIDENT, body)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
            except RuntimeError:  # deleted right after a conflict: try again
                continue
        meta = body["metadata"]
        raise RuntimeError(f"Incident {meta['namespace']}/{meta['name']} keeps vanishing after conflicts")

    # -- placement

    def _namespace(self, note: Notification) -> str:
        ns = note.group_labels.get("namespace") or note.common_labels.get("namespace") or ""
        if ns and re.fullmatch(DNS_LABEL, ns) and len(ns) <= 63 and ns not in self.missing_namespaces:
            return ns
        return self.default_namespace

    def _find(self, note: Notification, name: str, primary: str) -> dict[str, Any] | None:
        """After a restart: the group's Incident wherever an earlier notification may have put it."""
        candidates = [primary]
        if "namespace" not in note.group_labels:  # the namespace may differ between notifications
            candidates += sorted({a.labels.get("namespace", "") for a in note.alerts} - {"", primary})
            candidates.append(self.default_namespace)
        for ns in dict.fromkeys(candidates):
            if re.fullmatch(DNS_LABEL, ns) and (obj := self.client.get(INCIDENT, name, ns)) is not None:
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
            body = incident_manifest(note, name, ns, states)
            body["metadata"].setdefault("labels", {}).update(shard_labels(INCIDENT, body))  # its shard's watch sees it
            result = self._create(body)
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
                annotations = {"metadata": {"annotations": {ALERTS_ANNOTATION: _dump(alerts)}}}
                obj = self.client.patch(INCIDENT, placed.name, placed.namespace, annotations)
            placed.alerts = alerts
            outcome = "created" if created else "updated" if changed else "deduplicated"
            all_resolved = all(st == "resolved" for _, st in alerts.values())
            if all_resolved and not placed.resolved:
                obj = obj or self.client.get(INCIDENT, placed.name, placed.namespace)
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
            b: StatusBuilder[IncidentStatus] = StatusBuilder(INCIDENT, obj, self.clock(), lambda *_: None)
            if b.status.phase == IncidentPhase.RESOLVED:
                return "already Resolved"
            remediating = b.status.phase == IncidentPhase.REMEDIATING
            if remediating:
                reason = Reason.RESOLVED_DURING_REMEDIATION
                message = "alert resolved; remediation in progress, phase kept"
            else:
                reason, message = Reason.RESOLVED, "alert resolved in Alertmanager"
            message = f"{', '.join(names)[:200]}: {message}"
            b.condition(ConditionType.ALERT_FIRING, ConditionStatus.FALSE, reason, message)
            if remediating:
                b.record(reason, message)
            else:
                b.phase(IncidentPhase.RESOLVED, message, event=None)
                b.status.resolved_at = b.now
            meta = obj["metadata"]
            try:
                self.client.patch_status(
                    INCIDENT, meta["name"], meta["namespace"], b.changes(), resource_version=meta["resourceVersion"]
                )
            except ApiException as exc:
                if exc.status != 409:
                    raise
                obj = self.client.get(INCIDENT, meta["name"], meta["namespace"])
                if obj is None:
                    return "the Incident was deleted"
                continue
            self.client.event(INCIDENT, obj, "Normal", reason, message)
            return message
        raise RuntimeError(f"Incident {obj['metadata']['name']}: status kept changing under us")
