"""The checks of a change review, as plain functions of the parsed proposed object and what the executor read
(usage, disruption budgets, past Incidents, SLO burn). Each returns Found: what it found, with the numbers,
and what to do about it (the review's recommendation quotes the most severe).

Thresholds, and why:
- memory limit below the observed peak: high (the kernel OOM-kills the container at that load again); the
  advice adds MEMORY_HEADROOM over the peak, which is only the peak of the usage window.
- memory request below p95: medium (pods land on nodes that cannot hold them, evicted first under pressure).
- CPU limit below p95: medium (throttled most of the time: latency, not failure).
- CPU request below CPU_REQUEST_LOW x p95: low; below CPU_REQUEST_MEDIUM x p95: medium (CPU is compressible;
  a pod using 4x what it reserved starves its neighbours and itself on a busy node).
- a request over WASTE_RATIO x the peak, by more than WASTE_FLOOR: none (capacity reserved and never used).
- a disruption budget that allows no eviction: medium whatever the replica count (drains hang, nothing running
  breaks); one replica and no budget: low (any eviction is an outage); scaling a running workload to 0: high
  (an outage unless intended: the override annotation says so).
- past Incidents on the workload whose top failure modes relate (RELATED) to what the change touches: one
  medium, two or more high.
- SLO burn rate over 1: medium; over FAST_BURN (the Google SRE workbook's fast-burn page, 2% of a 30-day
  budget in an hour): high.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiops.api.analysisrun import ChangeCategory, ChangeRisk, FieldChange
from aiops.changes.workload import Container, Workload, at_least, show

MEMORY_HEADROOM = 1.2
CPU_REQUEST_LOW, CPU_REQUEST_MEDIUM = 0.5, 0.25
WASTE_RATIO = 3.0
WASTE_FLOOR = {"cpu": 0.25, "memory": 256 * 2**20}  # cores, bytes: smaller waste is not worth a line
FAST_BURN = 14.4
TOP_MODES = 3  # failure modes of a past Incident that count: its best suspects
MAX_EVIDENCE = 8  # ChangeFinding.evidence

# What a change touches -> the failure modes of past Incidents it may bring back (the analyzers' names).
RELATED: dict[ChangeCategory, frozenset[str]] = {
    ChangeCategory.RESOURCES: frozenset(
        {"OOMKilled", "MemoryGrowth", "CPUThrottling", "Evicted", "Unschedulable", "InsufficientCPU",
         "InsufficientMemory", "InsufficientResource", "QuotaExceeded", "QuotaRequiresLimits", "GPUOutOfMemory"}
    ),
    ChangeCategory.IMAGE: frozenset(
        {"CrashLoopBackOff", "ImagePullError", "ImagePullAuthError", "ImageNotFound", "InvalidImageName",
         "RegistryUnreachable"}
    ),
    ChangeCategory.PROBES: frozenset(
        {"LivenessProbeFailing", "ReadinessProbeFailing", "StartupProbeFailing", "ContainerNotReady"}
    ),
    ChangeCategory.ENV: frozenset({"MissingConfigMap", "MissingSecret", "MissingConfigKey", "CrashLoopBackOff"}),
    ChangeCategory.REPLICAS: frozenset(
        {"HPAAtMaxReplicas", "Unschedulable", "InsufficientCPU", "InsufficientMemory", "QuotaExceeded"}
    ),
    ChangeCategory.OTHER: frozenset(),
}  # fmt: skip
# Any change to the pod template rolls the pods out again.
ROLLOUT_MODES = frozenset({"RecentRollout"})


@dataclass(frozen=True)
class Usage:
    """Observed over inputs.usageDays for one container, max over the workload's pods."""

    cpu_p95: float | None  # cores
    cpu_peak: float | None
    memory_p95: float | None  # bytes (working set)
    memory_peak: float | None
    query: str = ""  # the PromQL that produced it, cited as evidence


@dataclass(frozen=True)
class PastChangeIncident:
    """A past Incident on the same workload (from the history store)."""

    key: str  # namespace/name
    created_at: datetime
    title: str
    failure_modes: list[str]  # of its diagnosis' suspects, best first
    root_cause: str | None


@dataclass(frozen=True)
class Burn:
    """An SLO's current error-budget burn rate for the workload (Sloth's slo:current_burn_rate:ratio)."""

    slo: str  # the sloth_slo label
    rate: float  # 1.0: spending the budget exactly over the SLO period
    query: str


@dataclass(frozen=True)
class Found:
    check: str  # changes, resources, usage, probes, disruption, history or slo
    severity: ChangeRisk
    what: str  # what was found, with its numbers
    do: str = ""  # what to do about it, a sentence; empty for information
    path: str | None = None
    evidence: tuple[str, ...] = ()


def image_tags(w: Workload) -> list[Found]:
    """Images without a version: `:latest` or no tag, unless pinned by digest."""
    out = []
    for c in w.containers:
        repo = c.image.split("@", 1)[0]
        last = repo.rsplit("/", 1)[-1]
        tag = last.split(":", 1)[1] if ":" in last else None
        if "@" not in c.image and tag in (None, "latest"):
            out.append(
                Found(
                    "changes",
                    ChangeRisk.MEDIUM,
                    f"Container {c.name} runs image {c.image!r}, "
                    + ("the mutable tag latest" if tag else "with no tag (latest)"),
                    f"Pin container {c.name}'s image to a version tag or a digest: with latest, nodes run whatever "
                    "was pushed last and a rollback cannot bring the old code back.",
                    f"{c.path}.image",
                )
            )
    return out


def limits_and_probes(w: Workload, usage: dict[str, Usage] | None) -> list[Found]:
    """No memory limit, no requests at all (every container); no readiness or liveness probe (not init ones)."""
    out = []
    for c in w.containers:
        if "memory" not in c.limits:
            peak = _finite(usage[c.name].memory_peak) if usage and c.name in usage else None
            hint = (
                f" of at least {at_least('memory', peak * MEMORY_HEADROOM)} (observed peak {show('memory', peak)})"
                if peak
                else ""
            )
            out.append(
                Found(
                    "resources",
                    ChangeRisk.MEDIUM,
                    f"Container {c.name} has no memory limit",
                    f"Set a memory limit{hint} on container {c.name}: without one, a leak in it "
                    "takes memory from every pod on its node.",
                    f"{c.path}.resources.limits.memory",
                )
            )
        if not any(c.request(r) is not None for r in ("cpu", "memory")):
            out.append(
                Found(
                    "resources",
                    ChangeRisk.LOW,
                    f"Container {c.name} requests no CPU or memory",
                    f"Set CPU and memory requests on container {c.name}, so the scheduler reserves room for it "
                    "and the kubelet does not evict it first.",
                    f"{c.path}.resources.requests",
                )
            )
        if c.init:
            continue  # init containers run to completion: probes do not apply
        if "readinessProbe" not in c.probes:
            out.append(
                Found(
                    "probes",
                    ChangeRisk.MEDIUM,
                    f"Container {c.name} has no readinessProbe",
                    f"Add a readinessProbe to container {c.name}: without one, Services send traffic to pods "
                    "before they can serve, and a rollout of broken pods carries on.",
                    f"{c.path}.readinessProbe",
                )
            )
        if "livenessProbe" not in c.probes:
            out.append(
                Found(
                    "probes",
                    ChangeRisk.LOW,
                    f"Container {c.name} has no livenessProbe",
                    f"Add a livenessProbe to container {c.name}, so a hung process is restarted.",
                    f"{c.path}.livenessProbe",
                )
            )
    return out


def usage_fit(w: Workload, usage: dict[str, Usage], before: dict[str, str | None]) -> list[Found]:
    """Requests and limits against observed usage. `before`: the live value of each changed resources path
    (None: was not set), so a message says what the change lowered."""
    out = []
    for c in w.containers:
        if c.init:
            continue  # they run briefly, before the rest: their usage is not in the window's p95
        u = usage.get(c.name)
        if u is None:
            out.append(
                Found(
                    "usage",
                    ChangeRisk.NONE,
                    f"No usage observed for container {c.name} (new, or no samples): its resources are not "
                    "checked against usage",
                    path=c.path,
                )
            )
            continue
        out += _fit(c, u, before)
    return out


def _fit(c: Container, u: Usage, before: dict[str, str | None]) -> list[Found]:
    mem_p95, mem_peak, cpu_p95, cpu_peak = map(_finite, (u.memory_p95, u.memory_peak, u.cpu_p95, u.cpu_peak))
    observed = ", ".join(
        f"{label} {show(r, v)}"
        for label, r, v in (
            ("memory p95", "memory", mem_p95),
            ("memory peak", "memory", mem_peak),
            ("CPU p95", "cpu", cpu_p95),
            ("CPU peak", "cpu", cpu_peak),
        )
        if v is not None
    )
    evidence = (f"{u.query} -> {observed}" if u.query else observed,)
    out = []

    def field(kind: str, r: str) -> tuple[str, str]:
        """The path of a request or limit and its value as the message shows it (what it was, if changed)."""
        amount = c.limits[r] if kind == "limits" else c.request(r)
        path = f"{c.path}.resources.{'requests' if kind == 'requests' and r in c.requests else 'limits'}.{r}"
        was = f" (was {before[path] or 'unset'})" if path in before else ""
        return path, f"{show(r, amount)}{was}"

    name = c.name
    mem_limit, mem_request = c.limits.get("memory"), c.request("memory")
    cpu_limit, cpu_request = c.limits.get("cpu"), c.request("cpu")
    if mem_limit is not None and mem_peak is not None and mem_limit < mem_peak:
        path, now = field("limits", "memory")
        what = (
            f"Memory limit {now} of container {name} is below its observed peak working set {show('memory', mem_peak)}"
        )
        do = (
            f"Raise the memory limit of container {name} to at least {at_least('memory', mem_peak * MEMORY_HEADROOM)}"
            f" (observed peak {show('memory', mem_peak)}) before shipping, or expect OOM kills at peak load."
        )
        out.append(Found("usage", ChangeRisk.HIGH, what, do, path, evidence))
    if mem_request is not None and mem_p95 is not None and mem_request < mem_p95:
        path, now = field("requests", "memory")
        what = (
            f"Memory request {now} of container {name} is below its observed p95 working set {show('memory', mem_p95)}"
        )
        do = (
            f"Raise the memory request of container {name} to at least {at_least('memory', mem_p95)} (observed p95): "
            "below it, pods land on nodes that cannot hold them and are evicted first under memory pressure."
        )
        out.append(Found("usage", ChangeRisk.MEDIUM, what, do, path, evidence))
    if cpu_limit is not None and cpu_p95 is not None and cpu_limit < cpu_p95:
        path, now = field("limits", "cpu")
        what = f"CPU limit {now} of container {name} is below its observed p95 CPU use {show('cpu', cpu_p95)}"
        do = (
            f"Raise the CPU limit of container {name} to at least {at_least('cpu', cpu_peak or cpu_p95)} (observed "
            f"{'peak' if cpu_peak else 'p95'}), or remove it: it would be throttled most of the time."
        )
        out.append(Found("usage", ChangeRisk.MEDIUM, what, do, path, evidence))
    if cpu_request is not None and cpu_p95 is not None and cpu_request < CPU_REQUEST_LOW * cpu_p95:
        path, now = field("requests", "cpu")
        share = cpu_request / cpu_p95
        what = (
            f"CPU request {now} of container {name} is {share:.0%} of its observed p95 CPU use {show('cpu', cpu_p95)}"
        )
        do = (
            f"Raise the CPU request of container {name} to about {at_least('cpu', cpu_p95)} (observed p95): it "
            "competes for CPU with its neighbours on a busy node."
        )
        severity = ChangeRisk.MEDIUM if cpu_request < CPU_REQUEST_MEDIUM * cpu_p95 else ChangeRisk.LOW
        out.append(Found("usage", severity, what, do, path, evidence))
    for r, request, peak in (("memory", mem_request, mem_peak), ("cpu", cpu_request, cpu_peak)):
        if (
            request is not None
            and peak is not None
            and request > WASTE_RATIO * peak
            and request - peak > WASTE_FLOOR[r]
        ):
            path, now = field("requests", r)
            what = (
                f"{'Memory' if r == 'memory' else 'CPU'} request {now} of container {name} is over {WASTE_RATIO:g}x "
                f"its observed peak {show(r, peak)}: reserved and never used"
            )
            do = f"Lower it towards {at_least(r, peak * MEMORY_HEADROOM)} to free capacity."
            out.append(Found("usage", ChangeRisk.NONE, what, do, path, evidence))
    return out


def disruption(w: Workload, replicas: int, live_replicas: int | None, pdbs: list[dict]) -> list[Found]:
    """The disruption budgets selecting the pods against the replicas; scaling to 0."""
    if replicas == 0:
        if live_replicas:
            return [
                Found(
                    "disruption",
                    ChangeRisk.HIGH,
                    f"The change scales {w.kind or 'the workload'} {w.name} from {live_replicas} replicas to 0: "
                    "every pod stops",
                    f"Keep spec.replicas at {live_replicas}, or, if stopping it is intended, say why in the "
                    "aiops.dev/change-review-override annotation.",
                    "spec.replicas",
                )
            ]
        return [Found("disruption", ChangeRisk.NONE, f"{w.name} runs no replicas", path="spec.replicas")]
    budgets = [p for p in pdbs if isinstance(p, dict) and _selects(p, w)]
    if not budgets:
        if replicas > 1:
            return []
        return [
            Found(
                "disruption",
                ChangeRisk.LOW,
                f"{w.name} runs 1 replica and no PodDisruptionBudget selects its pods: any node drain or eviction "
                "is an outage",
                "Run at least 2 replicas with a PodDisruptionBudget of maxUnavailable: 1 if it must stay up through "
                "node maintenance.",
                "spec.replicas",
            )
        ]
    names = [_name(p) for p in budgets]
    out = []
    if len(budgets) > 1:
        out.append(
            Found(
                "disruption",
                ChangeRisk.MEDIUM,
                f"{len(budgets)} PodDisruptionBudgets select the pods of {w.name} ({', '.join(names)}): the eviction "
                "API refuses to evict a pod covered by more than one, so node drains hang",
                "Keep one PodDisruptionBudget for these pods: delete or narrow the others.",
                evidence=tuple(f"PodDisruptionBudget {n}" for n in names[:MAX_EVIDENCE]),
            )
        )
    for p, name in zip(budgets, names, strict=True):
        spec = p.get("spec") or {}
        rule, allowed = _allowed(spec, replicas)
        if allowed is not None and allowed <= 0:
            out.append(
                Found(
                    "disruption",
                    ChangeRisk.MEDIUM,
                    f"PodDisruptionBudget {name} ({rule}) allows no voluntary eviction of {w.name}'s {replicas} "
                    f"replica{'s' if replicas != 1 else ''}: node drains and cluster upgrades hang on its pods",
                    f"Set maxUnavailable: 1 on PodDisruptionBudget {name}"
                    + (
                        " and run 2 or more replicas." if replicas < 2 else " (or run more replicas than minAvailable)."
                    ),
                    "spec.replicas",
                    (f"PodDisruptionBudget {name}: {rule}, selector {json.dumps(spec.get('selector'))}",),
                )
            )
    return out


def _name(pdb: dict) -> str:
    meta = pdb.get("metadata") or {}
    return "/".join(str(p) for p in (meta.get("namespace"), meta.get("name")) if p)


def _selects(pdb: dict, w: Workload) -> bool:
    """policy/v1: a null selector selects nothing, an empty one every pod of the namespace."""
    namespace = (pdb.get("metadata") or {}).get("namespace")
    if namespace and w.namespace and namespace != w.namespace:
        return False
    selector = (pdb.get("spec") or {}).get("selector")
    return isinstance(selector, dict) and matches(selector, w.pod_labels)


def matches(selector: dict, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels and matchExpressions: In, NotIn, Exists, DoesNotExist) on labels."""
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, dict) or any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for e in selector.get("matchExpressions") or []:
        if not isinstance(e, dict):
            return False
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(op, False)  # an operator the API server would refuse matches nothing
        if not ok:
            return False
    return True


def _allowed(spec: dict, replicas: int) -> tuple[str, int | None]:
    """The rule and the evictions it allows of `replicas` healthy pods; percentages round up, as the
    disruption controller rounds them."""
    for field in ("maxUnavailable", "minAvailable"):
        value = spec.get(field)
        n = _scaled(value, replicas)
        if n is not None:
            return f"{field} {value}", n if field == "maxUnavailable" else replicas - n
    return "", None


def _scaled(value: Any, replicas: int) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return math.ceil(int(value[:-1]) * replicas / 100)
    return None


def history(changed: list[FieldChange], past: list[PastChangeIncident]) -> list[Found]:
    """Past Incidents on the workload whose best failure modes relate to what the change touches."""
    touched = {c.category for c in changed}
    rollout = any(c.path.startswith("spec.template.") for c in changed)
    related: list[tuple[PastChangeIncident, list[str]]] = []
    for inc in past:
        why = []
        for mode in inc.failure_modes[:TOP_MODES]:
            why += [f"{mode} ({cat} changed)" for cat in sorted(touched) if mode in RELATED[ChangeCategory(cat)]]
            if rollout and mode in ROLLOUT_MODES:
                why.append(f"{mode} (the pod template changed)")
        if why:
            related.append((inc, why))
    if not related:
        return []
    related.sort(key=lambda r: r[0].created_at, reverse=True)
    listed = "; ".join(f"{inc.key} on {inc.created_at:%Y-%m-%d}: {', '.join(why)}" for inc, why in related)
    return [
        Found(
            "history",
            ChangeRisk.HIGH if len(related) > 1 else ChangeRisk.MEDIUM,
            f"{len(related)} past Incident{'s' if len(related) > 1 else ''} of this workload failed in ways this "
            f"kind of change can bring back: {listed}",
            "Read what those Incidents found and make sure this change does not repeat it before shipping.",
            evidence=tuple(
                f"Incident {inc.key} {inc.created_at:%Y-%m-%d %H:%M}: {inc.title}; failure modes "
                f"{', '.join(inc.failure_modes[:TOP_MODES])}"
                + (f"; root cause: {inc.root_cause}" if inc.root_cause else "")
                for inc, _ in related[:MAX_EVIDENCE]
            ),
        )
    ]


def slo(burns: list[Burn]) -> list[Found]:
    """The error budget burn of the workload's SLOs now."""
    if not burns:
        return [
            Found(
                "slo",
                ChangeRisk.NONE,
                "No SLO burn rate (slo:current_burn_rate:ratio) is recorded for this workload: its error budget "
                "is not checked",
            )
        ]
    out = []
    for b in burns:
        evidence = (f"{b.query} = {b.rate:.4g}",)
        if not math.isfinite(b.rate):
            out.append(Found("slo", ChangeRisk.NONE, f"SLO {b.slo} has no current burn rate", evidence=evidence))
        elif b.rate > FAST_BURN:
            out.append(
                Found(
                    "slo",
                    ChangeRisk.HIGH,
                    f"SLO {b.slo} burns its error budget {b.rate:.3g}x as fast as it can last (fast-burn page "
                    f"threshold {FAST_BURN:g}x)",
                    f"Hold this change until SLO {b.slo} recovers, unless the change is its fix.",
                    evidence=evidence,
                )
            )
        elif b.rate > 1:
            out.append(
                Found(
                    "slo",
                    ChangeRisk.MEDIUM,
                    f"SLO {b.slo} burns its error budget {b.rate:.3g}x as fast as it can last",
                    f"Ship when SLO {b.slo}'s burn rate is back under 1, or roll out gradually and watch it: the "
                    "budget for a bad rollout is already being spent.",
                    evidence=evidence,
                )
            )
        else:
            out.append(
                Found("slo", ChangeRisk.NONE, f"SLO {b.slo} burns at {b.rate:.3g}x: within budget", evidence=evidence)
            )
    return out


def _finite(x: float | None) -> float | None:
    return x if isinstance(x, int | float) and math.isfinite(x) and x >= 0 else None
