"""From diagnosis to resolution through the real operator: SOP matching, approval with kubectl patch,
a real rollback to the previous ReplicaSet, a decision branch, escalation by timeout, effect statistics."""

import json
import urllib.error
import urllib.request

from aiops_dev.controlplane import free_port
from aiops_dev.eval import cases
from harness import checkout_incident, condition, phase, wait_for

DIAGNOSED_LLM_OFF = {"analysis": {"llm": False}}


def incident(name, **spec):
    return checkout_incident(name, **{**DIAGNOSED_LLM_OFF, **spec})


def sop(name, steps, **spec):
    return {"apiVersion": "aiops.dev/v1alpha1", "kind": "SOP", "metadata": {"name": name},
            "spec": {"title": f"runbook {name}", "steps": steps, **spec}}  # fmt: skip


OOM_RUNBOOK = sop(
    "oom-rollback",
    [
        {"id": "confirm-oom", "type": "check", "title": "Last termination was OOMKilled",
         "command": "kubectl -n $NAMESPACE get pods -l app=$TARGET"
                    " -o jsonpath={.items[*].status.containerStatuses[*].lastState.terminated.reason}",
         "onFailure": "page"},
        {"id": "rollback", "type": "action", "title": "Roll back to the previous revision",
         "action": {"type": "rollbackDeployment"}, "automation": "auto", "approvalRequired": True,
         "onSuccess": "verify", "onFailure": "page"},
        {"id": "page", "type": "escalate", "title": "Page the checkout team"},
        {"id": "verify", "type": "check", "title": "The rollout history is readable",
         "command": "kubectl -n $NAMESPACE rollout history deployment/$TARGET"},
    ],
    match={"symptoms": ["OOMKilled"], "resourceKinds": ["Deployment"]},
)  # fmt: skip


def sop_step(inc, step_id):
    return next(s for s in inc["status"]["sop"]["steps"] if s["id"] == step_id)


def test_approval_then_real_rollback_then_resolved(kubectl, operator_env, namespace, writer):
    port = free_port()
    # No admission webhook here (tests/integration/test_approvals.py has it): the approval below is a claim,
    # which a dev setup may allow, marked unverified.
    operator_env({"AIOPS_METRICS_PORT": str(port), "AIOPS_APPROVALS": "unverified-allowed"})
    cases.write("checkout-oomkilled", writer)
    kubectl.apply(OOM_RUNBOOK, namespace)
    kubectl.apply(incident("oom"), namespace)
    inc = kubectl.wait(
        "incident", "oom", namespace, timeout=60, what="the rollback step waiting for approval",
        until=lambda o: (o.get("status", {}).get("sop") or {}).get("current") == "rollback"
        and sop_step(o, "rollback")["state"] == "AwaitingApproval",
    )  # fmt: skip
    assert phase(inc) == "Remediating"
    assert condition(inc, "SOPMatched")["reason"] == "Matched"
    assert inc["status"]["sop"]["name"] == "oom-rollback" and "suspect OOMKilled" in inc["status"]["sop"]["reason"]
    assert sop_step(inc, "confirm-oom")["state"] == "Succeeded"
    assert "OOMKilled" in sop_step(inc, "confirm-oom")["output"]
    image = "{.spec.template.spec.containers[0].image}"
    assert kubectl("-n", namespace, "get", "deploy", "checkout", "-o", f"jsonpath={image}").stdout.endswith("1.5.0")
    reasons = [e["reason"] for e in kubectl.events(namespace, "oom")]
    assert reasons.count("ApprovalRequired") == 1, reasons

    approval = {"spec": {"approvals": [{"step": "rollback", "approvedBy": "jane@example.com"}]}}
    kubectl("-n", namespace, "patch", "incident", "oom", "--type", "merge", "-p", json.dumps(approval))
    inc = kubectl.wait("incident", "oom", namespace, until=lambda o: phase(o) in ("Resolved", "Escalated"),
                       timeout=60, what="the runbook to finish")  # fmt: skip
    assert phase(inc) == "Resolved", inc["status"]["sop"]
    assert [s["state"] for s in inc["status"]["sop"]["steps"]] == ["Succeeded", "Succeeded", "Skipped", "Succeeded"]
    # The Deployment really went back to revision 1's template.
    assert kubectl("-n", namespace, "get", "deploy", "checkout", "-o", f"jsonpath={image}").stdout.endswith("1.4.2")
    [audit] = inc["status"]["sop"]["audit"]
    assert audit["approvedBy"] == "jane@example.com (unverified)" and audit["dryRun"] == "passed"
    approved = condition(inc, "Approved")
    assert (approved["status"], approved["reason"]) == ("True", "ApprovedUnverified")
    assert "checkout:1.5.0" in audit["before"] and "checkout:1.4.2" in audit["after"]
    assert audit["target"] == f"Deployment/{namespace}/checkout" and inc["status"]["resolvedAt"]

    stats = kubectl.wait("sop", "oom-rollback", namespace, until=lambda o: (o.get("status") or {}).get("stats"),
                         timeout=30, what="SOP statistics")["status"]["stats"]  # fmt: skip
    assert (stats["timesUsed"], stats["resolved"], stats["escalated"], stats["successRate"]) == (1, 1, 0, 1)
    assert stats["meanTimeToResolveSeconds"] > 0

    kubectl("-n", namespace, "patch", "incident", "oom", "--type", "merge",
            "-p", json.dumps({"spec": {"feedback": {"correct": True, "by": "jane@example.com"}}}))  # fmt: skip
    stats = kubectl.wait("sop", "oom-rollback", namespace, until=lambda o: o["status"]["stats"].get("feedbackCount"),
                         timeout=30, what="feedback in the SOP statistics")["status"]["stats"]  # fmt: skip
    assert (stats["feedbackCount"], stats["diagnosisAccuracy"]) == (1, 1)

    # The same figures on the operator's /metrics, beside what this operator process did.
    text = wait_for(lambda: scrape(port), 20, "the metrics endpoint")
    assert 'aiops_sop_actions_total{action="rollbackDeployment",outcome="done"} 1.0' in text
    labels = f'namespace="{namespace}",sop="oom-rollback"'
    assert f"aiops_sop_success_ratio{{{labels}}} 1.0" in text
    assert f"aiops_sop_diagnosis_accuracy_ratio{{{labels}}} 1.0" in text
    assert 'aiops_diagnosis_feedback_accuracy_ratio{model="deterministic-analyzers"}' in text
    assert 'aiops_incidents{phase="Resolved",severity="critical"}' in text


def scrape(port, path="/metrics"):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return resp.read().decode()
    except OSError:
        return None


def test_health_and_readiness_endpoints(operator_env):
    port = free_port()
    operator_env({"AIOPS_METRICS_PORT": str(port)})
    assert wait_for(lambda: scrape(port, "/healthz"), 20, "/healthz").startswith("ok: event loop heartbeat")
    assert scrape(port, "/readyz") == "ok: API server serves aiops.dev/v1alpha1\n"
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/nope", timeout=2)
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
    else:
        raise AssertionError("/nope answered 200")


def test_decision_branch_and_escalation_by_timeout(kubectl, operator, namespace, writer):
    cases.write("checkout-oomkilled", writer)
    runbook = sop(
        "branchy",
        [
            {"id": "canary-pods", "type": "decision", "title": "Is a canary running?",
             "command": "kubectl -n $NAMESPACE get pods -l track=canary -o name",
             "onSuccess": "delete-canary", "onFailure": "scale-up"},
            {"id": "delete-canary", "type": "action", "title": "Restart the canary",
             "action": {"type": "restartPod"}, "automation": "auto"},
            {"id": "scale-up", "type": "action", "title": "Scale checkout to 4",
             "action": {"type": "scaleDeployment", "params": {"replicas": "4"}}, "automation": "suggest",
             "timeoutSeconds": 5},
        ],
    )  # fmt: skip
    kubectl.apply(runbook, namespace)
    kubectl.apply(incident("branch", sopRef={"name": "branchy"}), namespace)
    inc = kubectl.wait("incident", "branch", namespace, until=lambda o: phase(o) == "Escalated", timeout=60,
                       what="escalation after the approval timeout")  # fmt: skip
    steps = {s["id"]: s for s in inc["status"]["sop"]["steps"]}
    assert steps["canary-pods"]["state"] == "Failed"  # no canary: the failure branch
    assert steps["delete-canary"]["state"] == "Skipped"
    assert steps["scale-up"]["state"] == "Failed" and steps["scale-up"]["output"] == "no approval within 5s"
    approved = condition(inc, "Approved")
    assert (approved["status"], approved["reason"], approved["message"]) == (
        "False", "Timeout", "step scale-up: no approval within 5s"
    )  # fmt: skip
    assert inc["status"]["sop"]["audit"] == []  # nothing was changed
    replicas = kubectl("-n", namespace, "get", "deploy", "checkout", "-o", "jsonpath={.spec.replicas}").stdout
    assert replicas == "2"
    events = {e["reason"]: e["type"] for e in kubectl.events(namespace, "branch")}
    assert events.get("Escalated") == "Warning" and events.get("ApprovalRequired") == "Normal"


def test_no_sop_matches_and_an_invalid_sop_never_runs(kubectl, operator, namespace, writer):
    cases.write("checkout-oomkilled", writer)
    kubectl.apply(incident("unmatched"), namespace)
    inc = kubectl.wait("incident", "unmatched", namespace, until=lambda o: condition(o, "SOPMatched"), timeout=60,
                       what="the SOP matching outcome")  # fmt: skip
    assert condition(inc, "SOPMatched")["reason"] == "NoMatch" and phase(inc) == "Diagnosed"
    assert "no SOP in the namespace applies" in condition(inc, "SOPMatched")["message"]

    broken = sop("broken", [{"id": "a", "type": "check", "title": "a", "command": "kubectl get pods",
                             "onSuccess": "nowhere"}])  # fmt: skip
    kubectl.apply(broken, namespace)
    kubectl.apply(incident("uses-broken", sopRef={"name": "broken"}), namespace)
    inc = kubectl.wait("incident", "uses-broken", namespace, until=lambda o: condition(o, "SOPMatched"), timeout=60,
                       what="the SOP matching outcome")  # fmt: skip
    assert condition(inc, "SOPMatched")["reason"] == "SOPInvalid" and "sop" not in inc["status"]


def test_an_approval_for_a_step_that_does_not_exist_is_named(kubectl, operator, namespace, writer):
    cases.write("checkout-oomkilled", writer)
    kubectl.apply(OOM_RUNBOOK, namespace)
    typo = [{"step": "rolback", "approvedBy": "jane@example.com"}]
    kubectl.apply(incident("typo", sopRef={"name": "oom-rollback"}, approvals=typo), namespace)
    inc = kubectl.wait("incident", "typo", namespace, until=lambda o: condition(o, "ApprovalsValid"), timeout=60,
                       what="the approvals checked against the SOP")  # fmt: skip
    cond = condition(inc, "ApprovalsValid")
    assert (cond["status"], cond["reason"]) == ("False", "UnknownStep")
    assert cond["message"].startswith("spec.approvals[0].step: SOP oom-rollback has no step 'rolback'")
    rollback = sop_step(kubectl.get("incident", "typo", namespace), "rollback")
    assert rollback["state"] == "AwaitingApproval"  # the misspelt approval approved nothing
