"""The AnalysisRun executors in-process, against an in-memory client: what they write, and that a second
pass writes nothing new."""

from datetime import UTC, datetime

from aiops.api import ANALYSIS_RUN, INCIDENT, SOP
from aiops.api.incident import Diagnosis, ExecutionStatus, Suspect
from aiops.diagnosis.pipeline import ANALYZERS_ONLY, PipelineResult
from aiops.runs import Context, execute, rootcause
from aiops.settings import from_env
from aiops.sops.remediation import flow
from support.fakekube import FakeClient

NOW = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)


def context(client: FakeClient) -> Context:
    return Context(client, from_env({}), lambda: NOW, lambda obj: client.emitter(ANALYSIS_RUN, obj))


def objects(client: FakeClient, incident_status: dict | None = None) -> tuple[dict, dict]:
    incident = client.put(
        INCIDENT,
        {
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"title": "checkout restarting", "severity": "critical", "source": "manual"},
            "status": incident_status or {"phase": "Triaging", "analysisRunRef": {"name": "checkout-rca"}},
        },
    )
    run = client.put(
        ANALYSIS_RUN,
        {
            "apiVersion": "aiops.dev/v1alpha1",
            "metadata": {"name": "checkout-rca", "namespace": "shop"},
            "spec": {"type": "rootCause", "incidentRef": {"name": "checkout"}},
            "status": {"phase": "Pending", "attempts": 0},
        },
    )
    return incident, run


def diagnosis(status: ExecutionStatus = ExecutionStatus.RECOVERED_FALLBACK) -> Diagnosis:
    suspect = Suspect(resource="Pod/checkout-1", failure_mode="OOMKilled", score=0.9, reason="exit 137")
    return Diagnosis(
        root_cause="checkout-1 OOMKilled", confidence=80, execution_status=status, model=ANALYZERS_ONLY,
        suspects=[suspect],
    )  # fmt: skip


def test_a_run_whose_incident_is_gone_fails_naming_the_reference():
    client = FakeClient()
    _, run = objects(client)
    client.objects.pop(("incidents", "shop", "checkout"))
    execute(context(client), run)
    status = client.get(ANALYSIS_RUN, "checkout-rca", "shop")["status"]
    assert status["phase"] == "Failed"
    assert status["error"] == "spec.incidentRef: Incident 'checkout' no longer exists"
    assert status["completedAt"] == "2026-12-06T01:00:00Z"
    assert ("checkout-rca", "Warning", "Failed", status["error"]) in client.events


def test_record_writes_the_incident_then_the_run_and_a_second_pass_changes_nothing():
    client = FakeClient()
    incident, run = objects(client)
    result = PipelineResult(diagnosis=diagnosis(), evidence_gaps=["logs: no Loki configured"], duration_s=1.5)
    rootcause.record(context(client), run, incident, result)

    inc = client.get(INCIDENT, "checkout", "shop")["status"]
    assert inc["phase"] == "Diagnosed" and inc["diagnosedAt"] == "2026-12-06T01:00:00Z"
    assert inc["diagnosis"]["rootCause"] == "checkout-1 OOMKilled"
    assert inc["evidenceGaps"] == ["logs: no Loki configured"]
    conditions = {c["type"]: (c["status"], c["reason"]) for c in inc["conditions"]}
    # No SOP in the namespace: said in the same write, so the remediation timer never starts for it.
    assert conditions == {"Diagnosed": ("True", "RootCauseIdentified"), "ModelAnswered": ("False", "AnalysisFallback"),
                          "SOPMatched": ("False", "NoMatch")}  # fmt: skip
    assert [e["reason"] for e in inc["timeline"]] == ["AnalysisFallback", "RootCauseIdentified", "Diagnosed", "NoMatch"]
    assert not flow.is_pending(inc)
    r = client.get(ANALYSIS_RUN, "checkout-rca", "shop")["status"]
    assert r["phase"] == "Succeeded" and r["durationSeconds"] == 1.5 and r["model"] == ANALYZERS_ONLY
    assert r["result"]["diagnosis"]["suspects"][0]["resource"] == "Pod/checkout-1"
    assert [kind for kind, _, _ in client.writes] == ["Incident", "AnalysisRun"]

    writes, events = len(client.writes), len(client.events)
    again = (client.get(ANALYSIS_RUN, "checkout-rca", "shop"), client.get(INCIDENT, "checkout", "shop"))
    rootcause.record(context(client), *again, result)
    assert len(client.writes) == writes and len(client.events) == events


def test_a_matching_sop_is_left_to_the_remediation_timer():
    client = FakeClient()
    incident, run = objects(client)
    client.put(
        SOP,
        {
            "metadata": {"name": "oom", "namespace": "shop"},
            "spec": {"title": "OOMKilled pods", "steps": [{"id": "look", "type": "check", "title": "Look"}]},
        },
    )
    patched = {**incident, "spec": {**incident["spec"], "sopRef": {"name": "oom"}}}
    rootcause.record(context(client), run, patched, PipelineResult(diagnosis=diagnosis()))
    inc = client.get(INCIDENT, "checkout", "shop")["status"]
    assert inc["phase"] == "Diagnosed" and "sop" not in inc
    assert "SOPMatched" not in {c["type"] for c in inc["conditions"]}
    assert flow.is_pending(inc)  # the timer matches it, says so and starts the runbook


def test_the_diagnosis_is_written_on_a_fresh_read_when_the_incident_changed_meanwhile():
    client = FakeClient()
    incident, run = objects(client)
    client.patch_status(INCIDENT, "checkout", "shop", {"phase": "Resolved"})  # the receiver, while it was analysed
    rootcause.record(context(client), run, incident, PipelineResult(diagnosis=diagnosis()))
    inc = client.get(INCIDENT, "checkout", "shop")["status"]
    assert inc["phase"] == "Resolved" and inc["diagnosis"]["rootCause"] == "checkout-1 OOMKilled"
    assert [kind for kind, _, _ in client.writes] == ["Incident", "Incident", "AnalysisRun"]  # refused, then written


def test_a_diagnosis_after_the_alert_resolved_keeps_the_phase():
    client = FakeClient()
    incident, run = objects(client, {"phase": "Resolved", "analysisRunRef": {"name": "checkout-rca"}})
    rootcause.record(context(client), run, incident, PipelineResult(diagnosis=diagnosis()))
    inc = client.get(INCIDENT, "checkout", "shop")["status"]
    assert inc["phase"] == "Resolved" and inc["diagnosis"]["rootCause"] == "checkout-1 OOMKilled"


def test_an_alert_resolved_after_the_incident_was_read_is_not_undone_by_the_analyzing_phase():
    client = FakeClient()
    incident, _ = objects(client)
    client.patch_status(INCIDENT, "checkout", "shop", {"phase": "Resolved"})  # the receiver, meanwhile
    rootcause.mark_analyzing(context(client), incident, "checkout-rca")
    assert client.get(INCIDENT, "checkout", "shop")["status"]["phase"] == "Resolved"
    assert not [e for e in client.events if e[2] == "AnalysisStarted"]
    # Unchanged since it was read, it is marked.
    incident, _ = objects(client)
    assert rootcause.mark_analyzing(context(client), incident, "checkout-rca")["status"]["phase"] == "Analyzing"


def test_a_failed_analysis_fails_the_incident_and_the_run():
    client = FakeClient()
    incident, run = objects(client)
    rootcause.record(context(client), run, incident, PipelineResult(diagnosis=diagnosis(ExecutionStatus.FAILED)))
    assert client.get(INCIDENT, "checkout", "shop")["status"]["phase"] == "Failed"
    assert client.get(ANALYSIS_RUN, "checkout-rca", "shop")["status"]["phase"] == "Failed"


def test_an_analysis_that_fails_after_the_alert_resolved_keeps_the_phase():
    client = FakeClient()
    incident, run = objects(client)
    client.patch_status(INCIDENT, "checkout", "shop", {"phase": "Resolved"})  # the receiver, while it was analysed
    rootcause.record(context(client), run, incident, PipelineResult(diagnosis=diagnosis(ExecutionStatus.FAILED)))
    inc = client.get(INCIDENT, "checkout", "shop")["status"]
    assert inc["phase"] == "Resolved"
    assert {c["type"]: c["reason"] for c in inc["conditions"]}["Diagnosed"] == "AnalysisFailed"
    assert client.get(ANALYSIS_RUN, "checkout-rca", "shop")["status"]["phase"] == "Failed"


def test_a_run_interrupted_after_the_incident_was_written_is_finished_not_redone():
    client = FakeClient()
    d = diagnosis()
    incident, run = objects(
        client, {"phase": "Diagnosed", "analysisRunRef": {"name": "checkout-rca"}, "diagnosis": d.wire()}
    )
    execute(context(client), run)
    assert [kind for kind, _, _ in client.writes] == ["AnalysisRun"]
    assert client.get(ANALYSIS_RUN, "checkout-rca", "shop")["status"]["phase"] == "Succeeded"
