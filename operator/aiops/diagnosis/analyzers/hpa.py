"""HorizontalPodAutoscalers (autoscaling/v2) that cannot scale: pinned at maxReplicas while the
metrics ask for more, or unable to read their metrics at all."""

from __future__ import annotations

from aiops.diagnosis.analyzers.common import finding, item, name
from aiops.diagnosis.evidence import EvidenceBundle, Finding, Obj

FAILURE_MODES = ("HPAAtMaxReplicas", "HPAScalingInactive")
SCORE_AT_MAX = 0.6  # capacity is capped while load asks for more: strong correlation, not proof
SCORE_INACTIVE = 0.45  # the HPA is blind; it matters only if load rose


def analyze(bundle: EvidenceBundle) -> list[Finding]:
    findings = []
    for hpa in bundle.hpas:
        hpa_name = name(hpa)
        spec, status = hpa["spec"], hpa.get("status") or {}
        conditions = {c.get("type"): c for c in status.get("conditions") or []}
        target = spec["scaleTargetRef"]
        maximum = spec["maxReplicas"]
        current, desired = status.get("currentReplicas", 0), status.get("desiredReplicas", 0)
        limited = conditions.get("ScalingLimited") or {}
        at_max = current >= maximum and desired >= maximum
        too_many = limited.get("status") == "True" and limited.get("reason") == "TooManyReplicas"
        if at_max or too_many:
            summary = (
                f"HorizontalPodAutoscaler/{hpa_name} for {target['kind']}/{target['name']}: currentReplicas"
                f" {current}, desiredReplicas {desired}, maxReplicas {maximum}; metrics {_metrics(status)}"
                + (f"; ScalingLimited: {limited.get('message', '')}" if too_many else "")
            )
            findings.append(
                finding(
                    f"HorizontalPodAutoscaler/{hpa_name}",
                    "HPAAtMaxReplicas",
                    SCORE_AT_MAX,
                    f"{target['kind']} {target['name']} is held at maxReplicas {maximum} while its metrics ask for"
                    f" more ({_metrics(status)}).",
                    f"Raise maxReplicas of HPA {hpa_name} if the cluster has room (check the namespace quota and"
                    " node capacity first), or cut per-pod load; if the load is abnormal, find its source.",
                    [item("kubernetes", summary, "hpa", hpa_name)],
                )
            )
        active = conditions.get("ScalingActive") or {}
        if active.get("status") == "False":
            findings.append(
                finding(
                    f"HorizontalPodAutoscaler/{hpa_name}",
                    "HPAScalingInactive",
                    SCORE_INACTIVE,
                    f"HPA {hpa_name} cannot compute a replica count: {active.get('reason')}: {active.get('message')}",
                    "Check that the metrics pipeline serves the HPA's metrics (metrics-server for resource metrics,"
                    " the adapter for custom ones: kubectl get --raw /apis/metrics.k8s.io/v1beta1) and that the"
                    " target's pods set resource requests.",
                    [
                        item(
                            "kubernetes",
                            f"HorizontalPodAutoscaler/{hpa_name} ScalingActive=False {active.get('reason')} since"
                            f" {active.get('lastTransitionTime', '?')}: {active.get('message', '')}",
                            "hpa-inactive",
                            hpa_name,
                        )
                    ],
                )
            )
    return findings


def _metrics(status: Obj) -> str:
    """`cpu 95%, requests_per_second 120` for the metrics the HPA reads."""
    parts = []
    for metric in status.get("currentMetrics") or []:
        kind = metric.get("type", "")
        source = metric.get(kind[:1].lower() + kind[1:]) or {}  # type "ContainerResource" -> "containerResource"
        current = source.get("current") or {}
        label = source.get("name") or (source.get("metric") or {}).get("name") or metric.get("type", "?")
        if "averageUtilization" in current:
            parts.append(f"{label} {current['averageUtilization']}%")
        else:
            parts.append(f"{label} {current.get('averageValue') or current.get('value') or '?'}")
    return ", ".join(parts) or "none reported"
