"""sopAnalysis AnalysisRuns through the real operator: a runbook's text -> an SOP draft and findings, with the
model path scripted for deterministic failures."""

import json

from aiops.sops import sopfile
from harness import condition, phase, wait_for
from support.scripted_openai import ScriptedOpenAI, answer, content

DONE = {"until": lambda o: phase(o) in ("Succeeded", "Failed"), "timeout": 90, "what": "a finished run"}

RUNBOOK = """Payments API 5xx -- copied from the wiki

When PaymentsHighErrorRate fires, open the Grafana board and look at the 5xx rate.
If it is high, restart the payments deployment. If that does not help, page payments-oncall.
Service account for the admin UI: https://svc-admin:Tr0ub4dor-3@payments-admin.internal/
"""


# The properties of each step type, as strict json_schema makes the model write them: all present.
STEP_FIELDS = {
    "check": ("promql", "command", "automation", "onSuccess", "onFailure", "instructions"),
    "decision": ("promql", "command", "onSuccess", "onFailure", "instructions"),
    "action": ("action", "automation", "approvalRequired", "onSuccess", "onFailure", "instructions"),
    "escalate": ("instructions",),
}


def step(id_, type_, title, **fields):
    """A draft step as the model writes it."""
    base = {"id": id_, "type": type_, "title": title}
    base |= {k: "" if k == "instructions" else None for k in STEP_FIELDS[type_]}
    assert fields.keys() <= base.keys(), f"{type_} steps have no {fields.keys() - base.keys()}"
    return base | fields


def draft(**override) -> dict:
    body = {
        "title": "Payments API returns 5xx",
        "description": "The payments 5xx rate is high: restart payments, else page payments-oncall.",
        "match": {"alertNames": ["PaymentsHighErrorRate"], "symptoms": ["5xx"]},
        "steps": [
            step(
                "check-5xx",
                "check",
                "5xx rate is high",
                promql='sum(rate(http_requests_total{job="payments",code=~"5.."}[5m]))',
                instructions="The runbook says 'high' without a number.",
                onFailure="page",
            ),
            step(
                "restart",
                "action",
                "Restart payments",
                action={"type": "rolloutRestart", "params": [{"name": "deployment", "value": "payments"}]},
                automation="manual",
            ),
            step("page", "escalate", "Page payments-oncall"),
        ],
        "escalation": {"afterMinutes": None, "contacts": ["payments-oncall"], "channel": None},
        "findings": [
            {"rule": "check-without-threshold", "step": "check-5xx", "message": "Say what 'high' means, e.g. > 5 %."},
            {
                "rule": "no-rollback",
                "step": "restart",
                "message": "Describe how to undo a restart that makes it worse.",
            },
            {"rule": "action-without-approval", "step": "restart", "message": "Ask for approval before restarting."},
        ],
    }
    body.update(override)
    return body


def sop_run(name: str, text: str = RUNBOOK, **spec) -> dict:
    return {
        "apiVersion": "aiops.dev/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": name},
        "spec": {"type": "sopAnalysis", "inputs": {"text": text}, **spec},
    }


def reasons(kubectl, namespace, name, *expected: str) -> dict[str, str]:
    """Event reason -> type on the object, once the `expected` reasons are there: Events are posted after
    the status write that the test waited for, asynchronously."""

    def found():
        events = {e["reason"]: e["type"] for e in kubectl.events(namespace, name)}
        return events if all(r in events for r in expected) else None

    try:
        return wait_for(found, timeout=15, what=f"Events {expected}")
    except AssertionError:
        return {e["reason"]: e["type"] for e in kubectl.events(namespace, name)}


def test_good_answer_gives_a_draft_with_lint_and_model_findings(kubectl, operator_env, namespace):
    with ScriptedOpenAI(answer(draft(), prompt_tokens=1400, completion_tokens=650)) as llm:
        operator_env({"AIOPS_LLM_BASE_URL": llm.url, "AIOPS_LLM_MODEL": llm.model})
        kubectl.apply(sop_run("payments-wiki", inference={"temperature": 0.1}), namespace)
        run = kubectl.wait("analysisrun", "payments-wiki", namespace, **DONE)
    status = run["status"]
    assert phase(run) == "Succeeded", status
    assert status["attempts"] == 1 and status["durationSeconds"] > 0
    assert status["tokens"] == {"prompt": 1400, "completion": 650}
    assert status["model"] == llm.model and status["endpoint"] == llm.url
    result = status["result"]
    assert result["promptVersion"] == "sop-v2"
    assert [s["id"] for s in result["sopDraft"]["steps"]] == ["check-5xx", "restart", "page"]
    assert result["sopDraft"]["steps"][1]["action"] == {"type": "rolloutRestart", "params": {"deployment": "payments"}}
    assert "source" not in result["sopDraft"]
    # The markdown imports as a runbook and gives back the draft.
    back = sopfile.parse(result["sopMarkdown"], "payments-api-returns-5xx.md")
    assert back.spec.model_copy(update={"source": None}).wire() == result["sopDraft"]

    found = {(f["source"], f["rule"], f.get("step")): f for f in result["findings"]}
    assert ("lint", "promql-without-threshold", "check-5xx") in found
    assert ("lint", "unverified-action", "restart") in found
    assert ("model", "no-rollback", "restart") in found and ("model", "check-without-threshold", "check-5xx") in found
    assert found[("model", "no-rollback", "restart")]["severity"] == "warning"
    assert result["findings"][0]["source"] == "lint", "deterministic findings first"
    assert "3 steps" in result["summary"]

    assert condition(run, "ModelAnswered")["reason"] == "Completed"
    assert condition(run, "Ready")["reason"] == "Accepted"
    events = reasons(kubectl, namespace, "payments-wiki", "Running", "Succeeded")
    assert events.get("Running") == "Normal" and events.get("Succeeded") == "Normal", events

    (request,) = llm.requests
    assert request["temperature"] == 0.1 and request["max_tokens"] == 2048, "the SOP token floor applies"
    assert request["response_format"]["json_schema"]["name"] == "sop_draft"


def test_secrets_in_the_runbook_never_reach_the_model(kubectl, operator_env, namespace):
    with ScriptedOpenAI(answer(draft())) as llm:
        operator_env({"AIOPS_LLM_BASE_URL": llm.url, "AIOPS_LLM_MODEL": llm.model})
        kubectl.apply(sop_run("leaky-wiki"), namespace)
        run = kubectl.wait("analysisrun", "leaky-wiki", namespace, **DONE)
    assert phase(run) == "Succeeded", run["status"]
    sent = json.dumps(llm.requests)
    assert "Tr0ub4dor-3" not in sent, "the password in the wiki page reached the model"
    assert "svc-admin:<PASSWORD_1>@payments-admin.internal" in sent, "the rest of the URL is kept for the model"
    assert run["status"]["result"]["redaction"] == {"PASSWORD": 1}
    assert "Tr0ub4dor-3" not in json.dumps(run["status"])


def test_broken_step_graph_is_repaired(kubectl, operator_env, namespace):
    bad = draft()
    bad["steps"][0]["onFailure"] = "page-oncall"  # no such step
    with ScriptedOpenAI(answer(bad), answer(draft())) as llm:
        operator_env({"AIOPS_LLM_BASE_URL": llm.url, "AIOPS_LLM_MODEL": llm.model})
        kubectl.apply(sop_run("needs-repair"), namespace)
        run = kubectl.wait("analysisrun", "needs-repair", namespace, **DONE)
    assert phase(run) == "Succeeded", run["status"]
    assert len(llm.requests) == 2
    repair = llm.requests[1]["messages"][-1]["content"]
    assert "steps[0].onFailure: no step has id 'page-oncall'; the step ids are: check-5xx, restart, page" in repair
    assert run["status"]["result"]["sopDraft"]["steps"][0]["onFailure"] == "page"
    assert run["status"]["tokens"] == {"prompt": 200, "completion": 40}, "both replies are counted"


def test_prose_until_the_attempts_run_out_fails_clearly(kubectl, operator_env, namespace):
    with ScriptedOpenAI(*[content("Here is a nicer runbook: 1. restart payments 2. page someone")] * 3) as llm:
        operator_env({"AIOPS_LLM_BASE_URL": llm.url, "AIOPS_LLM_MODEL": llm.model})
        kubectl.apply(sop_run("prose-only"), namespace)
        run = kubectl.wait("analysisrun", "prose-only", namespace, **DONE)
    status = run["status"]
    assert phase(run) == "Failed" and len(llm.requests) == 3, "one try and two repairs"
    assert "gave no valid answer in 3 replies" in status["error"] and "No SOP draft was made" in status["error"]
    assert "reply: Invalid JSON" in status["error"]
    assert "sopDraft" not in status["result"] and status["result"]["redaction"] == {"PASSWORD": 1}
    assert status["tokens"] == {"prompt": 300, "completion": 60}
    model = condition(run, "ModelAnswered")
    assert model["status"] == "False" and model["reason"] == "InvalidAnswer"
    events = reasons(kubectl, namespace, "prose-only", "InvalidAnswer", "Failed")
    assert events.get("InvalidAnswer") == "Warning" and events.get("Failed") == "Warning", events


MARKDOWN = """---
name: payments-5xx
escalation:
  afterMinutes: 15
  contacts: [payments-oncall]
---

# Payments API returns 5xx

## check: errors — 5xx ratio above 5 %

- promql: `sum(rate(http_requests_total{job="payments",code=~"5.."}[5m])) > 0.05`

## action: restart — Restart payments

- action: rolloutRestart
- approval: required

## escalate: page — Page payments-oncall
"""


def test_without_a_model(kubectl, operator, namespace):
    """Prose fails saying a model is needed; runbook markdown is parsed and linted without one."""
    kubectl.apply(sop_run("prose-no-model"), namespace)
    kubectl.apply(sop_run("markdown-no-model", MARKDOWN), namespace)
    prose = kubectl.wait("analysisrun", "prose-no-model", namespace, **DONE)
    assert phase(prose) == "Failed"
    assert prose["status"]["error"].startswith("no model is configured (AIOPS_LLM_BASE_URL)")
    assert condition(prose, "ModelAnswered")["reason"] == "NoModelConfigured"
    assert reasons(kubectl, namespace, "prose-no-model", "NoModelConfigured").get("NoModelConfigured") == "Warning"
    assert "tokens" not in prose["status"] and "model" not in prose["status"]

    md = kubectl.wait("analysisrun", "markdown-no-model", namespace, **DONE)
    assert phase(md) == "Succeeded", md["status"]
    result = md["status"]["result"]
    assert result["sopDraft"]["title"] == "Payments API returns 5xx"
    assert [(f["source"], f["rule"], f.get("step")) for f in result["findings"]] == [
        ("lint", "unverified-action", "restart")
    ]
    assert condition(md, "ModelAnswered")["reason"] == "NoModelConfigured"


# No test with the real local model: qwen2.5-coder-0.5b (the suite's `local_model`) does not produce a usable
# draft. Measured on 2 CPU cores it wrote a step that branches to itself (a cycle) and a cordonNode for
# "page payments-oncall", then, repaired, repeated one step until max_tokens, at 3 tokens/s under the json_schema
# grammar (other test runs shared the cores). Validation stays as it is: SOP analysis needs a stronger model.
