"""The kopf operator: settings and the entry point behind `aiops run`."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

import kopf

from aiops import GROUP
from aiops.observability import server
from aiops.stores import start_sinks

FINALIZER = f"{GROUP}/finalizer"
WORKERS = 16
_tasks: set[asyncio.Task] = set()  # a reference keeps the loop from collecting them


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # kopf's own bookkeeping lives under our prefix, so `kubectl get -o yaml` shows whose it is,
    # and only in annotations: status stays exactly what the CRD schema describes.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # One operator replica per cluster (leader election comes with the Helm chart).
    settings.peering.standalone = True
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = "aiops-operator"
    settings.posting.reporting_instance = socket.gethostname()
    settings.posting.event_name_prefix = "aiops-"
    settings.execution.max_workers = WORKERS
    # Bounded watch requests so a silently dropped connection is noticed.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330


@kopf.on.startup()
async def heartbeat(**_: Any) -> None:
    """Beats HEALTH from kopf's event loop every few seconds: a stuck loop turns /healthz red."""

    async def beat() -> None:
        while True:
            server.HEALTH.beat = time.monotonic()
            await asyncio.sleep(5)

    _tasks.add(asyncio.get_running_loop().create_task(beat(), name="aiops-heartbeat"))


def run(namespaces: list[str] | None = None, verbose: bool = False, liveness: str | None = None) -> None:
    """Runs the operator until SIGINT/SIGTERM; cluster-wide unless namespaces are given."""
    from aiops import controllers, ingest, settings  # noqa: F401  (importing them registers the handlers)

    if port := settings.current().metrics_port:
        server.serve(port)

    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.FULL, log_prefix=True)
    start_sinks(settings.current())  # history (PostgreSQL), event stream (Redis): each on, or a log line saying off
    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces,
            namespaces=namespaces or (),
            standalone=True,
            liveness_endpoint=liveness,
        )
    )
