"""Writes a resolved Incident's postmortem: render it, store it, link it from status, index it for search.

The writer of `status.postmortem` and the condition PostmortemWritten. Written again when the spec changes
after resolution (feedback comes later): status.postmortem.generation says which spec it was written from.
A failure of the store is recorded as the condition, False, naming the endpoint and bucket and when the
next try is, and raised again for the caller's retry.
"""

from __future__ import annotations

import logging
from typing import Any

from aiops.api.common import ConditionStatus
from aiops.api.conditions import ConditionType, Reason
from aiops.api.incident import Approval, IncidentPhase, PostmortemStatus
from aiops.core import kube
from aiops.core.status import StatusBuilder, write_rebased
from aiops.knowledge import Document, index_document
from aiops.postmortems import summary
from aiops.postmortems.render import object_key, render
from aiops.settings import Settings
from aiops.sops.attestation import verified
from aiops.stores import history
from aiops.stores.objectstore import Failure, ObjectStore, ObjectStoreError

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/markdown; charset=utf-8"
REASONS = {
    Failure.UNREACHABLE: Reason.STORE_UNREACHABLE,
    Failure.BUCKET_MISSING: Reason.BUCKET_MISSING,
    Failure.REJECTED: Reason.STORE_REJECTED,
}


def due(incident: dict[str, Any]) -> bool:
    """Resolved, and no postmortem written from this generation of the spec yet."""
    status = incident.get("status") or {}
    written = (status.get("postmortem") or {}).get("generation")
    return status.get("phase") == IncidentPhase.RESOLVED and written != incident["metadata"].get("generation")


def markdown(client: kube.Client, incident: dict[str, Any], settings: Settings) -> str:
    """The postmortem, with the model's summary where a model may write one."""
    uid = incident["metadata"]["uid"]
    approvals = (incident.get("spec") or {}).get("approvals") or []
    sealed = {i: verified(settings.approvals.key, uid, Approval.model_validate(a)) for i, a in enumerate(approvals)}
    why = summary.withheld(incident, settings, client)
    if why:
        return render(incident, None, why, sealed)
    written, why = summary.summarise(incident, render(incident, None, "being written", sealed), settings)
    return render(incident, written, why, sealed)


def publish(
    client: kube.Client, incident: dict[str, Any], builder: StatusBuilder, settings: Settings, store: ObjectStore,
    retry_in: int,
) -> None:  # fmt: skip
    """Stores the postmortem and records it on the Incident; raises ObjectStoreError (recorded) for a retry."""
    text = markdown(client, incident, settings)
    key = object_key(incident)
    try:
        stored = store.put(key, text.encode(), CONTENT_TYPE)
    except ObjectStoreError as exc:
        message = f"postmortem {key} not stored: {exc}; retrying in {retry_in}s"
        builder.condition(ConditionType.POSTMORTEM_WRITTEN, ConditionStatus.FALSE, REASONS[exc.failure], message,
                          event="Warning")  # fmt: skip
        write_rebased(client, builder, incident)
        raise
    previous = builder.status.postmortem
    at = previous.written_at if previous and previous.sha256 == stored.sha256 else builder.now
    builder.status.postmortem = PostmortemStatus(
        bucket=stored.bucket,
        key=stored.key,
        url=stored.url,
        written_at=at,
        sha256=stored.sha256,
        generation=incident["metadata"]["generation"],
    ).wire()
    message = f"postmortem stored at {stored.url} (sha256 {stored.sha256[:12]})"
    if not builder.condition(ConditionType.POSTMORTEM_WRITTEN, ConditionStatus.TRUE, Reason.POSTMORTEM_WRITTEN,
                             message, event="Normal") and stored.written:  # fmt: skip
        builder.emit("Normal", Reason.POSTMORTEM_WRITTEN, f"{message}: written again after the spec changed")
    _index(incident, text, stored.bucket, stored.key)
    write_rebased(client, builder, incident)


def _index(incident: dict[str, Any], text: str, bucket: str, key: str) -> None:
    """Into the knowledge index, keyed by the Incident's UID; history off: nothing to index into."""
    meta = incident["metadata"]
    title = f"Postmortem: {(incident.get('spec') or {}).get('title') or meta['name']}"
    doc = Document(kind="postmortem", key=meta["uid"], title=title, text=text, meta={"bucket": bucket, "key": key})
    try:
        index_document(doc)
    except history.HistoryOff:
        return
    except Exception as exc:  # noqa: BLE001  (the postmortem is stored and linked; search is what goes without)
        log.warning("postmortem %s/%s: not indexed for search: %s: %s", meta["namespace"], meta["name"],
                    type(exc).__name__, exc)  # fmt: skip
