"""The model's part of a postmortem: a summary and contributing factors, each citing the diagnosis's evidence.

The model sees the postmortem as rendered without it (redacted already). An answer that cites an evidence id
the diagnosis does not hold goes back to the model once as a repair; then the postmortem goes without a
summary and says why. The call is bounded (one transport retry, one repair) because it runs in a thread of
kopf's executor (the postmortem timer is synchronous) and must give the thread back soon.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from pydantic import Field

from aiops.api.common import Model
from aiops.clusters import suspension
from aiops.core import kube
from aiops.inference.gateway import ask
from aiops.postmortems.render import Factor, Summary
from aiops.settings import Settings

PROMPT_VERSION = "postmortem-v1"
ERROR_CHARS = 300

SYSTEM = (
    "You write the summary of a postmortem for site reliability engineers. You get the postmortem as the "
    "operator recorded it: the incident, its timeline, the diagnosis with its evidence items (each with an id "
    "in backquotes), the runbook's steps and audit, the approvals and the engineers' feedback. A corrected root "
    "cause in the feedback overrides the diagnosis. Answer with one JSON object: `summary`, three to six "
    "sentences on what happened, its impact window and how it was resolved; `contributingFactors`, the "
    "conditions that led to the incident or prolonged it, each with `text` and `evidence`, the ids of the "
    "evidence items that support it (at least one; only ids listed in the postmortem)."
)


class ModelFactor(Model):
    text: str = Field(min_length=1, max_length=512)
    evidence: list[str] = Field(min_length=1, max_length=10)


class PostmortemAnswer(Model):
    summary: str = Field(min_length=1, max_length=2000)
    contributing_factors: list[ModelFactor] = Field(min_length=1, max_length=8)


def withheld(incident: dict[str, Any], settings: Settings, client: kube.Client) -> str | None:
    """Why no model may write this postmortem's summary, or None when one may."""
    spec = incident.get("spec") or {}
    if settings.llm is None:
        return "no model is configured (AIOPS_LLM_BASE_URL)"
    if (spec.get("analysis") or {}).get("llm") is False:
        return "the Incident says spec.analysis.llm: false"
    if not ((incident.get("status") or {}).get("diagnosis") or {}).get("evidence"):
        return "the diagnosis holds no evidence a summary could cite"
    held = suspension.current((spec.get("clusterRef") or {}).get("name"), settings.namespace, client)
    return f"the model was not called: {held.message()}" if held else None


def summarise(incident: dict[str, Any], postmortem: str, settings: Settings) -> tuple[Summary | None, str]:
    """The model's summary of `postmortem` (rendered without one), or None and why not."""
    ids = {e["id"] for e in incident["status"]["diagnosis"]["evidence"]}
    config = dataclasses.replace(settings.llm, max_transport_retries=1, max_repair_attempts=1)
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": postmortem}]
    if config.structured_output == "json_object":
        messages[0]["content"] += " The JSON schema: " + json.dumps(PostmortemAnswer.model_json_schema(by_alias=True))
    result = ask(
        config,
        messages,
        PostmortemAnswer,
        schema_name="postmortem_summary",
        check=lambda answer: _cited(answer, ids),
        consequence="The postmortem goes without a summary",
        prompt_version=PROMPT_VERSION,
    )
    if result.answer is None:
        return None, f"the model's answer was not used: {(result.error or result.status)[:ERROR_CHARS]}"
    factors = [Factor(f.text, list(f.evidence)) for f in result.answer.contributing_factors]
    return Summary(result.answer.summary, factors, result.model or config.model), ""


def _cited(answer: PostmortemAnswer, ids: set[str]) -> list[str]:
    given = ", ".join(sorted(ids))
    return [
        f"contributingFactors[{i}].evidence: {e!r} is not the id of any evidence item; cite only: {given}"
        for i, f in enumerate(answer.contributing_factors)
        for e in f.evidence
        if e not in ids
    ]
