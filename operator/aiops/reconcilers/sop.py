"""SOP reconciler: validate the runbook and publish its shape in status."""
from __future__ import annotations

from typing import Any

import kopf

from .. import GROUP, VERSION
from ..api import SOP
from ..status import READY, now_utc
from .common import InvalidSpec, StatusBuilder, kopf_emitter, parse_spec, reject


def reconcile(body: kopf.Body, patch: kopf.Patch, builder: StatusBuilder) -> None:
    try:
        spec = parse_spec(SOP, body)
    except InvalidSpec as err:
        builder.set(validationErrors=err.problems[:50], stepCount=len(body.get("spec", {}).get("steps") or []))
        reject(builder, SOP, err, patch, failed_phase=None)
    builder.set(stepCount=len(spec.steps), validationErrors=[])
    builder.condition(READY, "True", "Valid", f"{len(spec.steps)} steps validated", event="Normal")
    builder.apply(patch)


@kopf.on.resume(GROUP, VERSION, SOP.plural)
@kopf.on.create(GROUP, VERSION, SOP.plural)
@kopf.on.update(GROUP, VERSION, SOP.plural)
def sop_changed(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    reconcile(body, patch, StatusBuilder(body, now_utc(), kopf_emitter(body)))
