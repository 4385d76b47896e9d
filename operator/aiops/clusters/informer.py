"""Watch-fed caches of the objects the analyzers read, so that a diagnosis costs no LIST calls.

One `Informer` per resource lists it once (in pages) and then follows a watch from that list's
resourceVersion, in a thread of its own: ADDED and MODIFIED replace an object, DELETED removes it,
bookmarks move the resourceVersion on, and a watch that expired (410 Gone, or an ERROR event) is
answered by a fresh list, so no change is lost. A connection that fails is retried with a growing
delay; meanwhile the cache says it is not synced and readers go to the API server.

Objects are kept as compact JSON bytes, decoded when read: as Python dicts 50,000 pods take over ten
times the memory of their JSON, and a diagnosis reads a few dozen objects. They are the API server's
JSON (the camelCase shapes analyzers read) without the two fields that are most of their size and that
no analyzer reads: `metadata.managedFields` and the `kubectl.kubernetes.io/last-applied-configuration`
annotation. Memory grows with the cluster, not with the number of diagnoses; `Cache.stats()` counts the
objects and bytes held.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from aiops import API_VERSION, GROUP, VERSION
from aiops.core import kube

log = logging.getLogger(__name__)

Obj = dict[str, Any]
PAGE = 500
WATCH_TIMEOUT_S = 300  # the server ends each watch by then; we re-watch from the last resourceVersion
MAX_BACKOFF_S = 30.0
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

SOPS_PATH = f"/apis/{GROUP}/{VERSION}/sops"  # every diagnosis and remediation pass matches its namespace's runbooks
# The collections the Kubernetes collector reads, by their cluster-wide list path, and our SOPs.
RESOURCES = (
    "/api/v1/pods",
    "/api/v1/events",
    "/api/v1/nodes",
    "/api/v1/persistentvolumeclaims",
    "/api/v1/resourcequotas",
    "/api/v1/services",
    "/apis/apps/v1/deployments",
    "/apis/apps/v1/replicasets",
    "/apis/apps/v1/statefulsets",
    "/apis/apps/v1/daemonsets",
    "/apis/batch/v1/jobs",
    SOPS_PATH,
)
# Selected by the API server: the Events of our own objects (six or so per Incident) are never evidence, and a burst
# of Incidents would otherwise fill the cache with them and every diagnosis would decode them all.
FIELD_SELECTORS = {"/api/v1/events": f"involvedObject.apiVersion!={API_VERSION}"}


def trim(obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    meta.pop("managedFields", None)
    annotations = meta.get("annotations")
    if annotations and LAST_APPLIED in annotations:
        annotations.pop(LAST_APPLIED)
    return obj


class Gone(Exception):
    """The watch's resourceVersion is too old: list again."""


def pack(obj: Obj) -> bytes:
    return json.dumps(trim(obj), separators=(",", ":")).encode()


class Informer:
    """One resource's objects by (namespace, name), kept current by list and watch."""

    def __init__(self, api: client.ApiClient, path: str, field_selector: str | None = None):
        self.api = api
        self.path = path
        field_selector = field_selector or FIELD_SELECTORS.get(path)
        self.selector = {"fieldSelector": field_selector} if field_selector else {}
        self.objects: dict[tuple[str, str], bytes] = {}
        self.lock = threading.Lock()
        self.synced = threading.Event()
        self.stopped = threading.Event()
        self.resource_version = ""
        self.relists = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"informer{path}", daemon=True)

    def start(self) -> Informer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()

    def items(self, namespace: str | None = None) -> list[Obj]:
        with self.lock:
            raw = [o for (ns, _), o in self.objects.items() if namespace is None or ns == namespace]
        return [json.loads(o) for o in raw]

    def get(self, namespace: str, name: str) -> Obj | None:
        with self.lock:
            raw = self.objects.get((namespace, name))
        return json.loads(raw) if raw is not None else None

    def _run(self) -> None:
        backoff = 1.0
        while not self.stopped.is_set():
            try:
                self._list()
                backoff = 1.0
                while not self.stopped.is_set():
                    self._watch()
            except Gone:
                self.relists += 1
                log.info("informer %s: watch expired (410 Gone), listing again", self.path)
            except Exception as exc:  # noqa: BLE001  (the API server restarting: keep trying, readers go live)
                self.synced.clear()
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("informer %s: %s; again in %.0fs", self.path, self.last_error, backoff)
                self.stopped.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _list(self) -> None:
        objects: dict[tuple[str, str], bytes] = {}
        token = None
        while True:
            query: dict[str, Any] = {"limit": PAGE, **self.selector}
            if token:
                query["continue"] = token
            page = json.loads(kube.request(self.api, "GET", self.path, query, timeout=60))
            # List items come without kind and apiVersion; watch events and GETs carry them: keep them all alike.
            kind = {"kind": page.get("kind", "").removesuffix("List"), "apiVersion": page.get("apiVersion")}
            for obj in page.get("items") or []:
                objects[_key(obj)] = pack({**kind, **obj})
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
        with self.lock:
            self.objects = objects
            self.resource_version = page["metadata"].get("resourceVersion", "")
        self.last_error = None
        self.synced.set()

    def _watch(self) -> None:
        query = {
            "watch": "true",
            "resourceVersion": self.resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": WATCH_TIMEOUT_S,
            **self.selector,
        }
        for event in self._stream(query):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise Gone()
                raise RuntimeError(f"watch error: {obj.get('message')}")
            version = (obj.get("metadata") or {}).get("resourceVersion")
            if kind in ("ADDED", "MODIFIED"):
                packed = pack(obj)
                with self.lock:
                    self.objects[_key(obj)] = packed
            elif kind == "DELETED":
                with self.lock:
                    self.objects.pop(_key(obj), None)
            if version:
                self.resource_version = version
            if self.stopped.is_set():
                return

    def _stream(self, query: dict[str, Any]) -> Iterator[dict]:
        params = self.api.param_serialize(
            "GET",
            self.path,
            query_params=list(query.items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        resp = self.api.call_api(*params, _request_timeout=(10, WATCH_TIMEOUT_S + 30))
        try:
            if resp.status == 410:
                raise Gone()
            if resp.status >= 400:
                raise ApiException(status=resp.status, reason=resp.reason, body=resp.read().decode(errors="replace"))
            for line in iter_resp_lines(resp.response):
                if line:
                    yield json.loads(line)
        finally:
            resp.response.release_conn()


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


class Cache:
    """The informers of one cluster, started together, on a client of their own: each watch holds a
    connection, and the operator's other calls must not wait for one."""

    def __init__(
        self,
        api: client.ApiClient | None,
        resources: tuple[str, ...] = RESOURCES,
        selectors: dict[str, str] | None = None,
    ):
        if api is not None:
            settings = copy.copy(api.configuration)
            settings.connection_pool_maxsize = len(resources) + 2
            api = client.ApiClient(settings)
        self.api = api
        self.informers = {path: Informer(api, path, (selectors or {}).get(path)) for path in resources}

    def start(self) -> Cache:
        for informer in self.informers.values():
            informer.start()
        return self

    def stop(self) -> None:
        for informer in self.informers.values():
            informer.stop()
        if self.api is not None:
            self.api.close()

    def wait_synced(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(i.synced.wait(max(0.0, deadline - time.monotonic())) for i in self.informers.values())

    def informer(self, path: str) -> Informer | None:
        """The synced informer of a cluster-wide list path, or None (not cached, or not synced now)."""
        informer = self.informers.get(path)
        return informer if informer is not None and informer.synced.is_set() else None

    def stats(self) -> dict[str, tuple[int, int]]:
        """path -> (objects, bytes of their JSON): what the cache holds."""
        out = {}
        for path, informer in self.informers.items():
            with informer.lock:
                out[path] = (len(informer.objects), sum(len(o) for o in informer.objects.values()))
        return out


_local: Cache | None = None


def start_local(api: client.ApiClient) -> Cache:
    """The operator's own cluster's cache, started once."""
    global _local
    if _local is None:
        _local = Cache(api).start()
    return _local


def local() -> Cache | None:
    return _local
