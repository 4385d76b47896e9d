"""The telemetry and knowledge tools against fake backends: what each renders, and the words when a backend
is missing, fails or is cut."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from prometheus_api_client.exceptions import PrometheusApiClientException

from aiops.api import SOP
from aiops.clusters.telemetry import Fetched, LogLine, SourceError, Span
from aiops.core import kube
from aiops.tools import REGISTRY, Status, ToolContext
from support.fakekube import FakeClient

T0 = 1_796_000_000.0


class FakeProm:
    def __init__(self, answer=None, error: Exception | None = None):
        self.answer, self.error, self.asked = answer, error, []

    def custom_query(self, query, params=None):
        self.asked.append(query)
        if self.error:
            raise self.error
        return self.answer

    def custom_query_range(self, query, start, end, step):
        self.asked.append((query, step))
        return self.answer


@dataclass
class FakePrometheus:
    prom: FakeProm
    url: str = "http://prometheus:9090"

    def connect(self):
        return self.prom


@dataclass
class FakeLoki:
    fetched: Fetched
    asked: list = field(default_factory=list)
    name: str = "loki"

    def query(self, query, start, end, limit):
        self.asked.append((query, limit))
        return self.fetched


@dataclass
class FakeTraces:
    spans_: list[Span] | None = None
    name: str = "tempo"

    def spans(self, namespace, start, end, limit):
        if self.spans_ is None:
            raise SourceError("tempo at http://tempo:3200/api/search: connection refused")
        return Fetched(self.spans_)


def run(tool: str, ctx: ToolContext | None = None, **arguments):
    return REGISTRY.call(tool, arguments, ctx or ToolContext(api=None))


def test_a_missing_backend_names_the_setting_that_adds_it():
    for tool, args, setting in (
        ("promql", {"query": "up"}, "AIOPS_PROMETHEUS_URL"),
        ("logql", {"query": '{namespace="shop"}'}, "AIOPS_LOKI_URL"),
        ("traces", {"namespace": "shop"}, "AIOPS_TEMPO_URL"),
        ("history_search", {"text": "checkout 503"}, "AIOPS_POSTGRES_DSN"),
    ):
        result = run(tool, **args)
        assert result.status == Status.ERROR and setting in result.text, tool


def test_promql_lists_series_with_labels():
    prom = FakeProm([{"metric": {"__name__": "up", "job": "api", "pod": "web-1"}, "value": [T0, "0"]}])
    result = run("promql", ToolContext(api=None, prometheus=FakePrometheus(prom)), query="up == 0")
    assert result.text == 'up{job="api",pod="web-1"} 0'
    assert run("promql", ToolContext(api=None, prometheus=FakePrometheus(FakeProm([]))), query="x").status == "empty"


def test_promql_failure_says_where():
    prom = FakeProm(error=PrometheusApiClientException("HTTP Status Code 400 (b'parse error')"))
    result = run("promql", ToolContext(api=None, prometheus=FakePrometheus(prom)), query="up{")
    assert result.status == Status.ERROR and "Prometheus at http://prometheus:9090" in result.text
    assert "parse error" in result.text


def test_promql_range_summarises_each_series():
    values = [[T0 + 60 * i, str(i)] for i in range(30)]
    prom = FakeProm([{"metric": {"pod": "web-1"}, "values": values}])
    ctx = ToolContext(api=None, prometheus=FakePrometheus(prom))
    result = run("promql_range", ctx, query="rate(x[5m])", minutes=30, step_seconds=60)
    assert result.status == Status.OK and prom.asked == [("rate(x[5m])", "60s")]
    assert '{pod="web-1"}: 30 points, min 0 max 29 mean 14.5 last 29' in result.text


def test_logql_lines_and_a_cut_source():
    lines = [LogLine(T0, "checkout", "error: payment timeout", pod="checkout-1")]
    loki = FakeLoki(Fetched(lines, truncated="loki: read the newest 1 lines"))
    result = run("logql", ToolContext(api=None, loki=loki), query='{namespace="shop"} |= "error"', limit=1)
    assert result.status == Status.TRUNCATED and result.note == "loki: read the newest 1 lines"
    assert result.text.endswith("checkout checkout-1 error: payment timeout")
    assert loki.asked == [('{namespace="shop"} |= "error"', 1)]


def test_logql_keeps_a_session_to_its_namespaces():
    ctx = ToolContext(api=None, loki=FakeLoki(Fetched()), namespaces=frozenset({"shop"}))
    refused = run("logql", ctx, query='{namespace="kube-system"}')
    assert refused.status == Status.ERROR and "only namespaces shop" in refused.text
    assert run("logql", ctx, query='{namespace="shop"}').status == Status.EMPTY


def span(trace: str, sid: str, parent: str | None, service: str, ms: float, error: bool = False) -> Span:
    return Span(trace, sid, parent, service, f"{service}-op", T0, ms / 1000, error)


def test_traces_summarise_services_and_rank_failed_traces_first():
    spans = [
        span("t1", "a", None, "frontend", 900),
        span("t1", "b", "a", "cart", 850),
        span("t2", "c", None, "frontend", 120),
        span("t2", "d", "c", "payment", 100, error=True),
    ]
    ctx = ToolContext(api=None, traces=FakeTraces(spans))
    text = run("traces", ctx, namespace="shop").text.splitlines()
    assert text[0] == "2 traces, 4 spans in shop (tempo)"
    assert "payment  1  1  100.0  100.0" in text
    rows = text[text.index("trace  root  duration ms  spans  failed spans in") + 1 :]
    assert rows[0].startswith("t2  frontend frontend-op  120.0  2  payment") and rows[1].startswith("t1")
    assert "t1" not in run("traces", ctx, namespace="shop", errors_only=True).text
    failed = run("traces", ToolContext(api=None, traces=FakeTraces(None)), namespace="shop")
    assert failed.status == Status.ERROR and "connection refused" in failed.text


@pytest.fixture
def sops(monkeypatch) -> FakeClient:
    fake = FakeClient()
    monkeypatch.setattr(kube, "ApiServer", lambda api=None: fake)
    return fake


def test_sop_search_ranks_by_shared_words(sops):
    def sop(name: str, title: str, symptoms: list[str]) -> dict:
        steps = [{"id": "check", "type": "check", "title": "Check the pods"}]
        spec = {"title": title, "match": {"symptoms": symptoms}, "steps": steps}
        return {"metadata": {"name": name, "namespace": "ops"}, "spec": spec}

    sops.put(SOP, sop("oom", "Memory limit too low", ["OOMKilled", "memory"]))
    sops.put(SOP, sop("crash", "Crash loop after a rollout", ["CrashLoopBackOff", "rollout"]))
    result = run("sop_search", text="checkout pods OOMKilled, memory at the limit")
    assert result.text.splitlines()[0] == "ops/oom: Memory limit too low [shares 4: limit, memory, oomkilled, pods]"
    assert "ops/crash" in result.text  # shares "pods" through its step title
    assert run("sop_search", text="disk full").status == Status.EMPTY
