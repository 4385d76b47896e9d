"""Benchmark: analysis workers scaling out. The controller in workers mode (AIOPS_RUN_EXECUTION=workers) and 1,
2 and 4 `aiops worker` processes, each with AIOPS_ANALYSIS_WORKERS=1 (a worker is one run at a time), against
an OpenAI-compatible server that answers every request after a fixed delay: in production inference is remote
and I/O-bound, so a worker's time is mostly waiting. N Incidents (the checkout-oomkilled scenario, one model
request each) per round; the trivial kopf handler of bench_reconcile.py measured in the same run as the baseline.

    python tests/bench/bench_workers.py [--n 40] [--delay 2] [--workers 1,2,4]

Starts its own local control plane; prints p50/p95/max from creation to Diagnosed and diagnosed/s per
worker count (from the first creation, and between the first and the last diagnosis), and the throughput of
the most workers over one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubernetes import client, watch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

from bench_reconcile import kubectl, measure, prepare  # noqa: E402

from aiops_dev.controlplane import ControlPlane  # noqa: E402
from aiops_dev.eval import cases  # noqa: E402
from aiops_dev.eval.workloads import Writer  # noqa: E402
from support.diagnoses import reply_for  # noqa: E402
from support.scripted_openai import ScriptedOpenAI, answer, delayed  # noqa: E402

WORKER_START_S = 6.0


def process(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """An `aiops` command, returned once kopf has logged in."""
    out = open(log, "ab")
    proc = subprocess.Popen([sys.executable, "-m", "aiops.cli", *argv], env=env, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    deadline = time.monotonic() + 60
    while "Initial authentication has finished" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{argv[0]} did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    return proc


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=60)


def round_(workers: int, n: int, delay: float, base_env: dict[str, str], llm: ScriptedOpenAI, log_dir: Path) -> dict:
    """N Incidents in a namespace of their own, `workers` worker processes: latencies to Diagnosed, throughput."""
    ns = f"bench-{workers}w"
    kubectl(Path(base_env["KUBECONFIG"]), "create", "namespace", ns)
    writer = Writer(client.ApiClient(), ns)
    cases.write("checkout-oomkilled", writer)
    llm.push(*[delayed(delay, answer(reply_for(writer)))] * (n + 4))
    env = {**base_env, "AIOPS_ANALYSIS_WORKERS": "1", "AIOPS_LLM_BASE_URL": llm.url, "AIOPS_LLM_MODEL": llm.model}
    procs = [process(["worker", "-n", ns], env, log_dir / f"{ns}-{i}.log") for i in range(workers)]
    api = client.CustomObjectsApi()
    created: dict[str, float] = {}
    done: dict[str, float] = {}
    finished = threading.Event()

    def follow() -> None:
        w = watch.Watch()
        for ev in w.stream(api.list_namespaced_custom_object, "aiops.dev", "v1alpha1", ns, "incidents",
                           timeout_seconds=900):  # fmt: skip
            obj = ev["object"]
            if (obj.get("status") or {}).get("phase") in ("Diagnosed", "Failed"):
                done.setdefault(obj["metadata"]["name"], time.perf_counter())
                if len(done) == n:
                    w.stop()
        finished.set()

    threading.Thread(target=follow, daemon=True).start()
    # Outside the measurement: the watch's first list, and the workers' start (kopf's watch, the caches), which
    # in production is long done when a burst arrives.
    time.sleep(WORKER_START_S)
    incident = cases.load("checkout-oomkilled").incident_manifest(name="x")

    def create(i: int) -> None:
        body = {**incident, "metadata": {"name": f"inc-{i:03d}"}}
        created[body["metadata"]["name"]] = time.perf_counter()
        api.create_namespaced_custom_object("aiops.dev", "v1alpha1", ns, "incidents", body)

    print(f"[{workers} worker(s)] {n} Incidents", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(n)))
    if not finished.wait(timeout=600):
        print(f"[{workers} worker(s)] only {len(done)}/{n} diagnosed after 600s", file=sys.stderr)
    stop(procs)
    failed = [
        i["metadata"]["name"]
        for i in api.list_namespaced_custom_object("aiops.dev", "v1alpha1", ns, "incidents")["items"]
        if (i.get("status") or {}).get("phase") != "Diagnosed"
    ]
    latencies = sorted(done[k] - created[k] for k in done)
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "n": len(latencies),
        "not_diagnosed": len(failed),
        "p50": q[49],
        "p95": q[94],
        "max": latencies[-1],
        "throughput": len(latencies) / (max(done.values()) - t0),
        # Between the first diagnosis and the last: the workers' rate, without the controller's start on the burst.
        "steady": (len(done) - 1) / (max(done.values()) - min(done.values())),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds the model takes to answer")
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    counts = [int(c) for c in args.workers.split(",")]

    with tempfile.TemporaryDirectory(prefix="aiops-bench-") as tmp:
        log_dir = Path(tmp)
        plane = ControlPlane(workdir=log_dir / "plane", name="aiops-bench")
        kubeconfig = plane.start()
        try:
            prepare(kubeconfig)
            base = measure("baseline", "bench.aiops.dev", "v1", "pings", "Ping", {"x": 1}, ("Done",),
                           [sys.executable, str(HERE / "trivial_operator.py")], kubeconfig=kubeconfig,
                           namespace="bench", n=args.n, concurrency=8, log_dir=log_dir)["Done"]  # fmt: skip
            env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONPATH": os.pathsep.join(sys.path),
                   "AIOPS_RUN_EXECUTION": "workers"}  # fmt: skip
            controller = process(["run"], env, log_dir / "controller.log")
            results = {}
            with ScriptedOpenAI() as llm:
                try:
                    for count in counts:
                        results[count] = round_(count, args.n, args.delay, env, llm, log_dir)
                finally:
                    stop([controller])
        finally:
            plane.stop(remove=False)

    print(f"\nN={args.n} Incidents per round, model answers after {args.delay:g} s, AIOPS_ANALYSIS_WORKERS=1 per "
          f"worker, controller in workers mode, local kube-apiserver, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'':<24}{'p50 s':>8}{'p95 s':>8}{'max s':>8}{'diagnosed/s':>13}{'steady/s':>10}{'not diagnosed':>15}")
    print(f"{'trivial kopf handler':<24}{base['p50']:>8.2f}{base['p95']:>8.2f}{base['max']:>8.2f}"
          f"{base['throughput']:>13.2f}")  # fmt: skip
    for count, r in results.items():
        label = f"{count} worker{'s' if count > 1 else ''}"
        print(f"{label:<24}{r['p50']:>8.2f}{r['p95']:>8.2f}{r['max']:>8.2f}{r['throughput']:>13.2f}"
              f"{r['steady']:>10.2f}{r['not_diagnosed']:>15}")  # fmt: skip
    lo, hi = min(results), max(results)
    for what in ("throughput", "steady"):
        ratio = results[hi][what] / results[lo][what]
        print(f"{what}: {hi} workers / {lo}: {ratio:.2f}x (ideal {hi / lo:g}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
