"""Postmortems: a timer writes each resolved Incident's postmortem into object storage (aiops.postmortems).

On only when AIOPS_POSTMORTEM_ENDPOINT names a store. A timer, not a change handler: kopf's change handlers
do not see status changes, and resolution is one. It runs only while an Incident is Resolved and its
postmortem is missing or older than its spec, and it is synchronous: kopf runs it in its executor's threads,
off the event loop, so the store and the model can take their time. A store that fails is retried with
exponential backoff (kopf.TemporaryError's delay; `retry` counts the failures in a row).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from aiops import GROUP, VERSION, settings
from aiops.api import INCIDENT
from aiops.api.incident import IncidentSource
from aiops.controllers.common import kopf_emitter
from aiops.core import kube
from aiops.core.status import StatusBuilder, now_utc
from aiops.postmortems import publish
from aiops.stores.objectstore import ObjectStore, ObjectStoreError

log = logging.getLogger(__name__)

INTERVAL_S = 5.0
BACKOFF_BASE_S = 5
BACKOFF_CAP_S = 300

_store: ObjectStore | None = None


@kopf.on.startup()
def start(**_: Any) -> None:
    global _store
    config = settings.current().postmortems
    if config is None:
        log.info("postmortems are off: AIOPS_POSTMORTEM_ENDPOINT is not set")
        return
    try:
        _store = ObjectStore(config)
    except ValueError as exc:
        raise kopf.PermanentError(str(exc)) from None
    log.info("postmortems go to %s, bucket %s", config.endpoint, config.bucket)


def due(body: kopf.Body, spec: kopf.Spec, **_: Any) -> bool:
    # A fleet-wide parent's children each write their own.
    return _store is not None and spec.get("source") != IncidentSource.CORRELATION and publish.due(dict(body))


@kopf.timer(GROUP, VERSION, INCIDENT.plural, id="postmortem", interval=INTERVAL_S, when=due)
def write_postmortem(body: kopf.Body, retry: int, **_: Any) -> None:
    delay = min(BACKOFF_BASE_S * 2**retry, BACKOFF_CAP_S)
    builder = StatusBuilder(INCIDENT, body, now_utc(), kopf_emitter(body))
    try:
        publish.publish(kube.API, dict(body), builder, settings.current(), _store, delay)
    except ObjectStoreError as exc:
        raise kopf.TemporaryError(str(exc), delay=delay) from None
