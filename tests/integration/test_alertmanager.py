"""Alertmanager -> Incident: direct webhook posts (dedup, resolution, bad bodies) against the receiver
in-process, then a real Prometheus rule firing through a real Alertmanager into `aiops run`."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from aiops.ingest.receiver import PATH, Receiver
from aiops.ingest.wire import GROUP_LABEL, group_hash
from aiops.settings import WebhookSettings
from aiops_dev.controlplane import free_port
from aiops_dev.eval import cases
from aiops_dev.prometheus import PrometheusServer
from harness import condition, phase, wait_for
from support.servers import ALERTMANAGER, AlertmanagerServer

TOKEN = "test-token-" + uuid.uuid4().hex
GROUP, VERSION = "aiops.dev", "v1alpha1"


# --- helpers --------------------------------------------------------------------------------------


def alert(namespace: str, fingerprint: str, status: str = "firing", starts: str = "2026-01-02T03:04:05Z", **labels):
    return {
        "status": status,
        "labels": {"alertname": "CheckoutDown", "namespace": namespace, "deployment": "checkout", **labels},
        "annotations": {"summary": "checkout is down"},
        "startsAt": starts,
        "endsAt": "2026-01-02T04:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.test/graph?g0.expr=up",
        "fingerprint": fingerprint,
    }


def notification(group_key: str, alerts: list[dict], **over) -> dict:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    body = {
        "version": "4",
        "groupKey": group_key,
        "status": status,
        "receiver": "aiops",
        "groupLabels": {"alertname": "CheckoutDown", "namespace": alerts[0]["labels"]["namespace"]},
        "commonLabels": alerts[0]["labels"],
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.test",
        "alerts": alerts,
    }
    body.update(over)
    return body


def post(port: int, body, token: str = TOKEN, raw: bytes | None = None) -> tuple[int, dict, dict]:
    """(status, JSON answer, headers); a server that closes early on a huge body still gives its answer."""
    data = raw if raw is not None else json.dumps(body).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("POST", PATH)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(data)))
        if token:
            conn.putheader("Authorization", f"Bearer {token}")
        conn.endheaders()
        try:
            conn.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered before the body was read (413): the answer is still there
        resp = conn.getresponse()
        text = resp.read()
        return resp.status, json.loads(text or b"{}"), dict(resp.headers)
    finally:
        conn.close()


def incidents(custom, namespace: str, group_key: str | None = None) -> list[dict]:
    selector = f"{GROUP_LABEL}={group_hash(group_key)}" if group_key else GROUP_LABEL
    return custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "incidents", label_selector=selector)[
        "items"
    ]


@pytest.fixture(scope="module")
def api(kubeconfig):
    from kubernetes import config

    api = config.new_client_from_config(config_file=kubeconfig)
    yield api
    api.close()


@pytest.fixture(scope="module")
def custom(api):
    from kubernetes import client

    return client.CustomObjectsApi(api)


@pytest.fixture
def receiver(api, kubectl, namespace):
    conf = WebhookSettings(host="127.0.0.1", port=0, token=TOKEN, namespace=namespace, rate=0, burst=1)
    r = Receiver(conf, api=api).start()
    yield r
    r.stop()


def settle(custom, namespace: str, name: str, quiet_s: float = 2.0) -> dict:
    """The Incident once its status has stopped changing for a moment (an operator may be working on it)."""
    last, since = None, time.monotonic()
    while True:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "incidents", name)
        rv = obj["metadata"]["resourceVersion"]
        if rv != last:
            last, since = rv, time.monotonic()
        elif time.monotonic() - since > quiet_s:
            return obj
        time.sleep(0.2)


# --- direct posts --------------------------------------------------------------------------------


def test_retried_and_concurrent_duplicates_make_one_incident(receiver, custom, namespace):
    key = f'{{}}:{{alertname="CheckoutDown",namespace="{namespace}"}}-{uuid.uuid4().hex[:6]}'
    body = notification(key, [alert(namespace, "a1b2c3")])
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post(receiver.port, body), range(8)))
    assert [a[0] for a in answers] == [200] * 8
    outcomes = sorted(a[1]["status"] for a in answers)
    assert outcomes.count("created") == 1 and set(outcomes) <= {"created", "deduplicated"}, outcomes
    items = incidents(custom, namespace, key)
    assert len(items) == 1
    inc = items[0]
    assert inc["metadata"]["name"].startswith("am-checkoutdown-")
    spec = inc["spec"]
    assert spec["source"] == "alertmanager" and spec["severity"] == "warning"
    assert spec["alert"]["fingerprint"] == "a1b2c3" and spec["alert"]["groupKey"] == key
    assert spec["alert"]["labels"]["deployment"] == "checkout"
    assert spec["alert"]["startsAt"].startswith("2026-01-02T03:04:05")

    # A second alert joins the group: recorded on the same Incident, not a new one.
    body2 = notification(key, [alert(namespace, "a1b2c3"), alert(namespace, "d4e5f6", pod="checkout-1")])
    assert post(receiver.port, body2)[1]["status"] == "updated"
    assert post(receiver.port, body2)[1]["status"] == "deduplicated"
    # A receiver that forgot everything (an operator restart) still finds the group's Incident.
    fresh = Receiver(receiver.conf, api=receiver.ingestor.client.api).start()
    try:
        assert post(fresh.port, body2)[1]["status"] == "deduplicated"
    finally:
        fresh.stop()
    items = incidents(custom, namespace, key)
    assert len(items) == 1
    recorded = json.loads(items[0]["metadata"]["annotations"]["aiops.dev/alerts"])
    assert set(recorded) == {"a1b2c3", "d4e5f6"}


def test_resolved_alerts_resolve_the_incident(receiver, custom, kubectl, namespace):
    key = f"resolve-{uuid.uuid4().hex}"
    firing = [alert(namespace, "0a"), alert(namespace, "0b", pod="p2")]
    assert post(receiver.port, notification(key, firing))[1]["status"] == "created"
    name = incidents(custom, namespace, key)[0]["metadata"]["name"]
    # One of two resolves: the group still fires.
    half = [alert(namespace, "0a", "resolved"), alert(namespace, "0b", pod="p2")]
    assert post(receiver.port, notification(key, half))[1]["status"] == "updated"
    assert phase(custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "incidents", name)) != "Resolved"
    done = [alert(namespace, "0a", "resolved"), alert(namespace, "0b", "resolved", pod="p2")]
    status, answer, _ = post(receiver.port, notification(key, done))
    assert (status, answer["status"]) == (200, "resolved")
    assert post(receiver.port, notification(key, done))[1]["status"] == "deduplicated"
    inc = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "incidents", name)
    assert phase(inc) == "Resolved" and inc["status"]["resolvedAt"]
    cond = condition(inc, "AlertFiring")
    assert (cond["status"], cond["reason"]) == ("False", "Resolved")
    assert any(e["reason"] == "Resolved" for e in kubectl.events(namespace, name))


def test_a_resolved_alert_during_remediation_keeps_the_phase(receiver, custom, kubectl, namespace):
    key = f"remediating-{uuid.uuid4().hex}"
    assert post(receiver.port, notification(key, [alert(namespace, "beef")]))[0] == 200
    name = incidents(custom, namespace, key)[0]["metadata"]["name"]
    settle(custom, namespace, name)
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "incidents", name, {"status": {"phase": "Remediating"}}
    )
    resolved = notification(key, [alert(namespace, "beef", "resolved")])
    assert post(receiver.port, resolved)[1]["status"] == "resolved"
    inc = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "incidents", name)
    assert phase(inc) == "Remediating" and not inc["status"].get("resolvedAt")
    cond = condition(inc, "AlertFiring")
    assert (cond["status"], cond["reason"]) == ("False", "ResolvedDuringRemediation")
    assert any(e["reason"] == "ResolvedDuringRemediation" for e in kubectl.events(namespace, name))


def test_a_resolved_alert_of_an_unknown_group_creates_nothing(receiver, custom, namespace):
    key = f"never-fired-{uuid.uuid4().hex}"
    answer = post(receiver.port, notification(key, [alert(namespace, "c0de", "resolved")]))
    assert answer[:2] == (200, {**answer[1], "status": "ignored"})
    assert incidents(custom, namespace, key) == []


def test_an_unknown_namespace_falls_back_to_the_default(receiver, custom, namespace):
    key = f"elsewhere-{uuid.uuid4().hex}"
    body = notification(key, [alert("no-such-namespace-here", "fade")])
    status, answer, _ = post(receiver.port, body)
    assert status == 200 and answer["incident"].startswith(f"{namespace}/")
    (inc,) = incidents(custom, namespace, key)
    assert inc["spec"]["alert"]["labels"]["namespace"] == "no-such-namespace-here"


def test_bad_bodies_get_a_4xx_and_create_nothing(receiver, custom, namespace):
    key = f"bad-{uuid.uuid4().hex}"
    good = notification(key, [alert(namespace, "abc123")])

    missing = json.loads(json.dumps(good))
    del missing["alerts"][0]["fingerprint"]
    status, answer, _ = post(receiver.port, missing)
    assert status == 400 and "alerts[0].fingerprint: Field required" in answer["problems"], answer

    no_key = {k: v for k, v in good.items() if k != "groupKey"}
    status, answer, _ = post(receiver.port, no_key)
    assert status == 400 and answer["problems"] == ["groupKey: Field required"]

    status, answer, _ = post(receiver.port, None, raw=b"{not json")
    assert status == 400 and "not JSON" in answer["error"]

    huge = json.loads(json.dumps(good))
    huge["alerts"][0]["labels"].update({f"label_{i}": "x" * 1000 for i in range(10_000)})  # ~10 MB
    status, answer, _ = post(receiver.port, huge)
    assert status == 413, answer

    status, answer, headers = post(receiver.port, good, token="wrong-" + TOKEN)
    assert status == 401 and headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert post(receiver.port, good, token="")[0] == 401

    assert incidents(custom, namespace, key) == []
    assert post(receiver.port, good)[1]["status"] == "created"  # the same alert, well-formed, is taken


def test_rate_limit_answers_429_with_retry_after(api, custom, kubectl, namespace):
    conf = WebhookSettings(host="127.0.0.1", port=0, token=TOKEN, namespace=namespace, rate=0.5, burst=2)
    r = Receiver(conf, api=api).start()
    try:
        key = f"limited-{uuid.uuid4().hex}"
        body = notification(key, [alert(namespace, "1234")])
        answers = [post(r.port, body) for _ in range(3)]
        assert [a[0] for a in answers] == [200, 200, 429]
        assert int(answers[2][2]["Retry-After"]) >= 1
        assert len(incidents(custom, namespace, key)) == 1
        limited = notification(f"limited-{uuid.uuid4().hex}", [alert(namespace, "5678")])
        assert post(r.port, limited)[0] == 429
        assert incidents(custom, namespace, limited["groupKey"]) == []
    finally:
        r.stop()


# --- the real thing: Prometheus rule -> Alertmanager -> aiops run -> diagnosis ----------------------


@pytest.mark.skipif(not ALERTMANAGER or not shutil.which("prometheus"), reason="needs prometheus-alertmanager")
def test_a_firing_prometheus_rule_becomes_a_diagnosed_incident(
    operator_env, custom, kubectl, namespace, writer, tmp_path
):
    cases.write("checkout-oomkilled", writer)
    port = free_port()
    operator = operator_env(
        {"AIOPS_WEBHOOK_ADDR": f"127.0.0.1:{port}", "AIOPS_WEBHOOK_TOKEN": TOKEN, "AIOPS_WEBHOOK_NAMESPACE": namespace}
    )
    wait_for(lambda: _healthy(port), 30, "the operator's Alertmanager receiver")

    am = AlertmanagerServer(
        tmp_path,
        {
            "route": {
                "receiver": "aiops",
                "group_by": ["alertname", "namespace"],
                "group_wait": "1s",
                "group_interval": "2s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "aiops",
                    "webhook_configs": [
                        {
                            "url": f"http://127.0.0.1:{port}{PATH}",
                            "send_resolved": True,
                            "http_config": {"authorization": {"type": "Bearer", "credentials": TOKEN}},
                        }
                    ],
                }
            ],
        },
    )
    check = subprocess.run(
        ["amtool", "check-config", str(tmp_path / "alertmanager.yml")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    am.start()
    prom = PrometheusServer(tmp_path / "prometheus")
    prom.workdir.mkdir()
    rule = {
        "alert": "CheckoutOOMKilled",
        "expr": "vector(1) > 0",
        "labels": {"namespace": namespace, "deployment": "checkout", "severity": "critical"},
        "annotations": {"summary": "checkout containers are OOMKilled"},
    }
    prom.start(
        rules=yaml.safe_dump({"groups": [{"name": "test", "rules": [rule]}]}), alertmanager=f"127.0.0.1:{am.port}"
    )
    try:
        found = wait_for(lambda: incidents(custom, namespace), 60, "the Incident from Alertmanager")
        (inc,) = found
        name = inc["metadata"]["name"]
        assert name.startswith("am-checkoutoomkilled-")
        spec = inc["spec"]
        assert spec["source"] == "alertmanager" and spec["severity"] == "critical"
        assert spec["alert"]["labels"]["alertname"] == "CheckoutOOMKilled"
        assert spec["alert"]["labels"]["deployment"] == "checkout"
        assert len(spec["alert"]["fingerprint"]) == 16
        assert spec["alert"]["groupKey"].endswith(f'{{alertname="CheckoutOOMKilled", namespace="{namespace}"}}')
        assert spec["alert"]["generatorURL"].startswith("http")

        inc = kubectl.wait(
            "incident",
            name,
            namespace,
            until=lambda o: phase(o) in ("Diagnosed", "Failed"),
            timeout=120,
            what="a diagnosis",
        )
        assert phase(inc) == "Diagnosed", inc["status"]
        d = inc["status"]["diagnosis"]
        assert d["suspects"] and d["suspects"][0]["failureMode"] == "OOMKilled", d["suspects"]
        assert d["suspects"][0]["resource"].startswith(("Deployment/checkout", "Pod/checkout"))

        # The rule goes away: Prometheus resolves the alert, Alertmanager says so, the Incident resolves.
        (prom.workdir / "rules.yml").write_text(yaml.safe_dump({"groups": []}))
        prom.proc.send_signal(signal.SIGHUP)
        inc = kubectl.wait("incident", name, namespace, until=lambda o: phase(o) == "Resolved", timeout=90)
        assert inc["status"]["resolvedAt"]
        assert len(incidents(custom, namespace)) == 1
    except Exception:
        print("--- alertmanager log ---\n" + am.log()[-3000:])
        print("--- operator log ---\n" + operator.log()[-6000:])
        raise
    finally:
        prom.stop()
        am.stop()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False
