"""Benchmark: N Incidents created concurrently, time until each is reconciled (phase Triaging
with its AnalysisRun) and diagnosed with the LLM off, against a trivial kopf handler measured
in the same run.

    python tests/bench/bench_reconcile.py [--n 100] [--concurrency 16] [--profile FILE]

Starts its own local control plane; prints p50/p95/max latency and throughput for both,
and our figures as ratios of the baseline's. With --profile the operator runs under yappi (CPU time of every
thread): its top functions are printed and the whole profile saved to FILE (pstats); the latencies measured
then are the profiler's, not the operator's.
"""

from __future__ import annotations

import argparse
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from kubernetes import client, config, watch

import aiops.cli
from aiops.api import KINDS
from aiops.core import kube
from aiops_dev import crdgen
from aiops_dev.controlplane import ControlPlane
from aiops_dev.eval import cases
from aiops_dev.eval.workloads import Writer

HERE = Path(__file__).resolve().parent
PING_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "pings.bench.aiops.dev"},
    "spec": {
        "group": "bench.aiops.dev",
        "scope": "Namespaced",
        "names": {"kind": "Ping", "plural": "pings", "singular": "ping", "listKind": "PingList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }
        ],
    },
}


def kubectl(kubeconfig: Path, *args: str, input: str | None = None) -> None:
    subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *args], input=input, check=True, capture_output=True, text=True
    )


def prepare(kubeconfig: Path, namespaces: tuple[str, ...] = ("bench",)) -> None:
    """A fresh control plane made ready for a benchmark: our CRDs and the baseline's, its namespaces, and
    this process's client pointed at it."""
    kubectl(kubeconfig, "apply", "-f", "-", input="---\n".join(crdgen.render(k) for k in KINDS))
    kubectl(kubeconfig, "apply", "-f", "-", input=yaml.safe_dump(PING_CRD))
    kubectl(kubeconfig, "wait", "--for=condition=established", "--timeout=60s", "crd", "--all")
    for namespace in namespaces:
        kubectl(kubeconfig, "create", "namespace", namespace)
    config.load_kube_config(str(kubeconfig))


def request_counts(api: client.ApiClient) -> Counter:
    """The API server's own count of requests served, by (verb, resource), from its /metrics."""
    text = kube.request(api, "GET", "/metrics", timeout=30).decode()
    counts: Counter = Counter()
    for line in text.splitlines():
        if line.startswith("apiserver_request_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))
            resource = labels.get("resource", "") + (f"/{labels['subresource']}" if labels.get("subresource") else "")
            counts[(labels.get("verb", ""), resource)] += float(line.rsplit(" ", 1)[1])
    return counts


def measure(
    label: str,
    group: str,
    version: str,
    plural: str,
    kind: str,
    spec: dict,
    done_phases: tuple[str, ...],
    operator_argv: list[str],
    kubeconfig: Path,
    namespace: str,
    n: int,
    concurrency: int,
    log_dir: Path,
) -> dict:
    api = client.CustomObjectsApi()
    log = open(log_dir / f"{label}.log", "wb")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(operator_argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    created: dict[str, float] = {}
    done: dict[str, dict[str, float]] = {p: {} for p in done_phases}  # phase -> name -> first seen
    finished = threading.Event()

    def watcher() -> None:
        w = watch.Watch()
        for ev in w.stream(api.list_namespaced_custom_object, group, version, namespace, plural, timeout_seconds=600):
            obj = ev["object"]
            name = obj["metadata"]["name"]
            phase = (obj.get("status") or {}).get("phase")
            if phase in done and name not in done[phase]:
                done[phase][name] = time.perf_counter()
                if len(done[done_phases[-1]]) == n:
                    w.stop()
        finished.set()

    t = threading.Thread(target=watcher, daemon=True)
    t.start()
    time.sleep(3)  # operator start-up and the watch's first list, outside the measurement

    def create(i: int) -> None:
        name = f"{label}-{i:04d}"
        body = {"apiVersion": f"{group}/{version}", "kind": kind, "metadata": {"name": name}, "spec": spec}
        start = time.perf_counter()
        api.create_namespaced_custom_object(group, version, namespace, plural, body)
        created[name] = start

    print(f"[{label}] creating {n} objects with {concurrency} concurrent clients", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(create, range(n)))
    if not finished.wait(timeout=300):
        print(f"[{label}] only {len(done)}/{n} reconciled after 300s", file=sys.stderr)
    proc.terminate()
    proc.wait(timeout=30)
    log.close()
    results = {}
    for phase, seen in done.items():
        latencies = sorted(seen[k] - created[k] for k in seen if k in created)
        q = statistics.quantiles(latencies, n=100, method="inclusive")
        results[phase] = {
            "n": len(latencies),
            "p50": q[49],
            "p95": q[94],
            "max": latencies[-1],
            "throughput": len(latencies) / (max(seen.values()) - t0),
        }
        print(f"[{label}] {len(latencies)}/{n} reached {phase}", file=sys.stderr, flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--profile", type=Path, help="run the operator under yappi and save its CPU profile here")
    args = parser.parse_args()
    operator = [sys.executable, "-m", "aiops.cli", "run"]
    if args.profile:
        main_py = str(Path(aiops.cli.__file__).with_name("__main__.py"))
        operator = [sys.executable, "-m", "yappi", "-c", "cpu", "-f", "pstat", "-o", str(args.profile), main_py, "run"]

    with tempfile.TemporaryDirectory(prefix="aiops-bench-") as tmp:
        plane = ControlPlane(workdir=Path(tmp) / "plane", name="aiops-bench")
        kubeconfig = plane.start()
        try:
            prepare(kubeconfig)
            common = dict(
                kubeconfig=kubeconfig, namespace="bench", n=args.n, concurrency=args.concurrency, log_dir=Path(tmp)
            )
            base = measure(
                "baseline",
                "bench.aiops.dev",
                "v1",
                "pings",
                "Ping",
                {"x": 1},
                ("Done",),
                [sys.executable, str(HERE / "trivial_operator.py")],
                **common,
            )
            # The Incidents point at a Deployment that is really failing, so each one is diagnosed.
            cases.write("checkout-oomkilled", Writer(client.ApiClient(), "bench"))
            before = request_counts(client.ApiClient())
            ours = measure(
                "incident",
                "aiops.dev",
                "v1alpha1",
                "incidents",
                "Incident",
                {
                    "title": "bench",
                    "severity": "warning",
                    "target": {"kind": "Deployment", "name": "checkout"},
                    "analysis": {"llm": False},
                },
                ("Triaging", "Diagnosed"),
                operator,
                **common,
            )
            spent = request_counts(client.ApiClient()) - before
        finally:
            plane.stop(remove=False)

    baseline = base["Done"]
    print(f"\nN={args.n} objects, {args.concurrency} concurrent creators, local kube-apiserver {plane.name}")
    print(f"{'':<34}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}{'obj/s':>10}")
    rows = (
        ("trivial kopf handler", baseline),
        ("Incident -> Triaging", ours["Triaging"]),
        ("Incident -> Diagnosed (LLM off)", ours["Diagnosed"]),
    )
    for label, r in rows:
        ms = "".join(f"{r[q] * 1000:>10.0f}" for q in ("p50", "p95", "max"))
        print(f"{label:<34}{ms}{r['throughput']:>10.1f}")
    for label, r in rows[1:]:
        ratios = "".join(f"{r[q] / baseline[q]:>10.2f}" for q in ("p50", "p95", "max"))
        print(f"{'ratio ' + label.split(' -> ')[1]:<34}{ratios}{r['throughput'] / baseline['throughput']:>10.2f}")
    watches = sum(n for (verb, _), n in spent.items() if verb == "WATCH")
    print(f"\nAPI requests per Incident, by verb and resource (the operator's run; {watches:.0f} watches opened):")
    for (verb, resource), n in sorted(spent.items(), key=lambda kv: -kv[1]):
        if verb != "WATCH" and n / args.n >= 0.05:
            print(f"  {verb:<7}{resource:<40}{n / args.n:>6.2f}")
    print(f"  {'total':<47}{sum(n for (v, _), n in spent.items() if v != 'WATCH') / args.n:>6.2f}")
    if args.profile:
        print_profile(args.profile)
    return 0


def print_profile(path: Path, top: int = 20) -> None:
    """The operator's CPU, whole run (start-up included): the functions that spent most themselves, and ours and
    kopf's by what they spent with their callees."""
    stats = pstats.Stats(str(path))
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    print(f"\nOperator CPU profile ({total:.1f} s of CPU in all threads; saved in {path}):")
    rows = [(row[2], row[3], f"{Path(file).name}:{line}({name})") for (file, line, name), row in
            stats.stats.items()]  # type: ignore[attr-defined]  # fmt: skip
    print(f"  {'own s':>7} {'with callees s':>15}  function")
    for own, cumulative, where in sorted(rows, reverse=True)[:top]:
        print(f"  {own:>7.2f} {cumulative:>15.2f}  {where}")
    ours = [(cum, own, f"{Path(file).parent.name}/{Path(file).name}:{line}({name})")
            for (file, line, name), (_, _, own, cum, _) in stats.stats.items()  # type: ignore[attr-defined]
            if "/aiops/" in file or "/kopf/" in file]  # fmt: skip
    print(f"\n  {'with callees s':>15} {'own s':>7}  aiops and kopf functions")
    for cumulative, own, where in sorted(ours, reverse=True)[:top]:
        print(f"  {cumulative:>15.2f} {own:>7.2f}  {where}")


if __name__ == "__main__":
    sys.exit(main())
