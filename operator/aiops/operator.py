"""The kopf operator: settings and the entry point behind `aiops run`."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import kopf

from aiops import FINALIZER, GROUP, VERSION, leader
from aiops import settings as config
from aiops.api import KINDS
from aiops.core import background, sharding
from aiops.observability import liveness, server
from aiops.stores import start_sinks

WORKERS = 16


class Essence(kopf.AnnotationsDiffBaseStorage):
    """kopf's diff base (spec, labels, annotations), built without first deep-copying what it then drops: the status
    (an Incident's diagnosis and timeline) and the rest of the metadata. kopf builds it for every watch event, and
    that copy was one of the largest items of the operator's CPU in a burst of diagnoses."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        if extra_fields:  # handlers that watch a status field need the status kept
            return super().build(body=body, extra_fields=extra_fields)
        meta = body.get("metadata") or {}
        slim = {k: v for k, v in body.items() if k not in ("metadata", "status")}
        slim["metadata"] = {k: meta[k] for k in ("labels", "annotations") if k in meta}
        return super().build(body=kopf.Body(slim))


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # kopf's own bookkeeping lives under our prefix, so `kubectl get -o yaml` shows whose it is,
    # and only in annotations: status stays exactly what the CRD schema describes.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = Essence(prefix=GROUP, key="last-handled-configuration")
    # No kopf peering: of a shard's replicas only the Lease holder gets this far (aiops.leader).
    settings.peering.standalone = True
    # A shard watches its share only: the API server filters, the other shards' objects never arrive.
    if selector := config.current().shard.selector():
        for kind in KINDS:
            settings.watching.label_selectors[GROUP, VERSION, kind.plural] = selector
    # kopf's own log lines become Events from WARNING up: its "Handler succeeded" at INFO was two Events
    # per object, as many API writes as the transitions our handlers post themselves.
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = "aiops-operator"
    settings.posting.reporting_instance = socket.gethostname()
    settings.posting.event_name_prefix = "aiops-"
    settings.execution.max_workers = WORKERS
    liveness.configure(settings)


@kopf.on.startup()
async def heartbeat(**_: Any) -> None:
    liveness.start_heartbeat()


@kopf.on.cleanup()
async def stop_background(**_: Any) -> None:
    liveness.release()
    await background.cancel_all()


def run(namespaces: list[str] | None = None, verbose: bool = False, liveness_url: str | None = None) -> None:
    """Runs the operator until SIGINT/SIGTERM; cluster-wide unless namespaces are given.

    With leader election on, it first waits for its shard's Lease (a standby waits here, kopf not started).
    """
    from aiops import controllers, ingest  # noqa: F401  (importing them registers the handlers)
    from aiops.controllers import admission, knowledge

    conf = config.current()
    if conf.admission:
        admission.register(conf)
    knowledge.register(conf)
    if port := conf.metrics_port:
        server.serve(port)

    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.FULL, log_prefix=True)
    elector = leader.Elector(conf.leader, conf.namespace) if conf.leader else None
    if elector:
        elector.acquire()
    if conf.shard.sharded:
        logging.getLogger(__name__).info("shard %s: watching %s", conf.shard, conf.shard.selector())
        if conf.shard.primary:
            sharding.Labeller().start()
    start_sinks(conf)  # history (PostgreSQL), event stream (Redis): each on, or a log line saying off
    try:
        ended = asyncio.run(
            liveness.operate(
                clusterwide=not namespaces,
                namespaces=namespaces or (),
                standalone=True,
                liveness_endpoint=liveness_url,
                memo=kopf.Memo(namespaces=namespaces or []),  # the namespaces that the resync passes list
            )
        )
    finally:
        if elector:
            elector.release()
    if ended:
        raise SystemExit(1)
