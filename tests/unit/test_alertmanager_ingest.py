"""The Alertmanager receiver's pure parts: payload validation, naming, severity, dedup state, rate limits."""

import json
from datetime import UTC, datetime

import pytest

from aiops.api import INCIDENT
from aiops.ingest.ingestor import Ingestor
from aiops.ingest.receiver import TokenBucket
from aiops.ingest.wire import (
    MAX_RECORDED_ALERTS,
    BadRequest,
    incident_manifest,
    incident_name,
    merge,
    parse,
    severity,
)
from aiops.settings import from_env
from support.fakekube import FakeClient

NOW = datetime(2026, 1, 2, 4, 0, tzinfo=UTC)


def notification(**over):
    alert = {
        "status": "firing",
        "labels": {"alertname": "KubePodCrashLooping", "namespace": "shop", "deployment": "checkout"},
        "annotations": {"summary": "checkout restarts"},
        "startsAt": "2026-01-02T03:04:05.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph?g0.expr=up",
        "fingerprint": "3f2a9c81be07d4e1",
    }
    body = {
        "version": "4",
        "groupKey": '{}:{alertname="KubePodCrashLooping"}',
        "status": "firing",
        "receiver": "aiops",
        "groupLabels": {"alertname": "KubePodCrashLooping"},
        "commonLabels": alert["labels"],
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "truncatedAlerts": 0,
        "alerts": [alert],
    }
    body.update(over)
    return body


def problems_of(body) -> list[str]:
    with pytest.raises(BadRequest) as exc:
        parse(json.dumps(body).encode())
    return exc.value.problems


def test_a_v4_notification_parses():
    note = parse(json.dumps(notification()).encode())
    assert note.alerts[0].fingerprint == "3f2a9c81be07d4e1"
    assert note.group_labels == {"alertname": "KubePodCrashLooping"}


@pytest.mark.parametrize(
    ("drop", "path"),
    [("fingerprint", "alerts[0].fingerprint"), ("startsAt", "alerts[0].startsAt"), ("status", "alerts[0].status")],
)
def test_a_missing_alert_field_is_named(drop, path):
    body = notification()
    del body["alerts"][0][drop]
    assert any(p.startswith(f"{path}: Field required") for p in problems_of(body))


def test_bad_bodies_name_the_problem():
    assert problems_of({**notification(), "version": "3"})[0].startswith("version:")
    body = notification()
    del body["groupKey"]
    assert problems_of(body) == ["groupKey: Field required"]
    assert problems_of(notification(alerts=[]))[0].startswith("alerts:")
    body = notification()
    body["alerts"][0]["fingerprint"] = "not-hex!"
    assert problems_of(body)[0].startswith("alerts[0].fingerprint:")
    body = notification()
    body["alerts"][0]["labels"] = {"severity": "page"}
    assert problems_of(body) == ["alerts[0].labels.alertname: Field required"]
    with pytest.raises(BadRequest, match="not JSON"):
        parse(b"{nope")
    with pytest.raises(BadRequest, match="expected a JSON object"):
        parse(b"[]")


def test_names_are_deterministic_dns_labels():
    key = '{}/{severity="page"}:{alertname="X"}'
    name = incident_name("KubePod_CrashLooping!!", key)
    assert name == incident_name("KubePod_CrashLooping!!", key)
    assert name.startswith("am-kubepod-crashlooping-") and len(name) == len("am-kubepod-crashlooping-") + 10
    long = incident_name("A" * 300, key)
    assert len(long) <= 63 and long.startswith("am-aaa")
    assert incident_name("---", key).startswith("am-alert-")
    assert incident_name("X", key) != incident_name("X", key + "x")


def test_severity_mapping_defaults_to_warning():
    assert severity({"severity": "critical"}) == "critical"
    assert severity({"severity": "Page"}) == "critical"
    assert severity({"severity": "error"}) == "high"
    assert severity({"severity": "whatever"}) == "warning"
    assert severity({}) == "warning"


def test_manifest_carries_the_lead_alert():
    body = notification()
    second = {**body["alerts"][0], "fingerprint": "00aa", "startsAt": "2026-01-02T03:00:00Z"}
    second["labels"] = {**second["labels"], "severity": "critical"}
    body["alerts"].append(second)
    note = parse(json.dumps(body).encode())
    m = incident_manifest(note, "am-x-0123456789", "shop", {})
    spec = m["spec"]
    assert spec["source"] == "alertmanager"
    assert spec["alert"]["fingerprint"] == "00aa"  # the earliest firing alert leads
    assert spec["severity"] == "critical"
    assert spec["alert"]["groupKey"] == body["groupKey"]
    assert spec["alert"]["generatorURL"].startswith("http://prometheus/")
    assert spec["title"] == "KubePodCrashLooping: checkout restarts"


def test_merge_keeps_the_newest_and_drops_resolved_first():
    recorded = {f"{i:x}": ["t", "resolved"] for i in range(MAX_RECORDED_ALERTS)}
    out = merge(recorded, {"ffff": ["t", "firing"]})
    assert len(out) == MAX_RECORDED_ALERTS and out["ffff"] == ["t", "firing"]


def test_token_bucket():
    bucket = TokenBucket(rate=2, burst=3)
    assert [bucket.take("a", now=0) for _ in range(3)] == [0, 0, 0]
    assert bucket.take("a", now=0) == pytest.approx(0.5)
    assert bucket.take("b", now=0) == 0  # per client
    assert bucket.take("a", now=0.6) == 0
    assert TokenBucket(rate=0, burst=1).take("a") == 0


def test_webhook_settings():
    assert from_env({}).webhook is None
    conf = from_env({"AIOPS_WEBHOOK_ADDR": ":9443", "AIOPS_WEBHOOK_TOKEN": "x" * 16}).webhook
    assert (conf.host, conf.port, conf.namespace, conf.max_body) == ("0.0.0.0", 9443, "aiops-system", 1 << 20)
    assert "x" * 16 not in repr(conf)
    with pytest.raises(SystemExit, match="bearer token"):
        from_env({"AIOPS_WEBHOOK_ADDR": ":9443"})
    with pytest.raises(SystemExit, match="host"):
        from_env({"AIOPS_WEBHOOK_ADDR": "nope", "AIOPS_WEBHOOK_TOKEN": "x" * 16})
    with pytest.raises(SystemExit, match="both or neither"):
        from_env({"AIOPS_WEBHOOK_ADDR": ":1", "AIOPS_WEBHOOK_TOKEN": "x" * 16, "AIOPS_WEBHOOK_TLS_CERT": "c"})


# The ingestor in-process, against an in-memory client.


def resolved(note: dict) -> dict:
    alerts = [a | {"status": "resolved", "endsAt": "2026-01-02T03:10:00Z"} for a in note["alerts"]]
    return note | {"status": "resolved", "alerts": alerts}


def test_ingestor_creates_once_deduplicates_and_resolves():
    client = FakeClient()
    ingestor = Ingestor("aiops-alerts", client, clock=lambda: NOW)
    first = ingestor.apply(parse(json.dumps(notification()).encode()))
    assert first.outcome == "created" and first.incident.startswith("shop/am-kubepodcrashlooping-")
    namespace, name = first.incident.split("/")
    assert ingestor.apply(parse(json.dumps(notification()).encode())).outcome == "deduplicated"
    assert client.writes == []  # creating is not a status write; dedup made no call at all

    done = ingestor.apply(parse(json.dumps(resolved(notification())).encode()))
    assert done.outcome == "resolved"
    status = client.get(INCIDENT, name, namespace)["status"]
    assert status["phase"] == "Resolved" and status["resolvedAt"] == "2026-01-02T04:00:00Z"
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("AlertFiring", "False", "Resolved")
    ]
    assert "observedGeneration" not in status, "the reconciler's field, not the ingestor's"
    assert client.events[-1][1:3] == ("Normal", "Resolved")


def test_ingestor_resolution_retries_a_write_conflict_and_keeps_a_remediation_running():
    client = FakeClient()
    ingestor = Ingestor("aiops-alerts", client, clock=lambda: NOW)
    namespace, name = ingestor.apply(parse(json.dumps(notification()).encode())).incident.split("/")
    client.patch_status(INCIDENT, name, namespace, {"phase": "Remediating"})
    real = client.patch_status
    calls = []

    def racing(*args, **kw):  # someone else writes between the ingestor's read and its write, once
        calls.append(args)
        if len(calls) == 1:
            real(INCIDENT, name, namespace, {"phase": "Remediating"})
        return real(*args, **kw)

    client.patch_status = racing
    assert ingestor.apply(parse(json.dumps(resolved(notification())).encode())).outcome == "resolved"
    status = client.get(INCIDENT, name, namespace)["status"]
    assert len(calls) == 2 and status["phase"] == "Remediating" and "resolvedAt" not in status
    assert status["conditions"][0]["reason"] == "ResolvedDuringRemediation"
    assert status["timeline"][-1]["reason"] == "ResolvedDuringRemediation"


def test_ingestor_places_the_incident_in_the_default_namespace_when_the_alerts_one_is_missing():
    client = FakeClient(missing_namespaces=("shop",))
    ingestor = Ingestor("aiops-alerts", client, clock=lambda: NOW)
    result = ingestor.apply(parse(json.dumps(notification()).encode()))
    assert result.outcome == "created" and result.incident.startswith("aiops-alerts/")
    assert "shop" in ingestor.missing_namespaces


def test_after_a_restart_a_resolved_notification_finds_the_incident():
    """The in-memory index is gone after a restart; the Incident is looked up by name in the group's namespace."""
    client = FakeClient()
    first = Ingestor("aiops-alerts", client, clock=lambda: NOW).apply(parse(json.dumps(notification()).encode()))
    restarted = Ingestor("aiops-alerts", client, clock=lambda: NOW)
    done = restarted.apply(parse(json.dumps(resolved(notification())).encode()))
    assert (done.outcome, done.incident) == ("resolved", first.incident)
