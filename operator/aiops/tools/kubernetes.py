"""Kubernetes reads: get, list, describe, events, rollout history and pod logs.

Read-only by construction: every call is a GET through `kube.request` on the session's ApiClient, and only
the kinds in RESOURCES can be named. Secrets are not among them and are refused by name, so no tool can
return a Secret's data whatever the identity's RBAC allows. ConfigMap values and `env` values under names
that look like credentials are masked before the Redactor even sees the text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import yaml
from kubernetes.client.exceptions import ApiException
from pydantic import Field

from aiops import API_VERSION
from aiops.api import KINDS
from aiops.core import kube
from aiops.diagnosis.collectors.kubernetes import owners
from aiops.tools.context import Args, ToolContext
from aiops.tools.registry import Tool
from aiops.tools.result import ToolError, ToolResult

TIMEOUT_S = 10
MASK = "<masked: the key looks like a credential>"
# Keys whose values are credentials whatever their content: masked in ConfigMaps and in env lists.
CREDENTIAL_KEY = re.compile(
    r"(?i)(passw|passwd|secret|token|credential|api[_-]?key|private[_-]?key|access[_-]?key|\bauth\b|"
    r"\.pem$|\.key$|\.p12$|kubeconfig|dsn$|connection[_-]?string)"
)
REFUSED = {"secret", "secrets", "v1/secrets"}
NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


@dataclass(frozen=True)
class Resource:
    kind: str
    prefix: str  # /api/v1 or /apis/GROUP/VERSION
    plural: str
    namespaced: bool
    aliases: tuple[str, ...] = ()

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        where = f"/namespaces/{quote(namespace)}" if namespace and self.namespaced else ""
        return f"{self.prefix}{where}/{self.plural}" + (f"/{quote(name)}" if name else "")


RESOURCES = (
    Resource("Pod", "/api/v1", "pods", True, ("po",)),
    Resource("Service", "/api/v1", "services", True, ("svc",)),
    Resource("Endpoints", "/api/v1", "endpoints", True, ("ep",)),
    Resource("ConfigMap", "/api/v1", "configmaps", True, ("cm",)),
    Resource("Event", "/api/v1", "events", True, ("ev",)),
    Resource("PersistentVolumeClaim", "/api/v1", "persistentvolumeclaims", True, ("pvc",)),
    Resource("ResourceQuota", "/api/v1", "resourcequotas", True, ("quota",)),
    Resource("LimitRange", "/api/v1", "limitranges", True, ("limits",)),
    Resource("ServiceAccount", "/api/v1", "serviceaccounts", True, ("sa",)),
    Resource("Node", "/api/v1", "nodes", False, ("no",)),
    Resource("Namespace", "/api/v1", "namespaces", False, ("ns",)),
    Resource("PersistentVolume", "/api/v1", "persistentvolumes", False, ("pv",)),
    Resource("Deployment", "/apis/apps/v1", "deployments", True, ("deploy",)),
    Resource("ReplicaSet", "/apis/apps/v1", "replicasets", True, ("rs",)),
    Resource("StatefulSet", "/apis/apps/v1", "statefulsets", True, ("sts",)),
    Resource("DaemonSet", "/apis/apps/v1", "daemonsets", True, ("ds",)),
    Resource("Job", "/apis/batch/v1", "jobs", True),
    Resource("CronJob", "/apis/batch/v1", "cronjobs", True, ("cj",)),
    Resource("HorizontalPodAutoscaler", "/apis/autoscaling/v1", "horizontalpodautoscalers", True, ("hpa",)),
    Resource("Ingress", "/apis/networking.k8s.io/v1", "ingresses", True, ("ing",)),
    Resource("NetworkPolicy", "/apis/networking.k8s.io/v1", "networkpolicies", True, ("netpol",)),
    Resource("StorageClass", "/apis/storage.k8s.io/v1", "storageclasses", False, ("sc",)),
    *(Resource(k.kind, f"/apis/{API_VERSION}", k.plural, k.namespaced, k.short_names) for k in KINDS),
)
_BY_NAME = {alias.lower(): r for r in RESOURCES for alias in (r.kind, r.plural, *r.aliases)}
KIND_NAMES = ", ".join(r.kind for r in RESOURCES)


def resource(kind: str) -> Resource:
    key = kind.strip().lower()
    if key in REFUSED or key.split(".")[0] in REFUSED:
        raise ToolError("Secrets are never readable through these tools: ask for the pod or Event that names one")
    found = _BY_NAME.get(key)
    if found is None:
        raise ToolError(f"unknown or unreadable kind {kind!r}; the kinds are: {KIND_NAMES}")
    return found


def _api_words(exc: ApiException, what: str) -> str:
    try:
        message = json.loads(exc.body or "{}").get("message") or exc.reason
    except (ValueError, AttributeError):
        message = exc.reason
    if exc.status == 404:
        return f"{what}: not found ({message})"
    if exc.status == 403:
        return f"{what}: the server's Kubernetes identity may not read it (RBAC): {message}"
    return f"{what}: HTTP {exc.status}: {message}"


def read(ctx: ToolContext, path: str, what: str, query: dict[str, Any] | None = None, raw: bool = False) -> Any:
    """One GET; ToolError with the API server's words on failure."""
    try:
        body = kube.request(
            ctx.api, "GET", path, {k: v for k, v in (query or {}).items() if v is not None}, timeout=TIMEOUT_S
        )
    except ApiException as exc:
        raise ToolError(_api_words(exc, what)) from None
    return body.decode("utf-8", errors="replace") if raw else json.loads(body)


NAMES_SHOWN = 20


def existing(ctx: ToolContext, res: Resource, namespace: str | None) -> str:
    """What a caller who guessed a name should use instead: the names of this kind that do exist."""
    where = f" in {namespace}" if namespace and res.namespaced else ""
    try:
        items = json.loads(kube.request(ctx.api, "GET", res.path(namespace), {"limit": 500}, timeout=TIMEOUT_S))
    except (ApiException, ValueError):
        return f"list the {res.plural}{where} with k8s_list and use a name it returns"
    names = sorted(i["metadata"]["name"] for i in items.get("items") or [])
    if not names:
        return f"there are no {res.plural}{where}"
    more = f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
    return f"the {res.plural}{where} are: {', '.join(names[:NAMES_SHOWN])}{more}; use one of these names"


def read_named(ctx: ToolContext, res: Resource, namespace: str | None, name: str) -> dict:
    """One object by name; a name that does not exist is an error that lists the names that do."""
    what = f"{res.kind} {namespace + '/' if namespace and res.namespaced else ''}{name}"
    try:
        return json.loads(kube.request(ctx.api, "GET", res.path(namespace, name), timeout=TIMEOUT_S))
    except ApiException as exc:
        if exc.status == 404:
            raise ToolError(f"{what}: not found; {existing(ctx, res, namespace)}") from None
        raise ToolError(_api_words(exc, what)) from None


def _check_namespace(ctx: ToolContext, res: Resource, namespace: str | None) -> None:
    if not res.namespaced:
        return
    if why := ctx.refuse_namespace(namespace):
        raise ToolError(why)


def mask(obj: Any, configmap: bool = False) -> Any:
    """A copy without server bookkeeping and with credential-looking values masked."""
    if isinstance(obj, list):
        return [mask(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {}
    for key, value in obj.items():
        if key == "managedFields":
            continue
        if key == "annotations" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != "kubectl.kubernetes.io/last-applied-configuration"}
        if configmap and key == "data" and isinstance(value, dict):
            value = {k: MASK if CREDENTIAL_KEY.search(k) else v for k, v in value.items()}
        elif configmap and key == "binaryData" and isinstance(value, dict):
            value = {k: "<binary data not shown>" for k in value}
        out[key] = mask(value)
    if isinstance(out.get("name"), str) and "value" in out and CREDENTIAL_KEY.search(out["name"]):
        out["value"] = MASK  # an env entry
    return out


def _time(raw: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw else None
    except ValueError:
        return None


def age(raw: str | None, now: datetime | None = None) -> str:
    when = _time(raw)
    if when is None:
        return "?"
    seconds = max(0, int(((now or datetime.now(UTC)) - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _ready(conditions: list[dict] | None, kind: str = "Ready") -> str:
    return next((c.get("status", "?") for c in conditions or [] if c.get("type") == kind), "?")


def state(kind: str, obj: dict) -> str:
    """The one-line status `kubectl get` would show for the kind."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if kind == "Pod":
        cs = status.get("containerStatuses") or []
        ready = sum(1 for c in cs if c.get("ready"))
        restarts = sum(c.get("restartCount", 0) for c in cs)
        waiting = next((c["state"]["waiting"].get("reason") for c in cs if (c.get("state") or {}).get("waiting")), None)
        node = f" node {spec['nodeName']}" if spec.get("nodeName") else ""  # as kubectl get -o wide
        return f"{waiting or status.get('phase', '?')} ready {ready}/{len(cs)} restarts {restarts}{node}"
    if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        return f"ready {status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}"
    if kind == "DaemonSet":
        return f"ready {status.get('numberReady', 0)}/{status.get('desiredNumberScheduled', 0)}"
    if kind == "Node":
        return f"Ready={_ready(status.get('conditions'))}" + (" unschedulable" if spec.get("unschedulable") else "")
    if kind == "Job":
        return f"succeeded {status.get('succeeded', 0)}/{spec.get('completions', 1)} failed {status.get('failed', 0)}"
    if kind == "Incident":
        return f"{status.get('phase', 'New')} {spec.get('severity', '')} {spec.get('title', '')[:80]}"
    if kind == "AnalysisRun":
        return f"{spec.get('type', '?')} {status.get('phase', 'Pending')}"
    if kind == "Event":
        return f"{obj.get('type', '')} {obj.get('reason', '')}: {str(obj.get('message', ''))[:100]}"
    return str(status.get("phase") or "")


# --- get / list ----------------------------------------------------------------------------------


class GetArgs(Args):
    kind: str = Field(description="Kind, plural or short name: Pod, deployments, svc, Incident, ...")
    name: str = Field(min_length=1, max_length=253, pattern=NAME)
    namespace: str | None = Field(default=None, max_length=63, description="Required for namespaced kinds.")


def get(ctx: ToolContext, args: GetArgs) -> ToolResult:
    res = resource(args.kind)
    if res.namespaced and not args.namespace:
        raise ToolError(f"{res.kind} is namespaced: give namespace")
    _check_namespace(ctx, res, args.namespace)
    obj = read_named(ctx, res, args.namespace, args.name)
    text = yaml.safe_dump(mask(obj, configmap=res.kind == "ConfigMap"), sort_keys=False, width=160)
    return ToolResult.ok("k8s_get", text)


class ListArgs(Args):
    kind: str = Field(description="Kind, plural or short name: pods, Deployment, events, incidents, ...")
    namespace: str | None = Field(default=None, max_length=63, description="Omit for all namespaces.")
    label_selector: str | None = Field(default=None, max_length=1024, description="e.g. app=checkout,tier!=db")
    limit: int = Field(default=100, ge=1, le=500)


def list_(ctx: ToolContext, args: ListArgs) -> ToolResult:
    res = resource(args.kind)
    _check_namespace(ctx, res, args.namespace)
    where = f"in {args.namespace}" if args.namespace and res.namespaced else "in all namespaces"
    body = read(
        ctx,
        res.path(args.namespace),
        f"{res.plural} {where}",
        {"labelSelector": args.label_selector, "limit": args.limit},
    )
    items = body.get("items") or []
    if not items:
        return ToolResult.empty(
            "k8s_list", f"no {res.plural} {where}" + (f" match {args.label_selector}" if args.label_selector else "")
        )
    now = datetime.now(UTC)
    rows = []
    for obj in items:
        meta = obj.get("metadata") or {}
        ns = f"{meta.get('namespace')}/" if res.namespaced and not args.namespace else ""
        rows.append(f"{ns}{meta.get('name')}  {state(res.kind, obj)}  age {age(meta.get('creationTimestamp'), now)}")
    more = (body.get("metadata") or {}).get("continue")
    note = f"listed the first {len(items)} {res.plural}; raise limit or narrow label_selector" if more else None
    return ToolResult.ok("k8s_list", f"{len(items)} {res.plural} {where}:\n" + "\n".join(rows), note)


# --- events and describe ---------------------------------------------------------------------------


def event_line(ev: dict, now: datetime) -> str:
    when = ev.get("lastTimestamp") or ev.get("eventTime") or (ev.get("metadata") or {}).get("creationTimestamp")
    inv = ev.get("involvedObject") or {}
    count = f" x{ev['count']}" if (ev.get("count") or 1) > 1 else ""
    return (
        f"{age(when, now)} ago  {ev.get('type', '')} {ev.get('reason', '')} {inv.get('kind')}/{inv.get('name')}"
        f"{count}: {' '.join(str(ev.get('message') or '').split())}"
    )


def _event_time(ev: dict) -> str:
    return ev.get("lastTimestamp") or ev.get("eventTime") or (ev.get("metadata") or {}).get("creationTimestamp") or ""


def events_of(ctx: ToolContext, namespace: str | None, kind: str | None, name: str | None, limit: int) -> list[dict]:
    """The newest `limit` Events, oldest first, of one object when kind/name are given."""
    fields = [f"involvedObject.{k}={v}" for k, v in (("kind", kind), ("name", name)) if v]
    path = f"/api/v1/namespaces/{quote(namespace)}/events" if namespace else "/api/v1/events"
    body = read(ctx, path, f"events in {namespace or 'all namespaces'}", {"fieldSelector": ",".join(fields) or None})
    return sorted(body.get("items") or [], key=_event_time)[-limit:]


class EventsArgs(Args):
    namespace: str | None = Field(default=None, max_length=63, description="Omit for all namespaces.")
    kind: str | None = Field(default=None, description="Only Events about objects of this kind, e.g. Pod.")
    name: str | None = Field(default=None, max_length=253, description="Only Events about the object of this name.")
    warnings_only: bool = False
    limit: int = Field(default=50, ge=1, le=500, description="The newest this many.")


def events(ctx: ToolContext, args: EventsArgs) -> ToolResult:
    if why := ctx.refuse_namespace(args.namespace):
        raise ToolError(why)
    kind = resource(args.kind).kind if args.kind else None
    found = events_of(ctx, args.namespace, kind, args.name, 10_000 if args.warnings_only else args.limit)
    if args.warnings_only:
        found = [e for e in found if e.get("type") == "Warning"][-args.limit :]
    if not found:
        if args.name and args.namespace:  # no Events of an object that does not exist is a wrong name, not an answer
            read_named(ctx, resource(args.kind or "Pod"), args.namespace, args.name)
        return ToolResult.empty("k8s_events", "no matching Events (Events expire after an hour by default)")
    now = datetime.now(UTC)
    return ToolResult.ok("k8s_events", "\n".join(event_line(e, now) for e in found))


def _containers(spec: dict, statuses: list[dict] | None = None) -> list[str]:
    by_name = {s.get("name"): s for s in statuses or []}
    lines = []
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        lines.append(f"  {c.get('name')}: image {c.get('image')}")
        res = c.get("resources") or {}
        if res:
            amounts = {part: ", ".join(f"{k}={v}" for k, v in (res.get(part) or {}).items()) or "-" for part in res}
            lines.append("    " + "  ".join(f"{part} {text}" for part, text in amounts.items()))
        lines.extend(f"    {probe}" for probe in _probes(c))
        st = by_name.get(c.get("name"))
        if st:
            now_state, detail = next(iter((st.get("state") or {}).items()), ("unknown", {}))
            reason = detail.get("reason") or detail.get("startedAt") or ""
            lines.append(f"    state {now_state} {reason} ready={st.get('ready')} restarts={st.get('restartCount', 0)}")
            last = (st.get("lastState") or {}).get("terminated")
            if last:
                lines.append(
                    f"    last terminated: {last.get('reason')} exit {last.get('exitCode')} at {last.get('finishedAt')}"
                )
    return lines


def _probes(container: dict) -> list[str]:
    """Each probe as kubectl describe prints it: `readiness http-get :8080/ready timeout=1s period=10s #failure=3`."""
    lines = []
    for which in ("liveness", "readiness", "startup"):
        probe = container.get(f"{which}Probe")
        if not probe:
            continue
        if http := probe.get("httpGet"):
            action = f"http-get {http.get('scheme', 'HTTP').lower()}://:{http.get('port')}{http.get('path', '/')}"
        elif tcp := probe.get("tcpSocket"):
            action = f"tcp-socket :{tcp.get('port')}"
        elif ex := probe.get("exec"):
            action = f"exec {' '.join(map(str, ex.get('command') or []))[:120]}"
        else:
            action = "grpc" if probe.get("grpc") else "?"
        timing = " ".join(
            f"{label}={probe[key]}{unit}"
            for key, label, unit in (
                ("initialDelaySeconds", "delay", "s"),
                ("timeoutSeconds", "timeout", "s"),
                ("periodSeconds", "period", "s"),
                ("failureThreshold", "#failure", ""),
            )
            if key in probe
        )
        lines.append(f"{which} {action} {timing}".rstrip())
    return lines


def _details(kind: str, obj: dict) -> list[str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if kind == "Pod":
        return [
            f"Node: {spec.get('nodeName') or '(not scheduled)'}  Phase: {status.get('phase')}  "
            f"QoS: {status.get('qosClass')}",
            "Containers:",
            *_containers(spec, (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])),
        ]
    if kind in ("Deployment", "StatefulSet", "ReplicaSet", "DaemonSet"):
        counts = {k: status.get(k) for k in ("replicas", "readyReplicas", "updatedReplicas", "availableReplicas")}
        template = (spec.get("template") or {}).get("spec") or {}
        return [
            f"Replicas: desired {spec.get('replicas')} "
            + " ".join(f"{k} {v}" for k, v in counts.items() if v is not None),
            f"Selector: {(spec.get('selector') or {}).get('matchLabels')}",
            f"Strategy: {(spec.get('strategy') or spec.get('updateStrategy') or {}).get('type')}",
            "Pod template containers:",
            *_containers(template),
        ]
    if kind == "Node":
        alloc = status.get("allocatable") or {}
        return [
            f"Unschedulable: {bool(spec.get('unschedulable'))}  Taints: {spec.get('taints') or 'none'}",
            f"Allocatable: cpu {alloc.get('cpu')} memory {alloc.get('memory')} pods {alloc.get('pods')}",
        ]
    if kind == "Incident":
        diagnosis = status.get("diagnosis") or {}
        sop = status.get("sop") or {}
        return [
            f"Title: {spec.get('title')}  Severity: {spec.get('severity')}  Phase: {status.get('phase')}",
            f"Target: {spec.get('target')}",
            f"Root cause ({diagnosis.get('confidence')}%): {diagnosis.get('rootCause')}"
            if diagnosis
            else "Not diagnosed",
            f"SOP: {sop.get('name')} at step {sop.get('current')}" if sop else "No SOP",
            f"Approvals: {spec.get('approvals') or 'none'}",
        ]
    # Other kinds: their spec and status as YAML, as kubectl describe shows both (an autoscaler's current
    # utilisation, a quota's use, a claim's phase live in status).
    rest = {k: v for k, v in status.items() if k != "conditions"}  # conditions are listed below
    shown = {k: v for k, v in (("spec", spec), ("status", rest)) if v}
    body = yaml.safe_dump(mask(shown), sort_keys=False, width=160) if shown else ""
    return body.splitlines()[:60]


class DescribeArgs(GetArgs):
    pass


def describe(ctx: ToolContext, args: DescribeArgs) -> ToolResult:
    res = resource(args.kind)
    if res.namespaced and not args.namespace:
        raise ToolError(f"{res.kind} is namespaced: give namespace")
    _check_namespace(ctx, res, args.namespace)
    obj = mask(read_named(ctx, res, args.namespace, args.name))
    meta = obj.get("metadata") or {}
    now = datetime.now(UTC)
    owner_refs = ", ".join(f"{o.get('kind')}/{o.get('name')}" for o in meta.get("ownerReferences") or [])
    lines = [
        f"{res.kind} {meta.get('namespace') + '/' if meta.get('namespace') else ''}{meta.get('name')}"
        f"  created {meta.get('creationTimestamp')} ({age(meta.get('creationTimestamp'), now)} ago)",
        f"Labels: {', '.join(f'{k}={v}' for k, v in (meta.get('labels') or {}).items()) or 'none'}",
        "Annotations: "
        + (", ".join(f"{k}={str(v)[:120]}" for k, v in (meta.get("annotations") or {}).items()) or "none"),
    ]
    if owner_refs:
        lines.append(f"Controlled by: {owner_refs}")
    if res.kind == "ConfigMap":
        lines.append(f"Data keys: {', '.join(sorted(obj.get('data') or {})) or 'none'}")
    else:
        lines.extend(_details(res.kind, obj))
    conditions = (obj.get("status") or {}).get("conditions") or []
    if conditions:
        lines.append("Conditions:")
        lines.extend(
            f"  {c.get('type')}={c.get('status')} {c.get('reason') or ''}: {str(c.get('message') or '')[:200]}"
            for c in conditions
        )
    found = events_of(ctx, meta.get("namespace"), res.kind, meta.get("name"), 20)
    lines.append("Events:" if found else "Events: none")
    lines.extend("  " + event_line(e, now) for e in found)
    return ToolResult.ok("k8s_describe", "\n".join(lines))


# --- rollout history and logs --------------------------------------------------------------------


class RolloutArgs(Args):
    namespace: str = Field(max_length=63)
    deployment: str = Field(min_length=1, max_length=253, pattern=NAME)


def rollout_history(ctx: ToolContext, args: RolloutArgs) -> ToolResult:
    _check_namespace(ctx, resource("Deployment"), args.namespace)
    ns = args.namespace
    dep = read_named(ctx, resource("Deployment"), ns, args.deployment)
    all_rs = read(ctx, resource("ReplicaSet").path(ns), f"ReplicaSets in {ns}").get("items") or []
    mine = [rs for rs in all_rs if args.deployment in owners(rs, "Deployment")]
    if not mine:
        return ToolResult.empty("k8s_rollout_history", f"Deployment {ns}/{args.deployment} owns no ReplicaSets")

    def revision(rs: dict) -> int:
        raw = ((rs.get("metadata") or {}).get("annotations") or {}).get("deployment.kubernetes.io/revision", "0")
        return int(raw) if raw.isdigit() else 0

    current = ((dep.get("metadata") or {}).get("annotations") or {}).get("deployment.kubernetes.io/revision")
    lines = [f"Deployment {ns}/{args.deployment}: current revision {current or '(not annotated)'}"]
    for rs in sorted(mine, key=revision):
        meta, spec, status = rs.get("metadata") or {}, rs.get("spec") or {}, rs.get("status") or {}
        images = ", ".join(
            f"{c.get('name')}={c.get('image')}"
            for c in ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
        )
        cause = (meta.get("annotations") or {}).get("kubernetes.io/change-cause")
        lines.append(
            f"revision {revision(rs)}  {meta.get('name')}  created {meta.get('creationTimestamp')}  "
            f"replicas {status.get('replicas', 0)} ready {status.get('readyReplicas', 0)}  images {images}"
            + (f"  change-cause: {cause}" if cause else "")
        )
    return ToolResult.ok("k8s_rollout_history", "\n".join(lines))


class LogsArgs(Args):
    namespace: str = Field(max_length=63)
    pod: str = Field(min_length=1, max_length=253, pattern=NAME)
    container: str | None = Field(default=None, max_length=63, description="Required when the pod has several.")
    tail: int = Field(default=200, ge=1, le=5000, description="The last this many lines.")
    previous: bool = Field(default=False, description="The previous (crashed) container's logs.")


LOG_MAX_CHARS = 24_000


def pod_logs(ctx: ToolContext, args: LogsArgs) -> ToolResult:
    _check_namespace(ctx, resource("Pod"), args.namespace)
    which = f"pod {args.namespace}/{args.pod}" + (f" container {args.container}" if args.container else "")
    text = read(
        ctx,
        f"{resource('Pod').path(args.namespace, args.pod)}/log",
        f"logs of {which}" + (" (previous)" if args.previous else ""),
        {
            "tailLines": args.tail,
            "container": args.container,
            "previous": "true" if args.previous else None,
            "limitBytes": LOG_MAX_CHARS * 2,
        },
        raw=True,
    )
    if not text.strip():
        return ToolResult.empty(
            "k8s_pod_logs", f"{which} wrote no log lines" + (" before it restarted" if args.previous else "")
        )
    return ToolResult.ok("k8s_pod_logs", text.rstrip("\n"))


TOOLS = (
    Tool(
        "k8s_get",
        "One Kubernetes object as YAML (no managedFields; credential-looking values masked). Secrets are refused.",
        GetArgs,
        get,
        12_000,
    ),
    Tool(
        "k8s_list",
        "Objects of one kind, one line each with a kubectl-get-like status and age; optional label selector.",
        ListArgs,
        list_,
        12_000,
    ),
    Tool(
        "k8s_describe",
        "A compact kubectl-describe of one object: metadata, state, containers or replicas, conditions, Events.",
        DescribeArgs,
        describe,
        12_000,
    ),
    Tool(
        "k8s_events",
        "Kubernetes Events of a namespace (or all), optionally about one object, warnings only; oldest first.",
        EventsArgs,
        events,
        12_000,
    ),
    Tool(
        "k8s_rollout_history",
        "A Deployment's revisions: its ReplicaSets by revision with their images, replicas and change-cause.",
        RolloutArgs,
        rollout_history,
        8_000,
    ),
    Tool(
        "k8s_pod_logs",
        "The last lines of a pod's container log (or of its previous, crashed container).",
        LogsArgs,
        pod_logs,
        LOG_MAX_CHARS,
    ),
)
