"""A cluster's Prometheus, as every reader (evidence, SOP checks, anomaly runs, GPU telemetry) reaches it."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry

TIMEOUT_S = 10
MAX_POINTS = 240  # step is chosen so a window never returns more points per series


@dataclass(frozen=True)
class PrometheusSource:
    url: str
    bearer_token: str | None = None
    insecure_skip_verify: bool = False

    def connect(self, timeout: float = TIMEOUT_S) -> PrometheusConnect:
        """A client making one attempt per query: callers are bounded by timeouts, not by urllib3's retry loop."""
        headers = {"Authorization": f"Bearer {self.bearer_token}"} if self.bearer_token else None
        return PrometheusConnect(
            url=self.url, headers=headers, disable_ssl=self.insecure_skip_verify, retry=Retry(total=0), timeout=timeout
        )


def step_for(seconds: float) -> str:
    return f"{max(15, int(seconds // MAX_POINTS))}s"
