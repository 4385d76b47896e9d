"""The kill switch through the operator, set and lifted with `aiops suspend` / `aiops resume` as a user does:
an approved action does not run and no model is called while it holds, the Incident says so in its
conditions, and once it is lifted the runbook goes on where it stopped."""

import os
import time

from aiops.controllers.remediation import INTERVAL_S
from aiops_dev.eval import cases
from harness import OPERATOR_NS, checkout_incident, condition, managed_cluster, phase, rollback_sop
from support.bundles import run_cli
from support.scripted_openai import ScriptedOpenAI

IMAGE = "{.spec.template.spec.containers[0].image}"
RUNBOOK = rollback_sop("rollback", "Roll back checkout")
APPROVED = [{"step": "rollback", "approvedBy": "jane@example.com"}]


def aiops(kubeconfig: str, *args: str, check: bool = True) -> str:
    proc = run_cli(*args, env={**os.environ, "KUBECONFIG": kubeconfig, "AIOPS_NAMESPACE": OPERATOR_NS})
    assert proc.returncode == 0 or not check, proc.stderr
    return proc.stdout


def image(kubectl, namespace: str) -> str:
    return kubectl("-n", namespace, "get", "deploy", "checkout", "-o", f"jsonpath={IMAGE}").stdout


def still_held(kubectl, namespace: str, name: str) -> dict:
    """The Incident after two more remediation passes: nothing of its runbook may have moved."""
    time.sleep(2 * INTERVAL_S + 1)
    inc = kubectl.get("incident", name, namespace)
    assert condition(inc, "Suspended")["status"] == "True"
    assert "sop" not in inc["status"] and phase(inc) == "Diagnosed"  # not even matched: it stands where it stopped
    assert image(kubectl, namespace).endswith("checkout:1.5.0")  # the approved rollback did not run
    return inc


def resumed(kubectl, namespace: str, name: str) -> dict:
    inc = kubectl.wait("incident", name, namespace, until=lambda o: phase(o) in ("Resolved", "Escalated"),
                       timeout=60, what="the runbook to go on and finish")  # fmt: skip
    assert phase(inc) == "Resolved", inc["status"].get("sop")
    cond = condition(inc, "Suspended")
    assert (cond["status"], cond["reason"]) == ("False", "Resumed")
    assert image(kubectl, namespace).endswith("checkout:1.4.2")  # the rollback ran once the switch was lifted
    [audit] = inc["status"]["sop"]["audit"]
    assert audit["approvedBy"] == "jane@example.com (unverified)" and audit["outcome"] == "done"
    return inc


def test_fleet_wide_suspension_holds_an_approved_action_and_the_model_until_resumed(
    kubectl, kubeconfig, operator_env, namespace, writer
):
    kubectl("create", "namespace", OPERATOR_NS, check=False)
    with ScriptedOpenAI() as llm:  # nothing scripted: it must not be asked anything
        operator_env({"AIOPS_APPROVALS": "unverified-allowed", "AIOPS_LLM_BASE_URL": llm.url,
                      "AIOPS_LLM_MODEL": llm.model})  # fmt: skip
        said = aiops(kubeconfig, "suspend", "--reason", "change freeze")
        assert said.startswith(f"Suspended fleet-wide (ConfigMap {OPERATOR_NS}/aiops-suspend) by ")
        try:
            cases.write("checkout-oomkilled", writer)
            kubectl.apply(RUNBOOK, namespace)
            kubectl.apply(checkout_incident("frozen", sopRef={"name": "rollback"}, approvals=APPROVED), namespace)
            kubectl.wait("incident", "frozen", namespace, until=lambda o: condition(o, "Suspended"), timeout=90,
                         what="the Suspended condition")  # fmt: skip
            inc = still_held(kubectl, namespace, "frozen")
            cond = condition(inc, "Suspended")
            assert cond["reason"] == "Suspended" and cond["message"].endswith(
                ": change freeze; lift it with `aiops resume`"
            )
            model = condition(inc, "ModelAnswered")
            assert (model["status"], model["reason"]) == ("False", "Suspended")
            assert model["message"].startswith("the model was not called, the analyzers' diagnosis stands: suspended")
            d = inc["status"]["diagnosis"]
            assert d["executionStatus"] == "RECOVERED_FALLBACK" and "OOMKilled" in d["rootCause"]
            assert "the model was not called: suspended fleet-wide" in d["reasoning"]
            assert llm.requests == []
            events = {e["reason"]: e["type"] for e in kubectl.events(namespace, "frozen")}
            assert events.get("Suspended") == "Warning"
        finally:
            aiops(kubeconfig, "resume", check=False)
        resumed(kubectl, namespace, "frozen")
    assert aiops(kubeconfig, "resume") == "the fleet was not suspended\n"


def test_suspending_one_cluster_holds_its_incidents_until_resumed(kubectl, kubeconfig, operator_env, namespace, writer):
    cluster = f"{namespace}-here"  # no kubeconfig Secret: the cluster the operator runs in
    kubectl.apply(managed_cluster(cluster, displayName="this cluster"))
    operator_env({"AIOPS_APPROVALS": "unverified-allowed"})
    try:
        said = aiops(kubeconfig, "suspend", "--cluster", cluster, "--reason", "DR drill")
        assert said.startswith(f"Suspended for cluster {cluster} (ManagedCluster {cluster} spec.suspend) by ")
        stored = kubectl.get("managedcluster", cluster)["spec"]["suspend"]
        assert stored["reason"] == "DR drill" and stored["by"] and stored["since"]
        cases.write("checkout-oomkilled", writer)
        kubectl.apply(RUNBOOK, namespace)
        spec = {"sopRef": {"name": "rollback"}, "approvals": APPROVED, "clusterRef": {"name": cluster},
                "analysis": {"llm": False}}  # fmt: skip
        kubectl.apply(checkout_incident("held", **spec), namespace)
        kubectl.wait("incident", "held", namespace, until=lambda o: condition(o, "Suspended"), timeout=90,
                     what="the Suspended condition")  # fmt: skip
        inc = still_held(kubectl, namespace, "held")
        assert (
            f"suspended for cluster {cluster} (ManagedCluster {cluster} spec.suspend)"
            in condition(inc, "Suspended")["message"]
        )
        assert (
            aiops(kubeconfig, "resume", "--cluster", cluster)
            == f"resumed cluster {cluster}: runbooks go on where they stopped\n"
        )
        assert "suspend" not in kubectl.get("managedcluster", cluster)["spec"]
        resumed(kubectl, namespace, "held")
    finally:
        kubectl("delete", "managedcluster", cluster, "--wait=false", check=False)
