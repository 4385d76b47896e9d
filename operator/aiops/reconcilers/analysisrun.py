"""AnalysisRun reconciler: validate and queue the run.

The inference scheduler (pool manager, model gateway) picks queued runs up; until it
does, a valid run waits in Pending with Ready=True.
"""

from __future__ import annotations

import kopf

from .. import kube
from ..api import ANALYSIS_RUN, INCIDENT
from ..api.analysisrun import AnalysisRunSpec, RunPhase
from ..status import READY
from .common import INVALID_SPEC, MissingReference, StatusBuilder, reconciler, validated


def check_references(spec: AnalysisRunSpec, namespace: str) -> None:
    if spec.incident_ref and kube.get(INCIDENT, spec.incident_ref.name, namespace) is None:
        raise MissingReference(
            f"spec.incidentRef: Incident {spec.incident_ref.name!r} does not exist in namespace {namespace!r}"
        )


@reconciler(ANALYSIS_RUN)
def reconcile(body: kopf.Body, patch: kopf.Patch, builder: StatusBuilder) -> None:
    spec, _ = validated(
        ANALYSIS_RUN,
        body,
        patch,
        builder,
        RunPhase.FAILED.value,
        resolve=lambda s: check_references(s, body["metadata"]["namespace"]),
    )
    # A run that failed only for its spec starts over once the spec is fixed; a run that
    # failed at inference keeps its verdict.
    if builder.new.get("phase") is None or builder.ready_reason() == INVALID_SPEC:
        builder.phase(RunPhase.PENDING.value, f"{spec.type} run queued for inference")
    builder.set(attempts=builder.new.get("attempts", 0))
    builder.condition(READY, "True", "Accepted", "spec is valid and its references resolve")
    builder.apply(patch)
