"""Tempo and Jaeger trace sources against a real local HTTP server answering in the APIs' documented formats
(Tempo: /api/search and /api/traces/<id> OTLP JSON; Jaeger: /api/services and /api/traces), the settings
that name them and the choice of source from a ManagedCluster's endpoints."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime

import pytest

from aiops import settings
from aiops.api.managedcluster import ManagedClusterSpec
from aiops.clusters import access, httpsource, jaeger, tempo
from aiops.clusters.jaeger import JaegerSource
from aiops.clusters.telemetry import SourceError, Span
from aiops.clusters.tempo import TempoSource
from support.httpfake import Answer, FakeServer

T0 = 1_700_000_000  # unix seconds, the window's start
START, END = datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 600, UTC)

TRACE_A = "0af7651916cd43dd8448eb211c80319c"
ROOT, CALL, HANDLER, OTHER_NS = "b7ad6b7169203331", "00f067aa0ba902b7", "5fb397be34d26b51", "1111111111111111"


def b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def attr(key: str, value: str) -> dict:
    return {"key": key, "value": {"stringValue": value}}


def resource(service: str, namespace: str = "shop", pod: str | None = None) -> dict:
    attrs = [attr("service.name", service), attr("k8s.namespace.name", namespace)]
    attrs.append(attr("k8s.pod.name", pod or f"{service}-7d9f-abcde"))
    return {"attributes": attrs}


def otlp_span(trace, span, parent, name, start_s, dur_ms, kind="SPAN_KIND_SERVER", status=None, encode=b64):
    out = {
        "traceId": encode(trace),
        "spanId": encode(span),
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(int(start_s * 1e9)),
        "endTimeUnixNano": str(int(start_s * 1e9 + dur_ms * 1e6)),
        "status": status or {},
    }
    if parent:
        out["parentSpanId"] = encode(parent)
    return out


def tempo_trace_a() -> dict:
    """Tempo's /api/traces/<id> answer: `batches`, base64 ids (protobuf JSON), kinds and codes as names."""
    return {
        "batches": [
            {
                "resource": resource("frontend"),
                "scopeSpans": [
                    {
                        "scope": {"name": "io.opentelemetry.http"},
                        "spans": [
                            otlp_span(TRACE_A, ROOT, None, "GET /cart", T0 + 10, 250),
                            otlp_span(TRACE_A, CALL, ROOT, "POST checkout", T0 + 10.01, 200, "SPAN_KIND_CLIENT"),
                        ],
                    }
                ],
            },
            {
                "resource": resource("checkout"),
                "scopeSpans": [
                    {
                        "spans": [
                            otlp_span(
                                TRACE_A,
                                HANDLER,
                                CALL,
                                "checkout.Pay",
                                T0 + 10.02,
                                150,
                                status={"code": "STATUS_CODE_ERROR", "message": "card declined"},
                            )
                        ]
                    }
                ],
            },
            {
                "resource": resource("ledger", namespace="finance"),
                "instrumentationLibrarySpans": [{"spans": [otlp_span(TRACE_A, OTHER_NS, HANDLER, "ledger.Add", 1, 1)]}],
            },
        ]
    }


def tempo_trace_hex(trace_id: str, n_spans: int = 1, start_s: float = T0 + 20) -> dict:
    """OTLP JSON as the spec writes it: `resourceSpans`, hex ids, kinds and codes as numbers."""
    spans = []
    for i in range(n_spans):
        span_id = f"{i + 1:016x}"
        parent = f"{i:016x}" if i else None
        spans.append(
            otlp_span(
                trace_id, span_id, parent, f"op{i}", start_s + i, 10, kind=2, status={"code": 2 if i else 0}, encode=str
            )
        )
    return {"resourceSpans": [{"resource": resource("cart"), "scopeSpans": [{"spans": spans}]}]}


class FakeTempo:
    """Tempo's search (newest traces first, `limit` of them, start/end in unix seconds) and trace by id."""

    def __init__(self, traces: dict[str, tuple[int, dict]], status: int = 200):
        self.traces = traces  # id -> (start second, /api/traces body)
        self.status = status
        self.trace_answer: dict[str, Answer] = {}

    def __call__(self, path: str, params: dict[str, str]) -> Answer:
        if path == "/api/search":
            low, high, limit = int(params["start"]), int(params["end"]), int(params["limit"])
            # A trace starts half a second into its second; `end` in whole seconds includes what starts before it.
            starts = {tid: s * 1_000_000_000 + 500_000_000 for tid, (s, _) in self.traces.items()}
            found = sorted(
                ((ns, tid) for tid, ns in starts.items() if low * 10**9 <= ns <= high * 10**9),
                key=lambda x: (-x[0], x[1]),
            )
            results = [
                {
                    "traceID": tid,
                    "rootServiceName": "frontend",
                    "rootTraceName": "GET /cart",
                    "startTimeUnixNano": str(ns),
                    "durationMs": 250,
                }
                for ns, tid in found[:limit]
            ]
            body = {"metrics": {"inspectedBytes": "1024", "completedJobs": 1, "totalJobs": 1}}
            if results:  # protobuf JSON leaves an empty list out
                body["traces"] = results
            return Answer(self.status, body)
        match = re.fullmatch(r"/api/traces/([0-9a-f]+)", path)
        if match and match.group(1) in self.trace_answer:
            return self.trace_answer[match.group(1)]
        if match and match.group(1) in self.traces:
            return Answer(200, self.traces[match.group(1)][1])
        return Answer(404, "trace not found")


def by_id(spans: list[Span]) -> dict[str, Span]:
    return {s.span_id: s for s in spans}


# --- Tempo ------------------------------------------------------------------------------------------


def test_tempo_reads_the_namespace_traces_with_parents_errors_and_base64_ids():
    trace_b = "4bf92f3577b34da6a3ce929d0e0e4736"
    fake = FakeTempo({TRACE_A: (T0 + 10, tempo_trace_a()), trace_b: (T0 + 20, tempo_trace_hex(trace_b, 2))})
    with FakeServer(fake) as server:
        got = TempoSource(server.url, bearer_token="s3cret").spans("shop", START, END)
    assert got.truncated is None
    spans = by_id(got.items)
    assert OTHER_NS not in spans, "a span of another namespace is left out"
    assert len(got.items) == 5
    root, call, handler = spans[ROOT], spans[CALL], spans[HANDLER]
    assert (root.trace_id, root.parent_id, root.service, root.operation) == (TRACE_A, None, "frontend", "GET /cart")
    assert call.parent_id == ROOT and handler.parent_id == CALL and handler.service == "checkout"
    assert (root.kind, call.kind, handler.kind) == ("server", "client", "server")
    assert handler.error and not root.error and not call.error
    assert root.start == pytest.approx(T0 + 10) and root.duration == pytest.approx(0.25)
    hex_spans = [s for s in got.items if s.trace_id == trace_b]
    assert {s.span_id for s in hex_spans} == {"0000000000000001", "0000000000000002"}
    assert [s.error for s in sorted(hex_spans, key=lambda s: s.start)] == [False, True]
    assert all(s.kind == "server" and s.service == "cart" for s in hex_spans)
    search = server.requests[0]
    assert search.path == "/api/search"
    assert search.params["q"] == '{ resource.k8s.namespace.name = "shop" }'
    assert (search.params["start"], search.params["end"]) == (str(T0), str(T0 + 600))
    assert all(r.headers.get("Authorization") == "Bearer s3cret" for r in server.requests)


def test_tempo_stops_at_the_span_limit_and_says_so():
    traces = {f"{i:032x}": (T0 + i, tempo_trace_hex(f"{i:032x}", 3, T0 + i)) for i in range(1, 6)}
    with FakeServer(FakeTempo(traces)) as server:
        got = TempoSource(server.url).spans("shop", START, END, limit=7)
    assert len(got.items) == 7
    assert got.truncated and got.truncated.startswith("tempo: 5 traces matched, read the first 3")


def test_tempo_pages_backward_through_the_window():
    traces = {f"{i:032x}": (T0 + 90 + i * 10, tempo_trace_hex(f"{i:032x}", 1, T0 + 90 + i * 10)) for i in range(1, 8)}
    with FakeServer(FakeTempo(traces)) as server:
        got = TempoSource(server.url, page=3).spans("shop", START, END)
    assert got.truncated is None
    assert {s.trace_id for s in got.items} == set(traces)
    ends = [int(r.params["end"]) for r in server.requests if r.path == "/api/search"]
    assert len(ends) == 4 and ends == sorted(ends, reverse=True) and ends[1] == T0 + 100 + 40 + 1


def test_tempo_lists_at_most_max_traces():
    traces = {f"{i:032x}": (T0 + i, tempo_trace_hex(f"{i:032x}", 1, T0 + i)) for i in range(1, 9)}
    with FakeServer(FakeTempo(traces)) as server:
        got = TempoSource(server.url, page=2, max_traces=4).spans("shop", START, END)
    assert len(got.items) == 4
    assert got.truncated and "at least 4 traces matched, read the first 4" in got.truncated


def test_tempo_passes_over_a_second_with_more_traces_than_a_page_and_says_so():
    traces = {f"{i:032x}": (T0 + 30, tempo_trace_hex(f"{i:032x}", 1, T0 + 30)) for i in range(1, 6)}
    with FakeServer(FakeTempo(traces)) as server:
        got = TempoSource(server.url, page=2).spans("shop", START, END)
    assert len(got.items) == 2 and len(server.requests) == 3 + 2, "three searches, then two traces"
    assert got.truncated == (
        "tempo: at least 2 traces matched, read 2; some were passed over (more than 2 traces started in one second)"
    )


def test_tempo_without_matches_is_empty_not_an_error():
    with FakeServer(FakeTempo({})) as server:
        got = TempoSource(server.url).spans("shop", START, END)
    assert got.items == [] and got.truncated is None


def test_tempo_leaves_out_a_trace_over_max_bytes(monkeypatch):
    small, big = "a" * 32, "b" * 32
    fake = FakeTempo({small: (T0 + 1, tempo_trace_hex(small)), big: (T0 + 2, tempo_trace_hex(big, 40))})
    size = len(json.dumps(tempo_trace_hex(small))) + 100
    monkeypatch.setattr(httpsource, "MAX_BYTES", size)
    with FakeServer(fake) as server:
        got = TempoSource(server.url).spans("shop", START, END)
    assert {s.trace_id for s in got.items} == {small}
    assert got.truncated and f"1 traces over {tempo.MAX_BYTES} bytes not read" in got.truncated


def test_tempo_notes_a_trace_that_could_not_be_read():
    good, gone = "c" * 32, "d" * 32
    fake = FakeTempo({good: (T0 + 1, tempo_trace_hex(good)), gone: (T0 + 2, tempo_trace_hex(gone))})
    fake.trace_answer[gone] = Answer(500, "boom")
    with FakeServer(fake) as server:
        got = TempoSource(server.url).spans("shop", START, END)
    assert {s.trace_id for s in got.items} == {good}
    assert got.truncated and "1 traces could not be read" in got.truncated and "500" in got.truncated


@pytest.mark.parametrize(
    "answer, words",
    [
        (Answer(500, "internal error"), "answered 500"),
        (Answer(200, "<html>not json"), "not JSON"),
        (Answer(200, {"data": []}), "not a search result"),
        (Answer(200, {"traces": {"x": 1}}), "not a list"),
        (Answer(401, "no"), "401"),
    ],
)
def test_tempo_failures_are_source_errors_naming_the_backend(answer, words):
    with FakeServer(lambda path, params: answer) as server:
        with pytest.raises(SourceError) as err:
            TempoSource(server.url).spans("shop", START, END)
    message = str(err.value)
    assert message.startswith(f"tempo at {server.url}/api/search: ") and words in message


def test_tempo_malformed_trace_body_is_a_source_error():
    tid = "e" * 32
    fake = FakeTempo({tid: (T0 + 1, {"spans": "nope"})})
    with FakeServer(fake) as server, pytest.raises(SourceError, match="tempo: a trace without 'batches'"):
        TempoSource(server.url).spans("shop", START, END)


def test_tempo_refused_names_the_url_without_credentials():
    with pytest.raises(SourceError) as err:
        TempoSource("http://admin:hunter2@127.0.0.1:1/").spans("shop", START, END)
    assert str(err.value) == "tempo at http://127.0.0.1:1/api/search: connection refused"


def test_tempo_slow_server_times_out():
    with FakeServer(lambda path, params: Answer(200, {"traces": []}, delay=2)) as server:
        with pytest.raises(SourceError, match=r"^tempo at .*timed out"):
            TempoSource(server.url, timeout=0.3).spans("shop", START, END)


def test_tempo_deadline_bounds_the_whole_query():
    traces = {f"{i:032x}": (T0 + i, tempo_trace_hex(f"{i:032x}", 1, T0 + i)) for i in range(1, 9)}
    fake = FakeTempo(traces)
    for tid in traces:
        fake.trace_answer[tid] = Answer(200, traces[tid][1], delay=0.3)
    with FakeServer(fake) as server:
        got = TempoSource(server.url, workers=1, deadline=1.0).spans("shop", START, END)
    assert 0 < len(got.items) < 8
    assert got.truncated and "deadline" in got.truncated


def test_otlp_ids_and_kinds_are_normalised():
    assert httpsource.hex_id(b64(TRACE_A)) == TRACE_A
    assert httpsource.hex_id(TRACE_A.upper()) == TRACE_A
    assert httpsource.hex_id("f067aa0ba902b7") == "00f067aa0ba902b7"  # leading zeros trimmed
    assert httpsource.hex_id("AAAAAAAAAAA=") is None and httpsource.hex_id("") is None
    assert [tempo._kind(k) for k in ("SPAN_KIND_PRODUCER", 5, "SPAN_KIND_UNSPECIFIED", None)] == [
        "producer",
        "consumer",
        "",
        "",
    ]
    v2 = {"trace": tempo_trace_hex("f" * 32)}
    assert [s.trace_id for s in tempo.parse_trace(v2)] == ["f" * 32]


# --- Jaeger -----------------------------------------------------------------------------------------

J_TRACE = "f067aa0ba902b7a1"  # a 64-bit trace id as Jaeger writes it


def jaeger_span(span_id, name, start_s, dur_ms, process, parent=None, tags=()):
    return {
        "traceID": J_TRACE,
        "spanID": span_id,
        "operationName": name,
        "references": [{"refType": "CHILD_OF", "traceID": J_TRACE, "spanID": parent}] if parent else [],
        "startTime": int(start_s * 1e6),
        "duration": int(dur_ms * 1e3),
        "tags": list(tags),
        "logs": [],
        "processID": process,
        "warnings": None,
    }


def jaeger_trace() -> dict:
    return {
        "traceID": J_TRACE,
        "spans": [
            jaeger_span(
                "b7ad6b7169203331",
                "GET /cart",
                T0 + 5,
                120,
                "p1",
                tags=[{"key": "span.kind", "type": "string", "value": "server"}],
            ),
            jaeger_span(
                "5fb397be34d26b51",
                "checkout.Pay",
                T0 + 5.01,
                80,
                "p2",
                parent="b7ad6b7169203331",
                tags=[
                    {"key": "span.kind", "type": "string", "value": "server"},
                    {"key": "error", "type": "bool", "value": True},
                ],
            ),
            jaeger_span("0000000000000003", "ledger.Add", T0 + 5.02, 5, "p3", parent="5fb397be34d26b51"),
        ],
        "processes": {
            "p1": {
                "serviceName": "frontend",
                "tags": [{"key": "k8s.namespace.name", "type": "string", "value": "shop"}],
            },
            "p2": {
                "serviceName": "checkout",
                "tags": [{"key": "k8s.namespace.name", "type": "string", "value": "shop"}],
            },
            "p3": {
                "serviceName": "ledger",
                "tags": [{"key": "k8s.namespace.name", "type": "string", "value": "finance"}],
            },
        },
        "warnings": None,
    }


def jaeger_many(service: str, n: int, spans_each: int = 1) -> list[dict]:
    traces = []
    for i in range(n):
        tid = f"{service[:1]}{i:015x}"
        spans = [{**jaeger_span(f"{j + 1:016x}", f"op{j}", T0 + i, 1, "p1"), "traceID": tid} for j in range(spans_each)]
        traces.append({"traceID": tid, "spans": spans, "processes": {"p1": {"serviceName": service, "tags": []}}})
    return traces


class FakeJaeger:
    def __init__(self, services: dict[str, list[dict] | Answer]):
        self.services = services

    def __call__(self, path: str, params: dict[str, str]) -> Answer:
        if path == "/api/services":
            names = list(self.services) + ["jaeger-all-in-one"]
            return Answer(200, {"data": names, "total": len(names), "limit": 0, "offset": 0, "errors": None})
        if path == "/api/traces":
            found = self.services.get(params["service"])
            if isinstance(found, Answer):
                return found
            traces = (found or [])[: int(params["limit"])]
            return Answer(200, {"data": traces, "total": len(traces), "limit": 0, "offset": 0, "errors": None})
        return Answer(404, "404 page not found")


def test_jaeger_reads_each_service_once_per_span_and_filters_the_namespace():
    fake = FakeJaeger({"frontend": [jaeger_trace()], "checkout": [jaeger_trace()], "ledger": [jaeger_trace()]})
    with FakeServer(fake) as server:
        got = JaegerSource(server.url).spans("shop", START, END)
    assert got.truncated is None
    spans = by_id(got.items)
    assert set(spans) == {"b7ad6b7169203331", "5fb397be34d26b51"}, "deduplicated; ledger's namespace is finance"
    root, pay = spans["b7ad6b7169203331"], spans["5fb397be34d26b51"]
    assert root.trace_id == "f067aa0ba902b7a1" and root.parent_id is None and root.service == "frontend"
    assert pay.parent_id == root.span_id and pay.service == "checkout" and pay.error and not root.error
    assert (root.kind, root.operation) == ("server", "GET /cart")
    assert root.start == pytest.approx(T0 + 5) and root.duration == pytest.approx(0.12)
    asked = sorted(r.params["service"] for r in server.requests if r.path == "/api/traces")
    assert asked == ["checkout", "frontend", "ledger"], "Jaeger's own service is not read"
    r = next(r for r in server.requests if r.path == "/api/traces")
    assert (int(r.params["start"]), int(r.params["end"])) == (T0 * 1_000_000, (T0 + 600) * 1_000_000)


def test_jaeger_stops_at_the_limit_and_notes_capped_services():
    fake = FakeJaeger({"cart": jaeger_many("cart", 5, 2), "web": jaeger_many("web", 2)})
    with FakeServer(fake) as server:
        capped = JaegerSource(server.url, traces_per_service=3).spans("shop", START, END)
        limited = JaegerSource(server.url).spans("shop", START, END, limit=4)
    assert len(capped.items) == 3 * 2 + 2
    assert capped.truncated and "1 services had at least 3 traces" in capped.truncated and "(cart)" in capped.truncated
    assert len(limited.items) == 4
    assert limited.truncated and "more spans than the limit of 4" in limited.truncated


def test_jaeger_one_failing_service_is_a_note_all_failing_an_error():
    fake = FakeJaeger({"cart": jaeger_many("cart", 1), "web": Answer(500, "storage down")})
    with FakeServer(fake) as server:
        got = JaegerSource(server.url).spans("shop", START, END)
        assert len(got.items) == 1
        assert got.truncated and "1 services could not be read" in got.truncated
        fake.services = {"web": Answer(500, "storage down")}
        with pytest.raises(SourceError, match=r"^jaeger at .*/api/traces: answered 500"):
            JaegerSource(server.url).spans("shop", START, END)


@pytest.mark.parametrize(
    "answer, words",
    [
        (Answer(503, "unavailable"), "answered 503"),
        (Answer(200, "{not json"), "not JSON"),
        (Answer(200, {"services": ["a"]}), "not a list of services"),
        (Answer(200, [1, 2]), "not a list of services"),
    ],
)
def test_jaeger_failures_are_source_errors_naming_the_backend(answer, words):
    with FakeServer(lambda path, params: answer) as server:
        with pytest.raises(SourceError) as err:
            JaegerSource(server.url).spans("shop", START, END)
    assert str(err.value).startswith(f"jaeger at {server.url}/api/services: ") and words in str(err.value)


def test_jaeger_refused_and_slow():
    with pytest.raises(SourceError, match=r"^jaeger at http://127.0.0.1:1/api/services: connection refused$"):
        JaegerSource("http://127.0.0.1:1").spans("shop", START, END)
    with FakeServer(lambda path, params: Answer(200, {"data": []}, delay=2)) as server:
        with pytest.raises(SourceError, match="timed out"):
            JaegerSource(server.url, timeout=0.3).spans("shop", START, END)


def test_jaeger_span_without_namespace_is_kept_and_legacy_parent_read():
    trace = {
        "traceID": "1",
        "spans": [{"traceID": "1", "spanID": "2", "parentSpanID": "1", "startTime": 5, "processID": "p"}],
        "processes": {"p": {"serviceName": "svc"}},
    }
    (span,) = jaeger.parse_trace(trace, "shop")
    assert (span.trace_id, span.span_id, span.parent_id) == ("0" * 15 + "1", "0" * 15 + "2", "0" * 15 + "1")


# --- settings and access ----------------------------------------------------------------------------


def test_settings_read_tempo_and_jaeger_urls():
    s = settings.from_env({"AIOPS_TEMPO_URL": "http://tempo:3200", "AIOPS_JAEGER_URL": "http://jaeger:16686"})
    assert (s.tempo_url, s.jaeger_url, s.loki_url) == ("http://tempo:3200", "http://jaeger:16686", None)
    assert settings.from_env({"AIOPS_TEMPO_URL": ""}).tempo_url is None
    logs, traces = access.local_sources(s)
    assert logs is None and isinstance(traces, TempoSource) and traces.url == "http://tempo:3200"
    _, traces = access.local_sources(settings.from_env({"AIOPS_JAEGER_URL": "http://jaeger:16686"}))
    assert isinstance(traces, JaegerSource)
    assert access.local_sources(settings.from_env({})) == (None, None)


def endpoints(**named):
    return ManagedClusterSpec.model_validate({"endpoints": named}).endpoints


def test_access_prefers_tempo_and_reads_tokens_from_secrets():
    asked = []

    def token(ref):
        if ref is None:
            return None
        asked.append((ref.namespace, ref.name, ref.key))
        return f"token-of-{ref.name}"

    both = endpoints(
        loki={"url": "https://loki.example:3100", "authSecretRef": {"name": "loki-auth", "key": "token"}},
        tempo={"url": "https://tempo.example:3200", "insecureSkipVerify": True},
        jaeger={"url": "https://jaeger.example:16686"},
    )
    logs, traces = access.endpoint_sources(both, token)
    assert isinstance(traces, TempoSource) and traces.insecure and traces.bearer_token is None
    assert logs is not None and logs.bearer_token == "token-of-loki-auth" and not logs.insecure
    assert asked == [(None, "loki-auth", "token")]
    only_jaeger = endpoints(
        jaeger={"url": "http://jaeger:16686", "authSecretRef": {"name": "j", "key": "t", "namespace": "obs"}}
    )
    logs, traces = access.endpoint_sources(only_jaeger, token)
    assert logs is None and isinstance(traces, JaegerSource) and traces.bearer_token == "token-of-j"
    assert access.endpoint_sources(None, token) == (None, None)
    assert "token-of" not in repr(traces), "the token stays out of reprs"
