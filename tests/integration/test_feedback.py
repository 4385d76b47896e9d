"""Feedback that closes the loop, end to end on a real PostgreSQL and a real operator: an engineer's corrected root
cause becomes a labelled example that the next similar Incident's diagnosis prompt shows as a PAST CORRECTION, and
that `aiops export feedback` writes out as a chat-format JSONL record."""

import json
import re
import subprocess
import sys

from aiops.inference.prompts import PROMPT_VERSION
from harness import phase, wait_for
from support.artifacts import keep
from support.scripted_openai import ScriptedOpenAI
from support.servers import query

CORRECTED = "the checkout-db Secret was rotated and checkout kept connecting with the old password"


def incident(name: str, llm: bool, **spec) -> dict:
    return {
        "apiVersion": "aiops.dev/v1alpha1",
        "kind": "Incident",
        "metadata": {"name": name},
        "spec": {
            "title": "checkout pods restarting, customers see 503",
            "severity": "critical",
            "target": {"kind": "Deployment", "name": "checkout"},
            "analysis": {"llm": llm},
            **spec,
        },
    }


def test_a_corrected_root_cause_reaches_the_next_similar_diagnosis_and_the_export(
    dsn, operator_env, kubectl, namespace, writer, tmp_path
):
    from aiops_dev.eval import cases

    cases.write("checkout-oomkilled", writer)
    with ScriptedOpenAI() as llm:  # nothing scripted: each request is recorded and answered 500 (the fallback)
        operator = operator_env(
            {"AIOPS_POSTGRES_DSN": dsn, "AIOPS_LLM_BASE_URL": llm.url, "AIOPS_LLM_MODEL": llm.model}
        )
        wait_for(lambda: "history is on" in operator.log(since_start=True), 30, "the operator to say history is on")

        # First Incident: diagnosed by the analyzers alone; an engineer then says the diagnosis was wrong.
        kubectl.apply(incident("first", llm=False), namespace)
        kubectl.wait("incident", "first", namespace, until=lambda o: phase(o) == "Diagnosed", timeout=90)
        feedback = {"correct": False, "by": "alice", "comment": "the OOM kills were a symptom", "rootCause": CORRECTED}
        kubectl.apply(incident("first", llm=False, feedback=feedback), namespace)
        first = kubectl.wait(
            "incident", "first", namespace,
            until=lambda o: any(c["type"] == "Feedback" for c in o.get("status", {}).get("conditions", [])),
            timeout=30,
        )  # fmt: skip
        condition = next(c for c in first["status"]["conditions"] if c["type"] == "Feedback")
        assert condition["reason"] == "DiagnosisIncorrect" and CORRECTED in condition["message"]
        rows = wait_for(
            lambda: query(dsn, "SELECT * FROM feedback WHERE root_cause IS NOT NULL"), 30, "the feedback row"
        )
        assert rows[0]["root_cause"] == CORRECTED and rows[0]["by_whom"] == "alice"

        # A similar Incident: its diagnosis prompt carries the correction, fenced as data.
        kubectl.apply(incident("second", llm=True), namespace)
        kubectl.wait("incident", "second", namespace, until=lambda o: phase(o) == "Diagnosed", timeout=120)
        assert llm.requests, "the model was never asked"
        user = llm.requests[0]["messages"][1]["content"]
        boundary = re.search(r"\[\[BEGIN INCIDENT boundary=([0-9a-f]{24})\]\]", user).group(1)
        block = re.search(
            rf"^\[\[BEGIN PAST_CORRECTIONS boundary={boundary}\]\]\n(.*?)\n\[\[END PAST_CORRECTIONS", user, re.S | re.M
        )
        assert block, "no PAST_CORRECTIONS block in the prompt"
        assert f"{namespace}/first" in block.group(1)
        assert f"an engineer corrected the root cause to: {CORRECTED}" in block.group(1)
        assert "the diagnosis said: " in block.group(
            1
        ) and "their comment: the OOM kills were a symptom" in block.group(1)
        start = user.index("Past corrections:")
        # The "done when": a prompt using a past correction.
        keep(
            "past-correction-prompt.txt",
            f"# {PROMPT_VERSION}, user message of Incident {namespace}/second, from:\n{user[start:]}\n",
        )

    # The labelled example, exported for fine-tuning.
    out = tmp_path / "feedback.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "aiops.cli", "export", "feedback", "-o", str(out), "--dsn", dsn],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "1 labelled example(s) written" in proc.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 1
    system, user, assistant = records[0]["messages"]
    assert [m["role"] for m in (system, user, assistant)] == ["system", "user", "assistant"]
    assert "checkout pods restarting" in user["content"] and "[[BEGIN EVIDENCE id=" in user["content"]
    answer = json.loads(assistant["content"])
    assert answer["rootCause"] == CORRECTED and answer["reasoning"] == "the OOM kills were a symptom"
    assert answer["evidence"] and all(f"id={e} " in user["content"] for e in answer["evidence"])
    meta = records[0]["metadata"]
    assert meta["incident"] == f"{namespace}/first" and meta["by"] == "alice"
    assert meta["diagnosedRootCause"] and meta["diagnosedRootCause"] != CORRECTED
