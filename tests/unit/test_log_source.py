"""The Loki log source against a real local HTTP server answering /loki/api/v1/query_range as Loki does
(streams, nanosecond times, `limit` newest lines for direction=backward, `end` exclusive, structured
metadata beside each line with the categorize-labels encoding)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from aiops import settings
from aiops.clusters import access
from aiops.clusters.loki import LokiSource
from aiops.clusters.telemetry import SourceError
from support.httpfake import Answer, FakeServer

T0 = 1_700_000_000
NS = 1_000_000_000
START, END = datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 600, UTC)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


class FakeLoki:
    """Entries (ns, stream labels, line, structured metadata); answers a backward query_range from them."""

    def __init__(self, entries):
        self.entries = entries

    def __call__(self, path: str, params: dict[str, str]) -> Answer:
        if path != "/loki/api/v1/query_range":
            return Answer(404, "404 page not found")
        assert params["direction"] == "backward"
        low, high, limit = int(params["start"]), int(params["end"]), int(params["limit"])
        chosen = sorted((e for e in self.entries if low <= e[0] < high), key=lambda e: -e[0])[:limit]
        streams: dict[str, dict] = {}
        for ts, labels, line, meta in chosen:
            stream = streams.setdefault(json.dumps(labels, sort_keys=True), {"stream": labels, "values": []})
            stream["values"].append([str(ts), line, {"structuredMetadata": meta}] if meta else [str(ts), line])
        body = {
            "status": "success",
            "data": {
                "resultType": "streams",
                "result": list(streams.values()),
                "stats": {"summary": {"totalEntriesReturned": len(chosen)}},
            },
        }
        return Answer(200, body)


def labels(app: str, pod: str | None = None, **extra) -> dict:
    return {"namespace": "shop", "app": app, "pod": pod or f"{app}-7d9f-abcde", "container": app, **extra}


def test_lines_carry_service_pod_and_trace_ids_from_metadata_labels_and_json():
    entries = [
        (T0 * NS + 1, labels("checkout"), "payment failed", {"trace_id": TRACE, "span_id": "00f067aa0ba902b7"}),
        (
            T0 * NS + 2,
            labels("checkout"),
            json.dumps({"msg": "retry", "traceId": TRACE.upper(), "spanId": "5fb397be34d26b51"}),
            None,
        ),
        (T0 * NS + 3, labels("cart", service_name="cart-svc"), "level=error trace_id=" + TRACE + ' msg="boom"', None),
        (T0 * NS + 4, {"namespace": "shop", "container": "sidecar", "traceID": TRACE}, "plain line", None),
        (T0 * NS + 5, labels("web"), "{not json", None),
    ]
    with FakeServer(FakeLoki(entries)) as server:
        got = LokiSource(server.url, bearer_token="tok").lines("shop", None, START, END)
    assert got.truncated is None
    assert [line.time for line in got.items] == sorted(line.time for line in got.items), "oldest first"
    first, second, third, fourth, fifth = got.items
    assert (first.service, first.pod, first.trace_id, first.span_id) == (
        "checkout",
        "checkout-7d9f-abcde",
        TRACE,
        "00f067aa0ba902b7",
    )
    assert first.time == pytest.approx(T0) and first.message == "payment failed"
    assert (second.trace_id, second.span_id) == (TRACE, "5fb397be34d26b51")
    assert third.service == "cart" and third.trace_id == TRACE, "the configured label (app) comes first"
    assert fourth.service == "sidecar" and fourth.pod is None and fourth.trace_id == TRACE
    assert fifth.trace_id is None
    request = server.requests[0]
    assert request.params["query"] == '{namespace="shop"}'
    assert (request.params["start"], request.params["end"]) == (str(T0 * NS), str((T0 + 600) * NS))
    assert request.headers.get("Authorization") == "Bearer tok"
    assert request.headers.get("X-Loki-Response-Encoding-Flags") == "categorize-labels"


def test_pages_backward_until_the_window_is_exhausted_reading_each_line_once():
    # 13 lines; three share the instant that ends the first page.
    times = [T0 * NS + i * 1000 for i in range(8)] + [T0 * NS + 8000] * 3 + [T0 * NS + 8500, T0 * NS + 9000]
    entries = [(ts, labels("api"), f"line {n}", None) for n, ts in enumerate(times)]
    with FakeServer(FakeLoki(entries)) as server:
        got = LokiSource(server.url, page=4).lines("shop", None, START, END)
    assert got.truncated is None
    assert sorted(line.message for line in got.items) == sorted(f"line {n}" for n in range(13))
    ends = [int(r.params["end"]) for r in server.requests]
    assert ends[0] == (T0 + 600) * NS and all(a > b for a, b in zip(ends, ends[1:], strict=False))
    assert ends[1] == T0 * NS + 8000 + 1, "the next page ends one nanosecond after the oldest line read"
    assert ends[2] == T0 * NS + 7000 + 1, "the lines read at 8000 are skipped, the third one there is not"


def test_stops_at_the_limit_and_says_so_but_not_when_the_window_had_exactly_that_many():
    entries = [(T0 * NS + i, labels("api"), f"line {i}", None) for i in range(10)]
    with FakeServer(FakeLoki(entries)) as server:
        got = LokiSource(server.url, page=3).lines("shop", None, START, END, limit=7)
        exact = LokiSource(server.url, page=5).lines("shop", None, START, END, limit=10)
    assert [line.message for line in got.items] == [f"line {i}" for i in range(3, 10)], "the newest 7"
    assert got.truncated and got.truncated.startswith("loki: read the newest 7 lines")
    assert len(exact.items) == 10 and exact.truncated is None


def test_many_lines_at_one_instant_do_not_loop():
    entries = [(T0 * NS + 5, labels("api"), f"same instant {i}", None) for i in range(6)]
    with FakeServer(FakeLoki(entries)) as server:
        got = LokiSource(server.url, page=3).lines("shop", None, START, END)
    assert len(got.items) == 3 and len(server.requests) == 2
    assert got.truncated and "at one instant" in got.truncated


def test_selector_narrows_to_services_and_pods_escaped():
    with FakeServer(FakeLoki([])) as server:
        source = LokiSource(server.url, service_label="app_kubernetes_io_name")
        got = source.lines("shop", ["web", "api.v2"], START, END, pods=["api.v2-0"])
    assert got.items == [] and got.truncated is None
    query = server.requests[0].params["query"]
    assert query == r'{namespace="shop", app_kubernetes_io_name=~"api\\.v2|web", pod=~"api\\.v2-0"}'
    assert LokiSource("http://l").selector('a"b') == '{namespace="a\\"b"}'


@pytest.mark.parametrize(
    "answer, words",
    [
        (Answer(500, "too many outstanding requests"), "answered 500"),
        (Answer(400, "parse error at line 1"), "answered 400"),
        (Answer(200, "<html>"), "not JSON"),
        (Answer(200, {"status": "error", "error": "x"}), "not a successful query result"),
        (Answer(200, {"status": "success", "data": {"resultType": "matrix", "result": []}}), "expected resultType"),
        (
            Answer(200, {"status": "success", "data": {"resultType": "streams", "result": [{"values": [[1]]}]}}),
            "not [time, line]",
        ),
    ],
)
def test_failures_are_source_errors_naming_loki(answer, words):
    with FakeServer(lambda path, params: answer) as server:
        with pytest.raises(SourceError) as err:
            LokiSource(server.url).lines("shop", None, START, END)
    assert str(err.value).startswith(f"loki at {server.url}/loki/api/v1/query_range: ") and words in str(err.value)


def test_refused_slow_and_too_large(monkeypatch):
    with pytest.raises(SourceError, match=r"^loki at http://127.0.0.1:1/loki/api/v1/query_range: connection refused$"):
        LokiSource("http://u:p@127.0.0.1:1").lines("shop", None, START, END)
    with FakeServer(lambda path, params: Answer(200, {}, delay=2)) as server:
        with pytest.raises(SourceError, match="timed out"):
            LokiSource(server.url, timeout=0.3).lines("shop", None, START, END)
    from aiops.clusters import httpsource

    monkeypatch.setattr(httpsource, "MAX_BYTES", 100)
    big = FakeLoki([(T0 * NS + i, labels("api"), "x" * 50, None) for i in range(5)])
    with FakeServer(big) as server, pytest.raises(httpsource.BodyTooLarge, match="over 100"):
        LokiSource(server.url).lines("shop", None, START, END)


def test_local_and_managed_logs_source():
    logs, traces = access.local_sources(settings.from_env({"AIOPS_LOKI_URL": "http://loki:3100"}))
    assert isinstance(logs, LokiSource) and logs.url == "http://loki:3100" and traces is None
    from aiops.api.managedcluster import ManagedClusterSpec

    spec = ManagedClusterSpec.model_validate(
        {"endpoints": {"loki": {"url": "https://loki:3100", "insecureSkipVerify": True}}}
    )
    logs, traces = access.endpoint_sources(spec.endpoints, lambda ref: None)
    assert isinstance(logs, LokiSource) and logs.insecure and traces is None
    assert re.search(r"bearer_token", repr(logs)) is None
