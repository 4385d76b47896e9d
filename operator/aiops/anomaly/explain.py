"""A model's one-paragraph explanation of the anomalies behind one Incident, citing the series it uses.

The series names and summaries come from the cluster (labels are anyone's to write): they are redacted
and fenced as untrusted data (inference.prompts.build_anomaly_messages), and the answer is schema-validated
by the gateway with one more check, that every cited series is one of those given. Without a valid answer
the Incident opens without an explanation, and says why.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pydantic import Field

from aiops.anomaly.detect import Anomaly
from aiops.api.common import Model
from aiops.diagnosis.redaction import Redactor
from aiops.inference import gateway
from aiops.inference.gateway import GatewayConfig
from aiops.inference.prompts import ANOMALY_PROMPT_VERSION, build_anomaly_messages

MAX_TOKENS = 400  # one paragraph and a few names
MAX_SERIES = 8  # findings shown to the model, the most severe first


class AnomalyExplanation(Model):
    explanation: str = Field(min_length=20, max_length=1200, description="One paragraph.")
    series: list[str] = Field(min_length=1, max_length=MAX_SERIES, description="Series cited, names as given.")


SCHEMAS = gateway.response_schemas(AnomalyExplanation)


@dataclass(frozen=True)
class Explained:
    text: str | None  # "<paragraph> (series cited: a, b; model m)" or None
    error: str | None  # why there is no text
    prompt_tokens: int = 0
    completion_tokens: int = 0


def explain(config: GatewayConfig, workload: str, anomalies: list[Anomaly]) -> Explained:
    """Never raises for what the model or its server does; see the module doc."""
    redactor = Redactor()
    shown = anomalies[:MAX_SERIES]
    findings = [(redactor.redact(a.series), redactor.redact(a.summary)) for a in shown]
    names = {name: a.series for (name, _), a in zip(findings, shown, strict=True)}  # as sent -> as stored
    schema = SCHEMAS[0] if config.structured_output == "json_object" else None

    def cited(answer: AnomalyExplanation) -> list[str]:
        given = ", ".join(sorted(names))
        return [
            f"series: {s!r} is not one of the series given; cite only: {given}" for s in answer.series if s not in names
        ]

    result = gateway.ask(
        replace(config, max_tokens=min(config.max_tokens, MAX_TOKENS)),
        build_anomaly_messages(redactor.redact(workload), findings, schema=schema),
        AnomalyExplanation,
        schema_name="anomaly_explanation",
        schemas=SCHEMAS,
        check=cited,
        consequence="The Incident opens without an explanation",
        prompt_version=ANOMALY_PROMPT_VERSION,
    )
    if result.status != "completed" or result.answer is None:
        return Explained(None, result.error, result.prompt_tokens, result.completion_tokens)
    answer = result.answer
    # The paragraph keeps its placeholders, as diagnoses do; the cited series are named as Prometheus does.
    cited_series = ", ".join(dict.fromkeys(names[s] for s in answer.series))
    text = f"{answer.explanation.strip()} (series cited: {cited_series}; model {config.model})"
    return Explained(text, None, result.prompt_tokens, result.completion_tokens)
