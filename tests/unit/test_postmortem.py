"""The postmortem's Markdown, from a resolved Incident's own records: sections, MTTR, redaction, citations."""

from __future__ import annotations

import copy
import json

import pytest

from aiops.api.incident import IncidentSpec, IncidentStatus
from aiops.postmortems import publish, summary
from aiops.postmortems.render import Factor, Summary, mttr, object_key, render
from aiops.settings import Settings, from_env
from support.scripted_openai import ScriptedOpenAI, answer

UID = "5f0c2b1e-7a4d-4c8e-9b1a-2d3e4f5a6b7c"
DB_PASSWORD = "hunter2-Sup3rSecret"

INCIDENT = {
    "metadata": {"name": "checkout-oom", "namespace": "shop", "uid": UID, "generation": 3},
    "spec": {
        "title": "checkout pods restarting",
        "description": f"Pager: checkout restarts. DSN postgresql://app:{DB_PASSWORD}@db.shop:5432/orders",
        "severity": "critical",
        "source": "alertmanager",
        "target": {"kind": "Deployment", "name": "checkout"},
        "alert": {"name": "KubePodCrashLooping", "fingerprint": "a1b2c3d4"},
        "approvals": [
            {
                "step": "raise-memory",
                "approvedBy": "alice",
                "approvedAt": "2026-12-06T10:20:00Z",
                "verification": {"groups": ["sre"], "seal": "v1:abc"},
            },
            {"step": "raise-memory", "approvedBy": "bob", "comment": "ok from the checkout team"},
        ],  # fmt: skip
        "feedback": {
            "correct": False,
            "by": "carol",
            "rootCause": "a memory leak in the cart cache",
            "comment": "the limit was fine; 4.2 GB held by the cache",
        },  # fmt: skip
    },
    "status": {
        "phase": "Resolved",
        "detectedAt": "2026-12-06T10:00:00Z",
        "diagnosedAt": "2026-12-06T10:03:10Z",
        "resolvedAt": "2026-12-06T10:47:12Z",
        "timeline": [
            {"time": "2026-12-06T10:00:05Z", "reason": "New", "message": "Incident filed: checkout pods restarting"},
            {"time": "2026-12-06T10:03:10Z", "reason": "Diagnosed", "message": "OOMKilled (confidence 86)"},
            {"time": "2026-12-06T10:47:12Z", "reason": "Resolved", "message": "runbook oom-restart finished"},
        ],
        "diagnosis": {
            "rootCause": "checkout containers exceed their 512Mi memory limit and are OOMKilled",
            "confidence": 86,
            "executionStatus": "RECOVERED_FALLBACK",
            "mitigation": "raise the limit to 1Gi",
            "evidence": [
                {"id": "pod-state-1", "source": "kubernetes", "summary": "checkout-7d9f: OOMKilled 6 times"},
                {"id": "metric-mem-1", "source": "prometheus", "summary": "working set 510Mi of 512Mi at 10.1.2.3"},
            ],
            "suspects": [
                {
                    "resource": "Pod/checkout-7d9f",
                    "failureMode": "OOMKilled",
                    "score": 0.9,
                    "reason": "killed at its limit",
                    "evidence": ["pod-state-1", "metric-mem-1"],
                },
            ],  # fmt: skip
        },
        "sop": {
            "name": "oom-restart",
            "reason": "alert KubePodCrashLooping, failure mode OOMKilled",
            "steps": [
                {
                    "id": "check",
                    "type": "check",
                    "title": "Confirm OOM",
                    "state": "Succeeded",
                    "output": "6 OOMKilled | last 10:02",
                },
                {
                    "id": "raise-memory",
                    "type": "action",
                    "title": "Raise memory",
                    "state": "Succeeded",
                    "startedAt": "2026-12-06T10:20:01Z",
                    "finishedAt": "2026-12-06T10:21:00Z",
                },
            ],  # fmt: skip
            "audit": [
                {
                    "at": "2026-12-06T10:20:30Z",
                    "step": "raise-memory",
                    "action": "patchResources",
                    "target": "Deployment/shop/checkout",
                    "approvedBy": "alice, bob (unverified)",
                    "dryRun": "ok",
                    "before": "512Mi",
                    "after": "1Gi",
                    "outcome": "patched",
                },
                {
                    "at": "2026-12-06T10:30:00Z",
                    "step": "raise-memory",
                    "action": "patchResources",
                    "target": "Deployment/shop/checkout",
                    "dryRun": "ok",
                    "outcome": "restored",
                    "undo": True,
                    "reason": "guard error-rate got worse",
                },
            ],  # fmt: skip
        },
    },
}


def test_the_incident_used_here_is_one_the_api_accepts():
    IncidentSpec.model_validate(INCIDENT["spec"])
    IncidentStatus.model_validate(INCIDENT["status"])


def test_every_section_is_there_with_mttr_from_detection_to_resolution():
    text = render(INCIDENT, None, "no model is configured (AIOPS_LLM_BASE_URL)", {0: True, 1: False})
    lines = text.splitlines()
    assert lines[0] == "# Postmortem: checkout pods restarting"
    for heading in ("## Summary", "## Description", "## Timeline", "## Diagnosis", "### Evidence", "### Suspects",
                    "## Runbook", "### Audit", "## Approvals", "## Feedback"):  # fmt: skip
        assert heading in lines, heading
    assert f"| Incident | shop/checkout-oom (uid {UID}) |" in lines
    assert "| MTTR | 47m 12s |" in lines
    assert "No model summary: no model is configured (AIOPS_LLM_BASE_URL)." in lines
    assert "- `pod-state-1` (kubernetes): checkout-7d9f: OOMKilled 6 times" in lines
    assert (
        "- step raise-memory: alice at 2026-12-06T10:20:00Z, verified by the admission webhook (groups: sre)" in lines
    )
    assert "- step raise-memory: bob, unverified: ok from the checkout team" in lines
    assert "Corrected root cause: a memory leak in the cart cache" in lines
    undo = next(line for line in lines if "undo of patchResources" in line)
    assert "why: guard error-rate got worse" in undo and "allowed by policy" in undo
    assert "| check | Confirm OOM | Succeeded |  |  | 6 OOMKilled \\| last 10:02 |" in lines  # a pipe kept in its cell


def test_secrets_and_addresses_are_redacted_before_it_leaves_the_cluster():
    text = render(INCIDENT, None, "none", {})
    assert DB_PASSWORD not in text and "10.1.2.3" not in text
    assert "<DSN_PASSWORD_1>" in text and "<IPV4_1>" in text
    assert UID in text and "2026-12-06T10:47:12Z" in text  # UIDs and timestamps are not secrets


def test_the_same_records_render_the_same_bytes():
    assert render(INCIDENT, None, "x", {}) == render(copy.deepcopy(INCIDENT), None, "x", {})


def test_a_model_summary_lists_each_factor_with_its_citations():
    written = Summary("Checkout ran out of memory.", [Factor("limit too low", ["metric-mem-1", "pod-state-1"])], "m")
    text = render(INCIDENT, written, "", {})
    assert "- limit too low (evidence: `metric-mem-1`, `pod-state-1`)" in text
    assert "No model summary" not in text


def test_mttr_needs_both_ends_and_counts_hours():
    assert mttr({"status": {"detectedAt": "2026-12-06T08:00:00Z", "resolvedAt": "2026-12-06T10:02:05Z"}}) == (
        "2h 02m 05s"
    )
    assert mttr({"status": {"detectedAt": "2026-12-06T08:00:00Z"}}) is None
    unresolved = {**INCIDENT, "status": {k: v for k, v in INCIDENT["status"].items() if k != "resolvedAt"}}
    assert "| MTTR | unknown: detection or resolution time not recorded |" in render(unresolved, None, "x", {})


def test_the_object_key_carries_namespace_name_and_uid():
    assert object_key(INCIDENT) == f"postmortems/shop/checkout-oom-{UID}.md"


def test_due_until_written_from_the_current_generation():
    assert publish.due(INCIDENT)
    written = copy.deepcopy(INCIDENT)
    written["status"]["postmortem"] = {"generation": 3}
    assert not publish.due(written)
    written["metadata"]["generation"] = 4  # feedback arrived after the postmortem
    assert publish.due(written)
    assert not publish.due({**INCIDENT, "status": {**INCIDENT["status"], "phase": "Remediating"}})


def test_why_there_is_no_summary():
    assert summary.withheld(INCIDENT, Settings(), client=None) == "no model is configured (AIOPS_LLM_BASE_URL)"
    configured = from_env({"AIOPS_LLM_BASE_URL": "http://127.0.0.1:1/v1", "AIOPS_LLM_MODEL": "m"})
    opted_out = {**INCIDENT, "spec": {**INCIDENT["spec"], "analysis": {"llm": False}}}
    assert summary.withheld(opted_out, configured, client=None) == "the Incident says spec.analysis.llm: false"


def test_a_factor_citing_evidence_the_diagnosis_lacks_is_refused():
    answer = summary.PostmortemAnswer.model_validate(
        {"summary": "s", "contributingFactors": [{"text": "t", "evidence": ["pod-state-1", "made-up-9"]}]}
    )
    problems = summary._cited(answer, {"pod-state-1", "metric-mem-1"})
    assert problems == [
        "contributingFactors[0].evidence: 'made-up-9' is not the id of any evidence item; "
        "cite only: metric-mem-1, pod-state-1"
    ]


def test_settings_name_the_variable_that_is_wrong():
    pm = from_env(
        {"AIOPS_POSTMORTEM_ENDPOINT": "http://127.0.0.1:9000/", "AIOPS_POSTMORTEM_BUCKET": "pm",
         "AIOPS_POSTMORTEM_ACCESS_KEY": "ak", "AIOPS_POSTMORTEM_SECRET_KEY": "sk"}
    ).postmortems  # fmt: skip
    assert (pm.endpoint, pm.bucket, pm.region, pm.access_key, pm.secret_key) == (
        "http://127.0.0.1:9000", "pm", "us-east-1", "ak", "sk"
    )  # fmt: skip
    assert from_env({}).postmortems is None
    with pytest.raises(SystemExit, match="AIOPS_POSTMORTEM_BUCKET is not"):
        from_env({"AIOPS_POSTMORTEM_ENDPOINT": "http://127.0.0.1:9000"})
    with pytest.raises(SystemExit, match="AIOPS_POSTMORTEM_ENDPOINT='s3.example.com'"):
        from_env({"AIOPS_POSTMORTEM_ENDPOINT": "s3.example.com", "AIOPS_POSTMORTEM_BUCKET": "pm"})


def test_the_model_summary_is_repaired_once_then_used_with_its_citations():
    bad = {"summary": "Checkout ran out of memory.", "contributingFactors": [{"text": "t", "evidence": ["nope-1"]}]}
    good = {"summary": "Checkout ran out of memory.",
            "contributingFactors": [{"text": "a 512Mi limit", "evidence": ["metric-mem-1"]}]}  # fmt: skip
    with ScriptedOpenAI(answer(bad), answer(good)) as server:
        config = from_env({"AIOPS_LLM_BASE_URL": server.url, "AIOPS_LLM_MODEL": server.model})
        written, why = summary.summarise(INCIDENT, render(INCIDENT, None, "being written", {}), config)
        assert "'nope-1' is not the id of any evidence item" in server.requests[1]["messages"][-1]["content"]
        assert DB_PASSWORD not in json.dumps(server.requests[0])  # the model sees the redacted text only
    assert why == "" and written.factors == [Factor("a 512Mi limit", ["metric-mem-1"])]
    assert "- a 512Mi limit (evidence: `metric-mem-1`)" in render(INCIDENT, written, why, {})


def test_a_model_that_keeps_citing_unknown_evidence_leaves_the_postmortem_without_a_summary():
    bad = {"summary": "s", "contributingFactors": [{"text": "t", "evidence": ["nope-1"]}]}
    with ScriptedOpenAI(answer(bad), answer(bad)) as server:
        config = from_env({"AIOPS_LLM_BASE_URL": server.url, "AIOPS_LLM_MODEL": server.model})
        written, why = summary.summarise(INCIDENT, "# Postmortem", config)
        assert len(server.requests) == 2  # one repair, no more: the timer's thread is given back soon
    assert written is None and why.startswith("the model's answer was not used: model ")
    assert "No model summary: the model's answer was not used" in render(INCIDENT, written, why, {})
