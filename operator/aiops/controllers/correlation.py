"""Fleet correlation on a schedule: one pass over the hub's Incidents every AIOPS_CORRELATION_INTERVAL_S.

A periodic pass, not a per-Incident handler, because a group forms from Incidents that arrive at
different times on different clusters, and a parent resolves when its last child does; one LIST per
interval costs less than a handler per Incident looking at all the others. The rules are in
fleet/correlation.py.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import kopf

from aiops import settings
from aiops.core import background, kube
from aiops.core.status import now_utc
from aiops.fleet import correlation

log = logging.getLogger(__name__)


def correlate_once(client: kube.Client, namespace: str, window: timedelta) -> list[str]:
    return correlation.sweep(client, namespace, now_utc(), window)


@kopf.on.startup()
async def start(**_: Any) -> None:
    config = settings.current()
    if not config.shard.primary:  # one pass per fleet: it reads every shard's Incidents
        log.info("fleet correlation runs on shard 0, not on shard %s", config.shard)
        return
    if not config.correlation_interval_s:
        log.info("fleet correlation is off (AIOPS_CORRELATION_INTERVAL_S=0)")
        return
    window = timedelta(seconds=config.correlation_window_s)

    async def loop() -> None:
        while True:
            try:
                parents = await asyncio.to_thread(correlate_once, kube.API, config.namespace, window)
                if parents:
                    log.debug("fleet correlation: %d parent Incident(s) up to date", len(parents))
            except Exception as exc:  # noqa: BLE001  (an API hiccup must not end correlation for good)
                log.warning("fleet correlation pass failed, next in %ss: %s", config.correlation_interval_s, exc)
            await asyncio.sleep(config.correlation_interval_s)

    background.spawn(loop(), "aiops-correlation")
