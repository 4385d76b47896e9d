"""Feedback with a corrected root cause: the spec's rule, and the fine-tuning record `aiops export feedback` writes."""

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from aiops.api.incident import IncidentSpec
from aiops.cli.export import record
from aiops.stores.history.examples import Example


def test_a_corrected_root_cause_goes_with_a_wrong_diagnosis_only():
    spec = {"title": "t", "severity": "high", "feedback": {"correct": False, "rootCause": "the Secret rotated"}}
    assert IncidentSpec.model_validate(spec).feedback.root_cause == "the Secret rotated"
    with pytest.raises(ValidationError) as err:
        IncidentSpec.model_validate({**spec, "feedback": {"correct": True, "rootCause": "the Secret rotated"}})
    assert err.value.errors()[0]["loc"] == ("feedback",) and "set correct: false" in str(err.value)
    with pytest.raises(ValidationError) as err:
        IncidentSpec.model_validate({**spec, "feedback": {"correct": False, "rootCause": "x" * 401}})
    assert err.value.errors()[0]["loc"] == ("feedback", "rootCause")


def test_the_record_is_the_redacted_prompt_and_the_corrected_answer():
    example = Example(
        uid="u1",
        key="shop/checkout",
        title="checkout cannot reach 10.1.2.3",
        description="payments time out",
        severity="critical",
        alert_labels={"alertname": "CheckoutDown"},
        at=datetime(2026, 12, 1, tzinfo=UTC),
        corrected_root_cause="the NetworkPolicy from 10.1.2.3 was removed",
        comment="see the policy diff",
        by="alice",
        diagnosis={
            "rootCause": "OOMKilled",
            "model": "qwen",
            "evidence": [{"id": "ev-np", "source": "kubernetes", "summary": "NetworkPolicy allow-db deleted"}],
            "suspects": [{"resource": "Pod/checkout-1", "failureMode": "OOMKilled", "score": 0.5, "reason": "oom"}],
        },
    )
    r = record(example)
    system, user, assistant = r["messages"]
    assert (system["role"], user["role"], assistant["role"]) == ("system", "user", "assistant")
    assert "10.1.2.3" not in json.dumps(r), "an address reached the data set unredacted"
    assert "[[BEGIN EVIDENCE id=ev-np source=kubernetes" in user["content"]
    answer = json.loads(assistant["content"])
    assert answer["rootCause"].startswith("the NetworkPolicy from ") and answer["evidence"] == ["ev-np"]
    # The placeholder of the address is the same in the prompt and in the answer: one Redactor per record.
    placeholder = answer["rootCause"].removeprefix("the NetworkPolicy from ").removesuffix(" was removed")
    assert placeholder in user["content"]
    assert r["metadata"]["diagnosedRootCause"] == "OOMKilled" and r["metadata"]["by"] == "alice"
