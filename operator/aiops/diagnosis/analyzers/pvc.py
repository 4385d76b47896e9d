"""Volume problems: claims stuck Pending (no storage class, provisioning failures), volumes that
fail to attach or mount, and volumes nearly full (metric template `pvc_usage`, used/capacity)."""

from __future__ import annotations

import re

from aiops.diagnosis.analyzers.common import event_item, event_time, events_for, finding, item, name
from aiops.diagnosis.analyzers.config_missing import missing_config
from aiops.diagnosis.evidence import EvidenceBundle, Finding

FAILURE_MODES = ("StorageClassMissing", "PVCPending", "VolumeAttachFailed", "VolumeMountFailed", "VolumeNearlyFull")
SCORE_PENDING = 0.85  # pods that need the claim cannot start
SCORE_MOUNT = 0.8
FULL_RATIO = 0.9  # usage from which a volume counts as nearly full
SCORE_FULL = 0.55  # at FULL_RATIO, rising linearly to SCORE_FULL_MAX at 100%
SCORE_FULL_MAX = 0.8

NO_CLASS = re.compile(r'storageclass\.storage\.k8s\.io "([^"]+)" not found|no storage class is set', re.I)
PVC_LABEL = re.compile(r"(?:^|,)persistentvolumeclaim=([^,]+)")


def analyze(bundle: EvidenceBundle) -> list[Finding]:
    return _pending(bundle) + _attach_and_mount(bundle) + _nearly_full(bundle)


def _pending(bundle: EvidenceBundle) -> list[Finding]:
    findings = []
    claim_events = events_for(bundle, {"ProvisioningFailed", "FailedBinding"}, kind="PersistentVolumeClaim")
    for pvc in bundle.pvcs:
        if (pvc.get("status") or {}).get("phase") != "Pending":
            continue
        claim = name(pvc)
        spec = pvc.get("spec") or {}
        storage_class = spec.get("storageClassName")
        events = sorted((e for e in claim_events if e["involvedObject"].get("name") == claim), key=event_time)
        evidence = [
            item(
                "kubernetes",
                f"PersistentVolumeClaim/{claim} Pending since {pvc['metadata'].get('creationTimestamp', '?')},"
                f" storageClassName {storage_class or '(none)'},"
                f" requests {((spec.get('resources') or {}).get('requests') or {}).get('storage', '?')}",
                "pvc",
                claim,
            )
        ] + [event_item("pvc-event", e) for e in events]
        newest = events[-1].get("message", "") if events else ""
        if NO_CLASS.search(newest):
            mode = "StorageClassMissing"
            fix = (
                f"Create StorageClass {storage_class} or point the claim at an existing one (kubectl get"
                " storageclass); a claim's class cannot change, so recreate the claim."
                if storage_class
                else "Set storageClassName on the claim, mark a StorageClass as the default, or pre-create a"
                " matching PersistentVolume."
            )
        else:
            mode = "PVCPending"
            fix = (
                "Read the provisioner's error in the claim's events and the CSI controller's logs (quota, zone,"
                " credentials); for WaitForFirstConsumer classes the claim binds only once a pod is scheduled."
            )
        findings.append(
            finding(
                f"PersistentVolumeClaim/{claim}",
                mode,
                SCORE_PENDING,
                f"Claim {claim} is Pending: {newest or 'no provisioning event'}",
                fix,
                evidence,
            )
        )
    return findings


def _attach_and_mount(bundle: EvidenceBundle) -> list[Finding]:
    groups: dict[tuple[str, str], list] = {}
    for event in events_for(bundle, {"FailedAttachVolume", "FailedMount"}, kind="Pod"):
        # A configMap/secret volume that does not exist is config_missing's finding.
        if not missing_config(event.get("message") or ""):
            mode = "VolumeAttachFailed" if event["reason"] == "FailedAttachVolume" else "VolumeMountFailed"
            groups.setdefault((event["involvedObject"]["name"], mode), []).append(event)
    findings = []
    for (pod_name, mode), events in sorted(groups.items()):
        message = max(events, key=event_time).get("message") or ""
        if "Multi-Attach" in message:
            fix = (
                "A ReadWriteOnce volume is still attached to another node: wait for (or delete) the old pod on that"
                " node, check for a stuck VolumeAttachment, or use a Recreate rollout strategy."
            )
        else:
            fix = (
                "Check the CSI node plugin on the pod's node and the VolumeAttachment objects; the claim's events"
                " and the kubelet log name the failing volume."
            )
        findings.append(
            finding(f"Pod/{pod_name}", mode, SCORE_MOUNT, message, fix, [event_item("volume-event", e) for e in events])
        )
    return findings


def _nearly_full(bundle: EvidenceBundle) -> list[Finding]:
    findings = []
    for label, points in sorted(bundle.metrics.get("pvc_usage", {}).items()):
        if not points:
            continue
        ts, ratio = points[-1]
        if ratio < FULL_RATIO:
            continue
        m = PVC_LABEL.search(label)
        claim = m.group(1) if m else label
        share = min(1.0, (ratio - FULL_RATIO) / (1 - FULL_RATIO))
        findings.append(
            finding(
                f"PersistentVolumeClaim/{claim}",
                "VolumeNearlyFull",
                SCORE_FULL + (SCORE_FULL_MAX - SCORE_FULL) * share,
                f"Volume of claim {claim} is {ratio:.0%} full.",
                f"Expand claim {claim} (allowVolumeExpansion on its StorageClass) or delete old data (logs, WAL,"
                " snapshots); writes fail once it is full.",
                [item("prometheus", f"pvc_usage {label}: {ratio:.3f} at {ts:.0f} (unix s)", "pvc-usage", claim)],
            )
        )
    return findings
