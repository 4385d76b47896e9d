"""`aiops export feedback`: the labelled examples of the history as a JSONL data set for fine-tuning.

One chat-format record per corrected diagnosis (docs/knowledge.md, "Feedback"): the system and user messages are
the diagnosis prompt as the model sees it (PROMPT_VERSION, redacted), rebuilt from what the history kept of the
incident and of the evidence its diagnosis cited; the assistant message is the answer the model should have given,
in the answer schema, with the engineer's root cause.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from aiops.api.incident import EvidenceItem, Suspect
from aiops.diagnosis.redaction import Redactor
from aiops.inference.prompts import PROMPT_VERSION, IncidentContext, build_messages
from aiops.stores.history.examples import Example


def record(example: Example) -> dict[str, Any]:
    """One example as {"messages": [system, user, assistant], "metadata": {...}}."""
    d = example.diagnosis
    redactor = Redactor()  # one per record: placeholders are consistent between its prompt and its answer
    r = redactor.redact
    evidence = [EvidenceItem.model_validate(e) for e in d.get("evidence") or []]
    suspects = [Suspect.model_validate(s) for s in d.get("suspects") or []]
    context = IncidentContext(
        title=r(example.title),
        severity=example.severity or "unknown",
        description=r(example.description) if example.description else None,
        alert_labels={k: r(v) for k, v in example.alert_labels.items()},
    )
    messages = build_messages(
        None,
        context,
        [s.model_copy(update={"reason": r(s.reason), "mitigation": None}) for s in suspects],
        [e.model_copy(update={"summary": r(e.summary)}) for e in evidence],
    )
    # The diagnosis's advice followed from the wrong cause: only what the engineer said is kept.
    answer = {
        "rootCause": r(example.corrected_root_cause),
        "reasoning": r(example.comment or ""),
        "mitigation": "",
        "prevention": "",
        "recommendation": "",
        "confidence": 100,
        "evidence": [e.id for e in evidence],
        "suspects": [],
    }
    messages.append({"role": "assistant", "content": json.dumps(answer)})
    return {
        "messages": messages,
        "metadata": {
            "incident": example.key,
            "uid": example.uid,
            "feedbackAt": example.at.isoformat(),
            "by": example.by,
            "diagnosedRootCause": r(d.get("rootCause") or ""),
            "diagnosedBy": d.get("model"),
            "promptVersion": PROMPT_VERSION,
            "redaction": redactor.report(),
        },
    }


def write_jsonl(examples: list[Example], out: TextIO) -> int:
    """Writes one record a line; returns how many."""
    for example in examples:
        out.write(json.dumps(record(example), sort_keys=True) + "\n")
    return len(examples)
