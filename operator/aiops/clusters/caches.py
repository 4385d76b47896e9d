"""The local cluster's watch-fed caches, started and stopped together by the processes that diagnose (the operator,
an analysis worker): the evidence the Kubernetes collector reads (informer.py) and the kill switch (suspension.py)."""

from __future__ import annotations

from kubernetes import client

from aiops.clusters import informer, suspension


def start(api: client.ApiClient, namespace: str) -> None:
    informer.start_local(api)
    suspension.watch(api, namespace)


def stop() -> None:
    if (cache := informer.local()) is not None:
        cache.stop()
    suspension.stop_watching()
