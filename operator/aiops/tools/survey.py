"""The first reads of a question, made before the model's first reply: the opening survey of a `query` run.

A small model spends its replies guessing generated names (`checkout-0`) and answering from the empty result
(measured: 24 of 43 calls failed on invented names in the first question suite). An engineer starts instead by
looking at what the question names. `plan()` picks those reads from the question's words and the objects that
exist; the agent runs them through the registry like any call (same caps, redaction and fencing) and shows
them to the model as calls it can cite. The model may still call any tool after them.

What is read, in this order, at most MAX_CALLS calls:
- an object the question names exactly (a pod, a node, a claim, a ConfigMap, ...): described;
- a workload whose name is a word of the question (Deployment, StatefulSet, DaemonSet, Job, CronJob):
  described, its first unready pod described, its pods listed, and for a Deployment its rollout history when
  the question is about revisions or rollouts;
- a kind the question names without naming the object (a quota, an autoscaler, a claim, ...): the object of
  that kind named like the workload, or the only one there is; else the list of them;
- the node of a pod read above, when the question is about nodes;
- the namespace's Warning Events, when the question asks why something fails or about events.

Nothing here names a scenario or an application: only Kubernetes kinds and the words people use for them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiops.core import kube
from aiops.tools.context import ToolContext
from aiops.tools.kubernetes import TIMEOUT_S, Resource, resource

MAX_CALLS = 6
WARNING_EVENTS = 15  # the newest Warning Events of the namespace the survey shows
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
# Kinds whose objects a question may name, besides the workloads and their pods.
NAMED = ("Pod", "PersistentVolumeClaim", "ConfigMap", "Service", "HorizontalPodAutoscaler", "ResourceQuota")
# A kind the question mentions by a word people use for it.
KIND_WORDS = (
    (re.compile(r"\bhpas?\b|autoscal", re.I), "HorizontalPodAutoscaler"),
    (re.compile(r"quotas?\b", re.I), "ResourceQuota"),
    (re.compile(r"\bpvcs?\b|claims?\b|\bvolumes?\b|\bstorage\b", re.I), "PersistentVolumeClaim"),
    (re.compile(r"\bconfig\s?maps?\b", re.I), "ConfigMap"),
    (re.compile(r"\bstorage\s?class(?:es)?\b", re.I), "StorageClass"),
)
NODE_WORDS = re.compile(r"\bnodes?\b", re.I)
ROLLOUT_WORDS = re.compile(
    r"\b(?:revisions?|rollouts?|rolled|rolling|previous|before|earlier|newest|latest|new|older)\b", re.I
)
TROUBLE_WORDS = re.compile(
    r"\b(?:why|wrong|fail\w*|error\w*|warnings?|events?|stuck|pending|crash\w*|restart\w*|evict\w*|unhealthy|"
    r"not)\b",
    re.I,
)
WORD = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")


@dataclass
class _Seen:
    """What exists in the namespace, read once: names per kind, pods with their labels, readiness and node."""

    names: dict[str, set[str]] = field(default_factory=dict)
    pods: list[dict] = field(default_factory=list)
    workloads: dict[tuple[str, str], dict] = field(default_factory=dict)


def plan(
    question: str, namespace: str | None, ctx: ToolContext, target: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """The reads to make before the model's first reply, as (tool, arguments); [] when nothing is named or the
    namespace may not be read. `target`: the name of the run's target, named as if by the question. Never
    raises: a kind it cannot list is left out."""
    if not namespace or ctx.refuse_namespace(namespace) is not None:
        return []
    words = set(WORD.findall(question.lower())) | ({target} if target else set())
    seen = _inventory(ctx, namespace)
    calls: list[tuple[str, dict[str, Any]]] = []

    def add(tool: str, **arguments: Any) -> None:
        if (tool, arguments) not in calls and len(calls) < MAX_CALLS:
            calls.append((tool, arguments))

    def describe(kind: str, name: str) -> None:
        add("k8s_describe", kind=kind, name=name, **({"namespace": namespace} if resource(kind).namespaced else {}))

    workloads = sorted(
        ((kind, name) for kind in WORKLOADS for name in seen.names.get(kind, set()) & words),
        key=lambda kn: -len(kn[1]),  # "search-api" before "search"
    )[:1]
    # Objects named exactly; a Service or an autoscaler named like a workload only when its kind is asked about.
    taken = {name for kind in WORKLOADS for name in seen.names.get(kind, set())}
    for kind in (*NAMED, "Node"):
        for name in sorted((seen.names.get(kind, set()) & words) - taken):
            describe(kind, name)
    pods_read: list[dict] = [p for p in seen.pods if p["name"] in words]
    for kind, name in workloads:
        describe(kind, name)
        mine = _pods_of(seen, kind, name)
        unready = [p for p in mine if not p["ready"]]
        if unready and not pods_read:
            describe("Pod", unready[0]["name"])
            pods_read.append(unready[0])
        if mine:
            selector = _selector(seen.workloads.get((kind, name)) or {})
            add("k8s_list", kind="Pod", namespace=namespace, **({"label_selector": selector} if selector else {}))
        if kind == "Deployment" and ROLLOUT_WORDS.search(question):
            add("k8s_rollout_history", namespace=namespace, deployment=name)
        pods_read = pods_read or mine[:1]
    for pattern, kind in KIND_WORDS:
        if not pattern.search(question):
            continue
        existing = seen.names.get(kind, set())
        same = sorted(existing & {name for _, name in workloads})
        if same or len(existing) == 1:
            describe(kind, (same or sorted(existing))[0])
        elif existing:
            add("k8s_list", kind=kind, **({"namespace": namespace} if resource(kind).namespaced else {}))
    if NODE_WORDS.search(question) and not (seen.names.get("Node", set()) & words):
        for node in dict.fromkeys(p["node"] for p in pods_read if p["node"]):
            describe("Node", node)
            break
    if TROUBLE_WORDS.search(question):
        add("k8s_events", namespace=namespace, warnings_only=True, limit=WARNING_EVENTS)
    return calls


def named_namespace(question: str, ctx: ToolContext) -> str | None:
    """The namespace the question names by its word ("... in shop"), among those that exist, or None."""
    words = set(WORD.findall(question.lower()))
    found = sorted(
        i["metadata"]["name"] for i in _list(ctx, resource("Namespace"), "") if i["metadata"]["name"] in words
    )
    return found[0] if found else None


def _inventory(ctx: ToolContext, namespace: str) -> _Seen:
    seen = _Seen()
    for kind in (*NAMED, *WORKLOADS, "Node", "StorageClass"):
        res = resource(kind)
        items = _list(ctx, res, namespace)
        seen.names[kind] = {i["metadata"]["name"] for i in items}
        if kind in WORKLOADS:
            seen.workloads |= {(kind, i["metadata"]["name"]): i for i in items}
        if kind == "Pod":
            seen.pods = [_pod(i) for i in items]
    return seen


def _list(ctx: ToolContext, res: Resource, namespace: str) -> list[dict]:
    try:
        body = kube.request(ctx.api, "GET", res.path(namespace), {"limit": 500}, timeout=TIMEOUT_S)
        return json.loads(body).get("items") or []
    except Exception:  # noqa: BLE001  (a kind the identity may not list, or a server without it: not surveyed)
        return []


def _pod(obj: dict) -> dict:
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return {
        "name": meta["name"],
        "labels": meta.get("labels") or {},
        "owners": {(o.get("kind"), o.get("name")) for o in meta.get("ownerReferences") or []},
        "ready": ready or status.get("phase") == "Succeeded",
        "node": spec.get("nodeName"),
    }


def _selector(workload: dict) -> str | None:
    labels = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or None


def _pods_of(seen: _Seen, kind: str, name: str) -> list[dict]:
    """The workload's pods: those its selector matches, else those it (or its ReplicaSets) owns by name."""
    labels = ((seen.workloads.get((kind, name)) or {}).get("spec") or {}).get("selector") or {}
    match = labels.get("matchLabels") or {}
    if match:
        return [p for p in seen.pods if all(p["labels"].get(k) == v for k, v in match.items())]
    return [p for p in seen.pods if any(o == name or o.startswith(f"{name}-") for _, o in p["owners"])]
