"""Notifications on kopf's loop: each Incident's due notices into the outbox, the delivery worker, and each
delivery's outcome back into the Incident's status.

On only when AIOPS_NOTIFY_CONFIG names a configuration; the outbox lives in the history database
(AIOPS_POSTGRES_DSN), so notifications need it. A configuration that does not parse, or names a secret
that cannot be read, stops the operator at startup with the file and field named: a pager that is
silently off is worse than an operator that does not start.

Enqueueing is a timer, not a change handler, because a held diagnosis (notify/compose.py) comes due
with nothing about the Incident changing. The stages already in the outbox are kept in the annotation
NOTIFIED_ANNOTATION, so the timer runs only while an Incident has a stage to hand over; a crash between
the insert and the annotation only inserts again, which the outbox ignores.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from aiops import GROUP, VERSION, settings
from aiops.api import INCIDENT, MANAGED_CLUSTER
from aiops.api.common import ConditionStatus
from aiops.api.conditions import ConditionType, Reason
from aiops.api.incident import NotificationState, NotificationStatus
from aiops.core import kube
from aiops.core.status import CONFLICT_RETRIES, StatusBuilder, now_utc
from aiops.notify import compose, outbox
from aiops.notify.channels import build
from aiops.notify.config import NotifyConfig, load, route
from aiops.notify.delivery import Delivery, Worker
from aiops.stores import history

log = logging.getLogger(__name__)

NOTIFIED_ANNOTATION = f"{GROUP}/notified"
INTERVAL_S = 5.0
FLEET_CHECK_S = 15.0
STATES = {"sent": NotificationState.SENT, "pending": NotificationState.PENDING, "dead": NotificationState.DEAD}


@dataclass
class _Runtime:
    config: NotifyConfig
    pool: Any  # asyncpg.Pool
    stop: asyncio.Event
    task: asyncio.Task
    correlating: bool
    fleet_checked: float = float("-inf")
    fleet: bool = False

    def hold(self) -> timedelta:
        """The group wait, while there is a fleet to correlate with (another cluster than the local one)."""
        if not self.correlating or not self.config.group_wait_seconds:
            return timedelta(0)
        if time.monotonic() - self.fleet_checked > FLEET_CHECK_S:
            self.fleet = bool(kube.API.list(MANAGED_CLUSTER))
            self.fleet_checked = time.monotonic()
        return timedelta(seconds=self.config.group_wait_seconds) if self.fleet else timedelta(0)


_runtime: _Runtime | None = None


def handed_over(body: dict[str, Any]) -> set[str]:
    value = ((body.get("metadata") or {}).get("annotations") or {}).get(NOTIFIED_ANNOTATION) or ""
    return {k for k in value.split(",") if k}


def has_stage_to_hand_over(body: dict[str, Any], **_: Any) -> bool:
    if _runtime is None:
        return False
    done = handed_over(body)
    return any(compose.stage_key(stage, detail) not in done for stage, detail, _ in compose.reached(body))


@kopf.on.startup()
async def start(**_: Any) -> None:
    global _runtime
    config = settings.current()
    if not config.notify_config:
        log.info("notifications are off: AIOPS_NOTIFY_CONFIG is not set")
        return
    notify = load(config.notify_config)  # NotifyConfigError names the file and field; startup fails with it
    dsn, reason = history.resolve_dsn(config.postgres_dsn, config.postgres_dsn_file)
    if dsn is None:
        raise kopf.PermanentError(f"notifications need the history database for their outbox; {reason}")
    channels = [build(c) for c in notify.channels]  # a secret that cannot be read fails here, named
    pool = await outbox.open_pool(dsn)
    worker = Worker(pool, channels, on_outcome=record)
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(worker.run(stop), name="aiops-notify")
    _runtime = _Runtime(notify, pool, stop, task, correlating=config.correlation_interval_s > 0)
    log.info("notifications are on: %d channel(s), %d route(s)", len(notify.channels), len(notify.routes))


@kopf.on.cleanup()
async def stop(**_: Any) -> None:
    global _runtime
    runtime, _runtime = _runtime, None
    if runtime is not None:
        runtime.stop.set()
        await runtime.task
        await runtime.pool.close()


@kopf.timer(GROUP, VERSION, INCIDENT.plural, id="notify", interval=INTERVAL_S, when=has_stage_to_hand_over)
async def hand_over(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """Puts the Incident's due notices into the outbox, routed, and marks their stages handed over."""
    runtime = _runtime
    if runtime is None:
        return
    done = handed_over(body)
    hold = await asyncio.to_thread(runtime.hold)
    for notice in compose.due(dict(body), now_utc(), hold):
        key = compose.stage_key(notice.stage, notice.detail)
        if key in done:
            continue
        channels = route(runtime.config, notice)
        try:
            await outbox.enqueue(runtime.pool, notice, channels)
        except Exception as exc:  # noqa: BLE001  (the database may be restarting: the timer comes back)
            raise kopf.TemporaryError(f"cannot put the {notice.stage} notice in the outbox: {exc}", delay=15) from None
        done.add(key)
    patch.setdefault("metadata", {}).setdefault("annotations", {})[NOTIFIED_ANNOTATION] = ",".join(sorted(done))


async def record(delivery: Delivery) -> None:
    await asyncio.to_thread(write_outcome, kube.API, delivery)


def write_outcome(client: kube.Client, delivery: Delivery) -> None:
    """The delivery's outcome in the Incident's status.notifications and its Notified condition, written
    with the resourceVersion read (the only writer of both, but several sends may finish at once)."""
    namespace, name = delivery.incident.split("/", 1)
    for _ in range(CONFLICT_RETRIES):
        incident = client.get(INCIDENT, name, namespace)
        if incident is None or incident["metadata"].get("uid") != delivery.uid:
            return  # deleted (or re-created) since: nothing to record on
        builder = StatusBuilder(INCIDENT, incident, now_utc(), lambda *a: None)
        entry = NotificationStatus(
            channel=delivery.channel,
            stage=delivery.stage,
            state=STATES[delivery.state],
            attempts=delivery.attempts,
            error=(delivery.error or "")[:512] or None,
            at=delivery.at,
        )
        others = [n for n in builder.status.notifications if (n.channel, n.stage) != (entry.channel, entry.stage)]
        builder.status.notifications = (others + [entry])[-40:]
        _condition(builder)
        changes = builder.changes()
        if not changes:
            return
        try:
            client.patch_status(INCIDENT, name, namespace, changes, incident["metadata"].get("resourceVersion"))
            return
        except ApiException as exc:
            if exc.status != 409:
                raise
    log.warning("notify: %s on %s: status kept changing; outcome not recorded", delivery.incident, delivery.channel)


def _condition(builder: StatusBuilder) -> None:
    entries = builder.status.notifications
    dead = [n for n in entries if n.state == NotificationState.DEAD]
    pending = [n for n in entries if n.state == NotificationState.PENDING]
    if dead:
        n = dead[-1]
        status, reason = ConditionStatus.FALSE, Reason.DELIVERY_FAILED
        message = f"{n.stage} notice to {n.channel} given up after {n.attempts} attempt(s): {n.error}"
    elif pending:
        n = pending[-1]
        status, reason = ConditionStatus.UNKNOWN, Reason.DELIVERY_PENDING
        message = f"{n.stage} notice to {n.channel} not delivered yet ({n.attempts} attempt(s)): {n.error}"
    else:
        status, reason = ConditionStatus.TRUE, Reason.DELIVERED
        message = "delivered: " + ", ".join(f"{n.stage} to {n.channel}" for n in entries[-5:])
    builder.condition(ConditionType.NOTIFIED, status, reason, message[:1024])
