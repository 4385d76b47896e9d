"""SOP reconciler: validate the runbook and publish its shape in status."""

from __future__ import annotations

import kopf

from aiops.api import SOP
from aiops.controllers.common import InvalidSpec, parse_spec, reconciler, reject
from aiops.core.status import READY, StatusBuilder


@reconciler(SOP)
def reconcile(body: kopf.Body, patch: kopf.Patch, builder: StatusBuilder) -> None:
    try:
        spec = parse_spec(SOP, body)
    except InvalidSpec as err:
        builder.set(validationErrors=err.problems[:50], stepCount=len(body.get("spec", {}).get("steps") or []))
        reject(builder, SOP, err, patch, failed_phase=None)
    builder.set(stepCount=len(spec.steps), validationErrors=[])
    builder.condition(READY, "True", "Valid", f"{len(spec.steps)} steps validated", event="Normal")
    builder.apply(patch)
