"""The local cluster's watch-fed caches (clusters/informer.py), started with the operator.

Diagnoses read pods, events, workloads, nodes, PVCs and quotas from them instead of listing them per
Incident, and every pass reads the kill switch from them (clusters/suspension.py); until an informer has synced
(and whenever its watch is down) readers go to the API server.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from aiops import settings
from aiops.clusters import caches
from aiops.core import kube

log = logging.getLogger(__name__)


@kopf.on.startup()
def start(**_: Any) -> None:
    if not settings.current().kube_cache:
        log.info("the Kubernetes cache is off (AIOPS_KUBE_CACHE=false): diagnoses list what they read")
        return
    caches.start(kube.api_client(), settings.current().namespace)


@kopf.on.cleanup()
def stop(**_: Any) -> None:
    caches.stop()
