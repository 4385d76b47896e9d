"""AnalysisRun reconciler: validate and queue the run.

The inference scheduler (pool manager, model gateway) picks queued runs up; until it
does, a valid run waits in Pending with Ready=True.
"""
from __future__ import annotations

from typing import Any

import kopf

from .. import GROUP, VERSION, kube
from ..api import ANALYSIS_RUN, INCIDENT
from ..api.analysisrun import AnalysisRunSpec, RunPhase
from ..status import READY, now_utc
from .common import INVALID_SPEC, InvalidSpec, MissingReference, StatusBuilder, kopf_emitter, parse_spec, reject, wait_for_reference


def check_references(spec: AnalysisRunSpec, namespace: str) -> None:
    if spec.incident_ref and kube.get(INCIDENT, spec.incident_ref.name, namespace) is None:
        raise MissingReference(f"spec.incidentRef: Incident {spec.incident_ref.name!r} does not exist in namespace {namespace!r}")


def reconcile(body: kopf.Body, patch: kopf.Patch, builder: StatusBuilder) -> None:
    try:
        spec = parse_spec(ANALYSIS_RUN, body)
    except InvalidSpec as err:
        reject(builder, ANALYSIS_RUN, err, patch, failed_phase=RunPhase.FAILED.value)
    try:
        check_references(spec, body["metadata"]["namespace"])
    except MissingReference as err:
        wait_for_reference(builder, err, patch)
    # A run that failed only for its spec starts over once the spec is fixed; a run that
    # failed at inference keeps its verdict.
    if builder.new.get("phase") is None or builder.ready_reason() == INVALID_SPEC:
        builder.phase(RunPhase.PENDING.value, f"{spec.type} run queued for inference")
    builder.set(attempts=builder.new.get("attempts", 0))
    builder.condition(READY, "True", "Accepted", "spec is valid and its references resolve")
    builder.apply(patch)


@kopf.on.resume(GROUP, VERSION, ANALYSIS_RUN.plural)
@kopf.on.create(GROUP, VERSION, ANALYSIS_RUN.plural)
@kopf.on.update(GROUP, VERSION, ANALYSIS_RUN.plural)
def analysis_run_changed(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    reconcile(body, patch, StatusBuilder(body, now_utc(), kopf_emitter(body)))
