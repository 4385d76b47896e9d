"""Incident remediation: a timer that matches an SOP once the diagnosis is in and follows its steps.

A timer, not the reconcile handler, because approvals and timeouts arrive while nothing about the
Incident's spec changes; it runs only for Incidents that are Diagnosed or Remediating with a runbook
still to match or finish, so resolved Incidents cost nothing.
"""

from __future__ import annotations

from typing import Any

import kopf

from aiops import GROUP, VERSION, settings
from aiops.api import INCIDENT
from aiops.api.incident import IncidentSource
from aiops.controllers.common import kopf_emitter, unless_namespace_terminating
from aiops.core import kube
from aiops.core.status import StatusBuilder, now_utc, write_rebased
from aiops.sops.remediation import flow

INTERVAL_S = 5.0


@kopf.timer(
    GROUP,
    VERSION,
    INCIDENT.plural,
    id="remediate",
    interval=INTERVAL_S,
    # A fleet-wide parent has no runbook of its own: each child follows its cluster's.
    when=lambda spec, status, **_: (
        spec.get("source") != IncidentSource.CORRELATION and flow.is_pending(dict(status or {}))
    ),
)
def remediate(body: kopf.Body, **_: Any) -> None:
    builder = StatusBuilder(INCIDENT, body, now_utc(), kopf_emitter(body))
    with unless_namespace_terminating(INCIDENT, body):
        flow.follow(kube.API, body, builder, settings.current())
        # Written here, not through kopf's patch: on SIGTERM kopf lets a running pass finish but drops its patch,
        # and a change the pass made would go unaudited (the next pass finds it made and escalates "not made").
        write_rebased(kube.API, builder, dict(body))
