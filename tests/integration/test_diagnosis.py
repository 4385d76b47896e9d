"""Incident -> diagnosis through the operator, with the model path scripted for deterministic failures."""

import json
import os
import time

import pytest

from aiops_dev.eval import cases
from aiops_dev.prometheus import PrometheusServer
from harness import checkout_incident as incident
from harness import condition, phase, wait_for
from support.diagnoses import expected_evidence
from support.scripted_openai import ScriptedOpenAI, answer, content

DONE = {"until": lambda o: phase(o) in ("Diagnosed", "Failed"), "timeout": 90, "what": "a diagnosis"}


def leaky_checkout(writer):
    """The OOM scenario plus an Event that leaks a password and an IP, as real probe messages do."""
    cases.write("checkout-oomkilled", writer)
    pod = writer.core.list_namespaced_pod(writer.ns).items[0]
    writer.event(
        {**writer._json(pod), "apiVersion": "v1", "kind": "Pod"},  # list items carry no kind
        "Unhealthy",
        "Readiness probe failed: Get http://admin:hunter2@10.1.2.3:8080/health: connection refused",
    )


def test_analyzers_only_when_the_incident_asks(kubectl, operator, namespace, writer):
    cases.write("checkout-oomkilled", writer)
    kubectl.apply(incident("no-model", analysis={"llm": False}), namespace)
    inc = kubectl.wait("incident", "no-model", namespace, **DONE)
    d = inc["status"]["diagnosis"]
    assert d["executionStatus"] == "COMPLETED" and d["model"] == "deterministic-analyzers"
    assert d["suspects"][0]["failureMode"] == "OOMKilled"
    assert condition(inc, "ModelAnswered") is None, "no model was asked, so nothing to say about one"


def test_missing_target_fails_with_a_reason(kubectl, operator, namespace):
    manifest = incident("nowhere")
    del manifest["spec"]["target"]
    kubectl.apply(manifest, namespace)
    inc = kubectl.wait("incident", "nowhere", namespace, **DONE)
    assert phase(inc) == "Failed"
    assert condition(inc, "Diagnosed")["reason"] == "AnalysisFailed"
    assert "spec.target is not set" in inc["status"]["diagnosis"]["rootCause"]
    # kopf posts Events from a queue of its own: the status can be read a moment before the Event.
    failed = wait_for(
        lambda: {e["reason"]: e["type"] for e in kubectl.events(namespace, "nowhere")}.get("AnalysisFailed"),
        30,
        "the AnalysisFailed Event",
    )
    assert failed == "Warning", failed
    run = kubectl.get("analysisrun", inc["status"]["analysisRunRef"]["name"], namespace)
    assert phase(run) == "Failed"


def test_target_from_alert_labels(kubectl, operator, namespace, writer):
    cases.write("checkout-oomkilled", writer)
    pod = writer.core.list_namespaced_pod(writer.ns).items[0].metadata.name
    manifest = incident(
        "from-alert",
        source="alertmanager",
        analysis={"llm": False},
        alert={
            "name": "KubePodCrashLooping",
            "fingerprint": "0a1b2c3d4e5f6789",
            "labels": {"alertname": "KubePodCrashLooping", "namespace": namespace, "pod": pod},
        },
    )
    del manifest["spec"]["target"]
    kubectl.apply(manifest, namespace)
    inc = kubectl.wait("incident", "from-alert", namespace, **DONE)
    assert inc["status"]["diagnosis"]["suspects"][0] == {
        **inc["status"]["diagnosis"]["suspects"][0],
        "resource": f"Pod/{pod}",
        "failureMode": "OOMKilled",
    }


def test_model_answer_is_validated_cited_and_redacted(kubectl, operator_env, namespace, writer):
    leaky_checkout(writer)
    suspects, evidence = expected_evidence(writer)
    cited = suspects[0].evidence[:2]
    reply = {
        "rootCause": "checkout 1.5.0 leaks memory: app exceeds its 256Mi limit and is OOMKilled.",
        "reasoning": "OOMKilled with exit 137 on both pods right after revision 2.",
        "mitigation": "Roll back checkout to revision 1.",
        "prevention": "Load-test memory before release.",
        "recommendation": "Roll back, then profile the heap of 1.5.0.",
        "confidence": 88,
        "evidence": cited,
        "suspects": [
            {"resource": suspects[0].resource, "failureMode": "OOMKilled", "reason": "exit 137 with the limit reached"}
        ],
    }
    # First a citation of evidence that does not exist: the gateway must refuse it and ask again.
    bad = {**reply, "evidence": ["made-up-id"]}
    with ScriptedOpenAI(answer(bad), answer(reply, prompt_tokens=900, completion_tokens=120)) as llm:
        operator_env({"AIOPS_LLM_BASE_URL": llm.url, "AIOPS_LLM_MODEL": llm.model})
        kubectl.apply(incident("with-model"), namespace)
        inc = kubectl.wait("incident", "with-model", namespace, **DONE)
    d = inc["status"]["diagnosis"]
    assert d["executionStatus"] == "COMPLETED", d
    assert d["rootCause"] == reply["rootCause"] and d["confidence"] == 88
    assert [e["id"] for e in d["evidence"]] == cited and d["promptVersion"]
    assert d["suspects"][0]["score"] == suspects[0].score, "the analyzers' score is kept when they agree"
    assert condition(inc, "ModelAnswered")["status"] == "True"
    assert len(llm.requests) == 2 and "made-up-id" in json.dumps(llm.requests[1]["messages"][-1])

    sent = json.dumps(llm.requests)
    assert "hunter2" not in sent and "10.1.2.3" not in sent, "secrets and IPs never reach the model"
    assert inc["status"]["redaction"], "the redaction report says what was replaced"
    run = kubectl.get("analysisrun", inc["status"]["analysisRunRef"]["name"], namespace)
    assert run["status"]["tokens"] == {"prompt": 100 + 900, "completion": 20 + 120}
    assert run["status"]["model"] == llm.model and run["status"]["endpoint"] == llm.url


@pytest.mark.parametrize("case", ["prose", "unreachable"])
def test_fallback_when_the_model_fails(kubectl, operator_env, namespace, writer, case):
    cases.write("checkout-oomkilled", writer)
    if case == "prose":
        script = [content("The pod probably ran out of memory, I think.")] * 3
        with ScriptedOpenAI(*script) as llm:
            operator_env({"AIOPS_LLM_BASE_URL": llm.url, "AIOPS_LLM_MODEL": llm.model})
            kubectl.apply(incident("fallback"), namespace)
            inc = kubectl.wait("incident", "fallback", namespace, **DONE)
        assert len(llm.requests) == 3, "one try and two repairs, then give up"
    else:
        operator_env(
            {"AIOPS_LLM_BASE_URL": "http://127.0.0.1:1/v1", "AIOPS_LLM_MODEL": "any", "AIOPS_LLM_TIMEOUT_S": "2"}
        )
        kubectl.apply(incident("fallback"), namespace)
        inc = kubectl.wait("incident", "fallback", namespace, **DONE)
    d = inc["status"]["diagnosis"]
    assert phase(inc) == "Diagnosed" and d["executionStatus"] == "RECOVERED_FALLBACK"
    assert d["suspects"][0]["failureMode"] == "OOMKilled"
    model = condition(inc, "ModelAnswered")
    assert model["status"] == "False" and model["reason"] == "AnalysisFallback"
    events = {e["reason"]: e["type"] for e in kubectl.events(namespace, "fallback")}
    assert events.get("AnalysisFallback") == "Warning" and events.get("RootCauseIdentified") == "Normal", events


@pytest.mark.timeout(900)  # a 0.5B model on 2 CPU cores: a minute or more per answer
@pytest.mark.skipif(os.environ.get("AIOPS_SKIP_REAL_MODEL") == "1", reason="AIOPS_SKIP_REAL_MODEL=1")
def test_real_local_model(kubectl, operator_env, namespace, writer, local_model):
    cases.write("checkout-oomkilled", writer)
    operator_env(
        {
            "AIOPS_LLM_BASE_URL": local_model,
            "AIOPS_LLM_MODEL": "qwen2.5-coder-0.5b-instruct-q4_k_m",
            "AIOPS_LLM_MAX_TOKENS": "1024",
        }
    )
    kubectl.apply(incident("real-model"), namespace)
    inc = kubectl.wait("incident", "real-model", namespace, until=DONE["until"], timeout=420, what="a diagnosis")
    d = inc["status"]["diagnosis"]
    run = kubectl.get("analysisrun", inc["status"]["analysisRunRef"]["name"], namespace)
    assert run["status"]["tokens"]["completion"] > 0, "the model really answered"
    assert d["executionStatus"] == "COMPLETED", (d, run["status"].get("error"))
    assert d["evidence"] and d["rootCause"], "a validated answer that cites existing evidence"


def memory_climb(namespace: str, pods: list[str]) -> str:
    """The last hour of the pods' working set climbing towards the limit, as cAdvisor and kube-state-metrics
    would have recorded it."""
    now = int(time.time()) // 60 * 60
    lines = ["# TYPE container_memory_working_set_bytes gauge"]
    for pod in pods:
        sel = f'namespace="{namespace}",pod="{pod}",container="app"'
        lines += [
            f"container_memory_working_set_bytes{{{sel}}} {100e6 + max(0, m - 40) * 7e6} {now - 3600 + m * 60}"
            for m in range(61)
        ]
    lines.append("# TYPE kube_pod_container_resource_limits gauge")
    for pod in pods:
        sel = f'namespace="{namespace}",pod="{pod}",container="app",resource="memory"'
        lines += [f"kube_pod_container_resource_limits{{{sel}}} 268435456 {now - 3600 + m * 60}" for m in range(61)]
    return "\n".join(lines) + "\n# EOF\n"


def test_metric_evidence_through_the_operator_and_prometheus_down(kubectl, operator_env, namespace, writer, tmp_path):
    cases.write("checkout-oomkilled", writer)
    pods = [p.metadata.name for p in writer.core.list_namespaced_pod(namespace).items]
    prom = PrometheusServer(tmp_path)
    prom.backfill(memory_climb(namespace, pods))
    prom.start()
    try:
        operator_env({"AIOPS_PROMETHEUS_URL": prom.url})
        kubectl.apply(incident("with-metrics", analysis={"llm": False}), namespace)
        inc = kubectl.wait("incident", "with-metrics", namespace, **DONE)
    finally:
        prom.stop()
    status = inc["status"]
    growth = [s for s in status["diagnosis"]["suspects"] if s["failureMode"] == "MemoryGrowth"]
    assert sorted(s["resource"] for s in growth) == sorted(f"Pod/{p}" for p in pods)
    assert "MetricAnomaly" not in {s["failureMode"] for s in status["diagnosis"]["suspects"]}  # counted once
    cited = {e["id"]: e for e in status["diagnosis"]["evidence"]}
    assert all(s["evidence"] for s in growth), growth
    assert all(cited[eid]["source"] == "prometheus" for s in growth for eid in s["evidence"])
    assert not [g for g in status.get("evidenceGaps", []) if g.startswith("prometheus")]
    assert status["diagnosis"]["suspects"][0]["failureMode"] == "OOMKilled"  # proof outranks correlation

    # The same Prometheus, now down: a gap in the evidence, the diagnosis still made from the cluster.
    kubectl.apply(incident("prometheus-down", analysis={"llm": False}), namespace)
    inc = kubectl.wait("incident", "prometheus-down", namespace, **DONE)
    gaps = inc["status"]["evidenceGaps"]
    assert any(g.startswith("prometheus/restarts: ConnectionError") for g in gaps), gaps
    assert inc["status"]["diagnosis"]["suspects"][0]["failureMode"] == "OOMKilled"
