"""The model server crashes halfway through its answer (it sends the headers and half the body, then the
connection closes): the analysis retries and completes, or, when every try is cut, stands on the analyzers'
diagnosis with a condition that says why; either way the status is whole, and written once."""

from __future__ import annotations

from aiops_dev.eval import cases
from harness import condition
from support import counting
from support.diagnoses import reply_for
from support.observe import DiagnosisLog
from support.scripted_openai import ScriptedOpenAI, answer, cut

TRIES = 4  # the gateway's transport attempts (max_transport_retries 3, plus the first)
FIELDS = ("rootCause", "reasoning", "mitigation", "confidence", "executionStatus", "suspects", "model")


def whole(obj: dict, run: dict | None) -> list[str]:
    """What is missing from a finished Incident and its run: a status written halfway shows here."""
    diagnosis = (obj.get("status") or {}).get("diagnosis") or {}
    missing = [f"diagnosis.{f}" for f in FIELDS if diagnosis.get(f) in (None, "", [])]
    if (condition(obj, "Diagnosed") or {}).get("status") != "True":
        missing.append("condition Diagnosed=True")
    status = (run or {}).get("status") or {}
    if status.get("phase") != "Succeeded" or not (status.get("result") or {}).get("diagnosis"):
        missing.append("a Succeeded run with its result")
    return missing


def test_model_server_crashes_mid_response(kubeconfig, kubectl, operator_env, namespace, writer, tally):
    cases.write("checkout-oomkilled", writer)
    reply = answer(reply_for(writer))
    expect = {"recovers": ("True", "COMPLETED"), "falls-back": ("False", "RECOVERED_FALLBACK")}
    with ScriptedOpenAI(cut(reply), reply) as llm:
        operator_env({"AIOPS_LLM_BASE_URL": llm.url, "AIOPS_LLM_MODEL": llm.model})
        with DiagnosisLog(kubeconfig, namespace) as log:
            counting.create(kubectl, ["recovers"], namespace)  # cut once, then answered
            counting.until(counting.reached(kubectl, namespace, "Diagnosed", 1), 60)
            llm.push(*[cut(reply)] * TRIES)
            counting.create(kubectl, ["falls-back"], namespace)  # cut every time
            counting.until(counting.reached(kubectl, namespace, "Diagnosed", 2), 90)
        count = counting.diagnoses(kubectl, list(expect), namespace, log)
        runs = {
            r["spec"]["incidentRef"]["name"]: r for r in kubectl.json("get", "analysisruns", "-n", namespace)["items"]
        }
        fallback = condition(kubectl.get("incident", "falls-back", namespace), "ModelAnswered") or {}
        for name, (answered, execution) in expect.items():
            obj = kubectl.get("incident", name, namespace) or {}
            said = (
                (condition(obj, "ModelAnswered") or {}).get("status"),
                ((obj.get("status") or {}).get("diagnosis") or {}).get("executionStatus"),
            )
            if said != (answered, execution):
                count.lost.append(f"{name}: ModelAnswered and executionStatus {said}, not {(answered, execution)}")
            count.lost += [f"{name}: no {what}" for what in whole(obj, runs.get(name))]
    tally(len(expect), len(count.lost), len(count.duplicated),
          f"{len(llm.requests)} model requests, {llm.remaining} scripted replies left; fallback says: "
          f"{fallback.get('reason')}")  # fmt: skip
    assert not count.lost and not count.duplicated, str(count)
    assert fallback.get("reason") == "AnalysisFallback" and "closed" in fallback["message"], fallback
    assert len(llm.requests) == 2 + TRIES and llm.remaining == 0
