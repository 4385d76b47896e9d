"""Benchmark: the operator's memory with a large hub: N Incidents (each with its AnalysisRun) and P pods in
the watch-fed caches.

    python tests/bench/bench_memory.py [--incidents 10000] [--pods 50000]

Starts its own local control plane, writes P pods (with the status a kubelet reports) across 50
namespaces and N Incidents, runs `aiops run` with AIOPS_RUN_EXECUTION=workers and no worker (the runs are
accepted and wait: the operator holds every Incident and run, without running N analyses), waits until
it has accepted every run and its caches hold every pod, and prints its resident memory beside the same
operator's with no objects, and what the caches hold.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubernetes import client, config

from aiops.api import KINDS
from aiops.clusters import informer
from aiops_dev import crdgen
from aiops_dev.controlplane import ControlPlane

NAMESPACES = 50


def kubectl(kubeconfig: Path, *args: str, input: str | None = None) -> None:
    subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *args], input=input, check=True, capture_output=True, text=True
    )


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pod(i: int) -> dict:
    name = f"app-{i % 500}-7d9f8b6c5-{i:06d}"
    return {
        "metadata": {"name": name, "labels": {"app": f"app-{i % 500}", "pod-template-hash": "7d9f8b6c5"}},
        "spec": {"nodeName": f"node-{i % 200}", "containers": [
            {"name": "app", "image": f"registry.example.com/shop/app-{i % 500}:1.4.2",
             "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "256Mi"}}}]},
    }  # fmt: skip


def incident(i: int) -> dict:
    return {
        "apiVersion": "aiops.dev/v1alpha1",
        "kind": "Incident",
        "metadata": {"name": f"inc-{i:06d}"},
        "spec": {"title": f"app-{i % 500} unhealthy", "severity": "warning", "analysis": {"llm": False},
                 "target": {"kind": "Deployment", "name": f"app-{i % 500}"}},
    }  # fmt: skip


def accepted_runs(api: client.CustomObjectsApi) -> int:
    items = api.list_cluster_custom_object("aiops.dev", "v1alpha1", "analysisruns")["items"]
    return sum(1 for r in items if (r.get("status") or {}).get("phase") == "Pending")


def start_operator(kubeconfig: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONPATH": os.pathsep.join(sys.path),
           "AIOPS_RUN_EXECUTION": "workers", "AIOPS_CORRELATION_INTERVAL_S": "0"}  # fmt: skip
    return subprocess.Popen([sys.executable, "-m", "aiops.cli", "run"], env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--pods", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aiops-bench-") as tmp:
        plane = ControlPlane(workdir=Path(tmp) / "plane", name="aiops-bench-memory")
        kubeconfig = plane.start()
        try:
            kubectl(kubeconfig, "apply", "-f", "-", input="---\n".join(crdgen.render(k) for k in KINDS))
            kubectl(kubeconfig, "wait", "--for=condition=established", "--timeout=60s", "crd", "--all")
            config.load_kube_config(str(kubeconfig))
            api = client.ApiClient()
            api.configuration.connection_pool_maxsize = 32
            core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)

            empty = start_operator(kubeconfig, Path(tmp) / "empty.log")
            time.sleep(15)
            baseline = rss_mib(empty.pid)
            empty.terminate()
            empty.wait(30)

            for n in range(NAMESPACES):
                core.create_namespace({"metadata": {"name": f"ns-{n:02d}"}})
            t0 = time.monotonic()
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda i: core.create_namespaced_pod(f"ns-{i % NAMESPACES:02d}", pod(i)),
                              range(args.pods)))  # fmt: skip
                print(f"{args.pods} pods written in {time.monotonic() - t0:.0f}s", file=sys.stderr, flush=True)
                proc = start_operator(kubeconfig, Path(tmp) / "operator.log")
                t0 = time.monotonic()
                list(pool.map(lambda i: custom.create_namespaced_custom_object(
                    "aiops.dev", "v1alpha1", f"ns-{i % NAMESPACES:02d}", "incidents", incident(i)),
                    range(args.incidents)))  # fmt: skip
            print(f"{args.incidents} Incidents written in {time.monotonic() - t0:.0f}s", file=sys.stderr, flush=True)
            deadline = time.monotonic() + 1800
            while (done := accepted_runs(custom)) < args.incidents and time.monotonic() < deadline:
                print(f"  {done}/{args.incidents} runs accepted", file=sys.stderr, flush=True)
                time.sleep(20)
            time.sleep(10)
            loaded = rss_mib(proc.pid)
            proc.terminate()
            proc.wait(30)

            # What the caches hold, measured in a process of its own with the same objects.
            cache = informer.Cache(api).start()
            cache.wait_synced(300)
            stats = cache.stats()
            cache.stop()
        finally:
            plane.stop(remove=False)

    print(f"\noperator RSS, no objects:                                  {baseline:8.0f} MiB")
    print(f"operator RSS, {args.incidents} Incidents + runs, {args.pods} pods cached: {loaded:8.0f} MiB")
    print("watch-fed caches (objects, MiB of JSON):")
    for path, (count, size) in stats.items():
        if count:
            print(f"  {path:<40}{count:>8}{size / 2**20:>10.1f}")
    print(json.dumps({"baseline_mib": baseline, "loaded_mib": loaded}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
