"""Bad input: the API server or the operator names the field; nothing half-written; no hot loop."""

import base64
import time
from pathlib import Path

import pytest
import yaml

from harness import condition, phase, ready_reason


def incident(name, **spec):
    return {
        "apiVersion": "aiops.dev/v1alpha1",
        "kind": "Incident",
        "metadata": {"name": name},
        "spec": {"title": "t", "severity": "high", **spec},
    }


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"bogus": 1}, 'unknown field "bogus"'),
        ({"severity": "catastrophic"}, 'spec.severity: Unsupported value: "catastrophic"'),
        ({"title": "x" * 300}, "spec.title"),
        ({"target": {"kind": "Pod", "name": "Not_A_Name"}}, "spec.target.name"),
        ({"window": {"lookbackMinutes": 0}}, "spec.window.lookbackMinutes"),
    ],
)
def test_schema_invalid_is_rejected_by_the_server(kubectl, namespace, spec, message):
    proc = kubectl.apply(incident("bad", **spec), namespace, check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert kubectl.get("incident", "bad", namespace) is None, "nothing was stored"


def test_missing_required_field(kubectl, namespace):
    manifest = incident("bad")
    del manifest["spec"]["severity"]
    proc = kubectl.apply(manifest, namespace, check=False)
    assert proc.returncode != 0 and 'missing required field "severity"' in proc.stderr, proc.stderr


def test_status_bounds_are_enforced(kubectl, operator, namespace):
    kubectl.apply(incident("bounded"), namespace)
    kubectl.wait("incident", "bounded", namespace)
    diagnosis = '{"status":{"diagnosis":{"rootCause":"x","confidence":150,"executionStatus":"COMPLETED"}}}'
    proc = kubectl(
        "patch",
        "incident",
        "bounded",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        diagnosis,
        check=False,
    )
    assert proc.returncode != 0 and "status.diagnosis.confidence" in proc.stderr, proc.stderr


def invalid(obj):
    return ready_reason(obj) == "InvalidSpec"


def test_semantically_invalid_incident(kubectl, operator, namespace):
    bad = incident("window", window={"start": "2026-11-23T10:00:00Z", "end": "2026-11-23T09:00:00Z"})
    kubectl.apply(bad, namespace)
    obj = kubectl.wait("incident", "window", namespace, until=invalid, what="InvalidSpec")
    ready = condition(obj)
    assert ready["status"] == "False"
    assert ready["message"] == "Incident spec is invalid: spec.window: end must be later than start"
    assert phase(obj) == "Failed"
    assert "analysisRunRef" not in obj["status"]
    assert kubectl.json("get", "analysisruns", "-n", namespace)["items"] == [], "no work for a bad spec"
    events = kubectl.events(namespace, "window")
    assert any(
        e["type"] == "Warning" and e["reason"] == "InvalidSpec" and "spec.window" in e["message"] for e in events
    ), events

    # No hot loop: a permanently bad object is left alone until its spec changes.
    version = obj["metadata"]["resourceVersion"]
    time.sleep(3)
    assert kubectl.get("incident", "window", namespace)["metadata"]["resourceVersion"] == version

    bad["spec"]["window"] = {"lookbackMinutes": 30}
    kubectl.apply(bad, namespace)
    fixed = kubectl.wait(
        "incident",
        "window",
        namespace,
        until=lambda o: ready_reason(o) == "AnalysisScheduled",
        what="AnalysisScheduled",
    )
    assert condition(fixed)["observedGeneration"] == fixed["metadata"]["generation"] == 2


def test_name_too_long(kubectl, operator, namespace):
    name = "n" * 70
    kubectl.apply(incident(name), namespace)
    obj = kubectl.wait("incident", name, namespace, until=invalid, what="InvalidSpec")
    assert "metadata.name: 70 characters; at most 63" in condition(obj)["message"]


def test_invalid_sop_lists_its_problems(kubectl, operator, namespace):
    steps = [
        {"id": "a", "type": "check", "title": "A", "onFailure": "b"},
        {"id": "b", "type": "check", "title": "B", "onSuccess": "a"},
    ]
    sop = {
        "apiVersion": "aiops.dev/v1alpha1",
        "kind": "SOP",
        "metadata": {"name": "loop"},
        "spec": {"title": "loops", "steps": steps},
    }
    kubectl.apply(sop, namespace)
    obj = kubectl.wait("sop", "loop", namespace, until=invalid, what="InvalidSpec")
    assert obj["status"]["validationErrors"] == ["spec.steps: the steps form a cycle (a -> b -> a)"]
    assert obj["status"]["stepCount"] == 2


def test_missing_reference_waits_then_resolves(kubectl, operator, namespace):
    kubectl.apply(incident("needs-sop", sopRef={"name": "later"}), namespace)
    obj = kubectl.wait(
        "incident",
        "needs-sop",
        namespace,
        until=lambda o: ready_reason(o) == "MissingReference",
        what="MissingReference",
    )
    assert "spec.sopRef: SOP 'later' does not exist" in condition(obj)["message"]
    assert phase(obj) == "New"
    sop = {
        "apiVersion": "aiops.dev/v1alpha1",
        "kind": "SOP",
        "metadata": {"name": "later"},
        "spec": {"title": "t", "steps": [{"id": "a", "type": "escalate", "title": "page"}]},
    }
    kubectl.apply(sop, namespace)
    kubectl.wait(
        "incident",
        "needs-sop",
        namespace,
        until=lambda o: ready_reason(o) == "AnalysisScheduled",
        timeout=40,
        what="the analysis once the SOP exists",
    )


def test_analysis_run_with_missing_incident(kubectl, operator, namespace):
    run = {
        "apiVersion": "aiops.dev/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": "orphan"},
        "spec": {"type": "rootCause", "incidentRef": {"name": "nope"}},
    }
    kubectl.apply(run, namespace)
    obj = kubectl.wait("analysisrun", "orphan", namespace, until=condition)
    assert ready_reason(obj) == "MissingReference"
    assert "spec.incidentRef: Incident 'nope'" in condition(obj)["message"]


def managed_cluster(name, secret, namespace):
    return {
        "apiVersion": "aiops.dev/v1alpha1",
        "kind": "ManagedCluster",
        "metadata": {"name": name},
        "spec": {"kubeconfigSecretRef": {"name": secret, "key": "kubeconfig", "namespace": namespace}},
    }


def secret(name, data: bytes):
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "data": {"kubeconfig": base64.b64encode(data).decode()},
    }


def test_managed_cluster_kubeconfig_secret(kubectl, operator, namespace, kubeconfig):
    # A spoke reached through a kubeconfig Secret (here: this same control plane).
    kubectl.apply(secret("spoke", Path(kubeconfig).read_bytes()), namespace)
    kubectl.apply(managed_cluster(f"{namespace}-spoke", "spoke", namespace))
    ok = kubectl.wait("managedcluster", f"{namespace}-spoke", until=phase, what="a probe result")
    assert phase(ok) == "Ready", ok["status"]

    kubectl.apply(managed_cluster(f"{namespace}-nosecret", "absent", namespace))
    missing = kubectl.wait("managedcluster", f"{namespace}-nosecret", until=condition)
    assert ready_reason(missing) == "MissingReference"
    assert f"Secret {namespace}/absent" in condition(missing)["message"]

    kubectl.apply(secret("garbage", b"clusters: []\n"), namespace)
    kubectl.apply(managed_cluster(f"{namespace}-garbage", "garbage", namespace))
    bad = kubectl.wait("managedcluster", f"{namespace}-garbage", until=invalid, what="InvalidSpec")
    assert "spec.kubeconfigSecretRef" in condition(bad)["message"] and "no clusters" in condition(bad)["message"]

    dead = yaml.safe_load(Path(kubeconfig).read_text())
    dead["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    kubectl.apply(secret("dead", yaml.safe_dump(dead).encode()), namespace)
    kubectl.apply(managed_cluster(f"{namespace}-dead", "dead", namespace))
    down = kubectl.wait("managedcluster", f"{namespace}-dead", until=phase, timeout=40, what="a probe result")
    assert phase(down) == "Unreachable" and ready_reason(down) == "Unreachable"
