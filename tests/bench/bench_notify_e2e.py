"""Benchmark: from an Incident's diagnosis to its notification's acceptance, through the running operator.

    python tests/bench/bench_notify_e2e.py [--n 50] [--concurrency 8]

Starts its own local control plane, PostgreSQL (the outbox) and a CloudEvents receiver on loopback, and
the operator with a webhook channel. N Incidents on a Deployment that is really failing are created;
a watch notes when each one's diagnosis appears in its status, the receiver when its notice arrives.
Prints the diagnosis -> accepted latency (p50/p95/max) and the Incident -> accepted latency beside it.
The diagnoses name no cause other clusters could share, so no notice is held (docs/notifications.md).
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

import yaml
from kubernetes import client, config, watch

from aiops.api import KINDS
from aiops_dev import crdgen
from aiops_dev.controlplane import ControlPlane
from aiops_dev.eval import cases
from aiops_dev.eval.workloads import Writer

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS / "integration")]

from test_notify_outbox import TimedReceiver  # noqa: E402

from support.servers import PostgresServer  # noqa: E402

NS = "bench"


def kubectl(kubeconfig: Path, *args: str, input: str | None = None) -> None:
    subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *args], input=input, check=True, capture_output=True, text=True
    )


def quantiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[94], max(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="aiops-bench-") as tmp, TimedReceiver() as receiver:
        plane = ControlPlane(workdir=Path(tmp) / "plane", name="aiops-bench-notify")
        kubeconfig = plane.start()
        postgres = PostgresServer().start()
        proc = None
        try:
            kubectl(kubeconfig, "apply", "-f", "-", input="---\n".join(crdgen.render(k) for k in KINDS))
            kubectl(kubeconfig, "wait", "--for=condition=established", "--timeout=60s", "crd", "--all")
            kubectl(kubeconfig, "create", "namespace", NS)
            config.load_kube_config(str(kubeconfig))
            cases.write("checkout-oomkilled", Writer(client.ApiClient(), NS))
            notify = Path(tmp) / "notify.yaml"
            channel = {"type": "webhook", "name": "pager", "url": {"env": "PAGER_URL"}, "ratePerMinute": 100_000}
            notify.write_text(yaml.safe_dump({"channels": [channel], "default": ["pager"]}))
            env = {
                **os.environ,
                "KUBECONFIG": str(kubeconfig),
                "PYTHONPATH": os.pathsep.join(sys.path),
                "AIOPS_NOTIFY_CONFIG": str(notify),
                "PAGER_URL": receiver.url,
                "AIOPS_POSTGRES_DSN": postgres.dsn,
            }
            log = open(Path(tmp) / "operator.log", "wb")
            proc = subprocess.Popen([sys.executable, "-m", "aiops.cli", "run"], env=env, stdout=log, stderr=log)

            api = client.CustomObjectsApi()
            created: dict[str, float] = {}
            diagnosed: dict[str, float] = {}
            uids: dict[str, str] = {}
            done = threading.Event()

            def watcher() -> None:
                w = watch.Watch()
                for ev in w.stream(api.list_namespaced_custom_object, "aiops.dev", "v1alpha1", NS, "incidents",
                                   timeout_seconds=600):  # fmt: skip
                    obj = ev["object"]
                    name = obj["metadata"]["name"]
                    if (obj.get("status") or {}).get("diagnosis") and name not in diagnosed:
                        diagnosed[name] = time.monotonic()
                        uids[obj["metadata"]["uid"]] = name
                        if len(diagnosed) == args.n:
                            w.stop()
                done.set()

            threading.Thread(target=watcher, daemon=True).start()
            time.sleep(5)  # the operator's start-up and the watch's first list, outside the measurement

            def create(i: int) -> None:
                name = f"notify-{i:04d}"
                body = {
                    "apiVersion": "aiops.dev/v1alpha1",
                    "kind": "Incident",
                    "metadata": {"name": name},
                    "spec": {
                        "title": "bench",
                        "severity": "high",
                        "analysis": {"llm": False},
                        "target": {"kind": "Deployment", "name": "checkout"},
                    },  # fmt: skip
                }
                created[name] = time.monotonic()
                api.create_namespaced_custom_object("aiops.dev", "v1alpha1", NS, "incidents", body)

            print(f"creating {args.n} Incidents with {args.concurrency} concurrent clients", file=sys.stderr)
            with ThreadPoolExecutor(args.concurrency) as pool:
                list(pool.map(create, range(args.n)))
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and len(receiver.accepted_at) < args.n:
                time.sleep(0.2)
            done.wait(timeout=10)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
            postgres.close()
            plane.stop(remove=False)

    from_diagnosis, from_creation = [], []
    for key, at in receiver.accepted_at.items():
        name = uids.get(key.split(":", 1)[0])
        if name in diagnosed:
            from_diagnosis.append(at - diagnosed[name])
            from_creation.append(at - created[name])
    print(f"\nN={args.n} Incidents, {len(from_diagnosis)} notified, duplicates {receiver.duplicates}")
    print(f"{'':<34}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for label, values in (
        ("diagnosis -> notice accepted", from_diagnosis),
        ("Incident -> notice accepted", from_creation),
    ):
        if len(values) >= 2:
            print(f"{label:<34}" + "".join(f"{v * 1000:>10.0f}" for v in quantiles(values)))
    return 0 if len(from_diagnosis) == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
