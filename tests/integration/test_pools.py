"""Operator-managed vLLM pools: the manifests the operator writes, field by field, and AnalysisRuns scheduled on them.

There is no kubelet here: the tests play the kubelet and the Deployment controller by patching the
Deployment's status (readyReplicas). The pool's catalogue entry points endpointOverride at a scripted
OpenAI server, as it would point at a port-forward when the operator runs outside the cluster.
"""

import json
import os
import subprocess
import sys

import pytest
import yaml

from aiops_dev.eval import cases
from harness import REPO, checkout_incident, condition, phase
from support.scripted_openai import Reply, ScriptedOpenAI, answer

DONE = {"until": lambda o: phase(o) in ("Succeeded", "Failed"), "timeout": 90, "what": "a finished run"}
RUNBOOK = "When PaymentsHighErrorRate fires, restart the payments deployment; if that fails, page payments-oncall."


def sop_answer() -> dict:
    return {
        "title": "Payments API returns 5xx",
        "description": "Restart payments, else page payments-oncall.",
        "match": {"alertNames": ["PaymentsHighErrorRate"], "symptoms": ["5xx"]},
        "steps": [
            {
                "id": "restart",
                "type": "action",
                "title": "Restart payments",
                "action": {"type": "rolloutRestart", "params": [{"name": "deployment", "value": "payments"}]},
                "automation": "manual",
                "approvalRequired": None,
                "onSuccess": None,
                "onFailure": "page",
                "instructions": "",
            },
            {"id": "page", "type": "escalate", "title": "Page payments-oncall", "instructions": ""},
        ],
        "escalation": {"afterMinutes": None, "contacts": ["payments-oncall"], "channel": None},
        "findings": [],
    }


def sop_run(name: str, pool: str) -> dict:
    return {
        "apiVersion": "aiops.dev/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": name},
        "spec": {"type": "sopAnalysis", "inputs": {"text": RUNBOOK}, "inference": {"pool": pool}},
    }


def pool_entry(**override) -> dict:
    entry = {
        "image": "vllm/vllm-openai:v0.11.0",
        "weights": {"pvc": {"claimName": "models", "subPath": "qwen2.5-coder-1.5b"}},
        "servedModelName": "qwen-coder",
        "tensorParallelSize": 2,
        "gpuCount": 2,
        "gpuProduct": "NVIDIA-L4",
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "maxModelLen": 8192,
        "extraArgs": ["--enable-prefix-caching"],
        "idleSeconds": 3600,
    }
    return entry | override


WEIGHTS_PVC = {
    "apiVersion": "v1",
    "kind": "PersistentVolumeClaim",
    "metadata": {"name": "models"},
    "spec": {"accessModes": ["ReadOnlyMany"], "resources": {"requests": {"storage": "20Gi"}}},
}


def start(kubectl, operator_env, tmp_path, models: dict, weights: bool = True, **env) -> str:
    """Restarts the operator with this catalogue (and the weights' claim); the operator's (pool) namespace."""
    if weights and "AIOPS_NAMESPACE" in env:
        kubectl.apply(WEIGHTS_PVC, env["AIOPS_NAMESPACE"])
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump({"models": models}))
    operator_env({"AIOPS_MODEL_CATALOGUE": str(path), "AIOPS_POOL_SWEEP_INTERVAL_S": "1", **env})
    return env.get("AIOPS_NAMESPACE", "aiops-system")


def set_ready(kubectl, namespace: str, name: str, ready: int) -> None:
    """What the kubelet and the Deployment controller would report."""
    status = {"replicas": ready, "readyReplicas": ready, "availableReplicas": ready, "updatedReplicas": ready}
    kubectl(
        "patch", "deployment", name, "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip


def test_run_schedules_a_pool_waits_for_it_and_succeeds(kubectl, operator_env, namespace, tmp_path):
    with ScriptedOpenAI(answer(sop_answer(), prompt_tokens=900, completion_tokens=300), model="qwen-coder") as llm:
        start(
            kubectl, operator_env, tmp_path, {"qwen": pool_entry(endpointOverride=llm.url)}, AIOPS_NAMESPACE=namespace
        )
        kubectl.apply(sop_run("on-pool", "qwen"), namespace)
        run = kubectl.wait(
            "analysisrun", "on-pool", namespace, until=lambda o: phase(o) == "WaitingForModel", what="WaitingForModel"
        )
        assert condition(run, "Scheduled")["status"] == "True"
        assert condition(run, "ModelReady")["reason"] == "Waiting"
        dep = kubectl.get("deployment", "aiops-pool-qwen", namespace)
        check_manifest(dep, kubectl.get("service", "aiops-pool-qwen", namespace))
        assert llm.requests == [], "nothing is sent before the pool is ready"
        set_ready(kubectl, namespace, "aiops-pool-qwen", 1)
        run = kubectl.wait("analysisrun", "on-pool", namespace, **DONE)
    status = run["status"]
    assert phase(run) == "Succeeded", status
    assert status["tokens"] == {"prompt": 900, "completion": 300}
    assert status["durationSeconds"] > 0 and status["attempts"] == 1
    assert status["endpoint"] == llm.url and status["model"] == "qwen-coder"
    assert condition(run, "ModelReady")["status"] == "True"
    (request,) = llm.requests
    assert request["model"] == "qwen-coder"
    phases = [e["reason"] for e in kubectl.events(namespace, "on-pool")]
    for p in ("Scheduling", "WaitingForModel", "Running", "Succeeded"):
        assert p in phases, phases
    dep = kubectl.get("deployment", "aiops-pool-qwen", namespace)
    assert dep["metadata"]["annotations"]["aiops.dev/last-used"]
    assert dep["metadata"]["annotations"]["aiops.dev/active-runs"] == "0"


def check_manifest(dep: dict, svc: dict) -> None:
    meta = dep["metadata"]
    assert meta["labels"]["aiops.dev/pool"] == "qwen"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "aiops-operator"
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    pod = dep["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["automountServiceAccountToken"] is False
    (c,) = pod["containers"]
    assert c["resources"] == {"requests": {"nvidia.com/gpu": "2"}, "limits": {"nvidia.com/gpu": "2"}}
    # restricted-v2: non-root without a fixed UID, no escalation, all capabilities dropped, RuntimeDefault seccomp
    sc = c["securityContext"]
    assert sc == {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert "runAsUser" not in sc and "runAsUser" not in pod["securityContext"] and "privileged" not in sc
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http", "scheme": "HTTP"}
    assert c["ports"][0]["containerPort"] == 8000
    assert c["command"] == ["vllm", "serve"]
    assert c["args"] == [
        "/models/qwen2.5-coder-1.5b",
        "--served-model-name", "qwen-coder",
        "--tensor-parallel-size", "2",
        "--host", "0.0.0.0",
        "--port", "8000",
        "--max-model-len", "8192",
        "--enable-prefix-caching",
    ]  # fmt: skip
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["weights"]["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory"}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["dshm"]["mountPath"] == "/dev/shm" and mounts["weights"]["readOnly"] is True
    assert svc["spec"]["selector"] == {"aiops.dev/pool": "qwen"}
    assert svc["spec"]["ports"][0]["port"] == 8000
    assert svc["metadata"]["ownerReferences"][0]["name"] == "aiops-pool-qwen"


def test_queue_with_a_limit_of_one(kubectl, operator_env, namespace, tmp_path):
    replies = [answer(sop_answer()), answer(sop_answer())]
    with ScriptedOpenAI(*replies, model="qwen-coder") as llm:
        entry = pool_entry(endpointOverride=llm.url, maxConcurrentRuns=1)
        start(kubectl, operator_env, tmp_path, {"qwen": entry}, AIOPS_NAMESPACE=namespace)
        kubectl.apply(sop_run("first", "qwen"), namespace)
        kubectl.wait("analysisrun", "first", namespace, until=lambda o: phase(o) == "WaitingForModel")
        kubectl.apply(sop_run("second", "qwen"), namespace)
        second = kubectl.wait(
            "analysisrun", "second", namespace, until=lambda o: o.get("status", {}).get("queuePosition") == 1
        )
        assert phase(second) == "Scheduling"
        assert condition(second, "Scheduled")["reason"] == "Queued"
        set_ready(kubectl, namespace, "aiops-pool-qwen", 1)
        for name in ("first", "second"):
            run = kubectl.wait("analysisrun", name, namespace, **DONE)
            assert phase(run) == "Succeeded", run["status"]
            assert "queuePosition" not in run["status"]


def test_pool_that_never_becomes_ready_times_out(kubectl, operator_env, namespace, tmp_path):
    start(kubectl, operator_env, tmp_path, {"qwen": pool_entry()}, AIOPS_NAMESPACE=namespace, AIOPS_MODEL_WAIT_S="3")
    kubectl.apply(sop_run("never", "qwen"), namespace)
    run = kubectl.wait("analysisrun", "never", namespace, **DONE)
    assert phase(run) == "Failed"
    cond = condition(run, "ModelReady")
    assert cond["status"] == "False" and cond["reason"] == "Timeout", cond
    assert "no ready replica after 3s" in run["status"]["error"]
    events = {e["reason"]: e["type"] for e in kubectl.events(namespace, "never")}
    assert events.get("Timeout") == "Warning", events
    dep = kubectl.get("deployment", "aiops-pool-qwen", namespace)
    assert dep["spec"]["replicas"] == 0, "nothing else uses the pool: scaled back"


def test_missing_weights_claim_fails_at_once_and_creates_nothing(kubectl, operator_env, namespace, tmp_path):
    start(kubectl, operator_env, tmp_path, {"qwen": pool_entry()}, weights=False, AIOPS_NAMESPACE=namespace)
    kubectl.apply(sop_run("no-weights", "qwen"), namespace)
    run = kubectl.wait("analysisrun", "no-weights", namespace, **DONE)
    assert phase(run) == "Failed"
    cond = condition(run, "ModelReady")
    assert (cond["status"], cond["reason"]) == ("False", "WeightsMissing")
    assert f"PersistentVolumeClaim {namespace}/models does not exist" in cond["message"]
    assert kubectl.get("deployment", "aiops-pool-qwen", namespace) is None, "no orphaned Deployment"


def test_unknown_pool_fails_naming_the_field(kubectl, operator_env, namespace, tmp_path):
    start(kubectl, operator_env, tmp_path, {"qwen": pool_entry()}, AIOPS_NAMESPACE=namespace)
    kubectl.apply(sop_run("nowhere", "llama"), namespace)
    run = kubectl.wait("analysisrun", "nowhere", namespace, **DONE)
    assert phase(run) == "Failed"
    assert run["status"]["error"] == 'spec.inference.pool: no model "llama" in the catalogue (known: qwen)'
    assert kubectl.get("deployment", "aiops-pool-llama", namespace) is None


def test_idle_pool_scales_to_zero_and_back(kubectl, operator_env, namespace, tmp_path):
    with ScriptedOpenAI(answer(sop_answer()), answer(sop_answer()), model="qwen-coder") as llm:
        entry = pool_entry(endpointOverride=llm.url, idleSeconds=2)
        start(kubectl, operator_env, tmp_path, {"qwen": entry}, AIOPS_NAMESPACE=namespace)
        kubectl.apply(sop_run("once", "qwen"), namespace)
        kubectl.wait("analysisrun", "once", namespace, until=lambda o: phase(o) == "WaitingForModel")
        set_ready(kubectl, namespace, "aiops-pool-qwen", 1)
        assert phase(kubectl.wait("analysisrun", "once", namespace, **DONE)) == "Succeeded"
        dep = kubectl.wait(
            "deployment", "aiops-pool-qwen", namespace, until=lambda d: d["spec"]["replicas"] == 0, timeout=20
        )
        assert "idle" in dep["metadata"]["annotations"]["aiops.dev/scaled"]
        set_ready(kubectl, namespace, "aiops-pool-qwen", 0)
        kubectl.apply(sop_run("again", "qwen"), namespace)
        kubectl.wait("deployment", "aiops-pool-qwen", namespace, until=lambda d: d["spec"]["replicas"] == 1)
        set_ready(kubectl, namespace, "aiops-pool-qwen", 1)
        assert phase(kubectl.wait("analysisrun", "again", namespace, **DONE)) == "Succeeded"


def test_external_model_never_creates_a_deployment(kubectl, operator_env, namespace, tmp_path):
    with ScriptedOpenAI(answer(sop_answer(), prompt_tokens=50, completion_tokens=5), model="gpt-x") as llm:
        models = {"hosted": {"external": {"baseURL": llm.url}, "servedModelName": "gpt-x"}}
        start(kubectl, operator_env, tmp_path, models, AIOPS_NAMESPACE=namespace)
        kubectl.apply(sop_run("outside", "hosted"), namespace)
        run = kubectl.wait("analysisrun", "outside", namespace, **DONE)
    assert phase(run) == "Succeeded", run["status"]
    assert run["status"]["endpoint"] == llm.url and run["status"]["tokens"] == {"prompt": 50, "completion": 5}
    assert kubectl.json("get", "deployments", "-n", namespace)["items"] == []
    assert kubectl.json("get", "services", "-n", namespace)["items"] == []


def test_bad_catalogue_stops_the_operator_naming_the_field(kubeconfig, tmp_path):
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump({"models": {"qwen": pool_entry(gpuProduct="NVIDIA-H1OO")}}))
    proc = subprocess.run(
        [sys.executable, "-m", "aiops.cli", "run"],
        env={"PATH": "/usr/bin:/bin", "KUBECONFIG": kubeconfig, "AIOPS_MODEL_CATALOGUE": str(path)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode != 0
    assert "models.qwen.gpuProduct: unknown GPU product 'NVIDIA-H1OO'" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


# A 0.5B model on 2 busy CPU cores: about 3 tokens/s under the json_schema grammar, so one answer of up to 1024
# tokens can take minutes, and a repair asks again. Every limit below leaves room for that.
MODEL_REQUEST_TIMEOUT_S = 600
MODEL_RUN_TIMEOUT_S = 1500


@pytest.mark.timeout(MODEL_RUN_TIMEOUT_S + 420)  # + the model's first download and start (local_model)
@pytest.mark.skipif(os.environ.get("AIOPS_SKIP_REAL_MODEL") == "1", reason="AIOPS_SKIP_REAL_MODEL=1")
def test_a_root_cause_run_on_a_pool_answered_by_the_real_local_model(
    kubectl, operator_env, namespace, tmp_path, writer, local_model
):
    """The pool's endpoint is the real llama.cpp server (what a vLLM pod would serve, on CPU)."""
    from aiops_dev.controlplane import free_port

    served = "qwen2.5-coder-0.5b-instruct-q4_k_m"
    entry = pool_entry(endpointOverride=local_model, servedModelName=served)
    # A pool call takes the operator's model settings (timeout, token budget) from AIOPS_LLM_*, which apply only
    # with AIOPS_LLM_BASE_URL set; without it the gateway's 60 s default timed out on a busy machine and the run
    # fell back to the analyzers with no tokens. The default endpoint is a closed port: the Incident's own
    # diagnosis falls back at once, and only the pool reaches the model.
    start(
        kubectl, operator_env, tmp_path, {"qwen": entry}, AIOPS_NAMESPACE=namespace,
        AIOPS_LLM_BASE_URL=f"http://127.0.0.1:{free_port()}/v1", AIOPS_LLM_MODEL=served,
        AIOPS_LLM_TIMEOUT_S=str(MODEL_REQUEST_TIMEOUT_S), AIOPS_LLM_MAX_TOKENS="1024",
    )  # fmt: skip
    cases.write("checkout-oomkilled", writer)
    kubectl.apply(checkout_incident("checkout-oom"), namespace)
    kubectl.wait(
        "incident", "checkout-oom", namespace, timeout=120, what="a diagnosis",
        until=lambda o: o.get("status", {}).get("diagnosis"),
    )  # fmt: skip
    run = {
        "apiVersion": "aiops.dev/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": "rca-on-pool"},
        "spec": {"type": "rootCause", "incidentRef": {"name": "checkout-oom"}, "inference": {"pool": "qwen"}},
    }
    kubectl.apply(run, namespace)
    kubectl.wait("analysisrun", "rca-on-pool", namespace, until=lambda o: phase(o) == "WaitingForModel")
    set_ready(kubectl, namespace, "aiops-pool-qwen", 1)
    try:
        run = kubectl.wait("analysisrun", "rca-on-pool", namespace, **{**DONE, "timeout": MODEL_RUN_TIMEOUT_S})
    except AssertionError as exc:
        last = kubectl.get("analysisrun", "rca-on-pool", namespace) or {}
        raise AssertionError(f"{exc}; the run's status:\n{json.dumps(last.get('status'), indent=2)}") from None
    status = run["status"]
    shown = f"the run's status:\n{json.dumps(status, indent=2)}"
    assert phase(run) == "Succeeded", shown
    assert status["tokens"]["prompt"] > 500 and status["tokens"]["completion"] > 0, f"the model did not answer; {shown}"
    assert status["endpoint"] == local_model and status["model"] in (served, "deterministic-analyzers"), shown
    assert status["durationSeconds"] > 1, shown
    inc = kubectl.get("incident", "checkout-oom", namespace)
    assert inc["status"]["diagnosis"]["suspects"], inc["status"]["diagnosis"]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(status=404, body='{"error": {"message": "The model `qwen-coder` does not exist."}}'), "404"),
        (Reply(body="<html><body>502 Bad Gateway</body></html>"), "is not a chat completion"),
    ],
    ids=["404", "not-json"],
)
def test_a_pool_endpoint_that_answers_nonsense_fails_the_run_clearly(
    kubectl, operator_env, namespace, tmp_path, reply, expected
):
    with ScriptedOpenAI(*[reply] * 8, model="qwen-coder") as llm:
        start(
            kubectl, operator_env, tmp_path, {"qwen": pool_entry(endpointOverride=llm.url)}, AIOPS_NAMESPACE=namespace
        )
        kubectl.apply(sop_run("nonsense", "qwen"), namespace)
        kubectl.wait("analysisrun", "nonsense", namespace, until=lambda o: phase(o) == "WaitingForModel")
        set_ready(kubectl, namespace, "aiops-pool-qwen", 1)
        run = kubectl.wait("analysisrun", "nonsense", namespace, **DONE)
    assert phase(run) == "Failed"
    assert expected in run["status"]["error"], run["status"]["error"]
    assert condition(run, "ModelAnswered")["status"] == "False"
