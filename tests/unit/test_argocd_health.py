"""The Argo CD health checks (deploy/argocd/health/*.lua) run in Lua 5.1, as Argo CD's gopher-lua runs them,
on objects in every phase of the models' enums, so a new phase without a mapping fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aiops.api import KINDS
from aiops.api.analysisrun import AnalysisRunStatus, RunPhase
from aiops.api.incident import IncidentPhase, IncidentStatus
from aiops.api.managedcluster import ClusterPhase, ManagedClusterStatus
from aiops.api.sop import SOPStatus
from aiops_dev import argocd

lua51 = pytest.importorskip("lupa.lua51")
REPO = Path(__file__).resolve().parents[2]
NOW = "2026-11-23T14:10:00Z"

INCIDENT = {
    IncidentPhase.NEW: "Progressing",
    IncidentPhase.TRIAGING: "Progressing",
    IncidentPhase.ANALYZING: "Progressing",
    IncidentPhase.DIAGNOSED: "Healthy",
    IncidentPhase.REMEDIATING: "Progressing",
    IncidentPhase.RESOLVED: "Healthy",
    IncidentPhase.ESCALATED: "Degraded",
    IncidentPhase.FAILED: "Degraded",
}
ANALYSIS_RUN = {
    RunPhase.PENDING: "Progressing",
    RunPhase.SCHEDULING: "Progressing",
    RunPhase.WAITING_FOR_MODEL: "Progressing",
    RunPhase.RUNNING: "Progressing",
    RunPhase.SUCCEEDED: "Healthy",
    RunPhase.FAILED: "Degraded",
}
MANAGED_CLUSTER = {
    ClusterPhase.READY: "Healthy",
    ClusterPhase.DEGRADED: "Degraded",
    ClusterPhase.UNREACHABLE: "Degraded",
}


def health(kind: str, obj: dict) -> tuple[str, str]:
    """(status, message) as Argo CD would compute them: the script sees the live object as the global `obj`."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    hs = lua.execute(argocd.health_scripts(REPO)[kind])  # _common.lua + <Kind>.lua, as argocd-cm carries it
    assert hs is not None, f"{kind}.lua returned nothing"
    assert hs["status"] in ("Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"), hs["status"]
    assert isinstance(hs["message"], str) and hs["message"], f"{kind}.lua gave no message"
    return hs["status"], hs["message"]


def cond(ctype: str, status: str, reason: str, message: str) -> dict:
    return {"type": ctype, "status": status, "reason": reason, "message": message, "lastTransitionTime": NOW}


def obj(kind: str, status: dict | None, generation: int = 2) -> dict:
    out = {"apiVersion": "aiops.dev/v1alpha1", "kind": kind, "metadata": {"name": "x", "generation": generation}}
    if status is not None:
        out["status"] = status
    return out


# --- Incident ----------------------------------------------------------------------------------------------------

DIAGNOSIS = {
    "rootCause": "checkout-7d9f OOMKilled: working set reached the 256Mi limit",
    "confidence": 92,
    "executionStatus": "RECOVERED_FALLBACK",
}


def incident_status(phase: IncidentPhase) -> dict:
    status = {
        "observedGeneration": 2,
        "phase": phase.value,
        "conditions": [cond("Ready", "True", "AnalysisScheduled", "AnalysisRun x-rca-1 holds the root-cause analysis")],
    }
    if phase in (IncidentPhase.DIAGNOSED, IncidentPhase.REMEDIATING, IncidentPhase.RESOLVED, IncidentPhase.ESCALATED):
        status["diagnosis"] = DIAGNOSIS
    if phase in (IncidentPhase.REMEDIATING, IncidentPhase.ESCALATED, IncidentPhase.RESOLVED):
        state = {"Remediating": "Running", "Escalated": "Failed", "Resolved": "Succeeded"}[phase.value]
        status["sop"] = {"name": "oomkilled", "current": "verify", "steps": [{"id": "verify", "state": state}]}
    if phase == IncidentPhase.FAILED:
        status["diagnosis"] = {"rootCause": "no target: name spec.target", "confidence": 0, "executionStatus": "FAILED"}
        status["conditions"].append(cond("Diagnosed", "False", "AnalysisFailed", "no target: name spec.target"))
    IncidentStatus.model_validate(status)  # the samples keep the shape the operator writes
    return status


INCIDENT_MESSAGES = {
    IncidentPhase.NEW: "New: AnalysisRun x-rca-1 holds the root-cause analysis",
    IncidentPhase.TRIAGING: "Triaging: AnalysisRun x-rca-1 holds the root-cause analysis",
    IncidentPhase.ANALYZING: "Analyzing: AnalysisRun x-rca-1 holds the root-cause analysis",
    IncidentPhase.DIAGNOSED: f"Diagnosed: {DIAGNOSIS['rootCause']} (confidence 92, RECOVERED_FALLBACK)",
    IncidentPhase.REMEDIATING: "Remediating: SOP oomkilled, step verify",
    IncidentPhase.RESOLVED: f"Resolved: {DIAGNOSIS['rootCause']} (confidence 92, RECOVERED_FALLBACK)",
    IncidentPhase.ESCALATED: f"Escalated: {DIAGNOSIS['rootCause']} (SOP oomkilled, step verify)",
    IncidentPhase.FAILED: "Failed: no target: name spec.target",
}


@pytest.mark.parametrize("phase", list(IncidentPhase), ids=str)
def test_incident_every_phase(phase):
    assert health("Incident", obj("Incident", incident_status(phase))) == (INCIDENT[phase], INCIDENT_MESSAGES[phase])


def test_incident_without_status_or_phase():
    assert health("Incident", obj("Incident", None, generation=1)) == (
        "Progressing",
        "Waiting for the operator to pick up the Incident",
    )
    waiting = {
        "observedGeneration": 2,
        "conditions": [cond("Ready", "False", "MissingReference", "spec.sopRef: SOP default/x does not exist")],
    }
    assert health("Incident", obj("Incident", waiting)) == ("Progressing", "spec.sopRef: SOP default/x does not exist")


def test_incident_spec_not_yet_observed_is_progressing():
    status = incident_status(IncidentPhase.DIAGNOSED)
    assert health("Incident", obj("Incident", status, generation=3)) == (
        "Progressing",
        "Waiting for the operator to process generation 3",
    )
    del status["observedGeneration"]
    assert health("Incident", obj("Incident", status))[0] == "Progressing"


def test_incident_invalid_spec_is_degraded_with_the_field():
    message = "Incident spec is invalid: spec.window: end must be later than start"
    status = {
        "observedGeneration": 2,
        "phase": "Failed",
        "conditions": [cond("Ready", "False", "InvalidSpec", message)],
    }
    IncidentStatus.model_validate(status)
    assert health("Incident", obj("Incident", status)) == ("Degraded", message)


def test_incident_waiting_for_approval_is_suspended():
    status = incident_status(IncidentPhase.REMEDIATING)
    status["sop"] = {
        "name": "oomkilled",
        "current": "rollback",
        "steps": [{"id": "confirm-oom", "state": "Succeeded"}, {"id": "rollback", "state": "AwaitingApproval"}],
    }
    IncidentStatus.model_validate(status)
    assert health("Incident", obj("Incident", status)) == (
        "Suspended",
        "SOP oomkilled: step rollback waits for an approval in spec.approvals",
    )


def test_incident_diagnosed_by_the_model_has_no_fallback_note():
    status = incident_status(IncidentPhase.DIAGNOSED)
    status["diagnosis"] = {**DIAGNOSIS, "executionStatus": "COMPLETED"}
    assert health("Incident", obj("Incident", status)) == (
        "Healthy",
        f"Diagnosed: {DIAGNOSIS['rootCause']} (confidence 92)",
    )


def test_unknown_phase_is_unknown_not_healthy():
    for kind in ("Incident", "AnalysisRun", "ManagedCluster"):
        status = {"observedGeneration": 2, "phase": "Hibernating"}
        assert health(kind, obj(kind, status)) == ("Unknown", "Unknown phase Hibernating")


# --- AnalysisRun -------------------------------------------------------------------------------------------------


def run_status(phase: RunPhase) -> dict:
    status = {
        "observedGeneration": 1,
        "phase": phase.value,
        "conditions": [cond("Ready", "True", "Accepted", "spec is valid and its references resolve")],
    }
    if phase == RunPhase.SUCCEEDED:
        status.update(model="qwen2.5-coder-1.5b", durationSeconds=12.34, attempts=1)
    if phase == RunPhase.FAILED:
        status.update(error="model endpoint http://vllm:8000/v1: connection refused", attempts=3)
    AnalysisRunStatus.model_validate(status)
    return status


RUN_MESSAGES = {
    RunPhase.PENDING: "Pending: spec is valid and its references resolve",
    RunPhase.SCHEDULING: "Scheduling: spec is valid and its references resolve",
    RunPhase.WAITING_FOR_MODEL: "WaitingForModel: spec is valid and its references resolve",
    RunPhase.RUNNING: "Running: spec is valid and its references resolve",
    RunPhase.SUCCEEDED: "Succeeded with qwen2.5-coder-1.5b in 12.3s",
    RunPhase.FAILED: "Failed: model endpoint http://vllm:8000/v1: connection refused",
}


@pytest.mark.parametrize("phase", list(RunPhase), ids=str)
def test_analysisrun_every_phase(phase):
    got = health("AnalysisRun", obj("AnalysisRun", run_status(phase), generation=1))
    assert got == (ANALYSIS_RUN[phase], RUN_MESSAGES[phase])


def test_analysisrun_without_status_and_invalid():
    assert health("AnalysisRun", obj("AnalysisRun", None)) == (
        "Progressing",
        "Waiting for the operator to accept the run",
    )
    message = "AnalysisRun spec is invalid: spec: inputs.question is required for type query"
    status = {"observedGeneration": 2, "conditions": [cond("Ready", "False", "InvalidSpec", message)]}
    assert health("AnalysisRun", obj("AnalysisRun", status)) == ("Degraded", message)
    failed = {"observedGeneration": 2, "phase": "Failed", "conditions": [cond("Ready", "False", "Timeout", "gave up")]}
    assert health("AnalysisRun", obj("AnalysisRun", failed)) == ("Degraded", "Failed: gave up")


# --- ManagedCluster ----------------------------------------------------------------------------------------------

CLUSTER_MESSAGES = {
    ClusterPhase.READY: ("True", "Probed", "Kubernetes v1.30.2, 3 nodes, 8 GPUs"),
    ClusterPhase.DEGRADED: ("False", "Degraded", "2 of 3 nodes NotReady"),
    ClusterPhase.UNREACHABLE: ("False", "Unreachable", "probe failed: Connection refused"),
}


@pytest.mark.parametrize("phase", list(ClusterPhase), ids=str)
def test_managedcluster_every_phase(phase):
    ready, reason, message = CLUSTER_MESSAGES[phase]
    status = {"observedGeneration": 1, "phase": phase.value, "conditions": [cond("Ready", ready, reason, message)]}
    ManagedClusterStatus.model_validate(status)
    assert health("ManagedCluster", obj("ManagedCluster", status, 1)) == (MANAGED_CLUSTER[phase], f"{phase}: {message}")


def test_managedcluster_before_the_first_probe():
    assert health("ManagedCluster", obj("ManagedCluster", None, 1)) == (
        "Progressing",
        "Waiting for the first probe of the cluster",
    )
    secret = "spec.kubeconfigSecretRef: Secret aiops-system/spoke-kubeconfig or its key 'kubeconfig' does not exist"
    status = {"observedGeneration": 1, "conditions": [cond("Ready", "False", "MissingReference", secret)]}
    assert health("ManagedCluster", obj("ManagedCluster", status, 1)) == ("Progressing", secret)
    invalid = {"observedGeneration": 1, "conditions": [cond("Ready", "False", "InvalidSpec", "kubeconfig: not YAML")]}
    assert health("ManagedCluster", obj("ManagedCluster", invalid, 1)) == ("Degraded", "kubeconfig: not YAML")


# --- SOP ---------------------------------------------------------------------------------------------------------


def test_sop_ready_invalid_and_waiting():
    valid = {
        "observedGeneration": 1,
        "stepCount": 5,
        "conditions": [cond("Ready", "True", "Valid", "5 steps validated")],
    }
    SOPStatus.model_validate(valid)
    assert health("SOP", obj("SOP", valid, 1)) == ("Healthy", "5 steps validated")

    message = "SOP spec is invalid: spec.steps[1].onSuccess: no step has id 'verfy'"
    invalid = {"observedGeneration": 1, "conditions": [cond("Ready", "False", "InvalidSpec", message)]}
    SOPStatus.model_validate(invalid)
    assert health("SOP", obj("SOP", invalid, 1)) == ("Degraded", message)

    for status in (None, {"observedGeneration": 1}):
        assert health("SOP", obj("SOP", status, 1)) == (
            "Progressing",
            "Waiting for the operator to validate the runbook",
        )
    assert health("SOP", obj("SOP", valid, 2)) == ("Progressing", "Waiting for the operator to process generation 2")
    unknown = {"observedGeneration": 1, "conditions": [cond("Ready", "Unknown", "Validating", "checking")]}
    assert health("SOP", obj("SOP", unknown, 1)) == ("Progressing", "checking")


# --- the argocd-cm patch -----------------------------------------------------------------------------------------


def test_every_kind_has_a_health_check_in_the_committed_configmap():
    doc = yaml.safe_load((REPO / argocd.HEALTH_CM).read_text())
    assert (doc["kind"], doc["metadata"]["name"], doc["metadata"]["namespace"]) == ("ConfigMap", "argocd-cm", "argocd")
    assert set(doc["data"]) == {f"resource.customizations.health.aiops.dev_{k.kind}" for k in KINDS}
    common = (REPO / argocd.HEALTH_DIR / argocd.HEALTH_COMMON).read_text()
    for kind in KINDS:
        script = doc["data"][argocd.health_key(kind.kind)]
        assert script.startswith(common), f"{kind.kind}: the shared helpers come first"
        assert script.endswith((REPO / argocd.HEALTH_DIR / f"{kind.kind}.lua").read_text())


def test_committed_configmap_matches_the_lua_files():
    want = argocd.health_configmap(REPO)
    have = (REPO / argocd.HEALTH_CM).read_text()
    assert have == want, "deploy/argocd/argocd-cm-health.yaml is stale: run `aiops-dev argocd` and commit"
    assert "resource.customizations.health.aiops.dev_Incident: |" in have, "scripts kept readable as block scalars"


def test_configmap_follows_an_edited_script(tmp_path):
    for src in [REPO / argocd.HEALTH_DIR / argocd.HEALTH_COMMON] + [
        REPO / argocd.HEALTH_DIR / f"{kind.kind}.lua" for kind in KINDS
    ]:
        (tmp_path / argocd.HEALTH_DIR).mkdir(parents=True, exist_ok=True)
        (tmp_path / argocd.HEALTH_DIR / src.name).write_text(src.read_text())
    (tmp_path / argocd.HEALTH_DIR / "SOP.lua").write_text("hs = {status = 'Healthy', message = 'x'}\nreturn hs\n")
    assert argocd.health_configmap(tmp_path) != (REPO / argocd.HEALTH_CM).read_text()
