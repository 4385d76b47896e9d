"""What the operator will find in the checkout-oomkilled scenario, and a model answer it accepts at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiops.diagnosis import analyzers
from aiops.diagnosis.collectors import kubernetes as k8s_collector
from aiops.diagnosis.evidence import EvidenceBundle, Target


def expected_evidence(writer):
    """The evidence ids the operator will compute: the same collectors and analyzers, run here."""
    now = datetime.now(UTC)
    bundle = k8s_collector.collect(
        writer.api, EvidenceBundle(Target("Deployment", "checkout", writer.ns), now - timedelta(hours=1), now)
    )
    suspects, evidence, _ = analyzers.analyze(bundle)
    return suspects, evidence


def reply_for(writer) -> dict:
    """A diagnosis the gateway accepts at once: it cites the evidence the analyzers will find."""
    suspects, _ = expected_evidence(writer)
    return {
        "rootCause": "checkout 1.5.0 exceeds its 256Mi memory limit and is OOMKilled.",
        "reasoning": "OOMKilled with exit 137 right after revision 2.",
        "mitigation": "Roll back checkout to revision 1.",
        "prevention": "Load-test memory before release.",
        "recommendation": "Roll back, then profile the heap.",
        "confidence": 80,
        "evidence": suspects[0].evidence[:2],
        "suspects": [{"resource": suspects[0].resource, "failureMode": "OOMKilled", "reason": "exit 137"}],
    }
