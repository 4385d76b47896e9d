"""The alerts firing now, from Alertmanager's HTTP API (GET /api/v2/alerts).

Only active alerts count (not silenced, not inhibited): they are what someone is already being paged
for, so an anomaly on the same workload adds nothing. Each alert is returned as its label set.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiops.clusters.httpsource import Backend, Deadline

MAX_ALERTS = 5000  # more than this many firing alerts: the rest are not read (the body cap bounds it anyway)


@dataclass(frozen=True)
class AlertmanagerSource(Backend):
    name: str = "alertmanager"
    deadline: float = 20.0

    def firing(self) -> list[dict[str, str]]:
        """The label sets of the active alerts; SourceError when Alertmanager cannot be read."""
        params = {"active": "true", "silenced": "false", "inhibited": "false", "unprocessed": "false"}
        with self.http() as http:
            body = http.get("/api/v2/alerts", params, Deadline(self.deadline))
            if not isinstance(body, list):
                raise http.fail("/api/v2/alerts", "the answer is not a list of alerts")
        alerts = []
        for alert in body[:MAX_ALERTS]:
            labels = alert.get("labels") if isinstance(alert, dict) else None
            if isinstance(labels, dict):
                alerts.append({str(k): str(v) for k, v in labels.items()})
        return alerts
