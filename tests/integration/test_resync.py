"""Resync passes on the local control plane: an Incident whose AnalysisRun was lost before it ran gets it back and is
diagnosed; the diagnosed, the invalid and the waiting Incidents beside it are left alone."""

from __future__ import annotations

from aiops.controllers.resync import ANNOTATION
from aiops_dev.eval import cases
from harness import checkout_incident, phase, ready_reason
from support.diagnoses import reply_for
from support.scripted_openai import ScriptedOpenAI, answer, delayed


def run_of(kubectl, namespace: str, incident: str) -> dict | None:
    runs = kubectl.json("get", "analysisruns", "-n", namespace, "-l", f"aiops.dev/incident={incident}")["items"]
    return runs[0] if runs else None


def test_an_incident_whose_run_was_lost_gets_it_back_and_nothing_else_is_touched(kubectl, operator_env, namespace,
                                                                                 writer):  # fmt: skip
    cases.write("checkout-oomkilled", writer)
    with ScriptedOpenAI(*[delayed(4, answer(reply_for(writer)))] * 6) as llm:
        operator = operator_env({"AIOPS_RESYNC_INTERVAL_S": "2", "AIOPS_ANALYSIS_WORKERS": "1",
                                 "AIOPS_LLM_BASE_URL": llm.url, "AIOPS_LLM_MODEL": llm.model})  # fmt: skip
        window = {"start": "2026-11-23T10:00:00Z", "end": "2026-11-23T09:00:00Z"}
        kubectl.apply(checkout_incident("invalid", window=window), namespace)
        kubectl.apply(checkout_incident("needs-sop", sopRef={"name": "later"}), namespace)
        kubectl.apply(checkout_incident("first"), namespace)
        kubectl.wait("incident", "first", namespace, until=lambda o: phase(run_of(kubectl, namespace, "first") or {})
                     == "Running", what="the first run at the model")  # fmt: skip
        # The only analysis slot is taken: the second run waits in the queue, and is deleted there.
        kubectl.apply(checkout_incident("second"), namespace)
        # The run is created before the Incident's status is patched: wait for both, so `queued` has its phase.
        queued = kubectl.wait("incident", "second", namespace,
                              until=lambda o: phase(o) and run_of(kubectl, namespace, "second"),
                              what="the second run, and the Incident's phase")  # fmt: skip
        lost = run_of(kubectl, namespace, "second")
        assert phase(lost) == "Pending", lost.get("status")
        kubectl("delete", "analysisrun", lost["metadata"]["name"], "-n", namespace)
        done = kubectl.wait("incident", "second", namespace, until=lambda o: phase(o) == "Diagnosed", timeout=90,
                            what="the second Incident diagnosed after all")  # fmt: skip

    log = operator.log(since_start=True)
    line = f"resync: Incident {namespace}/second: it is {phase(queued)} and its AnalysisRun"
    assert line in log or f"resync: Incident {namespace}/second: it is Analyzing" in log, log[-3000:]
    assert ANNOTATION in done["metadata"]["annotations"]
    again = run_of(kubectl, namespace, "second")
    assert phase(again) == "Succeeded" and again["metadata"]["uid"] != lost["metadata"]["uid"]
    assert phase(kubectl.get("incident", "first", namespace)) == "Diagnosed"
    assert ready_reason(kubectl.get("incident", "invalid", namespace)) == "InvalidSpec"
    assert ready_reason(kubectl.get("incident", "needs-sop", namespace)) == "MissingReference"
    for name in ("first", "invalid", "needs-sop"):
        annotations = kubectl.get("incident", name, namespace)["metadata"].get("annotations") or {}
        assert ANNOTATION not in annotations, f"{name} was handed again: {annotations}"
    assert f"resync: Incident {namespace}/first" not in log
