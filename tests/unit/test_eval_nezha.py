"""The Nezha evaluation's data handling: fault lists, time column, pod -> service, rates -> counters,
OpenMetrics, and the recorded spans and log lines behind the operator's source interface."""

import gzip
import json
from datetime import UTC, datetime, timedelta

from aiops_dev.eval import nezha, nezha_data


def test_time_column_is_read_as_utc_and_floored_to_the_minute():
    assert nezha_data.unix_of("2022-08-22 03:53:54.607158889 +0000 UTC m=+0.113112869") == 1661140380


def test_a_pod_counts_for_its_deployment():
    assert nezha_data.service_of("productcatalogservice-668d5f85fb-wckp8") == "productcatalogservice"
    assert nezha_data.service_of("ts-gateway-service-6f6cfc45b-h5m2n") == "ts-gateway-service"
    assert nezha_data.service_of("not-a-pod-name") == "not-a-pod-name"


def test_rates_become_counters_over_elapsed_time():
    assert nezha.integral([0, 60, 180], [2.0, 1.0, 0.5]) == [0.0, 60.0, 120.0]


def test_openmetrics_names_and_labels():
    pod = nezha_data.PodSeries("frontend-579b9bff58-t2dbm", [60, 120], {c: [500.0, 250.0] for c, *_ in nezha.SERIES})
    text = nezha.openmetrics([("online-boutique", [pod]), ("other", [])])
    assert text.endswith("\n# EOF\n")
    assert text.count("# TYPE container_cpu_usage_seconds counter") == 1
    cpu = [line for line in text.splitlines() if line.startswith("container_cpu_usage_seconds_total{")]
    assert cpu == [
        'container_cpu_usage_seconds_total{namespace="online-boutique",pod="frontend-579b9bff58-t2dbm",'
        'container="server"} 0 60',
        'container_cpu_usage_seconds_total{namespace="online-boutique",pod="frontend-579b9bff58-t2dbm",'
        'container="server"} 15 120',  # 250 millicores for 60 s
    ]
    assert 'pod:request_errors:ratio{namespace="online-boutique",pod="frontend-579b9bff58-t2dbm"} -1.5 120' in text


def test_accuracy_at_k():
    truth = ["a", "b", "c"]
    rankings = [["a", "x"], ["x", "y", "b"], []]
    assert nezha.accuracy(truth, rankings) == (1 / 3, 2 / 3, (1 / 3 + 1 / 3 + 2 / 3 + 2 / 3 + 2 / 3) / 5)


def write_day(root, spans, logs):
    day = root / "2023-01-29"
    (day / "trace").mkdir(parents=True)
    (day / "log").mkdir()
    faults = {"08": [{"inject_time": "2023-01-29 08:43:04", "inject_timestamp": "1674953044",
                      "inject_pod": "ts-contacts-service-866bd68c97-xcqfx", "inject_type": "return"}]}  # fmt: skip
    (day / "fault_list.json").write_text(json.dumps(faults))
    for name, rows in spans.items():
        with gzip.open(day / "trace" / name, "wt") as f:
            f.write("TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,Duration\n")
            f.writelines(",".join(map(str, r)) + "\n" for r in rows)
    with gzip.open(day / "log" / "08_44_log.csv.gz", "wt") as f:
        f.write("Timestamp,TimeUnixNano,Node,PodName,Container,TraceID,SpanID,Log\n")
        f.writelines(logs)
    return root


def test_faults_are_read_at_inject_time_not_inject_timestamp(tmp_path):
    (fault,) = nezha_data.faults(write_day(tmp_path, {}, []))
    assert fault.at == int(datetime(2023, 1, 29, 8, 43, 4, tzinfo=UTC).timestamp())  # inject_timestamp is 8 h off
    assert (fault.service, fault.kind) == ("ts-contacts-service", "return")


def test_recorded_spans_and_lines_come_through_the_source_interface(tmp_path):
    t0 = int(datetime(2023, 1, 29, 8, 43, 30, tzinfo=UTC).timestamp() * 1e9)
    pod = "ts-order-service-5b7d9c8f6d-abcde"
    row = ["t1", "s1", "root", pod, "GET /orders", t0, t0 + 2_000_000, 2000]
    child = ["t1", "s2", "s1", "ts-user-service-7f8b9c6d5e-fghij", "GET /user", t0 + 10**6, t0 + 1_500_000, 500]
    # neighbouring minute files overlap: the span in both is served once
    root = write_day(tmp_path, {"08_43_trace.csv.gz": [row], "08_44_trace.csv.gz": [row, child]}, [
        f'x,{t0},n,{pod},server,t1,s1,"{{""log"":""08:43:30 ERROR boom\\n""}}"\n',
    ])  # fmt: skip
    at = datetime(2023, 1, 29, 8, 43, 30, tzinfo=UTC)
    fetched = nezha_data.FileTraceSource(root).spans("ns", at - timedelta(minutes=1), at + timedelta(minutes=1))
    assert [(s.span_id, s.parent_id, s.service, s.duration) for s in fetched.items] == [
        ("s1", None, "ts-order-service", 0.002),
        ("s2", "s1", "ts-user-service", 0.0005),
    ]
    assert fetched.truncated is None
    ingested = nezha_data.FileTraceSource(root)
    ingested.ingest(at - timedelta(minutes=30), at + timedelta(minutes=5))  # as the evaluation does, ahead
    later = ingested.spans("ns", at + timedelta(microseconds=500), at + timedelta(minutes=1))
    assert [s.span_id for s in later.items] == ["s2"], "only the window's spans, from files read once"
    capped = nezha_data.FileTraceSource(root).spans("ns", at - timedelta(minutes=1), at + timedelta(minutes=1), 1)
    assert len(capped.items) == 1 and "2 spans in the window" in capped.truncated
    lines = nezha_data.FileLogSource(root).lines("ns", ["ts-order-service"], at, at + timedelta(seconds=1))
    assert [(x.service, x.message, x.trace_id) for x in lines.items] == [
        ("ts-order-service", "08:43:30 ERROR boom", "t1")
    ]
    assert nezha_data.FileLogSource(root).lines("ns", ["ts-user-service"], at, at + timedelta(seconds=1)).items == []
