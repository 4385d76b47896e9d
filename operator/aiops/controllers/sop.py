"""SOP reconciler: validate the runbook and publish its shape in status."""

from __future__ import annotations

import kopf

from aiops.api import SOP
from aiops.api.common import ConditionStatus
from aiops.api.conditions import ConditionType, Reason
from aiops.controllers.common import InvalidSpec, parse_spec, reconciler, reject
from aiops.core.status import StatusBuilder


@reconciler(SOP)
def reconcile(body: kopf.Body, patch: kopf.Patch, builder: StatusBuilder) -> None:
    try:
        spec = parse_spec(SOP, body)
    except InvalidSpec as err:
        builder.status.validation_errors = err.problems[:50]
        builder.status.step_count = len(body.get("spec", {}).get("steps") or [])
        reject(builder, SOP, err, patch, failed_phase=None)
    builder.status.step_count = len(spec.steps)
    builder.status.validation_errors = []
    message = f"{len(spec.steps)} steps validated"
    builder.condition(ConditionType.READY, ConditionStatus.TRUE, Reason.VALID, message, event="Normal")
    builder.apply(patch)
