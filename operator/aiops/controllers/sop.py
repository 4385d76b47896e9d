"""SOP reconciler: validate the runbook, publish its shape in status, and keep its steps in the knowledge index.

With history on (AIOPS_POSTGRES_DSN), a valid SOP's steps are indexed for search (aiops.knowledge.sops: unchanged
steps are not rewritten, removed ones deleted) and the `Indexed` condition says how it went; an invalid or deleted
SOP's steps leave the index. Indexing never fails validation: when PostgreSQL or the embedder fails, `Indexed`
turns False and the reconcile raises kopf.TemporaryError after its status patch, so kopf runs it again with
exponential backoff. A retry of the one handler, not a timer: validation and indexing stay one writer of the
SOP's conditions, and a resume (operator restart) re-checks the index at no cost but the content hashes.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from aiops import GROUP, VERSION, knowledge
from aiops.api import SOP
from aiops.api.common import ConditionStatus
from aiops.api.conditions import ConditionType, Reason
from aiops.api.sop import SOPSpec
from aiops.controllers.common import InvalidSpec, parse_spec, reconciler, reject
from aiops.core.status import StatusBuilder
from aiops.knowledge.index import DocumentError
from aiops.stores import history

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 5
BACKOFF_CAP_S = 300
# One thread embeds runbooks: at start with an empty index every SOP is embedded (tens of seconds for a
# library), which in kopf's pool would delay the Incidents' handlers behind it.
INDEXER = ThreadPoolExecutor(1, thread_name_prefix="aiops-sop-index")


@reconciler(SOP, retries=True, executor=INDEXER)
def reconcile(body: kopf.Body, patch: kopf.Patch, builder: StatusBuilder, retry: int) -> None:
    meta = body["metadata"]
    try:
        spec = parse_spec(SOP, body)
    except InvalidSpec as err:
        builder.status.validation_errors = err.problems[:50]
        builder.status.step_count = len(body.get("spec", {}).get("steps") or [])
        forget(meta["namespace"], meta["name"])  # a runbook that is not followed is not knowledge either
        reject(builder, SOP, err, patch, failed_phase=None)
    builder.status.step_count = len(spec.steps)
    builder.status.validation_errors = []
    message = f"{len(spec.steps)} steps validated"
    builder.condition(ConditionType.READY, ConditionStatus.TRUE, Reason.VALID, message, event="Normal")
    delay = index(meta["namespace"], meta["name"], spec, builder, retry)
    builder.apply(patch)
    if delay is not None:
        raise kopf.TemporaryError(builder.find(ConditionType.INDEXED).message, delay=delay)


def index(namespace: str, name: str, spec: SOPSpec, builder: StatusBuilder, retry: int) -> int | None:
    """Indexes the SOP's steps and records the outcome in `Indexed`; the seconds until the next try when it
    failed and a retry may help, else None."""
    indexed = ConditionType.INDEXED
    try:
        steps, written, deleted = knowledge.index_sop(namespace, name, spec.wire())
    except history.HistoryOff:
        return None  # no index to keep
    except DocumentError as exc:  # the spec must change: retrying the same steps gives the same answer
        message = f"steps not indexed for search: {exc}; shorten or fix the step"
        builder.condition(indexed, ConditionStatus.FALSE, Reason.STEP_REJECTED, message[:1024], event="Warning")
        return None
    except Exception as exc:  # noqa: BLE001  (PostgreSQL, the embedder: transient until proven otherwise)
        delay = min(BACKOFF_BASE_S * 2**retry, BACKOFF_CAP_S)
        message = f"steps not indexed for search: {type(exc).__name__}: {exc}"[:960] + f"; retrying in {delay}s"
        builder.condition(indexed, ConditionStatus.FALSE, Reason.INDEX_FAILED, message, event="Warning")
        return delay
    if written or deleted:
        log.info("SOP %s/%s: %d of %d steps indexed, %d removed", namespace, name, written, steps, deleted)
    builder.condition(indexed, ConditionStatus.TRUE, Reason.INDEXED, f"{steps} steps indexed for search")
    return None


def forget(namespace: str, name: str) -> None:
    """Drops the SOP's steps from the index; a failure is logged (what is left is found by search, not followed)."""
    try:
        gone = knowledge.forget_sop(namespace, name)
    except history.HistoryOff:
        return
    except Exception as exc:  # noqa: BLE001
        log.warning("SOP %s/%s: steps not removed from the index: %s: %s", namespace, name, type(exc).__name__, exc)
        return
    if gone:
        log.info("SOP %s/%s: %d steps removed from the index", namespace, name, gone)


# The watch's DELETED event, not kopf.on.delete: that needs a finalizer (kopf runs optional delete handlers only
# while another finalizer holds the object), and a finalizer would keep every SOP, and its namespace, from being
# deleted while the operator is down or uninstalled. The price: a deletion the operator did not see leaves the
# steps in the index (found by search, never followed: matching reads the SOP objects).
@kopf.on.event(GROUP, VERSION, SOP.plural, id="forget")
def deleted(type: str, body: kopf.Body, **_: Any) -> None:  # noqa: A002  (kopf's keyword)
    if type == "DELETED":
        forget(body["metadata"]["namespace"], body["metadata"]["name"])
