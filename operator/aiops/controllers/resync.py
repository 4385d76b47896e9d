"""Resync: Incidents and AnalysisRuns whose handling was lost are handed to the handlers again.

kopf acts on watch events. When a write that would have brought the next event is lost, the object waits for an
event that never comes: a 404 or a 5xx from an API server whose etcd just restarted, kopf's own patch failing after
its retries, a run's executor dying with its status unwritten. Every AIOPS_RESYNC_INTERVAL_S a pass lists this
shard's Incidents and AnalysisRuns, and an object that is unfinished in one of these ways, and has not changed since
the previous pass, gets the annotation `resync.aiops.dev/at` set to the time: a change, so its handlers run again
(they are idempotent). Unfinished:
- kopf has not handled it yet (no last-handled-configuration), or a handler's retry is overdue;
- it is being deleted and still carries our finalizer;
- an Incident in Triaging or Analyzing whose AnalysisRun does not exist;
- an accepted run (Pending or Running) that this operator executes itself and is not executing.
In a healthy cluster a pass changes nothing: two LISTs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from aiops import FINALIZER, GROUP, VERSION, settings
from aiops.api import ANALYSIS_RUN, INCIDENT, Kind
from aiops.api.analysisrun import RunPhase
from aiops.api.incident import IncidentPhase
from aiops.controllers import analysisrun
from aiops.core import background, kube, metrics
from aiops.core.status import now_utc, parse_time, rfc3339

log = logging.getLogger(__name__)
ANNOTATION = "resync.aiops.dev/at"  # outside kopf's prefix: kopf counts it as a change and runs the handlers
HANDLED = f"{GROUP}/last-handled-configuration"
WAITING_FOR_RUN = (IncidentPhase.TRIAGING.value, IncidentPhase.ANALYZING.value)
ACCEPTED = (RunPhase.PENDING.value, RunPhase.RUNNING.value)


def retries(annotations: dict[str, str]) -> dict[str, dict[str, Any]]:
    """kopf's progress annotations, by handler: the handlers it has started and not yet finished (succeeded, or
    failed for good)."""
    found = {}
    for key, value in annotations.items():
        if key.startswith(f"{GROUP}/") and key != HANDLED:
            try:
                progress = json.loads(value)
            except ValueError:
                continue
            started = isinstance(progress, dict) and "started" in progress
            if started and not (progress.get("success") or progress.get("failure")):
                found[key.removeprefix(f"{GROUP}/")] = progress
    return found


def overdue(progress: dict[str, Any], now: datetime, grace: timedelta) -> bool:
    """Whether kopf should have run the handler again more than `grace` ago (it wakes the object itself when due)."""
    delayed = parse_time(progress["delayed"]) if progress.get("delayed") else None
    return delayed is None or delayed < now - grace


def unfinished(
    kind: Kind, obj: dict[str, Any], runs: set[tuple[str, str]], executing: set[str], now: datetime, grace: timedelta
) -> tuple[str, str] | None:
    """(reason, what) when the object's handling looks lost; None when it is done or under way. `runs`: the
    (namespace, name) of the AnalysisRuns that exist; `executing`: the uids of the runs this process executes."""
    meta = obj["metadata"]
    annotations = meta.get("annotations") or {}
    status = obj.get("status") or {}
    if meta.get("deletionTimestamp"):
        held = FINALIZER in (meta.get("finalizers") or [])
        return ("deletion", "its deletion waits on our finalizer") if held else None
    if started := retries(annotations):  # kopf is at it: lost only when it missed the time it set itself
        late = [handler for handler, progress in started.items() if overdue(progress, now, grace)]
        return ("retry-overdue", f"the retry of its handler {late[0]} is overdue") if late else None
    if HANDLED not in annotations:
        return "never-handled", "kopf never handled it"
    if kind is INCIDENT and status.get("phase") in WAITING_FOR_RUN:
        run = (status.get("analysisRunRef") or {}).get("name")
        if run and (meta["namespace"], run) not in runs:
            return "run-missing", f"it is {status['phase']} and its AnalysisRun {run} does not exist"
    if kind is ANALYSIS_RUN and status.get("phase") in ACCEPTED and meta["uid"] not in executing:
        if analysisrun.runs_here(obj.get("spec") or {}) and not status.get("catalogueModel"):
            return "run-idle", f"it is {status['phase']} and nothing executes it"
    return None


def lister(namespaces: list[str], selector: str | None) -> Callable[[Kind], list[dict[str, Any]]]:
    """A kind's objects in these namespaces (all when none), of this shard (`selector`)."""

    def list_(kind: Kind) -> list[dict[str, Any]]:
        out = []
        for namespace in namespaces or [None]:
            where = f"namespaces/{namespace}/" if namespace else ""
            query = {"labelSelector": selector} if selector else {}
            path = f"/apis/{GROUP}/{VERSION}/{where}{kind.plural}"
            out += json.loads(kube.request(kube.api_client(), "GET", path, query, timeout=60))["items"]
        return out

    return list_


class Resync:
    """The passes of one operator; remembers each unfinished object's resourceVersion from the pass before."""

    def __init__(self, client: kube.Client, list_: Callable[[Kind], list[dict[str, Any]]], interval_s: int):
        self.client, self.list, self.interval = client, list_, timedelta(seconds=interval_s)
        self.seen: dict[str, str] = {}  # uid -> resourceVersion, of the objects unfinished at the last pass

    def sweep(self, now: datetime) -> list[str]:
        """One pass; what it handed again, as "Kind namespace/name: why"."""
        incidents, runs = self.list(INCIDENT), self.list(ANALYSIS_RUN)
        names = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in runs}
        executing = analysisrun.executing()
        seen, touched = {}, []
        for kind, obj in [(INCIDENT, o) for o in incidents] + [(ANALYSIS_RUN, o) for o in runs]:
            meta = obj["metadata"]
            if not (why := unfinished(kind, obj, names, executing, now, self.interval)):
                continue
            seen[meta["uid"]] = meta["resourceVersion"]
            if self.seen.get(meta["uid"]) != meta["resourceVersion"]:
                continue  # changed since the last pass: under way
            reason, message = why
            touch = {"metadata": {"annotations": {ANNOTATION: rfc3339(now)}}}
            try:
                self.client.patch(kind, meta["name"], meta["namespace"], touch)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                continue
            metrics.RESYNCS.labels(kind.kind, reason).inc()
            touched.append(f"{kind.kind} {meta['namespace']}/{meta['name']}: {message}")
            log.info("resync: %s %s/%s: %s, unchanged since the last pass; handling it again", kind.kind,
                     meta["namespace"], meta["name"], message)  # fmt: skip
        self.seen = seen
        return touched


@kopf.on.startup()
async def start(memo: kopf.Memo, **_: Any) -> None:
    config = settings.current()
    if not config.resync_interval_s:
        log.info("resync is off (AIOPS_RESYNC_INTERVAL_S=0)")
        return
    list_ = lister(list(memo.get("namespaces") or []), config.shard.selector())
    resync = Resync(kube.API, list_, config.resync_interval_s)

    async def loop() -> None:
        while True:
            await asyncio.sleep(config.resync_interval_s)
            try:
                await asyncio.to_thread(resync.sweep, now_utc())
            except Exception as exc:  # noqa: BLE001  (the API server away: the next pass tries again)
                log.warning("resync pass failed, next in %ss: %s", config.resync_interval_s, exc)

    background.spawn(loop(), "aiops-resync")
