"""Kubernetes evidence for one target: pods, owners and rollout history, events, nodes,
PVCs, HPAs, quotas, jobs, certificates and pod logs, as the API returns them.

Objects are read as raw JSON (not the client's Python models) so analyzers see the exact
camelCase shapes of `kubectl get -o json`. Secret data is never read.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aiops.clusters import informer
from aiops.core import kube
from aiops.diagnosis.evidence import EvidenceBundle, Obj, Target

REQUEST_TIMEOUT_S = 10
LOG_TAIL_LINES = 500
MAX_PODS = 100  # a Namespace or Node target can hold many; keep the bundle bounded
MAX_EVENTS = 1000


class Reader:
    """GETs of raw JSON through the client's connection settings (auth, TLS, proxy)."""

    def __init__(self, api: client.ApiClient, bundle: EvidenceBundle):
        self.api = api
        self.bundle = bundle

    def get(self, path: str, what: str, query: dict[str, Any] | None = None, optional: bool = False) -> Any:
        """The decoded body, or None after recording why `what` is missing (404 is silent when optional).

        An optional API that answered 404 to a list (its group is not served: cert-manager not installed) is not
        asked again for ABSENT_FOR_S; a list of a served kind answers 200 even in a namespace that does not exist."""
        api = _api_of(self.api, path) if optional else None
        if api is not None and _absent.get(api, 0.0) > time.monotonic():
            return None
        try:
            raw = kube.request(self.api, "GET", path, query, timeout=REQUEST_TIMEOUT_S)
            return raw.decode("utf-8", errors="replace") if path.endswith("/log") else json.loads(raw)
        except ApiException as exc:
            if optional and exc.status == 404:
                if api is not None:
                    _absent[api] = time.monotonic() + ABSENT_FOR_S
            else:
                self.bundle.missing.append(f"{what}: HTTP {exc.status} {exc.reason}")
        except Exception as exc:  # noqa: BLE001  (a source that fails is evidence missing, not a crash)
            self.bundle.missing.append(f"{what}: {type(exc).__name__}: {exc}")
        return None

    def each(self, names: Iterable[str], path: str, what: str) -> list[Obj]:
        """GETs one object per name ({} in path and what); the missing ones are recorded, not returned."""
        found = (self.get(path.format(quote(name)), what.format(name)) for name in names)
        return [obj for obj in found if obj]

    def items(self, path: str, what: str, query: dict[str, Any] | None = None, optional: bool = False) -> list[Obj]:
        body = self.get(path, what, query, optional)
        return list(body.get("items") or []) if isinstance(body, dict) else []


ABSENT_FOR_S = 60.0  # how soon an API installed meanwhile (a CRD applied) is read again
_absent: dict[tuple[str, str], float] = {}  # (server, list path without namespace) -> asked again after


def _api_of(api: client.ApiClient, path: str) -> tuple[str, str] | None:
    """What an optional list's 404 says is absent: its resource on this server; None for a named object."""
    match = OBJECT_PATH.fullmatch(path)
    if not match or match.group("name"):
        return None
    return api.configuration.host, f"{match.group('prefix')}/{match.group('resource')}"


class CachedReader(Reader):
    """A Reader that answers lists and named objects from the cluster's watch-fed cache
    (clusters/informer.py) where it holds them, and goes to the API server for the rest: logs, kinds it
    does not cache, selectors it cannot evaluate, an informer not synced, and a named object it lacks
    (just created, or really absent: the server says which)."""

    def __init__(self, api: client.ApiClient, bundle: EvidenceBundle, cache: informer.Cache):
        super().__init__(api, bundle)
        self.cache = cache

    def get(self, path: str, what: str, query: dict[str, Any] | None = None, optional: bool = False) -> Any:
        found = self._cached(path, dict(query or {}))
        return found if found is not None else super().get(path, what, query, optional)

    def _cached(self, path: str, query: dict[str, Any]) -> Any:
        match = OBJECT_PATH.fullmatch(path)
        if not match:
            return None
        prefix, namespace, resource, name = match.group("prefix", "namespace", "resource", "name")
        source = self.cache.informer(f"{prefix}/{resource}")
        limit = query.pop("limit", None)
        if source is None:
            return None
        if name:
            return None if query else source.get(namespace or "", unquote(name))
        selected = _select(source.items(namespace), query)
        if selected is None:
            return None
        selected.sort(key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))
        selected = selected[: int(limit)] if limit else selected
        return {"items": [{k: v for k, v in o.items() if k not in _TYPE_FIELDS} for o in selected]}


# /api/v1[/namespaces/NS]/RESOURCE[/NAME] and /apis/GROUP/VERSION[/namespaces/NS]/RESOURCE[/NAME]
OBJECT_PATH = re.compile(
    r"(?P<prefix>/api/v1|/apis/[^/]+/[^/]+)(?:/namespaces/(?P<namespace>[^/]+))?/(?P<resource>[a-z]+)(?:/(?P<name>[^/]+))?"
)


_TYPE_FIELDS = ("kind", "apiVersion")  # absent from list items, as the API server answers a list


def _select(objs: list[Obj], query: dict[str, Any]) -> list[Obj] | None:
    """The objects matching the equality selectors the collector uses; None for any other query."""
    labels = _pairs(query.pop("labelSelector", ""))
    fields = _pairs(query.pop("fieldSelector", ""))
    if labels is None or fields is None or query:
        return None
    out = []
    for o in objs:
        have = o["metadata"].get("labels") or {}
        if all(have.get(k) == v for k, v in labels.items()) and all(_field(o, k) == v for k, v in fields.items()):
            out.append(o)
    return out


def _pairs(selector: str) -> dict[str, str] | None:
    pairs = {}
    for term in filter(None, selector.split(",")):
        key, sep, value = term.partition("=")
        if not sep or key.endswith("!") or value.startswith("="):
            return None  # set-based or inequality: the server evaluates it
        pairs[key.strip()] = value.strip()
    return pairs


def _field(obj: Obj, dotted: str) -> Any:
    value: Any = obj
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def selector_string(match_labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))


def owners(obj: Obj, kind: str) -> set[str]:
    return {o["name"] for o in obj["metadata"].get("ownerReferences") or [] if o.get("kind") == kind}


def _named(objs: Iterable[Obj]) -> set[str]:
    return {o["metadata"]["name"] for o in objs}


WORKLOAD_PATHS = {
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
    "StatefulSet": "/apis/apps/v1/namespaces/{ns}/statefulsets/{name}",
    "DaemonSet": "/apis/apps/v1/namespaces/{ns}/daemonsets/{name}",
    "Job": "/apis/batch/v1/namespaces/{ns}/jobs/{name}",
}


def collect_pods(r: Reader, target: Target) -> None:
    """Fills pods and the workload objects above them for any target kind."""
    b, ns, name = r.bundle, target.namespace, target.name
    pods_path = f"/api/v1/namespaces/{ns}/pods"
    if target.kind == "Pod":
        pod = r.get(f"{pods_path}/{quote(name)}", f"kubernetes/pod {ns}/{name}")
        b.pods = [pod] if pod else []
    elif target.kind in WORKLOAD_PATHS:
        workload = r.get(
            WORKLOAD_PATHS[target.kind].format(ns=ns, name=quote(name)), f"kubernetes/{target.kind} {name}"
        )
        if workload:
            {"Deployment": b.deployments, "StatefulSet": b.statefulsets, "DaemonSet": b.daemonsets, "Job": b.jobs}[
                target.kind
            ].append(workload)
            labels = (workload["spec"].get("selector") or {}).get("matchLabels") or {}
            b.pods = r.items(pods_path, "kubernetes/pods", {"labelSelector": selector_string(labels)})
    elif target.kind == "CronJob":
        jobs = r.items(f"/apis/batch/v1/namespaces/{ns}/jobs", "kubernetes/jobs")
        b.jobs = [j for j in jobs if name in owners(j, "CronJob")]
        job_names = _named(b.jobs)
        b.pods = [p for p in r.items(pods_path, "kubernetes/pods") if owners(p, "Job") & job_names]
    elif target.kind == "Service":
        svc = r.get(f"/api/v1/namespaces/{ns}/services/{quote(name)}", f"kubernetes/service {name}")
        if svc and svc["spec"].get("selector"):
            b.pods = r.items(pods_path, "kubernetes/pods", {"labelSelector": selector_string(svc["spec"]["selector"])})
    elif target.kind == "Node":
        b.pods = r.items("/api/v1/pods", "kubernetes/pods", {"fieldSelector": f"spec.nodeName={name}"})
    elif target.kind == "PersistentVolumeClaim":
        b.pods = [
            p
            for p in r.items(pods_path, "kubernetes/pods")
            if any(
                (v.get("persistentVolumeClaim") or {}).get("claimName") == name for v in p["spec"].get("volumes") or []
            )
        ]
    elif target.kind == "Namespace":
        b.pods = r.items(f"/api/v1/namespaces/{name}/pods", "kubernetes/pods")
    b.pods = b.pods[:MAX_PODS]


def collect_owners(r: Reader, ns: str) -> None:
    """ReplicaSets (the rollout history) and the Deployments above the pods."""
    b = r.bundle
    rs_names = set().union(*(owners(p, "ReplicaSet") for p in b.pods)) if b.pods else set()
    deployment_names = _named(b.deployments)
    if rs_names or deployment_names:
        all_rs = r.items(f"/apis/apps/v1/namespaces/{ns}/replicasets", "kubernetes/replicasets")
        deployment_names |= set().union(
            *(owners(rs, "Deployment") for rs in all_rs if rs["metadata"]["name"] in rs_names)
        )
        b.replicasets = [
            rs for rs in all_rs if owners(rs, "Deployment") & deployment_names or rs["metadata"]["name"] in rs_names
        ]
    for name in sorted(deployment_names - _named(b.deployments)):
        dep = r.get(WORKLOAD_PATHS["Deployment"].format(ns=ns, name=quote(name)), f"kubernetes/deployment {name}")
        if dep:
            b.deployments.append(dep)
    job_names = set().union(*(owners(p, "Job") for p in b.pods)) if b.pods else set()
    for name in sorted(job_names - _named(b.jobs)):
        job = r.get(WORKLOAD_PATHS["Job"].format(ns=ns, name=quote(name)), f"kubernetes/job {name}")
        if job:
            b.jobs.append(job)


def collect_surroundings(r: Reader, target: Target) -> None:
    """Nodes, PVCs, HPAs, quotas, certificates and the Events of everything gathered so far."""
    b, ns = r.bundle, target.namespace
    node_names = {p["spec"].get("nodeName") for p in b.pods if p["spec"].get("nodeName")}
    if target.kind == "Node":
        node_names.add(target.name)
    b.nodes = r.each(sorted(node_names), "/api/v1/nodes/{}", "kubernetes/node {}")
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for p in b.pods
        for v in p["spec"].get("volumes") or []
        if v.get("persistentVolumeClaim")
    }
    if target.kind == "PersistentVolumeClaim":
        claims.add(target.name)
    b.pvcs = r.each(sorted(claims), f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{{}}", "kubernetes/pvc {}")
    scaled = {(w["kind"], w["metadata"]["name"]) for w in b.deployments + b.statefulsets}
    hpas = hpa_items(r, ns)
    b.hpas = [h for h in hpas if (h["spec"]["scaleTargetRef"]["kind"], h["spec"]["scaleTargetRef"]["name"]) in scaled]
    b.quotas = r.items(f"/api/v1/namespaces/{ns}/resourcequotas", "kubernetes/resourcequotas")
    b.certificates = r.items(
        f"/apis/cert-manager.io/v1/namespaces/{ns}/certificates", "kubernetes/certificates", optional=True
    )
    involved = (
        {target.name}
        | _named(b.pods)
        | _named(b.replicasets)
        | _named(b.deployments)
        | _named(b.statefulsets)
        | _named(b.daemonsets)
        | _named(b.jobs)
        | _named(b.pvcs)
        | _named(b.hpas)
    )
    events = r.items(f"/api/v1/namespaces/{ns}/events", "kubernetes/events", {"limit": MAX_EVENTS})
    b.events = [e for e in events if e["involvedObject"].get("name") in involved]
    if b.nodes:
        node_events = r.items(
            "/api/v1/events",
            "kubernetes/node events",
            {"fieldSelector": "involvedObject.kind=Node", "limit": MAX_EVENTS},
        )
        b.events += [e for e in node_events if e["involvedObject"].get("name") in node_names]


# API server -> the autoscaling version it serves HPAs in: v2, or v2beta2 (the same shape) before 1.23.
_HPA_VERSION: dict[str, str] = {}


def hpa_items(r: Reader, ns: str) -> list[Obj]:
    host = r.api.configuration.host
    for version in [_HPA_VERSION[host]] if host in _HPA_VERSION else ["v2", "v2beta2"]:
        body = r.get(f"/apis/autoscaling/{version}/namespaces/{ns}/horizontalpodautoscalers", "kubernetes/hpas",
                     optional=True)  # fmt: skip
        if isinstance(body, dict):  # served (an empty list too): ask this version from now on
            _HPA_VERSION[host] = version
            return list(body.get("items") or [])
    return []


def collect_logs(r: Reader) -> None:
    """The tail of each container's log; the previous instance's when it restarted (that is the crash)."""
    for pod in r.bundle.pods:
        meta = pod["metadata"]
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            container = status["name"]
            query = {"container": container, "tailLines": LOG_TAIL_LINES, "timestamps": "true"}
            if status.get("restartCount", 0) > 0:
                query["previous"] = "true"
            text = r.get(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{quote(meta['name'])}/log",
                f"logs/{meta['name']}/{container}",
                query,
            )
            if text:
                r.bundle.logs[f"{meta['name']}/{container}"] = text.splitlines()


def collect(api: client.ApiClient, bundle: EvidenceBundle, cache: informer.Cache | None = None) -> EvidenceBundle:
    r = CachedReader(api, bundle, cache) if cache is not None else Reader(api, bundle)
    collect_pods(r, bundle.target)
    collect_owners(r, bundle.target.namespace)
    collect_surroundings(r, bundle.target)
    collect_logs(r)
    return bundle
