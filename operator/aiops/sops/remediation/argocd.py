"""Argo CD: which Application manages a workload, where its manifests are, and whether it has synced a revision.

Argo CD marks what it manages with the annotation `argocd.argoproj.io/tracking-id:
<app>:<group>/<kind>:<namespace>/<name>` (its default since 2.x: "annotation" tracking) or, with "label"
tracking, the label `app.kubernetes.io/instance: <app>`; with Applications in any namespace `<app>` is
`<namespace>_<name>`. An annotation whose kind, namespace or name is not the object's own was copied from
another object, and Argo CD itself does not count it; neither does this. The instance label is also set by
many Helm charts, so it counts only when an Application of that name exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aiops.core.kube import request

TRACKING_ID = "argocd.argoproj.io/tracking-id"
INSTANCE_LABEL = "app.kubernetes.io/instance"
APPLICATION_PATH = "/apis/argoproj.io/v1alpha1/namespaces/{namespace}/applications/{name}"


class ArgoError(Exception):
    """The workload names an Application that cannot be read, or one whose source cannot carry a change."""


@dataclass(frozen=True)
class Source:
    index: int  # in spec.sources (0 for spec.source)
    repo_url: str
    target_revision: str  # "" and HEAD: the repository's default branch
    path: str
    helm: bool  # a Helm chart: its values need a person
    recurse: bool  # directory.recurse


@dataclass(frozen=True)
class Application:
    namespace: str
    name: str
    tracked_by: str  # how the workload names it, for messages
    sources: tuple[Source, ...]  # the Git sources with a path, in order
    body: dict[str, Any]

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def tracked(meta: dict[str, Any], group: str, kind: str, default_namespace: str) -> tuple[str, str, str] | None:
    """(Application namespace, name, how) that the object's metadata names, or None."""
    annotation = (meta.get("annotations") or {}).get(TRACKING_ID)
    if annotation:
        app, _, rest = annotation.partition(":")
        group_kind, _, where = rest.partition(":")
        namespace, name = meta.get("namespace") or "", meta.get("name") or ""
        if app and group_kind == f"{group}/{kind}" and where == f"{namespace}/{name}":
            return (*_split(app, default_namespace), f"annotation {TRACKING_ID}={annotation}")
        return None  # copied from another object: not this one's
    label = (meta.get("labels") or {}).get(INSTANCE_LABEL)
    if label:
        return (*_split(label, default_namespace), f"label {INSTANCE_LABEL}={label}")
    return None


def _split(app: str, default_namespace: str) -> tuple[str, str]:
    namespace, sep, name = app.partition("_")
    return (namespace, name) if sep else (default_namespace, app)


def application(
    api: client.ApiClient, meta: dict[str, Any], group: str, kind: str, default_namespace: str
) -> Application | None:
    """The Application managing the object, or None when Argo CD does not manage it."""
    found = tracked(meta, group, kind, default_namespace)
    if found is None:
        return None
    namespace, name, how = found
    path = APPLICATION_PATH.format(namespace=namespace, name=name)
    try:
        body = json.loads(request(api, "GET", path))
    except ApiException as exc:
        if exc.status == 404 and how.startswith("label"):
            return None  # a Helm chart's instance label, no Application behind it
        why = "does not exist" if exc.status == 404 else f"cannot be read (HTTP {exc.status} {exc.reason})"
        hint = " (grant the operator get on applications.argoproj.io)" if exc.status == 403 else ""
        raise ArgoError(f"{kind} {meta.get('name')} names Argo CD Application {namespace}/{name} by its {how}, "
                        f"which {why}{hint}") from None  # fmt: skip
    spec = body.get("spec") or {}
    raw = spec.get("sources") or ([spec["source"]] if spec.get("source") else [])
    sources = tuple(
        Source(
            index=i,
            repo_url=s["repoURL"],
            target_revision=s.get("targetRevision") or "",
            path=s.get("path") or "",
            helm=bool(s.get("chart") or s.get("helm")),
            recurse=bool((s.get("directory") or {}).get("recurse")),
        )
        for i, s in enumerate(raw)
        if s.get("repoURL") and (s.get("path") is not None or s.get("chart"))
    )
    if not sources:
        raise ArgoError(f"Argo CD Application {namespace}/{name} has no source with a repoURL and a path")
    return Application(namespace, name, how, sources, body)


@dataclass(frozen=True)
class Sync:
    synced: bool  # status.sync.status is Synced: the live objects are what `revision` renders
    revision: str | None
    note: str  # for the step's output: the last operation's failure, if any


def sync_state(api: client.ApiClient, namespace: str, name: str, source: int) -> Sync:
    """Where the Application stands now: status.sync (revisions[i] for several sources) and the last operation."""
    try:
        body = json.loads(request(api, "GET", APPLICATION_PATH.format(namespace=namespace, name=name)))
    except ApiException as exc:
        raise ArgoError(f"Argo CD Application {namespace}/{name} cannot be read (HTTP {exc.status})") from None
    status = body.get("status") or {}
    sync = status.get("sync") or {}
    revisions = sync.get("revisions") or []
    revision = revisions[source] if source < len(revisions) else sync.get("revision")
    operation = status.get("operationState") or {}
    note = ""
    if operation.get("phase") in ("Failed", "Error"):
        note = f"its last sync {operation['phase'].lower()}: {(operation.get('message') or '')[:300]}"
    return Sync(sync.get("status") == "Synced", revision, note)
