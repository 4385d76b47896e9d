"""Incident reconciler: validate, resolve references, open the root-cause AnalysisRun.

This far the pipeline goes New -> Triaging; the diagnosis pipeline moves it on.
"""

from __future__ import annotations

from typing import Any

import kopf

from aiops import API_VERSION, GROUP
from aiops.api import ANALYSIS_RUN, INCIDENT, MANAGED_CLUSTER, SOP
from aiops.api.analysisrun import AnalysisRunSpec, AnalysisType, InferenceSettings
from aiops.api.common import ConditionStatus, LocalObjectReference
from aiops.api.conditions import ConditionType, Reason
from aiops.api.incident import IncidentPhase, IncidentSource, IncidentSpec, IncidentStatus
from aiops.controllers.common import MissingReference, reconciler, validated
from aiops.core import events, kube
from aiops.core.events import EventType
from aiops.core.sharding import shard_labels
from aiops.core.status import StatusBuilder, write_rebased
from aiops.sops.remediation import effects

INCIDENT_LABEL = f"{GROUP}/incident"


def analysis_run_name(incident: dict[str, Any]) -> str:
    """Deterministic per Incident object: a re-created Incident of the same name gets a new run."""
    meta = incident["metadata"]
    return f"{meta['name']}-rca-{meta['uid'].replace('-', '')[:5]}"


def analysis_run_manifest(incident: dict[str, Any], spec: IncidentSpec) -> dict[str, Any]:
    meta = incident["metadata"]
    run_spec = AnalysisRunSpec(
        type=AnalysisType.ROOT_CAUSE,
        incident_ref=LocalObjectReference(name=meta["name"]),
        cluster_ref=spec.cluster_ref,
        inference=InferenceSettings(model=spec.analysis.model) if spec.analysis and spec.analysis.model else None,
    )
    return {
        "apiVersion": API_VERSION,
        "kind": ANALYSIS_RUN.kind,
        "metadata": {
            "name": analysis_run_name(incident),
            "namespace": meta["namespace"],
            "labels": {
                INCIDENT_LABEL: meta["name"],
                "app.kubernetes.io/managed-by": "aiops-operator",
                **shard_labels(INCIDENT, incident),  # the run goes to its Incident's shard
            },
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": INCIDENT.kind,
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": run_spec.wire(),
    }


def detected_at(incident: dict[str, Any], spec: IncidentSpec) -> str:
    """When the problem was first seen: the alert's start, else when the Incident was filed."""
    if spec.alert and spec.alert.starts_at:
        return spec.alert.starts_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return incident["metadata"]["creationTimestamp"]


def check_references(spec: IncidentSpec, namespace: str) -> None:
    """Raises MissingReference for a clusterRef or sopRef that names nothing."""
    if spec.cluster_ref and kube.get(MANAGED_CLUSTER, spec.cluster_ref.name) is None:
        raise MissingReference(f"spec.clusterRef: ManagedCluster {spec.cluster_ref.name!r} does not exist")
    if spec.sop_ref and kube.get(SOP, spec.sop_ref.name, namespace) is None:
        raise MissingReference(f"spec.sopRef: SOP {spec.sop_ref.name!r} does not exist in namespace {namespace!r}")


def record_feedback(body: kopf.Body, spec: IncidentSpec, builder: StatusBuilder) -> None:
    """An engineer's verdict: a condition on the Incident, and the followed SOP's accuracy recomputed."""
    verdict = Reason.DIAGNOSIS_CORRECT if spec.feedback.correct else Reason.DIAGNOSIS_INCORRECT
    by = f" by {spec.feedback.by}" if spec.feedback.by else ""
    comment = f": {spec.feedback.comment}" if spec.feedback.comment else ""
    corrected = f"; corrected root cause: {spec.feedback.root_cause}" if spec.feedback.root_cause else ""
    status = builder.status
    sop = status.sop.name if status.sop else None
    message = f"feedback{by}{comment}{corrected}"[:1024]
    if builder.condition(ConditionType.FEEDBACK, ConditionStatus.TRUE, verdict, message, event="Normal"):
        events.publish(
            EventType.FEEDBACK,
            f"{body['metadata']['namespace']}/{body['metadata']['name']}",
            {
                **spec.feedback.wire(),
                "model": status.diagnosis.model if status.diagnosis else None,
                "sop": sop,
            },
            body,
        )
    if sop:
        effects.refresh(kube.API, body["metadata"]["namespace"], sop, {**body, "status": status.wire()})


@reconciler(INCIDENT)
def reconcile(body: kopf.Body, patch: kopf.Patch, builder: StatusBuilder[IncidentStatus]) -> None:
    status = builder.status
    if status.phase is None and (body.get("spec") or {}).get("source") != IncidentSource.CORRELATION:
        # In the timeline only: Triaging follows within the same write, and its Event says the Incident is in.
        builder.phase(IncidentPhase.NEW, f"Incident filed: {str(body['spec'].get('title', ''))[:200]}", event=None)
        spec = body.get("spec") or {}
        events.publish(
            EventType.INCIDENT_CREATED,
            f"{body['metadata']['namespace']}/{body['metadata']['name']}",
            {k: spec.get(k) for k in ("title", "severity", "source", "target", "alert", "clusterRef")},
            body,
        )
    spec, _ = validated(
        INCIDENT,
        body,
        patch,
        builder,
        IncidentPhase.FAILED,
        resolve=lambda s: check_references(s, body["metadata"]["namespace"]),
    )

    if spec.feedback:
        record_feedback(body, spec, builder)
    if spec.source == IncidentSource.CORRELATION:
        # A fleet-wide parent: its children's analyses hold the evidence; controllers/correlation.py writes it.
        builder.apply(patch)
        return
    run_name = analysis_run_name(body)
    status.analysis_run_ref = {"name": run_name}
    status.detected_at = status.detected_at or detected_at(body, spec)
    message = f"AnalysisRun {run_name} holds the root-cause analysis"
    builder.condition(ConditionType.READY, ConditionStatus.TRUE, Reason.ANALYSIS_SCHEDULED, message)
    # Later phases belong to the analysis; only a new or previously invalid Incident moves to Triaging.
    if status.phase in (IncidentPhase.NEW, IncidentPhase.FAILED, None) and not status.diagnosis:
        builder.phase(IncidentPhase.TRIAGING, f"AnalysisRun {run_name} opened")
    # Stored before the run exists, not by kopf after this handler: the run's executor starts at once and
    # writes this Incident too, and must find the hand-off (and the timeline so far) in place.
    write_rebased(kube.API, builder, dict(body))
    kube.create(ANALYSIS_RUN, analysis_run_manifest(body, spec))
