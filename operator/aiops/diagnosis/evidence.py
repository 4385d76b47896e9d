"""The evidence bundle: everything the collectors gathered for one Incident.

Kubernetes objects are kept exactly as the API returns them (camelCase JSON dicts), so
analyzers work on real object shapes and tests can feed them `kubectl get -o json` output.
The bundle lives in memory only; status gets the evidence summaries and ranked suspects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiops.api.incident import EvidenceItem, Suspect
from aiops.clusters.telemetry import LogLine, Span

Obj = dict[str, Any]
Series = list[tuple[float, float]]  # (unix seconds, value)
POD_LABEL = re.compile(r"(?:^|,)pod=([^,]+)")  # the pod in a metric series' label string


@dataclass
class Target:
    kind: str
    name: str
    namespace: str


@dataclass
class EvidenceBundle:
    target: Target
    window_start: datetime
    window_end: datetime
    detected_at: datetime | None = None  # when the symptoms began: metric baselines end here
    pods: list[Obj] = field(default_factory=list)
    events: list[Obj] = field(default_factory=list)  # core/v1 Events of the target, its pods and nodes
    deployments: list[Obj] = field(default_factory=list)
    replicasets: list[Obj] = field(default_factory=list)  # with their revision annotations
    statefulsets: list[Obj] = field(default_factory=list)
    daemonsets: list[Obj] = field(default_factory=list)
    jobs: list[Obj] = field(default_factory=list)
    nodes: list[Obj] = field(default_factory=list)
    pvcs: list[Obj] = field(default_factory=list)
    hpas: list[Obj] = field(default_factory=list)  # autoscaling/v2 shape
    quotas: list[Obj] = field(default_factory=list)
    certificates: list[Obj] = field(default_factory=list)  # cert-manager.io Certificates (status.notAfter)
    logs: dict[str, list[str]] = field(default_factory=dict)  # "pod/container" -> lines (newest last)
    metrics: dict[str, dict[str, Series]] = field(default_factory=dict)  # template -> series label -> points
    spans: list[Span] = field(default_factory=list)  # the namespace's spans over the window, in start order
    service_logs: list[LogLine] = field(default_factory=list)  # log lines of the services the spans reach
    missing: list[str] = field(default_factory=list)  # sources that failed, with the reason
    # Secret data is never collected: redaction guards what reaches a model, this guards the cluster.


@dataclass
class Finding:
    """What one analyzer concluded: a suspect and the evidence it cites."""

    suspect: Suspect
    evidence: list[EvidenceItem]
