"""The Nezha evaluation's data handling: time column, pod -> service, rates -> counters, OpenMetrics."""

from aiops_dev.eval import nezha


def test_time_column_is_read_as_utc_and_floored_to_the_minute():
    assert nezha.unix_of("2022-08-22 03:53:54.607158889 +0000 UTC m=+0.113112869") == 1661140380


def test_a_pod_counts_for_its_deployment():
    assert nezha.service_of("productcatalogservice-668d5f85fb-wckp8") == "productcatalogservice"
    assert nezha.service_of("cartservice-579f59597d-wc2lz") == "cartservice"
    assert nezha.service_of("not-a-pod-name") == "not-a-pod-name"


def test_rates_become_counters_over_elapsed_time():
    assert nezha.integral([0, 60, 180], [2.0, 1.0, 0.5]) == [0.0, 60.0, 120.0]


def test_openmetrics_names_and_labels():
    pod = nezha.PodSeries(
        "frontend-579b9bff58-t2dbm",
        [60, 120],
        {c: [500.0, 250.0] for c, *_ in nezha.SERIES},
    )
    text = nezha.openmetrics([pod])
    assert text.endswith("\n# EOF\n")
    assert "# TYPE container_cpu_usage_seconds counter" in text
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
