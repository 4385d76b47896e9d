"""aiops.anomaly.scan: due queries, the watermark, targets, deduplication against open Incidents and firing
alerts, one Incident per target, and the model's explanation (a scripted OpenAI-compatible server)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from aiops.anomaly import scan
from aiops.anomaly.detect import Anomaly
from aiops.anomaly.run import AnomalyOutcome, QueryResult
from aiops.api import INCIDENT
from aiops.api.managedcluster import AnomalyScan, AnomalyScanStatus, ManagedClusterSpec
from aiops.clusters.access import ClusterAccess
from aiops.clusters.prometheus import PrometheusSource
from aiops.diagnosis.evidence import Target
from aiops.inference.gateway import GatewayConfig
from support.fakekube import FakeClient
from support.scripted_openai import ScriptedOpenAI, answer, status

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T = NOW.timestamp()
CHECKOUT = 'latency{namespace="shop",deployment="checkout"}'
CART_POD = 'latency{namespace="shop",pod="cart-7d9f-x2kqz"}'
LABELS = {
    CHECKOUT: {"__name__": "latency", "namespace": "shop", "deployment": "checkout"},
    CART_POD: {"__name__": "latency", "namespace": "shop", "pod": "cart-7d9f-x2kqz"},
    "up": {"__name__": "up"},
}


def anomaly(series: str, start: float, score: float = 0.97) -> Anomaly:
    return Anomaly(series, start, start + 120, start + 60, score, "change_point", f"{series}: rose at {start:.0f}", 3)


class Prometheus:
    """run_queries as the scan calls it, answering from a script: {query: [anomalies]} or an error."""

    def __init__(self, answers: dict[str, list[Anomaly] | str]):
        self.answers, self.calls = answers, []

    def __call__(self, source, queries, start, end):
        (query,) = queries
        self.calls.append((query, start, end))
        outcome = AnomalyOutcome(start=start, end=end, step="15s")
        found = self.answers[query]
        if isinstance(found, str):
            outcome.queries = [QueryResult(query, 0, found)]
            outcome.gaps = [f"query 1 ({query}): {found}"]
            return outcome
        outcome.queries = [QueryResult(query, len(found))]
        outcome.anomalies = sorted(found, key=lambda a: -a.score)
        outcome.series = len({a.series for a in found})
        outcome.labels = {a.series: LABELS.get(a.series, {}) for a in found}
        return outcome


def cluster(scan_spec: dict, status: dict | None = None, hub: bool = True) -> dict:
    spec = {"anomalyScan": scan_spec} | ({} if hub else {"kubeconfigSecretRef": {"name": "k", "key": "kubeconfig"}})
    return {"metadata": {"name": "prod-eu"}, "spec": spec, "status": {"anomalyScan": status} if status else {}}


SCAN = {"queries": [{"name": "latency", "query": "latency"}], "intervalSeconds": 300}
ACCESS = ClusterAccess(api=None, prometheus=PrometheusSource("http://prometheus.invalid"), loki_url=None)


def tick(client, obj, prom, now=NOW, model=None, access=ACCESS, batch=10):
    spec = ManagedClusterSpec.model_validate(obj["spec"]).anomaly_scan
    return scan.tick(client, obj, spec, access, now, namespace="aiops", batch=batch, model=model, run=prom)


def incidents(client: FakeClient) -> list[dict]:
    return client.list(INCIDENT)


def test_a_new_anomaly_opens_one_incident_on_the_workload_its_labels_name():
    client = FakeClient()
    prom = Prometheus({"latency": [anomaly(CHECKOUT, T - 600), anomaly(CHECKOUT, T - 300, 0.8)]})
    result = tick(client, cluster(SCAN), prom)
    (incident,) = incidents(client)
    spec, meta = incident["spec"], incident["metadata"]
    assert spec["source"] == "anomaly" and spec["severity"] == "warning"
    assert spec["target"] == {"kind": "Deployment", "name": "checkout", "namespace": "shop"}
    assert spec["clusterRef"] == {"name": "prod-eu"} and spec["title"].startswith(f"Anomaly in {CHECKOUT}")
    assert "query latency" in spec["description"] and "found 2 anomalies" in spec["description"]
    assert meta["namespace"] == "aiops" and meta["labels"]["aiops.dev/cluster"] == "prod-eu"
    assert prom.calls == [("latency", NOW - timedelta(minutes=60), NOW)]
    (q,) = result.status.queries
    assert q.last_scan_time == NOW and q.scanned_until == NOW and q.anomalies == 2 and q.error is None
    assert result.status.incidents_opened == 1 and result.status.last_incident == f"aiops/{meta['name']}"
    assert [ref for ref, _ in result.opened] == [f"aiops/{meta['name']}"] and result.status.last_skipped == []


def test_nothing_is_due_before_the_interval_and_the_watermark_stops_realerting():
    client = FakeClient()
    found = [anomaly(CHECKOUT, T - 600)]
    first = tick(client, cluster(SCAN), Prometheus({"latency": found}))
    state = first.status.wire()
    assert tick(client, cluster(SCAN, state), Prometheus({"latency": found}), NOW + timedelta(seconds=60)) is None
    # The Incident is resolved; the same anomaly is still in the next window: it began before the watermark.
    (incident,) = incidents(client)
    client.patch_status(INCIDENT, incident["metadata"]["name"], "aiops", {"phase": "Resolved"})
    later = NOW + timedelta(seconds=300)
    again = tick(client, cluster(SCAN, state), Prometheus({"latency": found}), later)
    assert len(incidents(client)) == 1 and again.opened == [] and again.status.queries[0].scanned_until == later
    # A new onset after the watermark opens a new Incident (the old one is resolved).
    onset = Prometheus({"latency": [anomaly(CHECKOUT, later.timestamp() + 30)]})
    fresh = tick(client, cluster(SCAN, again.status.wire()), onset, later + timedelta(seconds=300))
    assert len(incidents(client)) == 2 and fresh.status.incidents_opened == 2


def test_an_open_incident_on_the_same_workload_deduplicates():
    client = FakeClient()
    client.put(INCIDENT, {
        "metadata": {"name": "paged", "namespace": "shop"},
        "spec": {"title": "checkout slow", "severity": "high", "target": {"kind": "Deployment", "name": "cart"}},
    })  # fmt: skip
    prom = Prometheus({"latency": [anomaly(CART_POD, T - 600), anomaly(CHECKOUT, T - 500)]})
    result = tick(client, cluster(SCAN), prom)
    names = sorted(i["metadata"]["name"] for i in incidents(client))
    assert len(names) == 2 and "paged" in names  # checkout opened one; cart's pod was already covered
    assert result.status.deduplicated == 1
    (skipped,) = result.status.last_skipped
    assert "Pod/shop/cart-7d9f-x2kqz" in skipped and "Incident shop/paged is open on Deployment/shop/cart" in skipped


def test_an_incident_on_another_cluster_does_not_deduplicate():
    client = FakeClient()
    client.put(INCIDENT, {
        "metadata": {"name": "elsewhere", "namespace": "shop"},
        "spec": {"title": "x", "severity": "high", "clusterRef": {"name": "prod-us"},
                 "target": {"kind": "Deployment", "name": "checkout"}},
    })  # fmt: skip
    tick(client, cluster(SCAN, hub=False), Prometheus({"latency": [anomaly(CHECKOUT, T - 600)]}))
    assert len(incidents(client)) == 2


def test_series_without_a_workload_are_skipped_with_the_fix():
    client = FakeClient()
    result = tick(client, cluster(SCAN), Prometheus({"latency": [anomaly("up", T - 600)]}))
    assert incidents(client) == []
    (skipped,) = result.status.last_skipped
    assert "name no workload or namespace" in skipped and "set the query's target" in skipped


def test_the_query_target_wins_over_labels():
    client = FakeClient()
    target = {"kind": "StatefulSet", "name": "db", "namespace": "data"}
    spec = {"queries": [{"name": "latency", "query": "latency", "target": target}], "severity": "high"}
    tick(client, cluster(spec), Prometheus({"latency": [anomaly("up", T - 600)]}))
    (incident,) = incidents(client)
    assert incident["spec"]["target"] == target and incident["spec"]["severity"] == "high"


def test_a_failing_query_keeps_its_watermark_and_says_why_once():
    client = FakeClient()
    state = AnomalyScanStatus.model_validate(
        {
            "queries": [
                {"name": "latency", "lastScanTime": "2026-03-01T11:50:00Z", "scannedUntil": "2026-03-01T11:50:00Z"}
            ]
        }
    ).wire()
    failed = tick(client, cluster(SCAN, state), Prometheus({"latency": "bad_data: parse error"}))
    (q,) = failed.status.queries
    assert q.scanned_until == datetime(2026, 3, 1, 11, 50, tzinfo=UTC) and "parse error" in q.error
    assert [name for name, _ in failed.failed] == ["latency"]
    later = NOW + timedelta(seconds=300)
    again = tick(client, cluster(SCAN, failed.status.wire()), Prometheus({"latency": "bad_data: parse error"}), later)
    assert again.failed == []  # the same error: no second Warning Event


def test_no_prometheus_is_an_error_on_each_query():
    result = tick(FakeClient(), cluster(SCAN), Prometheus({}), access=ClusterAccess(None, None, None))
    assert "no spec.endpoints.prometheus" in result.status.queries[0].error


def test_work_per_tick_is_bounded_and_the_longest_waiting_go_first():
    queries = [{"name": f"q{i}", "query": f"q{i}"} for i in range(5)]
    prom = Prometheus({f"q{i}": [] for i in range(5)})
    first = tick(FakeClient(), cluster({"queries": queries}), prom, batch=2)
    assert [c[0] for c in prom.calls] == ["q0", "q1"] and len(first.status.queries) == 2
    state = first.status.wire()
    second = tick(FakeClient(), cluster({"queries": queries}, state), prom, NOW + timedelta(seconds=30), batch=2)
    assert [c[0] for c in prom.calls[2:]] == ["q2", "q3"]
    assert [q.name for q in second.status.queries] == ["q0", "q1", "q2", "q3"]


def test_scan_spec_rejects_repeated_names():
    with pytest.raises(ValueError, match="names must be unique, repeated: a"):
        AnomalyScan.model_validate({"queries": [{"name": "a", "query": "x"}, {"name": "a", "query": "y"}]})


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (Target("Deployment", "cart", "shop"), Target("Pod", "cart-7d9f-x2kqz", "shop"), True),
        (Target("Deployment", "cart", "shop"), Target("Pod", "cartography-1", "shop"), False),
        (Target("Deployment", "cart", "shop"), Target("Deployment", "cart", "other"), False),
        (Target("Namespace", "shop", "shop"), Target("Service", "x", "shop"), True),
        (Target("Node", "n1", ""), Target("Node", "n1", "shop"), True),
        (Target("Pod", "a-1", "shop"), Target("Pod", "a-1-x", "shop"), False),
    ],
)
def test_same_target(a, b, same):
    assert scan.same_target(a, b) is same and scan.same_target(b, a) is same


def test_the_model_explains_citing_given_series_after_a_repair():
    replies = [
        answer({"explanation": "Latency of checkout rose fivefold at 11:50, alone.", "series": ["made-up"]}),
        answer({"explanation": "Latency of checkout rose fivefold at 11:50, alone.", "series": [CHECKOUT]}),
    ]
    with ScriptedOpenAI(*replies) as server:
        config = GatewayConfig(base_url=server.url, model=server.model, backoff_base_s=0)
        client = FakeClient()
        tick(client, cluster(SCAN), Prometheus({"latency": [anomaly(CHECKOUT, T - 600)]}), model=config)
        sent = server.requests[0]["messages"][1]["content"]
    (incident,) = incidents(client)
    description = incident["spec"]["description"]
    assert description.startswith("Latency of checkout rose fivefold at 11:50, alone. (series cited: " + CHECKOUT)
    assert f"name={json.dumps(CHECKOUT)}" in sent and "[[BEGIN SERIES" in sent


def test_without_a_valid_answer_the_incident_opens_and_says_why():
    with ScriptedOpenAI(*[status(400, message="no such model")]) as server:
        config = GatewayConfig(base_url=server.url, model=server.model, backoff_base_s=0)
        client = FakeClient()
        tick(client, cluster(SCAN), Prometheus({"latency": [anomaly(CHECKOUT, T - 600)]}), model=config)
    (incident,) = incidents(client)
    assert incident["spec"]["description"].startswith("(No explanation: ")
    assert "no such model" in incident["spec"]["description"]
