"""A trace or log backend that is down, slow, answers garbage or too much: an evidence gap naming it, and a
diagnosis from the rest, never a crash or a hot loop."""

import time
from datetime import UTC, datetime, timedelta

from aiops.clusters.loki import LokiSource
from aiops.clusters.telemetry import Fetched, Span
from aiops.clusters.tempo import TempoSource
from aiops.diagnosis import analyzers
from aiops.diagnosis.collectors import logs as logs_collector
from aiops.diagnosis.collectors import traces as traces_collector
from aiops.diagnosis.evidence import EvidenceBundle, Target
from support.httpfake import Answer, FakeServer

T0 = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)


def collect(traces, logs) -> EvidenceBundle:
    bundle = EvidenceBundle(Target("Deployment", "frontend", "shop"), T0, T0 + timedelta(minutes=10), T0)
    traces_collector.collect(traces, bundle)
    logs_collector.collect(logs, bundle)
    return bundle


def test_malformed_and_refused_backends_are_gaps_naming_them():
    with FakeServer(lambda path, params: Answer(200, "this is not JSON")) as tempo:
        started = time.monotonic()
        bundle = collect(TempoSource(tempo.url, timeout=2, deadline=5), LokiSource("http://127.0.0.1:1", timeout=2))
    assert time.monotonic() - started < 10
    assert any(g.startswith("traces: tempo at http://127.0.0.1:") and "JSON" in g for g in bundle.missing), (
        bundle.missing
    )
    assert any(g.startswith("logs: loki at http://127.0.0.1:1") and "refused" in g for g in bundle.missing)
    assert bundle.spans == [] and bundle.service_logs == []
    suspects, _, errors = analyzers.analyze(bundle)
    assert errors == [], "the analyzers still run on what there is"


def test_a_slow_backend_times_out_within_its_deadline():
    with FakeServer(lambda path, params: Answer(200, {"traces": []}, delay=5)) as tempo:
        started = time.monotonic()
        bundle = collect(TempoSource(tempo.url, timeout=1, deadline=2), LokiSource("http://127.0.0.1:1", timeout=1))
    assert time.monotonic() - started < 8
    assert any(g.startswith("traces: tempo") and "timed out" in g for g in bundle.missing), bundle.missing


class Plenty:
    name = "plenty"

    def spans(self, namespace, start, end, limit):
        return Fetched([Span("t", "s", None, "frontend", "GET /", start.timestamp(), 0.01)], "plenty: 9000 traces")


def test_too_much_data_is_sampled_and_says_so():
    bundle = EvidenceBundle(Target("Deployment", "frontend", "shop"), T0, T0 + timedelta(minutes=10), T0)
    traces_collector.collect(Plenty(), bundle)
    assert len(bundle.spans) == 1 and bundle.missing == ["traces (sampled): plenty: 9000 traces"]
