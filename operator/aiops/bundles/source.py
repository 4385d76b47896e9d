"""A bundle served as a read-only Kubernetes API, so that the Kubernetes collector, every analyzer and the
whole pipeline (model path included) run on it exactly as on a live cluster.

The collector reads a cluster through two things, and a bundle provides both:
- a watch-fed cache (`clusters/informer.py`), which `CachedReader` asks first for lists and named objects,
  with its selectors and limits: here its informers are filled from the bundle once and never started;
- an API client for the rest: pod logs (served from the bundle's log files, `tailLines` applied; the
  previous container's log when asked and held, else the current one), and a 404 naming what the bundle
  lacks for everything else, which the collector records as an evidence gap, as it does for a live 404.
Nothing in `diagnosis/` knows about bundles.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from kubernetes import client
from kubernetes.client import rest

from aiops.bundles.reader import Snapshot
from aiops.clusters import informer
from aiops.clusters.access import ClusterAccess
from aiops.diagnosis.collectors.kubernetes import OBJECT_PATH

HOST = "http://support-bundle.invalid"  # never dialled: every call is answered in memory
_LOG_PATH = re.compile(r"/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<pod>[^/]+)/log")


def cache(snap: Snapshot) -> informer.Cache:
    """An informer cache holding the bundle's objects: one synced informer per collection it holds."""
    c = informer.Cache(None, resources=tuple(snap.objects))
    for path, objs in snap.objects.items():
        inf = c.informers[path]
        inf.objects = {key: informer.pack(obj) for key, obj in objs.items()}
        inf.synced.set()
    return c


class BundleApi(client.ApiClient):
    """An API client whose transport is the bundle: GETs only, answered in memory."""

    def __init__(self, snap: Snapshot):
        super().__init__(client.Configuration(host=HOST))
        self.snap = snap

    def call_api(self, method, url, header_params=None, body=None, post_params=None, _request_timeout=None):
        split = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        if method != "GET":
            return _response(405, f"a support bundle is read-only ({method} {split.path})")
        if m := _LOG_PATH.fullmatch(split.path):
            return self._log(unquote(m["ns"]), unquote(m["pod"]), query)
        return _response(404, self._why_missing(split.path))

    def _log(self, ns: str, pod: str, query: dict[str, Any]) -> rest.RESTResponse:
        container = query.get("container", "")
        held = self.snap.logs.get((ns, pod, container))
        if not held:
            return _response(404, f"the bundle holds no log of container {container} of pod {ns}/{pod}")
        text = held.get("previous") if query.get("previous") == "true" and "previous" in held else None
        text = text if text is not None else held.get("current") or held.get("previous") or ""
        lines = text.splitlines()
        tail = int(query.get("tailLines") or 0)
        return _response(200, "OK", "\n".join(lines[-tail:] if tail else lines).encode())

    def _why_missing(self, path: str) -> str:
        m = OBJECT_PATH.fullmatch(path)
        if m and f"{m['prefix']}/{m['resource']}" not in self.snap.objects:
            return f"not in the bundle: the {self.snap.layout} holds no {m['resource']}"
        return "not in the bundle"


def _response(status: int, reason: str, data: bytes | None = None) -> rest.RESTResponse:
    body = data if data is not None else json.dumps({"kind": "Status", "code": status, "message": reason}).encode()
    return rest.RESTResponse(SimpleNamespace(status=status, reason=reason, data=body, headers={}))


def access(snap: Snapshot) -> ClusterAccess:
    """How the pipeline reads the bundle: its cache and API client; no Prometheus, traces or Loki."""
    return ClusterAccess(api=BundleApi(snap), prometheus=None, loki_url=None, cache=cache(snap))
