"""The operator's metrics (Prometheus text format) and its HTTP endpoints: /metrics, /healthz, /readyz.

Two kinds of figures:
- state, computed at scrape time from the Incidents and SOPs the API server holds (by phase, runbook
  effect, diagnosis accuracy), so they survive operator restarts and agree with `kubectl get`; with
  AIOPS_RUN_EXECUTION=workers also the runs waiting for a worker (aiops_runs_queued, what the workers'
  autoscaler follows) and those a worker holds (aiops_runs_claimed). Only the operator serves them: an
  `aiops worker` serves its activity alone (serve(state=False));
- activity of this process (analysis durations, LLM tokens and errors, fallbacks, redactions, SOP
  actions), counted where it happens, in REGISTRY.
/healthz says the operator's event loop is alive (a heartbeat younger than HEARTBEAT_STALE_S); /readyz
also that the API server serves our resources.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from aiops import GROUP, VERSION, runs, settings
from aiops.api import ANALYSIS_RUN, INCIDENT, SOP
from aiops.core import kube
from aiops.core.metrics import REGISTRY
from aiops.core.status import now_utc
from aiops.runs import lease
from aiops.sops.remediation.effects import model_accuracy

log = logging.getLogger(__name__)
HEARTBEAT_STALE_S = 60.0
READY_CACHE_S = 10.0

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
        counts = Tally(
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
        if settings.current().run_execution == "workers":
            yield from run_backlog(api)


def run_backlog(api) -> Iterator[GaugeMetricFamily]:
    """Claimable runs no worker holds, and those one does; nothing when the leases cannot be read."""
    claimable = [r for r in api.list_cluster_custom_object(GROUP, VERSION, ANALYSIS_RUN.plural)["items"] if
                 runs.claimable(r)]  # fmt: skip
    try:
        leases = lease.run_leases()
    except lease.LeaseUnavailable as exc:
        log.warning("aiops_runs_queued not exported: %s", exc)
        return
    queued, claimed = lease.backlog(claimable, leases, now_utc())
    yield GaugeMetricFamily(
        "aiops_runs_queued", "Accepted AnalysisRuns waiting for a worker (no live Lease).", value=queued
    )
    yield GaugeMetricFamily("aiops_runs_claimed", "Accepted AnalysisRuns a worker holds and executes.", value=claimed)


class Health:
    """The operator's heartbeat (beaten from its event loop) and a cached check that our API is served."""

    def __init__(self) -> None:
        self.beat = 0.0
        self._ready_at, self._ready = 0.0, (False, "not checked yet")

    def alive(self) -> tuple[bool, str]:
        age = time.monotonic() - self.beat
        if not self.beat:
            return False, "the operator has not started its event loop yet"
        return (age < HEARTBEAT_STALE_S), f"event loop heartbeat {age:.0f}s ago"

    def ready(self) -> tuple[bool, str]:
        alive, why = self.alive()
        if not alive:
            return False, why
        if time.monotonic() - self._ready_at > READY_CACHE_S:
            try:
                kube.request(kube.api_client(), "GET", f"/apis/{GROUP}/{VERSION}", timeout=2)
                self._ready = (True, f"API server serves {GROUP}/{VERSION}")
            except Exception as exc:  # noqa: BLE001  (any failure means not ready; the reason is the answer)
                self._ready = (False, f"API server check failed: {type(exc).__name__}: {str(exc)[:200]}")
            self._ready_at = time.monotonic()
        return self._ready


HEALTH = Health()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802  (the name http.server calls)
        if self.path == "/metrics":
            self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
        elif self.path in ("/healthz", "/readyz"):
            ok, why = HEALTH.alive() if self.path == "/healthz" else HEALTH.ready()
            self._send(200 if ok else 503, f"{'ok' if ok else 'not ok'}: {why}\n".encode(), "text/plain")
        else:
            self._send(404, b"not found: /metrics, /healthz, /readyz\n", "text/plain")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # scrapes every 15 s would drown the operator's log
        return


_state = ResourceCollector()


def serve(port: int, state: bool = True) -> None:
    """Serves the endpoints on `port` in a thread; a port already taken is logged, not fatal. `state`: the
    figures computed from the API server too (the operator's, not a worker's)."""
    if state:
        REGISTRY.register(_state)
    try:
        server = ThreadingHTTPServer(("", port), Handler)
    except OSError as exc:
        log.error("metrics/health endpoints not started on port %d: %s", port, exc)
        return
    threading.Thread(target=server.serve_forever, name="aiops-endpoints", daemon=True).start()
    log.info("serving /metrics, /healthz and /readyz on :%d", port)
