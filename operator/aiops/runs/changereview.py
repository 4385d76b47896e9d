"""changeReview runs: a proposed Deployment or StatefulSet (a manifest, or a merge patch to the live object) ->
per object the fields it changes and what the checks of aiops.changes find, against the live object, its pods'
observed usage (Prometheus), its PodDisruptionBudgets, its past Incidents (history) and its SLO's burn rate.

Every source but the API server is optional: one that is missing or failing becomes a finding of severity none
that names it (the check did not run), never a failed run. A gate (aiops review, the Argo CD PreSync hook)
reads `status.result.risk` and each review's `override`.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_api_client.exceptions import PrometheusApiClientException
from requests.exceptions import RequestException

from aiops.api import ANALYSIS_RUN
from aiops.api.analysisrun import (
    AnalysisRunStatus,
    AnalysisType,
    ChangeReview,
    ChangeReviewInputs,
    ChangeRisk,
    ForecastTarget,
    ForecastTargetKind,
    ReviewKind,
    RunPhase,
)
from aiops.api.common import ConditionStatus
from aiops.api.conditions import ConditionType, Reason
from aiops.changes import Burn, PastChangeIncident, Usage, merge_patch, review
from aiops.clusters.access import ClusterAccess
from aiops.clusters.prometheus import PrometheusSource
from aiops.core import kube, metrics
from aiops.core.status import StatusBuilder, write
from aiops.forecast.resources import selector
from aiops.runs.common import Context, access_of, fail_run, start_attempt, still_ours
from aiops.stores import history
from aiops.stores.history import store

log = logging.getLogger(__name__)

MAX_OBJECTS = 20  # reviews per run (status.result.reviews)
PAST_LIMIT = 20
ORDER = list(ChangeRisk)  # none < low < medium < high
RISK_REASON = {ChangeRisk.HIGH: Reason.HIGH_RISK, ChangeRisk.MEDIUM: Reason.MEDIUM_RISK}
# Sloth's recording rule: the burn rate of each SLO's error budget now (1: spent exactly over the SLO's period).
BURN_METRIC = "slo:current_burn_rate:ratio"


class Unreviewable(Exception):
    """The change cannot be reviewed as given; the message names the field and what to do."""


def execute(ctx: Context, run: dict) -> None:
    """One attempt; every outcome ends in status, never in an exception."""
    meta = run["metadata"]
    found = access_of(ctx, run, "review")
    if found is None:
        return
    spec, access = found
    inputs = spec.inputs.change
    run = start_attempt(ctx, run, "reviewing the proposed change")
    began = time.monotonic()
    cluster = spec.cluster_ref.name if spec.cluster_ref else None
    try:
        proposed, skipped = proposed_objects(access, inputs, meta["namespace"])
        with ThreadPoolExecutor(4, thread_name_prefix="aiops-review") as pool:  # one per run, for all its objects
            reviews = [
                review_one(ctx, pool, access, inputs, obj, live, cluster) for obj, live in proposed[:MAX_OBJECTS]
            ]
    except Unreviewable as exc:
        fail_run(ctx, run, f"cannot review: {exc}")
        return
    except Exception as exc:  # noqa: BLE001  (a bug in one analysis must not take the operator down)
        log.exception("change review %s/%s crashed", meta["namespace"], meta["name"])
        fail_run(ctx, run, f"internal error: {type(exc).__name__}: {exc}")
        return
    skipped += [f"{k}/{n}: more than {MAX_OBJECTS} objects" for k, n in _names(proposed[MAX_OBJECTS:])]
    record(ctx, run, reviews, skipped, round(time.monotonic() - began, 3))


def _names(pairs: list[tuple[dict, dict | None]]) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for o, _ in pairs]


def proposed_objects(
    access: ClusterAccess, inputs: ChangeReviewInputs, namespace: str
) -> tuple[list[tuple[dict, dict | None]], list[str]]:
    """(proposed object, live object or None) for each object to review, and the manifest's others as skipped."""
    docs = inputs.documents()
    target = inputs.target
    if inputs.patch is not None:
        assert target is not None  # the spec's validator requires it with a patch
        ns = target.namespace or namespace
        live = read_live(access.api, target.kind, ns, target.name)
        if live is None:
            raise Unreviewable(
                f"inputs.change.target: {target.kind} {ns}/{target.name} does not exist; a patch needs the live object "
                "(give the whole object as inputs.change.manifest to review a new one)"
            )
        return [(merge_patch(live, docs[0]), live)], []
    reviewable, skipped = [], []
    for obj in docs:
        obj.setdefault("metadata", {}).setdefault("namespace", (target.namespace if target else None) or namespace)
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] not in list(ReviewKind) or str(obj.get("apiVersion", "apps/v1")) != "apps/v1":
            skipped.append(f"{name}: not a kind the review covers (apps/v1 Deployment, StatefulSet)")
        elif target and (obj["kind"], obj["metadata"]["name"]) != (target.kind, target.name):
            skipped.append(f"{name}: not inputs.change.target")
        else:
            reviewable.append(obj)
    if not reviewable:
        found = ", ".join(s.split(":")[0] for s in skipped[:10])
        raise Unreviewable(
            "inputs.change.manifest holds no apps/v1 Deployment or StatefulSet to review"
            + (f" named by inputs.change.target ({target.kind}/{target.name})" if target else "")
            + f" (found {found})"
        )
    return [(o, read_live(access.api, o["kind"], o["metadata"]["namespace"], o["metadata"]["name"])) for o in
            reviewable], skipped  # fmt: skip


def read_live(api: client.ApiClient, kind: str, namespace: str, name: str) -> dict | None:
    apps = client.AppsV1Api(api)
    read = apps.read_namespaced_deployment if kind == ReviewKind.DEPLOYMENT else apps.read_namespaced_stateful_set
    try:
        return api.sanitize_for_serialization(read(name, namespace, _request_timeout=10))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise Unreviewable(f"{kind} {namespace}/{name} could not be read: {exc.status} {exc.reason}") from None


def review_one(
    ctx: Context,
    pool: ThreadPoolExecutor,
    access: ClusterAccess,
    inputs: ChangeReviewInputs,
    obj: dict,
    live: dict | None,
    cluster: str | None,
) -> ChangeReview:
    """The sources are read at once on `pool` (each is a network round trip or a few), then reviewed."""
    meta = obj["metadata"]
    ns, name = meta["namespace"], meta["name"]
    pdbs = pool.submit(disruption_budgets, access.api, ns)
    usage = pool.submit(observed_usage, access.prometheus, obj["kind"], ns, name, inputs.usage_days)
    past = pool.submit(past_incidents, obj["kind"], ns, name, cluster, ctx, inputs.history_days)
    burns = pool.submit(slo_burns, access.prometheus, name)
    (used, usage_gap), (before, history_gap), (burning, slo_gap) = usage.result(), past.result(), burns.result()
    budgets = pdbs.result()
    try:
        return review(
            obj, live, usage=used, pdbs=budgets, past=before, burns=burning,
            usage_gap=usage_gap, history_gap=history_gap, slo_gap=slo_gap,
        )  # fmt: skip
    except ValueError as exc:  # what the API server would refuse too, named by its field
        raise Unreviewable(f"{obj['kind']}/{ns}/{name}: {exc}") from None


def disruption_budgets(api: client.ApiClient, namespace: str) -> list[dict]:
    """The namespace's PodDisruptionBudgets as the API returns them; policy/v1, or v1beta1 on servers before 1.21."""
    for version in ("v1", "v1beta1"):
        try:
            path = f"/apis/policy/{version}/namespaces/{namespace}/poddisruptionbudgets"
            found = json.loads(kube.request(api, "GET", path))
            return found.get("items") or []
        except ApiException as exc:
            if exc.status == 404 and version == "v1":
                continue
            raise Unreviewable(
                f"PodDisruptionBudgets in {namespace} could not be listed: {exc.status} {exc.reason} (the operator's "
                "role needs list on poddisruptionbudgets.policy)"
            ) from None
    return []


def _query(prometheus: PrometheusSource, promql: str) -> list[dict[str, Any]]:
    return prometheus.connect().custom_query(promql)


def observed_usage(
    prometheus: PrometheusSource | None, kind: str, namespace: str, name: str, days: float
) -> tuple[dict[str, Usage] | None, str | None]:
    """Per container, the p95 and peak of CPU (cores) and memory (working-set bytes) over `days`, the most any
    one pod used; (None, why) when Prometheus is missing or failing."""
    if prometheus is None:
        return None, "no Prometheus is configured (AIOPS_PROMETHEUS_URL or the ManagedCluster's endpoints.prometheus)"
    pods = ForecastTargetKind.DEPLOYMENT if kind == ReviewKind.DEPLOYMENT else ForecastTargetKind.STATEFULSET
    match = selector(ForecastTarget(kind=pods, name=name, namespace=namespace), namespace)
    containers = f'{match},container!="",container!="POD"'
    series = {
        "cpu": f"max by (container) (rate(container_cpu_usage_seconds_total{{{containers}}}[5m]))",
        "memory": f"max by (container) (container_memory_working_set_bytes{{{containers}}})",
    }
    window = f"{max(int(days * 86400), 300)}s"
    values: dict[str, dict[str, float]] = {}
    queries = []
    for resource, expr in series.items():
        for stat, fn in (("p95", "quantile_over_time(0.95, "), ("peak", "max_over_time(")):
            promql = f"{fn}({expr})[{window}:1m])"
            queries.append(promql)
            try:
                for s in _query(prometheus, promql):
                    values.setdefault(s["metric"].get("container", ""), {})[f"{resource}_{stat}"] = float(s["value"][1])
            except (PrometheusApiClientException, RequestException, ValueError) as exc:
                return None, f"Prometheus {prometheus.url} failed: {type(exc).__name__}: {exc}"[:512]
    if not values:
        return None, f"Prometheus holds no usage of {kind} {namespace}/{name}'s pods in the last {days:g} days"
    cited = " ; ".join(queries[::2])  # the p95 queries; the peaks differ only in the function
    stats = ("cpu_p95", "cpu_peak", "memory_p95", "memory_peak")  # a container may lack some (no samples)
    return {c: Usage(**{k: v.get(k) for k in stats}, query=cited) for c, v in values.items() if c}, None


def past_incidents(
    kind: str, namespace: str, name: str, cluster: str | None, ctx: Context, days: float
) -> tuple[list[PastChangeIncident] | None, str | None]:
    since = ctx.now() - timedelta(days=days)
    try:
        found = history.call(store.on_target, kind, namespace, name, cluster, since, PAST_LIMIT)
    except history.HistoryOff as exc:
        return None, f"history is off ({exc})"
    except Exception as exc:  # noqa: BLE001  (PostgreSQL away: the check did not run, the review goes on)
        return None, f"history could not be read: {type(exc).__name__}: {exc}"[:512]
    return [PastChangeIncident(p.key, p.created_at, p.title, p.failure_modes, p.root_cause) for p in found], None


def slo_burns(prometheus: PrometheusSource | None, name: str) -> tuple[list[Burn] | None, str | None]:
    """The burn rates of the workload's SLOs, from Sloth's recording rules (sloth_service = the workload's name)."""
    if prometheus is None:
        return None, "no Prometheus is configured: the SLO's error budget was not read"
    promql = f'{BURN_METRIC}{{sloth_service="{name}"}}'
    try:
        found = _query(prometheus, promql)
    except (PrometheusApiClientException, RequestException, ValueError) as exc:
        return None, f"Prometheus {prometheus.url} failed: {type(exc).__name__}: {exc}"[:512]
    if not found:
        return None, f"no SLO recording rules for {name} ({promql} is empty): its error budget was not checked"
    return [Burn(s["metric"].get("sloth_slo", "?"), float(s["value"][1]), promql) for s in found], None


def overall(reviews: list[ChangeReview]) -> ChangeRisk:
    return ChangeRisk(max((r.risk for r in reviews), key=ORDER.index, default=ChangeRisk.NONE))


def record(ctx: Context, run: dict, reviews: list[ChangeReview], skipped: list[str], duration_s: float) -> None:
    if not still_ours(ctx, run):
        return
    b: StatusBuilder[AnalysisRunStatus] = ctx.builder(ANALYSIS_RUN, run)
    risk = overall(reviews)
    lines = [f"{r.object}: {r.risk} risk" + (f", overridden ({r.override})" if r.override else "") + f". "
             f"{r.recommendation}" for r in reviews]  # fmt: skip
    summary = " ".join(lines)
    b.status.completed_at = b.now
    b.status.duration_seconds = duration_s
    b.status.result = {
        "summary": summary[:8192], "risk": str(risk), "reviews": [r.wire() for r in reviews], "skipped": skipped[:100]
    }  # fmt: skip
    risky = [r for r in reviews if ORDER.index(r.risk) >= ORDER.index(ChangeRisk.MEDIUM)]
    if risky and all(r.override for r in risky):
        b.condition(ConditionType.CHANGE_RISK, ConditionStatus.TRUE, Reason.OVERRIDDEN, summary[:1024], event="Normal")
    elif risky:
        b.condition(ConditionType.CHANGE_RISK, ConditionStatus.TRUE, RISK_REASON[risk], summary[:1024],
                    event="Warning")  # fmt: skip
    else:
        b.condition(ConditionType.CHANGE_RISK, ConditionStatus.FALSE, Reason.LOW_RISK, summary[:1024], event="Normal")
    b.phase(RunPhase.SUCCEEDED, f"{len(reviews)} object(s) reviewed in {duration_s:.1f}s: {risk} risk", event="Normal")
    write(ctx.client, b, run)
    metrics.ANALYSIS_SECONDS.labels(AnalysisType.CHANGE_REVIEW.value, "completed").observe(duration_s)
