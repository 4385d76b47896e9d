"""Root-cause service ranking on Nezha's Online Boutique faults, beside BARO, in one run.

    python -m aiops_dev.eval.nezha DATA [--faults N] [--llm-base-url URL --llm-model NAME]

DATA is ../shared/eval (or its nezha-online-boutique folder): per day, per-pod metric CSVs at one-minute
steps and fault_list.json with each fault's inject time, pod and type. The run
1. converts the per-pod metrics to the series a Kubernetes Prometheus would hold (cAdvisor's
   container_cpu_usage_seconds_total, container_memory_working_set_bytes and network byte counters, and
   the recorded pod:request_duration_seconds:p99 and pod:request_errors:ratio of
   examples/prometheus/aiops-rules.yaml), backfills them with promtool into a real Prometheus
   (Debian's package) and starts it;
2. starts a local control plane, writes the ten Deployments into namespace online-boutique and, per
   fault, files an Incident on Deployment/frontend as Alertmanager would (startsAt = inject time, so
   detectedAt is the inject time; window 30 minutes before to 5 minutes after), and runs the root-cause
   pipeline on it: it reads the cluster and Prometheus; nothing here tells it the answer;
3. ranks services by the diagnosis' suspects (a pod counts for its Deployment) and, on the same window
   of the same data, runs BARO (fse-baro's robust_scorer) twice: on all 14 per-pod metrics of the data
   set, its usual input, and on the six signals the operator reads.
Accuracy@k is the share of faults whose injected service is among the k best-ranked; Avg@5 the mean of
Accuracy@1..5. The time column used is `Time` (TimeStamp is offset by 2e8 s in these files).
It reports figures and does not judge them: exit 0 once it ran.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kubernetes import client

from aiops import API_VERSION
from aiops.api import INCIDENT
from aiops.api.incident import AnalysisOptions, IncidentSpec
from aiops.controllers.incident import detected_at
from aiops.core import kube
from aiops.core.status import parse_time
from aiops.diagnosis import pipeline
from aiops.settings import Settings
from aiops_dev.controlplane import ControlPlane, ControlPlaneError
from aiops_dev.eval.scenario_suite import add_llm_arguments, install_crds, llm_config, local_cluster, say
from aiops_dev.eval.workloads import Writer, container
from aiops_dev.prometheus import PrometheusServer

NAMESPACE = "online-boutique"
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
POD_NAME = re.compile(r"^(?P<service>[a-z0-9-]+?)-[a-z0-9]{6,10}-[a-z0-9]{5}$")


@dataclass(frozen=True)
class Fault:
    day: str
    at: int  # unix seconds
    pod: str
    kind: str

    @property
    def service(self) -> str:
        return service_of(self.pod)


@dataclass
class PodSeries:
    pod: str
    times: list[int] = field(default_factory=list)  # unix seconds, whole minutes, ascending
    columns: dict[str, list[float]] = field(default_factory=dict)


def service_of(pod: str) -> str:
    """A Deployment's pod is `<deployment>-<replicaset hash>-<pod hash>`."""
    m = POD_NAME.match(pod)
    return m.group("service") if m else pod


def data_root(path: Path) -> Path:
    for candidate in (path, path / "nezha-online-boutique"):
        if any(candidate.glob("*/fault_list.json")):
            return candidate
    raise SystemExit(f"{path}: no */fault_list.json here or under nezha-online-boutique/")


def unix_of(time_column: str) -> int:
    """`2022-08-22 03:51:19.607158889 +0000 UTC m=+0.11`: the wall-clock part, UTC, floored to the minute
    so that pods sampled a few milliseconds apart share a row."""
    t = datetime.strptime(time_column[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return int(t.timestamp()) // 60 * 60


def load(root: Path) -> tuple[list[Fault], list[PodSeries]]:
    faults, pods = [], []
    for day in sorted(p.parent for p in root.glob("*/fault_list.json")):
        for entries in json.loads((day / "fault_list.json").read_text()).values():
            faults += [Fault(day.name, int(f["inject_timestamp"]), f["inject_pod"], f["inject_type"]) for f in entries]
        for path in sorted((day / "metric").glob("*_metric.csv")):
            series = PodSeries(path.name.removesuffix("_metric.csv"))
            with path.open(newline="") as f:
                for row in csv.DictReader(f):
                    t = unix_of(row["Time"])
                    if series.times and t <= series.times[-1]:
                        continue  # a repeated minute
                    series.times.append(t)
                    for name, value in row.items():
                        if name not in ("Time", "TimeStamp", "PodName"):
                            series.columns.setdefault(name, []).append(float(value))
            pods.append(series)
    return sorted(faults, key=lambda f: f.at), pods


# (column, metric family, type, labelled per container, value from the column's value)
SERIES = (
    ("CpuUsage(m)", "container_cpu_usage_seconds", "counter", True, lambda millicores: millicores / 1000),
    ("MemoryUsage(Mi)", "container_memory_working_set_bytes", "gauge", True, lambda mib: mib * 2**20),
    ("NetworkReceiveBytes", "container_network_receive_bytes", "counter", False, float),
    ("NetworkTransmitBytes", "container_network_transmit_bytes", "counter", False, float),
    ("PodServerLatencyP99(s)", "pod:request_duration_seconds:p99", "gauge", False, float),
    ("PodSuccessRate(%)", "pod:request_errors:ratio", "gauge", False, lambda percent: 1 - percent / 100),
)


def openmetrics(pods: list[PodSeries]) -> str:
    """The series a Kubernetes Prometheus would hold; per-second rates become counters (their integral)."""
    out = []
    for column, family, kind, per_container, convert in SERIES:
        out.append(f"# TYPE {family} {kind}")
        sample = f"{family}_total" if kind == "counter" else family
        for s in pods:
            labels = f'namespace="{NAMESPACE}",pod="{s.pod}"' + (',container="server"' if per_container else "")
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


def incident_manifest(fault: Fault) -> dict:
    """What Alertmanager would file for the front end's symptom; it names no cause."""
    at = datetime.fromtimestamp(fault.at, UTC)
    labels = {"alertname": "FrontendLatencyHigh", "namespace": NAMESPACE, "service": "frontend"}
    stamp = f"{at:%Y%m%d-%H%M%S}"
    return {
        "apiVersion": API_VERSION,
        "kind": INCIDENT.kind,
        "metadata": {"name": f"frontend-{stamp}", "namespace": NAMESPACE},
        "spec": {
            "title": "Online Boutique front end: requests slow or failing",
            "severity": "high",
            "source": "alertmanager",
            "target": {"kind": "Deployment", "name": "frontend"},
            "alert": {
                "name": "FrontendLatencyHigh",
                "labels": labels,
                "fingerprint": hashlib.sha256(f"{labels}{stamp}".encode()).hexdigest()[:16],
                "startsAt": f"{at:%Y-%m-%dT%H:%M:%SZ}",
            },
            "window": {"start": f"{at - BEFORE:%Y-%m-%dT%H:%M:%SZ}", "end": f"{at + AFTER:%Y-%m-%dT%H:%M:%SZ}"},
        },
    }


def ranked_services(suspects) -> list[str]:
    services = [service_of(s.resource.split("/", 1)[1]) for s in suspects]
    return list(dict.fromkeys(services))


def diagnose(fault: Fault, settings: Settings) -> tuple[list[str], float, int, str]:
    """(services best first, seconds, tokens, execution status) of the operator's diagnosis of one fault."""
    incident = kube.get(INCIDENT, incident_manifest(fault)["metadata"]["name"], NAMESPACE)
    spec = IncidentSpec.model_validate(incident["spec"]).model_copy(
        update={"analysis": AnalysisOptions(llm=settings.llm is not None)}
    )
    detected = parse_time(detected_at(incident, spec))
    result = pipeline.diagnose_incident(incident, spec, settings, detected, detected + AFTER)
    d = result.diagnosis
    fell_back = settings.llm is not None and d.model == pipeline.ANALYZERS_ONLY
    services = [] if fell_back else ranked_services(d.suspects)
    return services, result.duration_s, result.prompt_tokens + result.completion_tokens, str(d.execution_status)


def baro_rankings(pods: list[PodSeries], faults: list[Fault], columns: tuple[str, ...] | None) -> list[list[str]]:
    """BARO's service ranking per fault over the operator's window, on `columns` (None = all 14)."""
    try:
        import pandas as pd
        from baro.root_cause_analysis import robust_scorer
    except ImportError as exc:
        raise SystemExit(f"the BARO baseline needs fse-baro ({exc}): pip install 'aiops-operator[test]'") from None
    by_day: dict[str, pd.DataFrame] = {}
    rankings = []
    for fault in faults:
        if fault.day not in by_day:
            frames = []
            for s in pods:
                if datetime.fromtimestamp(s.times[0], UTC).strftime("%Y-%m-%d") != fault.day:
                    continue
                wanted = {c: v for c, v in s.columns.items() if columns is None or c in columns}
                frame = pd.DataFrame(wanted, index=s.times)
                frames.append(frame.add_prefix(f"{service_of(s.pod)}_"))
            by_day[fault.day] = pd.concat(frames, axis=1).sort_index()
        day = by_day[fault.day]
        lo, hi = fault.at - BEFORE.total_seconds(), fault.at + AFTER.total_seconds()
        window = day[(day.index >= lo) & (day.index <= hi)].ffill().bfill()
        window = window.rename_axis("time").reset_index()
        ranks = robust_scorer(window, inject_time=fault.at)["ranks"]
        rankings.append(list(dict.fromkeys(r.split("_", 1)[0] for r in ranks)))
    return rankings


def accuracy(truth: list[str], rankings: list[list[str]]) -> tuple[float, float, float]:
    """(Accuracy@1, Accuracy@3, Avg@5)."""
    n = len(truth)
    at = [sum(t in r[:k] for t, r in zip(truth, rankings, strict=True)) / n for k in range(1, K + 1)]
    return at[0], at[2], sum(at) / K


def rank_of(service: str, ranking: list[str]) -> str:
    return str(ranking.index(service) + 1) if service in ranking else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aiops_dev.eval.nezha", description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="../shared/eval or its nezha-online-boutique folder")
    parser.add_argument("--faults", type=int, metavar="N", help="only the first N faults (in time order)")
    add_llm_arguments(parser)
    args = parser.parse_args(argv)
    llm = llm_config(parser, args)
    started = time.monotonic()
    faults, pods = load(data_root(args.data))
    faults = faults[: args.faults] if args.faults else faults
    say(f"{len(faults)} faults, {len(pods)} pod series; computing BARO's rankings ...")
    baro_all = baro_rankings(pods, faults, None)
    baro_six = baro_rankings(pods, faults, OPERATOR_SIGNALS)

    with tempfile.TemporaryDirectory(prefix="aiops-nezha-") as tmp:
        prom = PrometheusServer(Path(tmp) / "prometheus")
        prom.workdir.mkdir()
        say("backfilling the per-pod series into Prometheus (promtool) ...")
        prom.backfill(openmetrics(pods))
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
                client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})
                writer = Writer(api, NAMESPACE)
                for service in sorted({service_of(s.pod) for s in pods}):
                    writer.deployment(
                        service, [container("server", f"gcr.io/google-samples/microservices-demo/{service}:v0.3.9")]
                    )
                off_settings = Settings(llm=None, prometheus_url=prom.url)
                on_settings = Settings(llm=llm, prometheus_url=prom.url) if llm else None
                off, on = [], []
                for i, fault in enumerate(faults, 1):
                    kube.create(INCIDENT, incident_manifest(fault))
                    off.append(diagnose(fault, off_settings))
                    if on_settings:
                        on.append(diagnose(fault, on_settings))
                    rank = rank_of(fault.service, off[-1][0])
                    say(f"[{i}/{len(faults)}] {fault.kind} on {fault.service}: operator's rank {rank}")
        finally:
            plane.stop()
            prom.stop()

    truth = [f.service for f in faults]
    header = f"{'inject time (UTC)':<20} {'fault':<15} {'service':<22} {'ops':>3} {'BARO':>4} {'B-6':>3}"
    header += f" {'LLM':>3}" if on else ""
    header += "  operator's top 3"
    print(header)
    print("-" * len(header))
    for i, f in enumerate(faults):
        line = f"{datetime.fromtimestamp(f.at, UTC):%Y-%m-%d %H:%M:%S}  {f.kind:<15} {f.service:<22}"
        line += f" {rank_of(f.service, off[i][0]):>3} {rank_of(f.service, baro_all[i]):>4}"
        line += f" {rank_of(f.service, baro_six[i]):>3}"
        line += f" {rank_of(f.service, on[i][0]):>3}" if on else ""
        print(f"{line}  {', '.join(off[i][0][:3]) or '(no suspect)'}")
    print()
    rows = [
        ("aiops-operator, LLM off", [o[0] for o in off]),
        *([("aiops-operator, LLM on", [o[0] for o in on])] if on else []),
        ("BARO, all 14 pod metrics", baro_all),
        ("BARO, the operator's 6 signals", baro_six),
    ]
    print(f"{'method':<32} {'Acc@1':>6} {'Acc@3':>6} {'Avg@5':>6}")
    for name, rankings in rows:
        a1, a3, avg5 = accuracy(truth, rankings)
        print(f"{name:<32} {a1:>6.3f} {a3:>6.3f} {avg5:>6.3f}")
    print()
    kinds = Counter(f.kind for f in faults)
    for kind in sorted(kinds):
        idx = [i for i, f in enumerate(faults) if f.kind == kind]
        hits = sum(truth[i] in off[i][0][:1] for i in idx)
        print(f"  {kind:<15} operator top-1 {hits}/{len(idx)}")
    mean_s = sum(o[1] for o in off) / len(off)
    print(f"\n{len(faults)} faults; operator diagnosis mean {mean_s:.2f}s (LLM off)", end="")
    if on:
        print(f", {sum(o[2] for o in on) / len(on):,.0f} tokens per diagnosis with the LLM", end="")
        print(f", model answered {sum(o[3] == 'COMPLETED' for o in on)}/{len(on)}", end="")
    print(f"; {time.monotonic() - started:.1f}s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
