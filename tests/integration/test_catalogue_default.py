"""The catalogue is the default path: an Incident's own rootCause run goes to the catalogue's default model without
anyone naming a pool, and falls back to the operator-level endpoint when that model cannot serve.

As in test_pools.py the tests play the kubelet (the pool's Deployment is marked ready by hand) and each model
server is a scripted OpenAI-compatible one: the pool's (its endpointOverride) and the operator's
(AIOPS_LLM_BASE_URL), so that which one answered is plain.
"""

import pytest
import yaml
from test_pools import WEIGHTS_PVC, pool_entry, set_ready

from aiops_dev.controlplane import free_port
from aiops_dev.eval import cases
from harness import checkout_incident, condition, phase
from support.diagnoses import reply_for
from support.scripted_openai import ScriptedOpenAI, answer

DIAGNOSED = {"until": lambda o: phase(o) in ("Diagnosed", "Failed"), "timeout": 60, "what": "a diagnosis"}
FINISHED = {"until": lambda o: phase(o) in ("Succeeded", "Failed"), "timeout": 30, "what": "a finished run"}


def start(kubectl, operator_env, tmp_path, namespace: str, models: dict, defaults: dict, **env: str) -> None:
    """Restarts the operator with this catalogue, its pools in the test's namespace (with their weights' claim)."""
    kubectl.apply(WEIGHTS_PVC, namespace)
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump({"models": models, "defaults": defaults}))
    operator_env(
        {"AIOPS_MODEL_CATALOGUE": str(path), "AIOPS_NAMESPACE": namespace, "AIOPS_POOL_SWEEP_INTERVAL_S": "1", **env}
    )


def rootcause_run(kubectl, namespace: str, incident: str) -> str:
    inc = kubectl.wait(
        "incident", incident, namespace, until=lambda o: (o.get("status") or {}).get("analysisRunRef"), what="a run"
    )
    return inc["status"]["analysisRunRef"]["name"]


def diagnosed(kubectl, namespace: str, inc: dict, run_name: str, reply: dict, model: str) -> dict:
    """The run, after checking that `model` gave the Incident its diagnosis (`reply`) and the run succeeded."""
    d = inc["status"]["diagnosis"]
    assert phase(inc) == "Diagnosed" and d["executionStatus"] == "COMPLETED", d
    assert d["rootCause"] == reply["rootCause"] and d["model"] == model
    run = kubectl.get("analysisrun", run_name, namespace)
    assert phase(run) == "Succeeded", run["status"]
    return run


def test_an_incident_is_diagnosed_on_the_catalogue_default_without_naming_it(
    kubectl, operator_env, namespace, tmp_path, writer
):
    cases.write("checkout-oomkilled", writer)
    reply = reply_for(writer)
    pool_llm = ScriptedOpenAI(answer(reply, prompt_tokens=900, completion_tokens=120), model="qwen-coder")
    with pool_llm, ScriptedOpenAI(model="operator-model") as operator_llm:
        start(
            kubectl, operator_env, tmp_path, namespace, {"qwen": pool_entry(endpointOverride=pool_llm.url)},
            {"default": "qwen"}, AIOPS_LLM_BASE_URL=operator_llm.url, AIOPS_LLM_MODEL=operator_llm.model,
        )  # fmt: skip
        kubectl.apply(checkout_incident("on-default"), namespace)
        name = rootcause_run(kubectl, namespace, "on-default")
        run = kubectl.wait("analysisrun", name, namespace, until=lambda o: phase(o) == "WaitingForModel")
        assert "inference" not in run["spec"], "nobody named a pool"
        assert run["status"]["catalogueModel"] == "qwen"
        assert pool_llm.requests == [], "nothing is sent before the pool is ready"
        set_ready(kubectl, namespace, "aiops-pool-qwen", 1)
        inc = kubectl.wait("incident", "on-default", namespace, **DIAGNOSED)

        # A type that asks no model ignores the default: it neither names the pool nor waits for it.
        anomaly = {
            "apiVersion": "aiops.dev/v1alpha1", "kind": "AnalysisRun", "metadata": {"name": "no-model"},
            "spec": {"type": "anomalyDetection", "inputs": {"queries": ["up"]}},
        }  # fmt: skip
        kubectl.apply(anomaly, namespace)
        other = kubectl.wait("analysisrun", "no-model", namespace, **FINISHED)
    run = diagnosed(kubectl, namespace, inc, name, reply, "qwen-coder")
    status = run["status"]
    assert (status["catalogueModel"], status["endpoint"], status["model"]) == ("qwen", pool_llm.url, "qwen-coder")
    assert status["tokens"] == {"prompt": 900, "completion": 120}
    ready = condition(run, "ModelReady")
    assert (ready["status"], ready["reason"]) == ("True", "Ready"), ready
    assert "catalogue model qwen (pool aiops-pool-qwen" in ready["message"], ready
    assert "chosen by defaults.default" in ready["message"], ready
    assert [r["model"] for r in pool_llm.requests] == ["qwen-coder"] and operator_llm.requests == []

    assert "catalogueModel" not in other["status"] and condition(other, "ModelReady") is None, other["status"]
    assert "no Prometheus endpoint" in other["status"]["error"], "it ran at once, as without a catalogue"
    dep = kubectl.get("deployment", "aiops-pool-qwen", namespace)
    assert dep["metadata"]["annotations"]["aiops.dev/active-runs"] == "0"


@pytest.mark.parametrize("case", ["pool-never-ready", "external-down"])
def test_a_default_that_cannot_serve_falls_back_to_the_operator_endpoint(
    kubectl, operator_env, namespace, tmp_path, writer, case
):
    cases.write("checkout-oomkilled", writer)
    reply = reply_for(writer)
    if case == "pool-never-ready":
        models, why, reason = {"qwen": pool_entry()}, "had no ready replica after 3s", "Timeout"
    else:
        down = f"http://127.0.0.1:{free_port()}/v1"
        models = {"qwen": {"external": {"baseURL": down}, "servedModelName": "qwen-coder"}}
        why, reason = f"catalogue model qwen: cannot reach {down}/models", "ModelUnreachable"
    with ScriptedOpenAI(answer(reply, prompt_tokens=700, completion_tokens=90), model="operator-model") as operator_llm:
        start(
            kubectl, operator_env, tmp_path, namespace, models, {"runTypes": {"rootCause": "qwen"}},
            AIOPS_MODEL_WAIT_S="3", AIOPS_LLM_BASE_URL=operator_llm.url, AIOPS_LLM_MODEL=operator_llm.model,
        )  # fmt: skip
        kubectl.apply(checkout_incident("fallback"), namespace)
        name = rootcause_run(kubectl, namespace, "fallback")
        inc = kubectl.wait("incident", "fallback", namespace, **DIAGNOSED)
    run = diagnosed(kubectl, namespace, inc, name, reply, "operator-model")
    status = run["status"]
    assert status["catalogueModel"] == "qwen", "it was routed there, and says so"
    assert (status["endpoint"], status["model"]) == (operator_llm.url, "operator-model")
    assert status["tokens"] == {"prompt": 700, "completion": 90}
    fell = condition(run, "ModelReady")
    assert (fell["status"], fell["reason"]) == ("False", reason), fell
    assert why in fell["message"], fell
    assert (
        "falling back from catalogue model qwen (chosen by defaults.runTypes.rootCause) to the operator-level "
        f"endpoint {operator_llm.url} (model operator-model)"
    ) in fell["message"], fell
    assert len(operator_llm.requests) == 1
    events = {e["reason"]: e["type"] for e in kubectl.events(namespace, name)}
    assert events.get(reason) == "Warning", events
    if case == "pool-never-ready":
        dep = kubectl.get("deployment", "aiops-pool-qwen", namespace)
        assert dep["spec"]["replicas"] == 0, "nothing else uses the pool: scaled back"
    else:
        assert kubectl.json("get", "deployments", "-n", namespace, "-l", "aiops.dev/pool")["items"] == []


def test_without_an_operator_endpoint_a_default_that_cannot_serve_fails(kubectl, operator_env, namespace, tmp_path):
    models = {"qwen": pool_entry()}
    start(kubectl, operator_env, tmp_path, namespace, models, {"default": "qwen"}, AIOPS_MODEL_WAIT_S="2")
    kubectl.apply(checkout_incident("nowhere"), namespace)
    name = rootcause_run(kubectl, namespace, "nowhere")
    run = kubectl.wait("analysisrun", name, namespace, **FINISHED)
    assert phase(run) == "Failed"
    cond = condition(run, "ModelReady")
    assert (cond["status"], cond["reason"]) == ("False", "Timeout"), cond
    assert run["status"]["error"] == (
        f"pool qwen: Deployment {namespace}/aiops-pool-qwen had no ready replica after 2s; "
        "no operator-level endpoint (AIOPS_LLM_BASE_URL) to use instead"
    )
