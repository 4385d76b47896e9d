"""capacityForecast specs and spec.capacityForecast: bad input is refused naming the field."""

import pytest

from aiops.api import ANALYSIS_RUN, MANAGED_CLUSTER
from aiops.api.analysisrun import ForecastResource, ForecastTarget, LimitKind
from aiops.controllers.common import InvalidSpec, parse_spec
from aiops.forecast.resources import queries, selector


def run(forecast: dict | None) -> dict:
    inputs = {} if forecast is None else {"forecast": forecast}
    return {"metadata": {"name": "f"}, "spec": {"type": "capacityForecast", "inputs": inputs}}


TARGET = {"kind": "Deployment", "name": "api"}


def problem(body: dict, kind=ANALYSIS_RUN) -> str:
    with pytest.raises(InvalidSpec) as err:
        parse_spec(kind, body)
    return str(err.value)


def test_a_valid_run_defaults_to_cpu_and_memory_over_three_weeks():
    spec = parse_spec(ANALYSIS_RUN, run({"target": TARGET, "horizonHours": 24}))
    f = spec.inputs.forecast
    assert f.resources == [] and f.history_days == 21 and f.level == 0.8


@pytest.mark.parametrize(
    ("forecast", "field", "words"),
    [
        (None, "spec", "inputs.forecast (target, horizonHours) is required"),
        ({"horizonHours": 24}, "spec.inputs.forecast.target", "Field required"),
        ({"target": TARGET}, "spec.inputs.forecast.horizonHours", "Field required"),
        ({"target": TARGET, "horizonHours": 0}, "spec.inputs.forecast.horizonHours", "greater than or equal to 0.25"),
        ({"target": TARGET, "horizonHours": -3}, "spec.inputs.forecast.horizonHours", "greater than or equal"),
        ({"target": TARGET, "horizonHours": 1, "resources": ["disk"]}, "spec.inputs.forecast.resources[0]", "'cpu'"),
        ({"target": TARGET, "horizonHours": 1, "resources": ["storage"]}, "spec.inputs.forecast.resources", "storage"),
        ({"target": {"kind": "Service", "name": "x"}, "horizonHours": 1}, "spec.inputs.forecast.target.kind", ""),
    ],
)
def test_bad_input_names_the_field(forecast, field, words):
    message = problem(run(forecast))
    assert message.startswith(f"{field}:") or (field == "spec" and message.startswith("spec:")), message
    assert words in message, message


def test_cluster_warn_horizon_must_fall_inside_the_horizon():
    body = {"metadata": {"name": "c"}, "spec": {"capacityForecast": {"horizonHours": 24, "warnHours": 48}}}
    assert problem(body, MANAGED_CLUSTER).startswith("spec.capacityForecast.warnHours: 48 is past horizonHours")
    body["spec"]["capacityForecast"] = {"namespaces": ["Shop"]}
    assert "spec.capacityForecast.namespaces: not namespace names: Shop" in problem(body, MANAGED_CLUSTER)


def test_queries_select_the_targets_pods_and_its_limits():
    match = selector(ForecastTarget(kind="Deployment", name="api"), "shop")
    q = queries(ForecastResource.MEMORY, match)
    assert q.unit == "bytes" and 'pod=~"api-[^-]+(-[^-]+)?"' in q.usage and 'namespace="shop"' in q.usage
    assert set(q.limits) == {LimitKind.REQUESTS, LimitKind.LIMITS, LimitKind.QUOTA, LimitKind.NODE_ALLOCATABLE}
    pvc = queries(ForecastResource.STORAGE, selector(ForecastTarget(kind="PersistentVolumeClaim", name="d"), "shop"))
    assert set(pvc.limits) == {LimitKind.CAPACITY} and 'persistentvolumeclaim="d"' in pvc.usage
    dotted = selector(ForecastTarget(kind="StatefulSet", name="db.v2"), "shop")
    assert dotted == 'namespace="shop",pod=~"db\\\\.v2-[^-]+(-[^-]+)?"'  # PromQL "\\." is the regex's literal dot
    grouped = queries(ForecastResource.CPU, 'namespace!=""', "namespace")
    assert grouped.usage.startswith("sum by (namespace)(rate(") and LimitKind.NODE_ALLOCATABLE not in grouped.limits
