"""An in-memory kube.Client for unit tests of the executors, the remediation flow and the ingestor.

It keeps what the API server keeps for our purposes: objects by kind, namespace and name, a
resourceVersion that moves on every write, merge-patch semantics for status (null deletes a field),
409 on a stale resourceVersion, 404 for a namespace it was told does not exist, and the Events posted.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from typing import Any

from kubernetes.client.exceptions import ApiException

from aiops.api.common import Kind


class FakeClient:
    def __init__(self, missing_namespaces: tuple[str, ...] = ()):
        self.objects: dict[tuple[str, str | None, str], dict[str, Any]] = {}
        self.events: list[tuple[str, str, str, str]] = []  # (object name, type, reason, message)
        self.writes: list[tuple[str, str, dict[str, Any]]] = []  # (kind, name, status patch)
        self.missing_namespaces = set(missing_namespaces)
        self._versions = itertools.count(1)

    def _key(self, kind: Kind, name: str, namespace: str | None) -> tuple[str, str | None, str]:
        return kind.plural, namespace if kind.namespaced else None, name

    def put(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        """Stores an object as a test's starting state (uid, generation and resourceVersion filled in)."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        meta["resourceVersion"] = str(next(self._versions))
        self.objects[self._key(kind, meta["name"], meta.get("namespace"))] = obj
        return copy.deepcopy(obj)

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        obj = self.objects.get(self._key(kind, name, namespace))
        return copy.deepcopy(obj) if obj is not None else None

    def list(self, kind: Kind, namespace: str | None = None) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for (plural, ns, _), o in self.objects.items() if plural == kind.plural and (
            namespace is None or ns == namespace)]  # fmt: skip

    def create(self, kind: Kind, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        meta = body["metadata"]
        if meta.get("namespace") in self.missing_namespaces:
            raise ApiException(status=404, reason="Not Found")
        existing = self.get(kind, meta["name"], meta.get("namespace"))
        if existing is not None:
            return existing, False
        return self.put(kind, body), True

    def _stored(self, kind: Kind, name: str, namespace: str | None) -> dict[str, Any]:
        obj = self.objects.get(self._key(kind, name, namespace))
        if obj is None:
            raise ApiException(status=404, reason="Not Found")
        return obj

    def patch(self, kind: Kind, name: str, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        obj = self._stored(kind, name, namespace)
        for key, value in (body.get("metadata") or {}).items():
            obj["metadata"].setdefault(key, {}).update(value) if isinstance(value, dict) else None
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(obj)

    def patch_status(
        self, kind: Kind, name: str, namespace: str | None, status: dict[str, Any], resource_version: str | None = None
    ) -> dict[str, Any]:
        obj = self._stored(kind, name, namespace)
        if resource_version and resource_version != obj["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        stored = obj.setdefault("status", {})
        for key, value in status.items():
            if value is None:
                stored.pop(key, None)
            else:
                stored[key] = copy.deepcopy(value)
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        self.writes.append((kind.kind, name, copy.deepcopy(status)))
        return copy.deepcopy(obj)

    def event(self, kind: Kind, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((obj["metadata"]["name"], type_, str(reason), message))

    def emitter(self, kind: Kind, obj: dict[str, Any]):
        return lambda type_, reason, message: self.event(kind, obj, type_, reason, message)
