"""Prometheus evidence: metric templates over the Incident's window, through prometheus-api-client.

Each template is a PromQL expression over the target's pods, or (NEIGHBOURHOOD) over every pod of the
target's namespace; the result lands in `bundle.metrics[template][series label] = [(unix_s, value), ...]`
for the metric analyzer.
"""

from __future__ import annotations

from prometheus_api_client.exceptions import PrometheusApiClientException
from requests.exceptions import RequestException

from aiops.clusters.prometheus import PrometheusSource, step_for
from aiops.diagnosis.collectors import pod_matcher
from aiops.diagnosis.evidence import EvidenceBundle

# {sel} is replaced by the pod selector of the target, e.g. namespace="shop",pod=~"checkout-.*".
TEMPLATES: dict[str, str] = {
    "restarts": "sum by (pod) (kube_pod_container_status_restarts_total{{{sel}}})",
    "memory_working_set_ratio": (
        'max by (pod) (container_memory_working_set_bytes{{{sel},container!=""}})'
        ' / max by (pod) (kube_pod_container_resource_limits{{{sel},resource="memory"}})'
    ),
    "cpu_throttling_ratio": (
        "sum by (pod) (rate(container_cpu_cfs_throttled_periods_total{{{sel}}}[5m]))"
        " / sum by (pod) (rate(container_cpu_cfs_periods_total{{{sel}}}[5m]))"
    ),
    "error_rate": (
        'sum(rate(http_requests_total{{{sel},code=~"5.."}}[5m])) / sum(rate(http_requests_total{{{sel}}}[5m]))'
    ),
    "latency_p99": "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{{sel}}}[5m])))",
    # The kubelet labels volume stats by claim, not by pod: match the namespace only.
    "pvc_usage": (
        "max by (persistentvolumeclaim) (kubelet_volume_stats_used_bytes{{{ns}}}"
        " / kubelet_volume_stats_capacity_bytes{{{ns}}})"
    ),
}

# One series per pod of the target's namespace: a symptom on the target is often caused by one of its
# dependencies. CPU, memory and network are cAdvisor's names; request latency and errors have no
# standard name, so they are read from the recording rules in examples/prometheus/aiops-rules.yaml.
NEIGHBOURHOOD: dict[str, str] = {
    "pod_cpu_usage": 'sum by (pod) (rate(container_cpu_usage_seconds_total{{{ns},container!=""}}[2m]))',
    "pod_memory_working_set": 'sum by (pod) (container_memory_working_set_bytes{{{ns},container!=""}})',
    "pod_network_receive": "sum by (pod) (rate(container_network_receive_bytes_total{{{ns}}}[2m]))",
    "pod_network_transmit": "sum by (pod) (rate(container_network_transmit_bytes_total{{{ns}}}[2m]))",
    "pod_latency_p99": "max by (pod) (pod:request_duration_seconds:p99{{{ns}}})",
    "pod_error_ratio": "max by (pod) (pod:request_errors:ratio{{{ns}}})",
}


def collect(
    source: PrometheusSource, bundle: EvidenceBundle, templates: dict[str, str] = TEMPLATES | NEIGHBOURHOOD
) -> EvidenceBundle:
    prom = source.connect()
    sel = pod_matcher(bundle)
    step = step_for((bundle.window_end - bundle.window_start).total_seconds())
    for name, template in templates.items():
        query = template.format(sel=sel, ns=f'namespace="{bundle.target.namespace}"')
        try:
            result = prom.custom_query_range(query, bundle.window_start, bundle.window_end, step)
        except (PrometheusApiClientException, RequestException, ValueError) as exc:
            bundle.missing.append(f"prometheus/{name}: {type(exc).__name__}: {str(exc)[:300]}")
            if isinstance(exc, RequestException):
                break  # the server is unreachable: the other templates would fail the same way
            continue
        series = {}
        for item in result:
            label = ",".join(f"{k}={v}" for k, v in sorted(item["metric"].items())) or name
            series[label] = [(float(ts), float(v)) for ts, v in item["values"] if v not in ("NaN", "+Inf", "-Inf")]
        if series:
            bundle.metrics[name] = series
    return bundle
