"""Load test: a burst of Alertmanager notifications through the webhook receiver, with duplicates and
resolves mixed in, against a local control plane.

    python tests/bench/bench_webhook.py [--rate 1000] [--seconds 30] [--alerts-per-notification 5]
                                        [--operator] [--in-flight 256]

`--rate` is alerts per second offered; alerts travel as Alertmanager sends them, grouped: each
notification carries one group's alerts (`--alerts-per-notification`). The mix per notification:
a new group firing (40%), an exact re-send of a group's last notification (35%, what Alertmanager's
retries and repeat_interval produce), a group gaining an alert (10%), a group resolving (15%).
Sending is open-loop (each notification has a due time; latency counts from it, so a slow receiver
cannot hide its backlog), with at most `--in-flight` requests outstanding.

The receiver runs in its own process: by default the receiver alone (aiops.ingest.alertmanager),
with `--operator` the whole `aiops run` (which also triages every Incident it creates). The rate
limit is off for the run (AIOPS_WEBHOOK_RATE=0) since the point is throughput.

Printed: offered and achieved rates, answers by outcome, Incidents created, lost (a group with an
accepted firing notification but no Incident: must be 0), duplicated (a group with more than one
Incident: must be 0), resolved groups not Resolved, and p50/p99/max latency.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from aiops.api import KINDS
from aiops.ingest.receiver import PATH
from aiops.ingest.wire import GROUP_LABEL, group_hash
from aiops_dev import crdgen
from aiops_dev.controlplane import ControlPlane, free_port

NAMESPACES = [f"bench-{i}" for i in range(4)]
TOKEN = "bench-" + uuid.uuid4().hex


def kubectl(kubeconfig: Path, *args: str, input: str | None = None) -> None:
    subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *args], input=input, check=True, capture_output=True, text=True
    )


@dataclass
class Group:
    key: str
    namespace: str
    alerts: dict[str, dict] = field(default_factory=dict)  # fingerprint -> alert
    last: dict | None = None  # the last notification sent
    busy: bool = False  # a request for it is in flight: keep its notifications in order
    accepted_firing: bool = False
    resolved: bool = False  # the last accepted notification resolved it


class Load:
    def __init__(self, url: str, rate: int, seconds: int, per: int, in_flight: int, seed: int = 1):
        self.url, self.rate, self.seconds, self.per = url, rate, seconds, per
        self.in_flight = asyncio.Semaphore(in_flight)
        self.rng = random.Random(seed)
        self.groups: list[Group] = []
        self.latencies: list[float] = []
        self.answers: collections.Counter[str] = collections.Counter()
        self.alerts_offered = self.alerts_accepted = self.sent = 0
        self.n = 0

    def _alert(self, group: Group, status: str = "firing") -> dict:
        self.n += 1
        fp = f"{self.n:016x}"
        return {
            "status": status,
            "labels": {
                "alertname": f"BenchAlert{self.n % 7}",
                "namespace": group.namespace,
                "deployment": f"app-{self.n % 50}",
                "pod": f"app-{self.n}",
                "severity": self.rng.choice(["critical", "warning", "info"]),
            },
            "annotations": {"summary": f"bench alert {self.n}"},
            "startsAt": "2026-01-01T00:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.bench/graph",
            "fingerprint": fp,
        }

    def _notification(self, group: Group) -> dict:
        alerts = list(group.alerts.values())
        first = alerts[0]["labels"]
        return {
            "version": "4",
            "groupKey": group.key,
            "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
            "receiver": "aiops",
            "groupLabels": {"alertname": first["alertname"], "namespace": group.namespace},
            "commonLabels": {"alertname": first["alertname"], "namespace": group.namespace},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager.bench",
            "truncatedAlerts": 0,
            "alerts": alerts,
        }

    def next_notification(self) -> tuple[Group, dict, str]:
        roll = self.rng.random()
        idle = [g for g in self.groups[-500:] if not g.busy and g.last is not None]
        if roll >= 0.40 and idle:
            group = self.rng.choice(idle)
            if roll < 0.75:
                return group, group.last, "duplicate"
            if roll < 0.85 and not group.resolved:
                fp = next(iter(group.alerts))
                del group.alerts[fp]
                alert = self._alert(group)
                group.alerts[alert["fingerprint"]] = alert
                return group, self._notification(group), "grow"
            if not group.resolved:
                for a in group.alerts.values():
                    a["status"] = "resolved"
                    a["endsAt"] = "2026-01-01T01:00:00Z"
                return group, self._notification(group), "resolve"
            return group, group.last, "duplicate"
        group = Group(f"{{}}/{{bench}}:{{group={uuid.uuid4().hex}}}", self.rng.choice(NAMESPACES))
        for _ in range(self.per):
            alert = self._alert(group)
            group.alerts[alert["fingerprint"]] = alert
        self.groups.append(group)
        return group, self._notification(group), "new"

    async def send(self, session: aiohttp.ClientSession, group: Group, body: dict, data: bytes, due: float) -> None:
        try:
            async with self.in_flight:
                self.sent += 1
                try:
                    async with session.post(
                        self.url,
                        data=data,
                        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
                    ) as resp:
                        answer = await resp.json(content_type=None)
                        status = resp.status
                except (TimeoutError, aiohttp.ClientError) as exc:
                    self.answers[f"client error {type(exc).__name__}"] += 1
                    return
            self.latencies.append(time.monotonic() - due)
            if status != 200:
                self.answers[f"HTTP {status}"] += 1
                return
            self.answers[answer["status"]] += 1
            self.alerts_accepted += len(body["alerts"])
            group.last = body
            if body["status"] == "firing":
                group.accepted_firing = True
            group.resolved = body["status"] == "resolved"
        finally:
            group.busy = False

    async def run(self) -> float:
        timeout = aiohttp.ClientTimeout(total=120)
        connector = aiohttp.TCPConnector(limit=0)
        tasks: set[asyncio.Task] = set()
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            start = time.monotonic()
            per_s = self.rate / self.per  # notifications per second
            i = 0
            while True:
                due = start + i / per_s
                if due - start >= self.seconds:
                    break
                now = time.monotonic()
                if due > now:
                    await asyncio.sleep(due - now)
                group, body, _ = self.next_notification()
                data = json.dumps(body).encode()  # now: the group's alerts change with later notifications
                group.busy = True
                self.alerts_offered += len(body["alerts"])
                task = asyncio.create_task(self.send(session, group, json.loads(data), data, due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
            offered_for = time.monotonic() - start
            await asyncio.gather(*tasks)
            self.drained_for = time.monotonic() - start
        return offered_for


def verify(kubeconfig: Path, load: Load) -> dict:
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(kubeconfig))
    custom = client.CustomObjectsApi(api)
    by_group: collections.defaultdict[str, list[dict]] = collections.defaultdict(list)
    cont = None
    while True:
        page = custom.list_cluster_custom_object(
            "aiops.dev", "v1alpha1", "incidents", label_selector=GROUP_LABEL, limit=500, _continue=cont
        )
        for item in page["items"]:
            by_group[item["metadata"]["labels"][GROUP_LABEL]].append(item)
        cont = page["metadata"].get("continue")
        if not cont:
            break
    accepted = [g for g in load.groups if g.accepted_firing]
    lost = [g for g in accepted if not by_group.get(group_hash(g.key))]
    duplicated = [h for h, items in by_group.items() if len(items) > 1]
    known = {group_hash(g.key) for g in load.groups}
    stray = [h for h in by_group if h not in known]
    not_resolved = [
        g
        for g in accepted
        if g.resolved
        and by_group.get(group_hash(g.key))
        and (by_group[group_hash(g.key)][0].get("status") or {}).get("phase") != "Resolved"
    ]
    api.close()
    return {
        "incidents": sum(len(v) for v in by_group.values()),
        "groups_accepted": len(accepted),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "stray": len(stray),
        "resolved_groups": sum(1 for g in accepted if g.resolved),
        "not_resolved": len(not_resolved),
    }


def serve_receiver(port: int) -> None:
    """The receiver alone, as the operator would run it (its own thread and loop, 8 API workers)."""
    import logging

    from aiops.ingest.receiver import Receiver
    from aiops.settings import from_env

    logging.basicConfig(level=logging.WARNING)
    conf = from_env().webhook
    Receiver(conf).start()
    print("ready", flush=True)
    while True:
        time.sleep(3600)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=1000, help="alerts per second offered")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--alerts-per-notification", type=int, default=5)
    parser.add_argument("--in-flight", type=int, default=256, help="most requests outstanding at once")
    parser.add_argument("--operator", action="store_true", help="run the whole `aiops run`, not the receiver alone")
    parser.add_argument("--serve-receiver", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_receiver:
        serve_receiver(args.serve_receiver)
        return 0

    with tempfile.TemporaryDirectory(prefix="aiops-bench-webhook-") as tmp:
        plane = ControlPlane(workdir=Path(tmp) / "plane", name="aiops-bench-webhook")
        kubeconfig = plane.start()
        proc = None
        try:
            kubectl(kubeconfig, "apply", "-f", "-", input="---\n".join(crdgen.render(k) for k in KINDS))
            kubectl(kubeconfig, "wait", "--for=condition=established", "--timeout=60s", "crd", "--all")
            for ns in NAMESPACES:
                kubectl(kubeconfig, "create", "namespace", ns)
            port = free_port()
            env = {
                **os.environ,
                "KUBECONFIG": str(kubeconfig),
                "PYTHONPATH": os.pathsep.join(sys.path),
                "AIOPS_WEBHOOK_ADDR": f"127.0.0.1:{port}",
                "AIOPS_WEBHOOK_TOKEN": TOKEN,
                "AIOPS_WEBHOOK_NAMESPACE": NAMESPACES[0],
                "AIOPS_WEBHOOK_RATE": "0",
            }
            argv = (
                [sys.executable, "-m", "aiops.cli", "run"]
                if args.operator
                else [sys.executable, __file__, "--serve-receiver", str(port)]
            )
            log = open(Path(tmp) / "receiver.log", "wb")
            proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
            log.close()
            deadline = time.monotonic() + 60
            while not _healthy(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"receiver did not start:\n{(Path(tmp) / 'receiver.log').read_text()[-3000:]}")
                time.sleep(0.2)

            load = Load(
                f"http://127.0.0.1:{port}{PATH}", args.rate, args.seconds, args.alerts_per_notification, args.in_flight
            )
            offered_for = asyncio.run(load.run())
            result = verify(kubeconfig, load)
        finally:
            if proc and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)
            plane.stop(remove=False)

    lat = sorted(load.latencies)
    ok = sum(n for k, n in load.answers.items() if not k.startswith(("HTTP", "client")))
    print(
        f"\nreceiver: {'aiops run (whole operator)' if args.operator else 'receiver alone'}, local kube-apiserver, "
        f"{os.cpu_count()} CPUs shared by generator, receiver, apiserver and etcd"
    )
    print(
        f"offered:   {load.alerts_offered} alerts in {load.sent} notifications over {offered_for:.1f}s "
        f"({load.alerts_offered / offered_for:.0f} alerts/s, {args.alerts_per_notification} per notification)"
    )
    print(
        f"achieved:  {load.alerts_accepted} alerts accepted in {load.drained_for:.1f}s "
        f"({load.alerts_accepted / load.drained_for:.0f} alerts/s, {ok / load.drained_for:.0f} notifications/s)"
    )
    print("answers:   " + ", ".join(f"{k} {v}" for k, v in sorted(load.answers.items())))
    print(f"accepted:  {ok} notifications; deduplicated {load.answers['deduplicated']}")
    print(
        f"incidents: {result['incidents']} created for {result['groups_accepted']} groups accepted firing; "
        f"lost {result['lost']}, duplicated {result['duplicated']}, stray {result['stray']}"
    )
    print(f"resolved:  {result['resolved_groups']} groups resolved; not Resolved: {result['not_resolved']}")
    print(
        f"latency:   p50 {pct(lat, 50) * 1000:.0f} ms, p99 {pct(lat, 99) * 1000:.0f} ms, "
        f"max {(lat[-1] if lat else 0) * 1000:.0f} ms (from each notification's due time)"
    )
    bad = result["lost"] or result["duplicated"] or result["stray"] or result["not_resolved"]
    return 1 if bad else 0


def _healthy(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
