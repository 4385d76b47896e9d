"""aiops.tools.survey against canned API answers: which reads the question's words and the existing objects
lead to, in which order, within the cap, and nothing outside the session's namespaces."""

from __future__ import annotations

import json

import pytest

from aiops.core import kube
from aiops.tools import ToolContext, survey

NS = "shop"


def pod(name: str, ready: bool, node: str | None, app: str = "checkout") -> dict:
    return {
        "metadata": {"name": name, "labels": {"app": app}, "ownerReferences": [{"kind": "ReplicaSet", "name": "x"}]},
        "spec": {"nodeName": node},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def named(*names: str) -> dict:
    return {"items": [{"metadata": {"name": n}} for n in names]}


LISTS = {
    f"/api/v1/namespaces/{NS}/pods": {
        "items": [
            pod("checkout-7d9f-ok1", True, "worker-1"),
            pod("checkout-7d9f-bad", False, "worker-2"),
            pod("cart-5c4b-aa1bc", True, "worker-1", app="cart"),
        ]
    },
    f"/apis/apps/v1/namespaces/{NS}/deployments": {
        "items": [
            {"metadata": {"name": n}, "spec": {"selector": {"matchLabels": {"app": n}}}} for n in ("checkout", "cart")
        ]
    },
    f"/api/v1/namespaces/{NS}/resourcequotas": named("compute"),
    f"/apis/autoscaling/v1/namespaces/{NS}/horizontalpodautoscalers": named("checkout", "cart"),
    f"/api/v1/namespaces/{NS}/persistentvolumeclaims": named("data"),
    "/api/v1/nodes": named("worker-1", "worker-2"),
    "/api/v1/namespaces": named("default", NS, "shopping"),
}


@pytest.fixture
def api(monkeypatch) -> list[str]:
    """Canned LISTs by path; the ConfigMap list is refused (RBAC), anything else is empty. The paths read."""
    from kubernetes.client.exceptions import ApiException

    read = []

    def request(api, method, path, query=None, body=None, content_type=None, timeout=10):
        assert method == "GET"
        read.append(path)
        if path.endswith("/configmaps"):
            raise ApiException(status=403, reason="Forbidden")
        return json.dumps(LISTS.get(path, {"items": []})).encode()

    monkeypatch.setattr(kube, "request", request)
    return read


def plan(question: str, namespaces=frozenset({NS}), namespace: str = NS, target: str | None = None):
    return survey.plan(question, namespace, ToolContext(api=None, namespaces=namespaces), target)


def describe(kind: str, name: str, namespace: str | None = NS) -> tuple[str, dict]:
    return ("k8s_describe", {"kind": kind, "name": name, **({"namespace": namespace} if namespace else {})})


def test_a_workload_named_by_its_word_is_described_with_its_unready_pod_and_pods(api):
    assert plan("Why do the checkout pods keep restarting?") == [
        describe("Deployment", "checkout"),
        describe("Pod", "checkout-7d9f-bad"),
        ("k8s_list", {"kind": "Pod", "namespace": NS, "label_selector": "app=checkout"}),
        ("k8s_events", {"namespace": NS, "warnings_only": True, "limit": survey.WARNING_EVENTS}),
    ]


def test_an_object_named_exactly_is_described_alone(api):
    assert plan("Which taint key does node worker-2 carry?") == [describe("Node", "worker-2", None)]
    assert plan("How many times has pod checkout-7d9f-bad restarted?")[0] == describe("Pod", "checkout-7d9f-bad")


def test_a_kind_named_without_a_name(api):
    # the only quota; the autoscaler named like the workload; nodes through the pods read
    assert plan("What is the memory quota here, and how much of it is used?") == [describe("ResourceQuota", "compute")]
    assert describe("HorizontalPodAutoscaler", "checkout") in plan("What does the checkout autoscaler allow?")
    assert plan("On which node do the checkout pods run?")[-1] == describe("Node", "worker-2", None)
    # two autoscalers and no workload named: the list, not a guess
    assert plan("Which autoscalers are at their ceiling?") == [
        ("k8s_list", {"kind": "HorizontalPodAutoscaler", "namespace": NS})
    ]


def test_rollout_history_when_asked_about_revisions(api):
    calls = plan("Which image did checkout roll out in its latest revision?")
    assert ("k8s_rollout_history", {"namespace": NS, "deployment": "checkout"}) in calls
    assert not any(t == "k8s_rollout_history" for t, _ in plan("Which image does checkout run?"))


def test_the_runs_target_counts_as_named(api):
    assert plan("What is its memory limit?", target="cart")[0] == describe("Deployment", "cart")


def test_nothing_named_and_nothing_outside_the_session(api):
    assert plan("How is the weather?") == []
    api.clear()
    assert plan("Why do the checkout pods restart?", namespaces=frozenset({"other"})) == [] and api == []
    assert plan("Why?", namespace=None) == []


def test_the_cap(api, monkeypatch):
    monkeypatch.setattr(survey, "MAX_CALLS", 2)
    assert len(plan("Why do the checkout pods on node worker-1 restart after the latest rollout?")) == 2


def test_the_namespace_a_question_names(api):
    ctx = ToolContext(api=None)
    assert survey.named_namespace("Why do the checkout pods in shop restart?", ctx) == NS
    assert survey.named_namespace("Why do the checkout pods restart?", ctx) is None
