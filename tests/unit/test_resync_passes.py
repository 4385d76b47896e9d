"""Resync passes: which objects count as lost, and that only those unchanged for a whole pass are handed again."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from aiops import FINALIZER
from aiops.api import ANALYSIS_RUN, INCIDENT
from aiops.controllers import resync
from support.fakekube import FakeClient

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
GRACE = timedelta(seconds=30)
HANDLED = {"aiops.dev/last-handled-configuration": '{"spec":{}}\n', "aiops.dev/kopf-managed": "yes"}


def obj(name: str, phase: str | None = None, annotations: dict | None = None, **status) -> dict:
    meta = {"name": name, "namespace": "shop", "uid": f"uid-{name}", "resourceVersion": "7",
            "annotations": {**HANDLED, **(annotations or {})}}  # fmt: skip
    return {"metadata": meta, "spec": {"type": "rootCause"}, "status": {"phase": phase, **status}}


def progress(**fields) -> str:
    """A kopf progress annotation, as kopf writes it."""
    return json.dumps({"started": "2026-12-07T05:58:00.000000+00:00", "retries": 1, "success": False,
                       "failure": False, **fields})  # fmt: skip


def why(kind, o, runs=(), executing=()) -> str | None:
    found = resync.unfinished(kind, o, set(runs), set(executing), NOW, GRACE)
    return found[0] if found else None


def test_done_and_waiting_objects_are_left_alone():
    assert why(INCIDENT, obj("diagnosed", "Diagnosed")) is None
    assert why(INCIDENT, obj("triaging", "Triaging", analysisRunRef={"name": "r"}), runs=[("shop", "r")]) is None
    # A handler waiting for its retry (a missing reference), not yet overdue.
    waiting = progress(delayed=(NOW + timedelta(seconds=20)).isoformat())
    assert why(INCIDENT, obj("waits", "Triaging", {"aiops.dev/reconcile": waiting})) is None
    # The same before kopf ever finished one pass (no last-handled-configuration yet).
    first = obj("first-pass", "New", {"aiops.dev/reconcile": waiting})
    del first["metadata"]["annotations"]["aiops.dev/last-handled-configuration"]
    assert why(INCIDENT, first) is None
    # A handler that failed for good is finished.
    failed = progress(failure=True, delayed=None)
    assert why(INCIDENT, obj("bad", "Failed", {"aiops.dev/reconcile": failed})) is None
    assert why(ANALYSIS_RUN, obj("running", "Running"), executing=["uid-running"]) is None
    assert why(ANALYSIS_RUN, obj("done", "Succeeded")) is None


@pytest.mark.parametrize(
    ("kind", "o", "reason"),
    [
        (INCIDENT, {"metadata": {"name": "new", "namespace": "shop", "uid": "u"}, "spec": {}}, "never-handled"),
        (INCIDENT, obj("stalled", "Triaging", {"aiops.dev/reconcile": progress(delayed="2026-12-07T05:58:30+00:00")}),
         "retry-overdue"),
        (INCIDENT, obj("orphan", "Analyzing", analysisRunRef={"name": "gone"}), "run-missing"),
        (ANALYSIS_RUN, obj("idle", "Pending"), "run-idle"),
    ],
)  # fmt: skip
def test_lost_handling_is_named(kind, o, reason):
    assert why(kind, o) == reason


def test_deletion_counts_only_while_our_finalizer_holds_it():
    deleting = obj("bye", "Diagnosed")
    deleting["metadata"]["deletionTimestamp"] = "2026-12-07T05:50:00Z"
    assert why(INCIDENT, deleting) is None
    deleting["metadata"]["finalizers"] = [FINALIZER]
    assert why(INCIDENT, deleting) == "deletion"


def test_runs_on_a_pool_or_executed_by_workers_are_not_ours(monkeypatch):
    assert why(ANALYSIS_RUN, obj("pooled", "Pending", catalogueModel="llama")) is None
    monkeypatch.setattr(resync.analysisrun, "runs_here", lambda spec: False)
    assert why(ANALYSIS_RUN, obj("claimed", "Running")) is None


def test_a_pass_hands_again_only_what_stayed_unchanged_since_the_pass_before():
    client = FakeClient()
    stuck = client.put(INCIDENT, obj("stuck", "Triaging", analysisRunRef={"name": "stuck-rca"}))
    moving = client.put(INCIDENT, obj("moving", "Triaging", analysisRunRef={"name": "moving-rca"}))
    client.put(INCIDENT, obj("fine", "Diagnosed"))
    passes = resync.Resync(client, client.list, 30)

    assert passes.sweep(NOW) == []  # the first pass only notes them
    client.patch(INCIDENT, "moving", "shop", {"metadata": {"labels": {"step": "2"}}})  # it changed meanwhile
    touched = passes.sweep(NOW + GRACE)
    assert touched == ["Incident shop/stuck: it is Triaging and its AnalysisRun stuck-rca does not exist"]
    annotations = client.get(INCIDENT, "stuck", "shop")["metadata"]["annotations"]
    assert annotations[resync.ANNOTATION] == "2026-12-07T06:00:30Z"
    assert client.get(INCIDENT, "fine", "shop")["metadata"]["annotations"] == HANDLED
    # The touch is a change: the next pass waits a whole pass again before touching either.
    assert passes.sweep(NOW + 2 * GRACE) == ["Incident shop/moving: it is Triaging and its AnalysisRun moving-rca "
                                              "does not exist"]  # fmt: skip
    assert stuck["metadata"]["uid"] in passes.seen and moving["metadata"]["uid"] in passes.seen


def test_an_object_deleted_before_its_touch_is_skipped():
    client = FakeClient()
    client.put(ANALYSIS_RUN, obj("idle", "Pending"))
    listed = client.list(ANALYSIS_RUN)
    passes = resync.Resync(client, lambda kind: listed if kind is ANALYSIS_RUN else [], 30)
    passes.sweep(NOW)
    client.objects.clear()
    assert passes.sweep(NOW + GRACE) == []
