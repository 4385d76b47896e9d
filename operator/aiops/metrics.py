"""The operator's /metrics (Prometheus text format): Incidents, runbook effect and diagnosis accuracy.

Computed at scrape time from the Incidents and SOPs the API server holds, so the figures survive
operator restarts and agree with `kubectl get`; one scrape lists both kinds once.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from . import GROUP, VERSION, kube
from .api import INCIDENT, SOP
from .remediation.effects import model_accuracy

log = logging.getLogger(__name__)

SOP_GAUGES = (
    ("timesUsed", "aiops_sop_times_used", "Incidents that followed the SOP."),
    ("successRate", "aiops_sop_success_ratio", "Resolved / (resolved + escalated) runs of the SOP."),
    ("meanTimeToResolveSeconds", "aiops_sop_mean_time_to_resolve_seconds", "Detection to resolution, mean."),
    ("diagnosisAccuracy", "aiops_sop_diagnosis_accuracy_ratio", "Share of feedback calling the diagnosis correct."),
)


class ResourceCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        api = kube.custom()
        incidents = api.list_cluster_custom_object(GROUP, VERSION, INCIDENT.plural)["items"]
        sops = api.list_cluster_custom_object(GROUP, VERSION, SOP.plural)["items"]

        by_phase = GaugeMetricFamily(
            "aiops_incidents", "Incidents by phase and severity.", labels=["phase", "severity"]
        )
        counts = Counter(
            ((i.get("status") or {}).get("phase") or "New", (i.get("spec") or {}).get("severity") or "")
            for i in incidents
        )
        for (phase, severity), n in sorted(counts.items()):
            by_phase.add_metric([phase, severity], n)
        yield by_phase

        for field, name, doc in SOP_GAUGES:
            gauge = GaugeMetricFamily(name, doc, labels=["namespace", "sop"])
            for sop in sops:
                value = ((sop.get("status") or {}).get("stats") or {}).get(field)
                if value is not None:
                    gauge.add_metric([sop["metadata"]["namespace"], sop["metadata"]["name"]], value)
            yield gauge

        accuracy = GaugeMetricFamily(
            "aiops_diagnosis_feedback_accuracy_ratio",
            "Share of feedback calling the diagnosis correct.",
            labels=["model"],
        )
        feedback = GaugeMetricFamily("aiops_diagnosis_feedback", "Incidents with feedback.", labels=["model"])
        for model, (n, share) in sorted(model_accuracy(incidents).items()):
            accuracy.add_metric([model], share)
            feedback.add_metric([model], n)
        yield accuracy
        yield feedback


def serve(port: int) -> None:
    """Serves /metrics on `port`; a port already taken is logged, not fatal: diagnoses matter more."""
    registry = CollectorRegistry()
    registry.register(ResourceCollector())
    try:
        start_http_server(port, registry=registry)
    except OSError as exc:
        log.error("metrics endpoint not started on port %d: %s", port, exc)
        return
    log.info("serving Prometheus metrics on :%d/metrics", port)
