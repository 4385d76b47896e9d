"""Guard metrics: numbers read before an SOP action's change and after it; worse after it means undo.

Built in, for a change to a Deployment:
- `restarts` (pod status, always): its containers that restarted within the last RECENT_S (their last
  termination ended then) or wait in CrashLoopBackOff;
- with Prometheus, over its pods: `error-ratio` (HTTP 5xx share) and `latency-p99`, the metric collector's
  expressions.
A step's `verify.guards` add PromQL guards, or change a built-in one by taking its name. A guard that reads
nothing (no series, Prometheus down, a Node has no pods of its own) is not measured, said so, and cannot veto.
Worse means after > before x (1 + tolerance) + margin.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_api_client.exceptions import PrometheusApiClientException
from requests.exceptions import RequestException

from aiops.api.incident import Change, GuardReading
from aiops.api.sop import Verification
from aiops.clusters.prometheus import PrometheusSource
from aiops.core.kube import request
from aiops.diagnosis.collectors import pod_matcher
from aiops.diagnosis.collectors.prometheus import TEMPLATES
from aiops.diagnosis.evidence import EvidenceBundle, Target
from aiops.sops.remediation import checks

RECENT_S = 600
POD_STATUS = "pod status"


@dataclass(frozen=True)
class GuardSpec:
    name: str
    promql: str | None  # None: read from pod status
    tolerance: float
    margin: float
    over_pods: bool = False  # a collector template: {sel} stands for the pods' label matchers


BUILT_IN = (GuardSpec("restarts", None, 0, 0),)
BUILT_IN_PROMETHEUS = (
    GuardSpec("error-ratio", TEMPLATES["error_rate"], 0.1, 0.01, over_pods=True),
    GuardSpec("latency-p99", TEMPLATES["latency_p99"], 0.2, 0.05, over_pods=True),
)


def specs(verify: Verification, prometheus: bool) -> list[GuardSpec]:
    """The guards of a step: the built-in ones (by name, unless the step declares its own), then the step's."""
    declared = [GuardSpec(g.name, g.promql, g.tolerance, g.margin) for g in verify.guards]
    names = {g.name for g in declared}
    built_in = [*BUILT_IN, *(BUILT_IN_PROMETHEUS if prometheus else ())]
    return [g for g in built_in if g.name not in names] + declared


def _pods(api: client.ApiClient, change: Change) -> list[dict] | None:
    """The pods of the changed Deployment (by its selector's matchLabels); None for other kinds."""
    if not change.target.startswith("Deployment/"):
        return None
    namespace = change.target.split("/")[1]
    deployment = json.loads(request(api, "GET", change.path.removesuffix("/scale")))
    labels = (deployment["spec"].get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    listing = request(api, "GET", f"/api/v1/namespaces/{namespace}/pods", query={"labelSelector": selector})
    return json.loads(listing)["items"]


def restarting(pods: list[dict], now: datetime) -> int:
    """Containers that restarted within RECENT_S, or wait in CrashLoopBackOff now."""
    since = now - timedelta(seconds=RECENT_S)
    count = 0
    for pod in pods:
        status = pod.get("status") or {}
        for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
            waiting = ((cs.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
            ended = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
            count += waiting or bool(ended and datetime.fromisoformat(ended) >= since)
    return count


def _promql(source: PrometheusSource, expr: str) -> tuple[float | None, str]:
    try:
        result = source.connect(timeout=10).custom_query(expr)
    except (PrometheusApiClientException, RequestException, ValueError) as exc:
        return None, f"not measured: Prometheus query failed: {type(exc).__name__}: {str(exc)[:200]}"
    if not result:
        return None, "not measured: no series"
    value = float(result[0]["value"][1])
    return (None, "not measured: NaN") if math.isnan(value) else (value, "PromQL")


def read(
    api: client.ApiClient,
    prometheus: PrometheusSource | None,
    change: Change,
    guards: list[GuardSpec],
    variables: dict[str, str],
    now: datetime,
) -> dict[str, tuple[float | None, str]]:
    """Each guard's value now and where it came from (or why there is none)."""
    try:
        pods = _pods(api, change)
    except ApiException as exc:
        pods, no_pods = None, f"not measured: cannot read the pods: HTTP {exc.status} {exc.reason}"
    else:
        no_pods = "not measured: the changed object has no pods of its own"
    out: dict[str, tuple[float | None, str]] = {}
    for g in guards:
        if g.promql is None:
            out[g.name] = (float(restarting(pods, now)), POD_STATUS) if pods is not None else (None, no_pods)
        elif prometheus is None:
            out[g.name] = (None, "not measured: no Prometheus endpoint is configured")
        elif g.over_pods:
            out[g.name] = _promql(prometheus, g.promql.format(sel=selector(change, pods))) if pods else (None, no_pods)
        else:
            try:
                out[g.name] = _promql(prometheus, checks.substitute(g.promql, variables))
            except checks.CheckError as exc:
                out[g.name] = (None, f"not measured: {exc}")
    return out


def selector(change: Change, pods: list[dict] | None) -> str:
    """PromQL label matchers for the changed object's pods, as the metric collector writes them."""
    kind, _, rest = change.target.partition("/")
    namespace, _, name = rest.partition("/")
    bundle = EvidenceBundle(Target(kind, name, namespace), datetime.min, datetime.min)
    bundle.pods = pods or []
    return pod_matcher(bundle)


def worse(spec: GuardSpec, reading: GuardReading) -> bool:
    if reading.before is None or reading.after is None:
        return False
    return reading.after > reading.before * (1 + spec.tolerance) + spec.margin


def describe(readings: list[GuardReading]) -> str:
    """restarts 0 -> 2, error-ratio not measured (no series), ..."""
    parts = []
    for r in readings:
        if r.before is None or r.after is None:
            parts.append(f"{r.name} {r.note or 'not measured'}")
        else:
            parts.append(f"{r.name} {r.before:g} -> {r.after:g}")
    return ", ".join(parts) or "no guards"
