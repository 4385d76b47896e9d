"""The Kubernetes tools against canned API answers: Secrets refused, credentials masked, namespaces kept, and
the compact renderings (list, describe, rollout history) a model reads."""

from __future__ import annotations

import json

import pytest

from aiops.core import kube
from aiops.tools import REGISTRY, Status, ToolContext

NS = "shop"
DEPLOYMENT = {
    "metadata": {
        "name": "checkout",
        "namespace": NS,
        "uid": "d1",
        "annotations": {
            "deployment.kubernetes.io/revision": "3",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
        },
        "managedFields": [{"manager": "kubectl"}],
    },
    "spec": {
        "replicas": 2,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "shop/checkout:3",
                        "env": [{"name": "DB_PASSWORD", "value": "hunter2"}, {"name": "MODE", "value": "fast"}],
                    }
                ]
            }
        },
    },
    "status": {"readyReplicas": 1},
}


def replicaset(name: str, revision: str, image: str, owner: str = "checkout") -> dict:
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": "2026-12-01T10:00:00Z",
            "annotations": {"deployment.kubernetes.io/revision": revision},
            "ownerReferences": [{"kind": "Deployment", "name": owner}],
        },
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
        "status": {"replicas": 1},
    }


ANSWERS = {
    f"/apis/apps/v1/namespaces/{NS}/deployments/checkout": DEPLOYMENT,
    f"/apis/apps/v1/namespaces/{NS}/deployments": {"items": [DEPLOYMENT], "metadata": {"continue": "abc"}},
    f"/apis/apps/v1/namespaces/{NS}/replicasets": {
        "items": [
            replicaset("checkout-b", "3", "shop/checkout:3"),
            replicaset("checkout-a", "2", "shop/checkout:2"),
            replicaset("cart-a", "1", "shop/cart:1", owner="cart"),
        ]
    },
    f"/api/v1/namespaces/{NS}/configmaps/settings": {
        "metadata": {"name": "settings", "namespace": NS},
        "data": {"LOG_LEVEL": "debug", "api_token": "tok-123", "db.password": "pw-456", "tls.key": "KEY"},
        "binaryData": {"blob": "AAAA"},
    },
    f"/api/v1/namespaces/{NS}/events": {
        "items": [
            {
                "type": "Warning",
                "reason": "ProgressDeadlineExceeded",
                "message": "ReplicaSet checkout-b has timed out progressing",
                "count": 2,
                "lastTimestamp": "2026-12-06T06:00:00Z",
                "involvedObject": {"kind": "Deployment", "name": "checkout"},
            }
        ]
    },
    f"/api/v1/namespaces/{NS}/pods/web-1/log": "line one\nline two\n",
}


@pytest.fixture
def calls(monkeypatch) -> list[tuple[str, str, dict]]:
    """Canned GETs by path; anything else is a 404. The calls made, as (method, path, query)."""
    from kubernetes.client.exceptions import ApiException

    made = []

    def request(api, method, path, query=None, body=None, content_type=None, timeout=10):
        made.append((method, path, query or {}))
        if path not in ANSWERS:
            raise ApiException(status=404, reason="Not Found")
        answer = ANSWERS[path]
        wanted = dict(f.split("=", 1) for f in ((query or {}).get("fieldSelector") or "").split(",") if f)
        if path.endswith("/events") and wanted:  # the API server's field selector on involvedObject
            items = [
                e
                for e in answer["items"]
                if all(e["involvedObject"].get(k.split(".")[1]) == v for k, v in wanted.items())
            ]
            answer = {"items": items}
        return answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()

    monkeypatch.setattr(kube, "request", request)
    return made


def call(tool: str, namespaces: frozenset[str] | None = None, **arguments):
    return REGISTRY.call(tool, arguments, ToolContext(api=None, namespaces=namespaces))


@pytest.mark.parametrize("tool", ["k8s_get", "k8s_describe", "k8s_list"])
@pytest.mark.parametrize("kind", ["secrets", "Secret", "secret", "v1/secrets"])
def test_secrets_are_refused_before_any_request(calls, tool, kind):
    result = call(tool, kind=kind, name="db", namespace=NS) if tool != "k8s_list" else call(tool, kind=kind)
    assert result.status == Status.ERROR and "Secrets are never readable" in result.text
    assert calls == []


def test_every_call_is_a_get(calls):
    call("k8s_get", kind="deploy", name="checkout", namespace=NS)
    call("k8s_describe", kind="Deployment", name="checkout", namespace=NS)
    call("k8s_rollout_history", namespace=NS, deployment="checkout")
    call("k8s_pod_logs", namespace=NS, pod="web-1")
    assert calls and {method for method, _, _ in calls} == {"GET"}


def test_an_unknown_kind_lists_the_readable_ones(calls):
    result = call("k8s_get", kind="widgets", name="w", namespace=NS)
    assert result.status == Status.ERROR and "unknown or unreadable kind 'widgets'" in result.text
    assert "Deployment" in result.text and "Incident" in result.text


def test_get_drops_bookkeeping_and_masks_credential_env_values(calls):
    result = call("k8s_get", kind="deployments", name="checkout", namespace=NS)
    assert result.status == Status.OK
    assert "hunter2" not in result.text and "fast" in result.text and "<masked" in result.text
    assert "managedFields" not in result.text and "last-applied-configuration" not in result.text


def test_configmap_values_under_credential_keys_are_masked(calls):
    result = call("k8s_get", kind="cm", name="settings", namespace=NS)
    assert "debug" in result.text
    for value in ("tok-123", "pw-456", "KEY", "AAAA"):
        assert value not in result.text


def test_a_missing_object_says_so(calls):
    result = call("k8s_get", kind="pod", name="ghost", namespace=NS)
    assert result.status == Status.ERROR and "Pod shop/ghost: not found" in result.text


def test_namespaced_kinds_need_a_namespace_and_sessions_keep_to_theirs(calls):
    assert "give namespace" in call("k8s_get", kind="pod", name="x").text
    other = call("k8s_list", namespaces=frozenset({"shop"}), kind="pods", namespace="kube-system")
    assert other.status == Status.ERROR and "outside this session's namespaces (shop)" in other.text
    everywhere = call("k8s_events", namespaces=frozenset({"shop"}))
    assert everywhere.status == Status.ERROR and "name a namespace" in everywhere.text
    assert calls == []


def test_list_is_one_line_an_object_and_says_when_more_were_left(calls):
    result = call("k8s_list", kind="deployment", namespace=NS, limit=1)
    assert result.status == Status.TRUNCATED and "checkout  ready 1/2" in result.text
    assert "raise limit" in result.note
    assert calls[0][2] == {"limit": 1}


def test_describe_has_state_containers_and_events(calls):
    text = call("k8s_describe", kind="deploy", name="checkout", namespace=NS).text
    assert "Deployment shop/checkout" in text and "app: image shop/checkout:3" in text
    assert "Warning ProgressDeadlineExceeded Deployment/checkout x2" in text
    assert (
        "GET",
        f"/api/v1/namespaces/{NS}/events",
        {"fieldSelector": "involvedObject.kind=Deployment,involvedObject.name=checkout"},
    ) in calls  # noqa: E501


def test_rollout_history_lists_the_deployments_replicasets_by_revision(calls):
    text = call("k8s_rollout_history", namespace=NS, deployment="checkout").text
    lines = text.splitlines()
    assert lines[0] == "Deployment shop/checkout: current revision 3"
    assert lines[1].startswith("revision 2  checkout-a") and "app=shop/checkout:2" in lines[1]
    assert lines[2].startswith("revision 3  checkout-b") and "cart" not in text


def test_pod_logs_pass_tail_and_previous(calls):
    result = call("k8s_pod_logs", namespace=NS, pod="web-1", tail=10, previous=True)
    assert result.text == "line one\nline two"
    assert calls[0][2] == {"tailLines": 10, "previous": "true", "limitBytes": 48000}


@pytest.mark.parametrize("tool", ["k8s_get", "k8s_describe"])
def test_a_guessed_name_is_answered_with_the_names_that_exist(calls, tool):
    result = call(tool, kind="Deployment", name="checkout-0", namespace=NS)
    assert result.status == Status.ERROR
    assert "Deployment shop/checkout-0: not found; the deployments in shop are: checkout; use one" in result.text


def test_events_of_a_guessed_name_are_an_error_naming_what_exists(calls):
    result = call("k8s_events", namespace=NS, kind="Deployment", name="checkout-0")
    assert result.status == Status.ERROR  # not an answer the model may cite: "no Events" of a wrong name
    assert "Deployment shop/checkout-0: not found; the deployments in shop are: checkout" in result.text
    assert call("k8s_events", namespace=NS, kind="Deployment", name="checkout").status == Status.OK
    rollout = call("k8s_rollout_history", namespace=NS, deployment="cart-7d9f")
    assert "Deployment shop/cart-7d9f: not found; the deployments in shop are: checkout" in rollout.text


def test_describe_prints_probes_as_kubectl_does():
    from aiops.tools.kubernetes import _probes

    container = {
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "timeoutSeconds": 1, "failureThreshold": 3},
        "livenessProbe": {"tcpSocket": {"port": 9000}, "periodSeconds": 5},
        "startupProbe": {"exec": {"command": ["cat", "/tmp/up"]}},
    }
    assert _probes(container) == [
        "liveness tcp-socket :9000 period=5s",
        "readiness http-get http://:8080/ready timeout=1s #failure=3",
        "startup exec cat /tmp/up",
    ]
