"""Failure scenarios with known root causes, written onto a cluster with `workloads.Writer`.

Each scenario builds the failing objects a real cluster would show and names the target an
Incident should point at and the failure mode a correct diagnosis ranks first. The demo, the
integration tests and `aiops eval scenarios` use them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .workloads import Writer, container

NODE = "worker-1"


@dataclass(frozen=True)
class Scenario:
    name: str
    target_kind: str
    target_name: str
    expected_failure_mode: str
    build: Callable[[Writer], None]


def _ready_node(w: Writer) -> dict:
    return w.node(
        NODE,
        [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        {"cpu": "8", "memory": "32Gi", "pods": "110"},
    )


def checkout_oomkilled(w: Writer) -> None:
    """checkout's new revision leaks memory and its container is OOMKilled over and over."""
    node = _ready_node(w)
    old = [container(image="registry.example.com/shop/checkout:1.4.2", memory="256Mi")]
    new = [container(image="registry.example.com/shop/checkout:1.5.0", memory="256Mi")]
    dep = w.deployment("checkout", new, replicas=2)
    w.replicaset(dep, old, revision=1)
    rs = w.replicaset(dep, new, revision=2)
    for suffix in ("x2kqz", "p7mfd"):
        pod = w.pod(
            rs,
            f"{rs['metadata']['name']}-{suffix}",
            new,
            {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
                "containerStatuses": [
                    {
                        "name": "app",
                        "image": new[0]["image"],
                        "imageID": "",
                        "ready": False,
                        "restartCount": 6,
                        "state": {
                            "waiting": {
                                "reason": "CrashLoopBackOff",
                                "message": "back-off 2m40s restarting failed container=app",
                            }
                        },
                        "lastState": {
                            "terminated": {
                                "reason": "OOMKilled",
                                "exitCode": 137,
                                "startedAt": "2026-11-23T14:20:11Z",
                                "finishedAt": "2026-11-23T14:23:52Z",
                            }
                        },
                    }
                ],
            },
            node=node["metadata"]["name"],
        )
        w.event(pod, "BackOff", "Back-off restarting failed container app in pod " + pod["metadata"]["name"], count=6)


def payments_crashloop(w: Writer) -> None:
    """payments exits 1 at start-up because its database URL is wrong."""
    node = _ready_node(w)
    containers = [container(image="registry.example.com/shop/payments:2.3.1")]
    dep = w.deployment("payments", containers)
    rs = w.replicaset(dep, containers, revision=1)
    pod = w.pod(
        rs,
        "payments-7d9f5c7b8-x2kqz",
        containers,
        {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "app",
                    "image": containers[0]["image"],
                    "imageID": "",
                    "ready": False,
                    "restartCount": 9,
                    "state": {
                        "waiting": {
                            "reason": "CrashLoopBackOff",
                            "message": "back-off 5m0s restarting failed container=app",
                        }
                    },
                    "lastState": {
                        "terminated": {
                            "reason": "Error",
                            "exitCode": 1,
                            "startedAt": "2026-11-23T14:06:58Z",
                            "finishedAt": "2026-11-23T14:07:00Z",
                        }
                    },
                }
            ],
        },
        node=node["metadata"]["name"],
    )
    w.event(pod, "BackOff", "Back-off restarting failed container app in pod payments-7d9f5c7b8-x2kqz", count=9)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("checkout-oomkilled", "Deployment", "checkout", "OOMKilled", checkout_oomkilled),
    Scenario("payments-crashloop", "Pod", "payments-7d9f5c7b8-x2kqz", "CrashLoopBackOff", payments_crashloop),
)
