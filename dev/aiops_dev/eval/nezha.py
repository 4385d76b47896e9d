"""Root-cause service ranking on Nezha's recorded faults (Online Boutique, Train Ticket), metrics only and with
traces and logs, beside BARO, in one run.

    python -m aiops_dev.eval.nezha DATA [--system NAME ...] [--faults N] [--llm-base-url URL --llm-model NAME]

DATA is ../shared/eval (it holds nezha-online-boutique/ and nezha-train-ticket/; see nezha_data for the
files). Per system the run
1. converts the per-pod metrics to the series a Kubernetes Prometheus would hold (cAdvisor's
   container_cpu_usage_seconds_total, container_memory_working_set_bytes and network byte counters, and
   the recorded pod:request_duration_seconds:p99 and pod:request_errors:ratio of
   examples/prometheus/aiops-rules.yaml), backfills them with promtool into a real Prometheus
   (Debian's package) and starts it;
2. writes a Deployment per service into a namespace named after the system on a local control plane and,
   per fault, files an Incident on the system's entry service as Alertmanager would (startsAt = the
   inject time, so detectedAt is the inject time; window 30 minutes before to 5 minutes after);
3. runs the root-cause pipeline on it twice: with Prometheus only, and with the recorded spans and log
   lines too, served through the operator's TraceSource / LogSource interface (there is no Tempo, Jaeger
   or Loki to be had here; the HTTP clients are tested on their own). Nothing tells it the answer. The time
   per diagnosis is the pipeline's, from the queries on: the recorded files of the window are read first, as
   a backend holds its data before it is asked;
4. ranks services by the diagnosis' suspects and, on the same windows, runs BARO (fse-baro's
   robust_scorer) on all the per-pod metrics of the data set and on the six signals the operator reads.
Accuracy@k is the share of faults whose injected service is among the k best-ranked; Avg@5 the mean of
Accuracy@1..5, overall and per fault type. It reports figures and does not judge them: exit 0 once it ran.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kubernetes import client

from aiops import API_VERSION
from aiops.api import INCIDENT
from aiops.api.incident import AnalysisOptions, IncidentSpec
from aiops.clusters.access import ClusterAccess
from aiops.clusters.prometheus import PrometheusSource
from aiops.controllers.incident import detected_at
from aiops.core import kube
from aiops.core.status import parse_time
from aiops.diagnosis import pipeline
from aiops.settings import Settings
from aiops_dev.controlplane import ControlPlane, ControlPlaneError
from aiops_dev.eval.nezha_data import (
    SYSTEMS,
    Fault,
    FileLogSource,
    FileTraceSource,
    PodSeries,
    System,
    faults,
    pod_series,
    service_of,
    system_root,
)
from aiops_dev.eval.scenario_suite import add_llm_arguments, install_crds, llm_config, local_cluster, say
from aiops_dev.eval.workloads import Writer, container
from aiops_dev.prometheus import PrometheusServer

BEFORE = timedelta(minutes=30)
AFTER = timedelta(minutes=5)
K = 5
# Column of the data set -> the six signals the operator reads (collectors/prometheus.py NEIGHBOURHOOD).
OPERATOR_SIGNALS = (
    "CpuUsage(m)",
    "MemoryUsage(Mi)",
    "NetworkReceiveBytes",
    "NetworkTransmitBytes",
    "PodServerLatencyP99(s)",
    "PodSuccessRate(%)",
)
# (column, metric family, type, labelled per container, value from the column's value)
SERIES = (
    ("CpuUsage(m)", "container_cpu_usage_seconds", "counter", True, lambda millicores: millicores / 1000),
    ("MemoryUsage(Mi)", "container_memory_working_set_bytes", "gauge", True, lambda mib: mib * 2**20),
    ("NetworkReceiveBytes", "container_network_receive_bytes", "counter", False, float),
    ("NetworkTransmitBytes", "container_network_transmit_bytes", "counter", False, float),
    ("PodServerLatencyP99(s)", "pod:request_duration_seconds:p99", "gauge", False, float),
    ("PodSuccessRate(%)", "pod:request_errors:ratio", "gauge", False, lambda percent: 1 - percent / 100),
)


@dataclass
class Diagnosed:
    services: list[str]  # best first
    seconds: float
    tokens: int
    status: str


def openmetrics(namespaces: list[tuple[str, list[PodSeries]]]) -> str:
    """The series a Kubernetes Prometheus would hold; per-second rates become counters (their integral)."""
    out = []
    for column, family, kind, per_container, convert in SERIES:
        out.append(f"# TYPE {family} {kind}")
        sample = f"{family}_total" if kind == "counter" else family
        for namespace, pods in namespaces:
            for s in pods:
                labels = f'namespace="{namespace}",pod="{s.pod}"' + (',container="server"' if per_container else "")
                values = [convert(v) for v in s.columns[column]]
                if kind == "counter":
                    values = integral(s.times, values)
                out += [f"{sample}{{{labels}}} {v:.6g} {t}" for t, v in zip(s.times, values, strict=True)]
    return "\n".join(out) + "\n# EOF\n"


def integral(times: list[int], rates: list[float]) -> list[float]:
    """A counter from per-second rates sampled at `times`: each step adds rate x elapsed seconds."""
    total, out = 0.0, []
    for i, rate in enumerate(rates):
        total += rate * (times[i] - times[i - 1]) if i else 0.0
        out.append(total)
    return out


def incident_manifest(system: System, fault: Fault) -> dict:
    """What Alertmanager would file for the entry service's symptom; it names no cause."""
    at = datetime.fromtimestamp(fault.at, UTC)
    labels = {"alertname": "EntryLatencyHigh", "namespace": system.name, "service": system.entry}
    stamp = f"{at:%Y%m%d-%H%M%S}"
    return {
        "apiVersion": API_VERSION,
        "kind": INCIDENT.kind,
        "metadata": {"name": f"{system.entry}-{stamp}", "namespace": system.name},
        "spec": {
            "title": f"{system.name}: requests to {system.entry} slow or failing",
            "severity": "high",
            "source": "alertmanager",
            "target": {"kind": "Deployment", "name": system.entry},
            "alert": {
                "name": "EntryLatencyHigh",
                "labels": labels,
                "fingerprint": hashlib.sha256(f"{labels}{stamp}".encode()).hexdigest()[:16],
                "startsAt": f"{at:%Y-%m-%dT%H:%M:%SZ}",
            },
            "window": {"start": f"{at - BEFORE:%Y-%m-%dT%H:%M:%SZ}", "end": f"{at + AFTER:%Y-%m-%dT%H:%M:%SZ}"},
        },
    }


def ranked_services(suspects) -> list[str]:
    return list(dict.fromkeys(service_of(s.resource.split("/", 1)[1]) for s in suspects))


def diagnose(system: System, fault: Fault, settings: Settings, access: ClusterAccess) -> Diagnosed:
    incident = kube.get(INCIDENT, incident_manifest(system, fault)["metadata"]["name"], system.name)
    spec = IncidentSpec.model_validate(incident["spec"]).model_copy(
        update={"analysis": AnalysisOptions(llm=settings.llm is not None)}
    )
    detected = parse_time(detected_at(incident, spec))
    result = pipeline.diagnose_incident(incident, spec, settings, detected, detected + AFTER, access)
    d = result.diagnosis
    fell_back = settings.llm is not None and d.model == pipeline.ANALYZERS_ONLY
    services = [] if fell_back else ranked_services(d.suspects)
    tokens = result.prompt_tokens + result.completion_tokens
    return Diagnosed(services, result.duration_s, tokens, str(d.execution_status))


def baro_rankings(pods: list[PodSeries], faults: list[Fault], columns: tuple[str, ...] | None) -> list[list[str]]:
    """BARO's service ranking per fault over the operator's window, on `columns` (None = all of them)."""
    try:
        import pandas as pd
        from baro.root_cause_analysis import robust_scorer
    except ImportError as exc:
        raise SystemExit(f"the BARO baseline needs fse-baro ({exc}): pip install -e ./dev") from None
    by_day: dict[str, pd.DataFrame] = {}
    rankings = []
    for fault in faults:
        if fault.day not in by_day:
            frames = []
            for s in pods:
                if datetime.fromtimestamp(s.times[0], UTC).strftime("%Y-%m-%d") != fault.day:
                    continue
                wanted = {c: v for c, v in s.columns.items() if columns is None or c in columns}
                frames.append(pd.DataFrame(wanted, index=s.times).add_prefix(f"{service_of(s.pod)}_"))
            by_day[fault.day] = pd.concat(frames, axis=1).sort_index()
        day = by_day[fault.day]
        lo, hi = fault.at - BEFORE.total_seconds(), fault.at + AFTER.total_seconds()
        window = day[(day.index >= lo) & (day.index <= hi)].ffill().bfill()
        ranks = robust_scorer(window.rename_axis("time").reset_index(), inject_time=fault.at)["ranks"]
        rankings.append(list(dict.fromkeys(r.split("_", 1)[0] for r in ranks)))
    return rankings


def accuracy(truth: list[str], rankings: list[list[str]]) -> tuple[float, float, float]:
    """(Accuracy@1, Accuracy@3, Avg@5)."""
    n = len(truth)
    at = [sum(t in r[:k] for t, r in zip(truth, rankings, strict=True)) / n for k in range(1, K + 1)]
    return at[0], at[2], sum(at) / K


def rank_of(service: str, ranking: list[str]) -> str:
    return str(ranking.index(service) + 1) if service in ranking else "-"


@dataclass
class Run:
    system: System
    faults: list[Fault]
    methods: dict[str, list[list[str]]]  # method -> ranking per fault
    seconds: dict[str, list[float]]
    tokens: list[int]
    answered: int


def evaluate(system: System, root: Path, n: int | None, api: client.ApiClient, prom: str, llm) -> Run:
    found = faults(root)[:n] if n else faults(root)
    pods = pod_series(root)
    say(f"{system.name}: {len(found)} faults, {len(pods)} pod series; BARO ...")
    methods = {
        "BARO, all pod metrics": baro_rankings(pods, found, None),
        "BARO, the operator's 6 signals": baro_rankings(pods, found, OPERATOR_SIGNALS),
    }
    client.CoreV1Api(api).create_namespace({"metadata": {"name": system.name}})
    writer = Writer(api, system.name)
    for service in sorted({service_of(s.pod) for s in pods}):
        writer.deployment(service, [container("server", f"registry.example/{system.name}/{service}:recorded")])
    traces, logs = FileTraceSource(root), FileLogSource(root)
    source = PrometheusSource(prom)
    metrics_only = ClusterAccess(kube.api_client(), source, None)
    everything = ClusterAccess(kube.api_client(), source, None, logs=logs, traces=traces)
    runs: list[tuple[str, Settings, ClusterAccess]] = [
        ("operator, metrics only", Settings(llm=None, prometheus_url=prom), metrics_only),
        ("operator, all evidence", Settings(llm=None, prometheus_url=prom), everything),
    ]
    if llm:
        runs.append(("operator, all evidence, LLM on", Settings(llm=llm, prometheus_url=prom), everything))
    results: dict[str, list[Diagnosed]] = {name: [] for name, _, _ in runs}
    for i, fault in enumerate(found, 1):
        kube.create(INCIDENT, incident_manifest(system, fault))
        # Tempo and Loki hold their data before they are asked: reading the recorded files is not the diagnosis's
        # time. Nor are they in the operator's process: frozen, their objects stay out of its garbage collector's
        # passes (each full pass walked them all; TT p50 1.9 s -> 1.2 s).
        at = datetime.fromtimestamp(fault.at, UTC)
        traces.ingest(at - BEFORE, at + AFTER)
        logs.ingest(at - BEFORE, at + AFTER)
        gc.freeze()
        for name, settings, access in runs:
            results[name].append(diagnose(system, fault, settings, access))
        ranks = " ".join(f"{rank_of(fault.service, results[name][-1].services):>2}" for name, _, _ in runs)
        say(f"[{i}/{len(found)}] {fault.kind} on {fault.service}: operator's ranks {ranks}")
    on = results.get("operator, all evidence, LLM on", [])
    return Run(
        system,
        found,
        {name: [d.services for d in results[name]] for name, _, _ in runs} | methods,
        {name: [d.seconds for d in results[name]] for name, _, _ in runs},
        [d.tokens for d in on],
        sum(d.status == "COMPLETED" for d in on),
    )


def report(run: Run, out: Callable[[str], None] = print) -> None:
    truth = [f.service for f in run.faults]
    names = list(run.methods)
    out(f"\n## {run.system.name}: {len(run.faults)} faults, Incidents filed on {run.system.entry}\n")
    out(f"{'method':<34} {'fault type':<15} {'n':>3} {'Acc@1':>6} {'Acc@3':>6} {'Avg@5':>6}")
    kinds = sorted({f.kind for f in run.faults})
    for name in names:
        for kind in [*kinds, "all"]:
            idx = [i for i, f in enumerate(run.faults) if kind in ("all", f.kind)]
            a1, a3, avg5 = accuracy([truth[i] for i in idx], [run.methods[name][i] for i in idx])
            out(f"{name:<34} {kind:<15} {len(idx):>3} {a1:>6.3f} {a3:>6.3f} {avg5:>6.3f}")
    out("")
    for name, seconds in run.seconds.items():
        p50 = statistics.median(seconds)
        p95 = sorted(seconds)[max(0, round(0.95 * len(seconds)) - 1)]
        out(f"{name}: diagnosis p50 {p50:.2f}s, p95 {p95:.2f}s, mean {statistics.fmean(seconds):.2f}s")
    if run.tokens:
        mean = statistics.fmean(run.tokens)
        out(f"LLM on: {mean:,.0f} tokens per diagnosis, the model answered {run.answered}/{len(run.tokens)}")
    out("")
    header = f"{'inject time (UTC)':<20} {'fault':<15} {'service':<28} " + " ".join(
        f"{i + 1:>3}" for i in range(len(names))
    )
    out(header + "   (rank of the faulty service per method: " + "; ".join(
        f"{i + 1} {n}" for i, n in enumerate(names)) + ")")  # fmt: skip
    for i, f in enumerate(run.faults):
        ranks = " ".join(f"{rank_of(f.service, run.methods[n][i]):>3}" for n in names)
        out(f"{datetime.fromtimestamp(f.at, UTC):%Y-%m-%d %H:%M:%S}  {f.kind:<15} {f.service:<28} {ranks}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aiops_dev.eval.nezha", description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="../shared/eval (holding nezha-online-boutique/, nezha-train-ticket/)")
    parser.add_argument(
        "--system", action="append", choices=sorted(SYSTEMS), help="only this system (repeatable; default: all found)"
    )
    parser.add_argument("--faults", type=int, metavar="N", help="only the first N faults of each system")
    add_llm_arguments(parser)
    args = parser.parse_args(argv)
    llm = llm_config(parser, args)
    started = time.monotonic()
    systems = []
    for name in args.system or sorted(SYSTEMS):
        try:
            systems.append((SYSTEMS[name], system_root(args.data, SYSTEMS[name])))
        except SystemExit as exc:
            if args.system:
                raise
            say(f"{name}: skipped ({exc})")
    if not systems:
        raise SystemExit(f"{args.data}: no Nezha system found")
    runs = []
    with tempfile.TemporaryDirectory(prefix="aiops-nezha-") as tmp:
        prom = PrometheusServer(Path(tmp) / "prometheus")
        prom.workdir.mkdir()
        say("backfilling the per-pod series into Prometheus (promtool) ...")
        prom.backfill(openmetrics([(system.name, pod_series(root)) for system, root in systems]))
        prom.start()
        plane = ControlPlane(workdir=Path(tmp) / "control-plane", name="aiops-nezha")
        say("starting etcd + kube-apiserver ...")
        try:
            kubeconfig = plane.start()
        except ControlPlaneError as exc:
            say(f"cannot start the control plane: {exc}")
            prom.stop()
            return 1
        try:
            with local_cluster(kubeconfig) as api:
                install_crds(api)
                for system, root in systems:
                    runs.append(evaluate(system, root, args.faults, api, prom.url, llm))
        finally:
            plane.stop()
            prom.stop()
    for run in runs:
        report(run)
    print(f"\n{time.monotonic() - started:.1f}s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
