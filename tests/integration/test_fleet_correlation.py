"""One bad image rolled out on three clusters: the hub, and two spokes started here. The three Incidents
become children of one parent Incident, the parent is the one notification sent, and an Incident in the
same window with another bad image is neither folded in nor kept quiet.

The operator runs with notifications to a CloudEvents receiver on loopback, its outbox in a real
PostgreSQL, and correlation every 2 s.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from kubernetes import client, config

from aiops_dev.controlplane import ControlPlane
from aiops_dev.eval.workloads import Writer, container
from harness import OPERATOR_NS, condition, kubeconfig_for_secret, managed_cluster, phase, put_secret, wait_for
from support.receivers import CloudEventsReceiver, Reply, scripted

BAD = "registry.example.com/shop/cart:2.0.0"
DIGEST = "sha256:" + "5e" * 32
OTHER_BAD = "registry.example.com/shop/search:9.1.0"


@pytest.fixture
def spokes(tmp_path):
    planes = [ControlPlane(workdir=tmp_path / f"spoke-{i}", name=f"aiops-spoke-{i}") for i in (1, 2)]
    for plane in planes:
        plane.start()
    yield planes
    for plane in planes:
        plane.stop(remove=False)


def bad_rollout(w: Writer, app: str, good: str, bad: str, digest: str) -> None:
    """Revision 1 ran `good`; revision 2, rolled out just now, runs `bad`, whose pod exits 1 at start."""
    dep = w.deployment(app, [container(image=bad)])
    w.replicaset(dep, [container(image=good)], revision=1)
    rs = w.replicaset(dep, [container(image=bad)], revision=2)
    repo = bad.rsplit(":", 1)[0]
    status = {
        "phase": "Running",
        "containerStatuses": [
            {
                "name": "app",
                "image": bad,
                "imageID": f"{repo}@{digest}",
                "ready": False,
                "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting"}},
                "lastState": {"terminated": {"reason": "Error", "exitCode": 1}},
            }
        ],
    }
    pod = w.pod(
        rs, f"{app}-{rs['metadata']['labels']['pod-template-hash']}-x1", [container(image=bad)], status, "worker-1"
    )
    w.event(pod, "BackOff", "Back-off restarting failed container app", count=4)


def cluster_with(api: client.ApiClient, namespace: str, create_namespace: bool) -> Writer:
    if create_namespace:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    w = Writer(api, namespace)
    w.node("worker-1", [{"type": "Ready", "status": "True", "reason": "KubeletReady"}], {"cpu": "8", "pods": "110"})
    return w


def incident(name: str, app: str, cluster: str | None) -> dict:
    spec = {"title": f"{app} crashing", "severity": "high", "target": {"kind": "Deployment", "name": app}}
    if cluster:
        spec["clusterRef"] = {"name": cluster}
    return {"apiVersion": "aiops.dev/v1alpha1", "kind": "Incident", "metadata": {"name": name}, "spec": spec}


@pytest.mark.timeout(600)
def test_one_bad_image_on_three_clusters_is_one_page(
    kubectl, operator_env, namespace, kubeconfig, spokes, dsn, tmp_path
):
    # The same bad image on the hub and both spokes; on spoke 1 also another app with another bad image.
    hub = config.new_client_from_config(config_file=kubeconfig)
    bad_rollout(cluster_with(hub, namespace, create_namespace=False), "cart", "shop/cart:1.9.0", BAD, DIGEST)
    hub.close()
    names = []
    for i, plane in enumerate(spokes, 1):
        api = config.new_client_from_config(config_file=str(plane.kubeconfig))
        w = cluster_with(api, namespace, create_namespace=True)
        bad_rollout(w, "cart", "shop/cart:1.9.0", BAD, DIGEST)
        if i == 1:
            bad_rollout(w, "search", "shop/search:9.0.0", OTHER_BAD, "sha256:" + "77" * 32)
        api.close()
        name = f"{namespace}-s{i}"
        put_secret(kubectl, name, {"kubeconfig": kubeconfig_for_secret(plane.kubeconfig)})
        kubectl.apply(managed_cluster(name, name))
        kubectl.wait("managedcluster", name, until=lambda o: phase(o) == "Ready", timeout=60, what="Ready")
        names.append(name)

    # Besides the pager, a channel whose URL answers 404: its dead letters must not hold up the pager.
    with CloudEventsReceiver() as receiver, scripted(Reply(404, {"error": "no such hook"})) as broken:
        notify = tmp_path / "notify.yaml"
        notify.write_text(
            yaml.safe_dump(
                {
                    "channels": [
                        {"type": "webhook", "name": "pager", "url": {"env": "PAGER_URL"}},
                        {"type": "webhook", "name": "broken", "url": {"env": "BROKEN_URL"}},
                    ],
                    "routes": [{"matchers": {"severity": ["critical", "high"]}, "channels": ["pager", "broken"]}],
                }
            )
        )
        operator_env(
            {
                "AIOPS_NOTIFY_CONFIG": str(notify),
                "PAGER_URL": receiver.url,
                "BROKEN_URL": broken.url + "/hooks/gone",
                "AIOPS_POSTGRES_DSN": dsn,
                "AIOPS_CORRELATION_INTERVAL_S": "2",
                "AIOPS_CLUSTER_PROBE_INTERVAL_S": "2",
            }
        )
        for inc in (
            incident("cart-hub", "cart", None),
            incident("cart-s1", "cart", names[0]),
            incident("cart-s2", "cart", names[1]),
            incident("search-s1", "search", names[0]),
        ):
            kubectl.apply(inc, namespace)

        def parents():
            """The parents of this test's Incidents (other tests' Incidents may share causes too)."""
            items = kubectl.json("get", "incidents", "-n", OPERATOR_NS, "-o", "json")["items"]
            return [
                i
                for i in items
                if i["spec"].get("source") == "correlation"
                and any(c["namespace"] == namespace for c in (i.get("status") or {}).get("children") or [])
            ]

        def state() -> str:
            """What the wait saw, for the failure message: each child's phase and claim, the parents."""
            rows = []
            for name in ("cart-hub", "cart-s1", "cart-s2", "search-s1"):
                st = (kubectl.get("incident", name, namespace) or {}).get("status") or {}
                rows.append(f"{name}: {st.get('phase')} parent={st.get('parentRef')} "
                            f"rootCause={((st.get('diagnosis') or {}).get('rootCause') or '')[:80]!r}")  # fmt: skip
            rows += [
                f"parent {p['metadata']['name']}: {len(p['status'].get('children') or [])} children" for p in parents()
            ]
            return "; ".join(rows)

        try:
            [parent] = wait_for(
                lambda: [p for p in parents() if len((p.get("status") or {}).get("children") or []) == 3] or None,
                timeout=180,
                what="a parent with three children",
            )
        except AssertionError as err:
            raise AssertionError(f"{err}: {state()}") from None
        st = parent["status"]
        assert parent["spec"]["sharedCause"] == {"kind": "image", "value": f"registry.example.com/shop/cart@{DIGEST}"}
        assert sorted(c["name"] for c in st["children"]) == ["cart-hub", "cart-s1", "cart-s2"]
        assert st["clusters"] == sorted(["local", *names])
        assert phase(parent) == "Diagnosed" and condition(parent)["reason"] == "SharedCause"
        for child in ("cart-hub", "cart-s1", "cart-s2"):
            obj = kubectl.get("incident", child, namespace)
            assert obj["status"]["parentRef"]["name"] == parent["metadata"]["name"]
            # Other writers of `conditions` may drop it; the next correlation pass writes it again.
            correlated = wait_for(lambda c=child: condition(kubectl.get("incident", c, namespace), "Correlated"),
                                  timeout=15, what=f"{child}'s Correlated condition")  # fmt: skip
            assert correlated["status"] == "True" and correlated["reason"] == "SharedCause", correlated
        assert "parentRef" not in (kubectl.get("incident", "search-s1", namespace)["status"])
        assert len(parents()) == 1

        # The page: the parent's diagnosis and the unrelated Incident's own; the children stay quiet. (The
        # operator notifies every Incident on the control plane: other tests' are left out of the count.)
        ours = {f"{OPERATOR_NS}/{parent['metadata']['name']}", f"{namespace}/search-s1"}

        def mine():
            return {e.get_subject(): e for e in receiver.events.values()
                    if e.get_subject() in ours or e.get_subject().startswith(f"{namespace}/")}  # fmt: skip

        wait_for(lambda: len(mine()) >= 2, timeout=120, what="two notifications")
        assert sorted(mine()) == sorted(ours)
        assert all(e.get_type() == "dev.aiops.incident.diagnosed" for e in mine().values())
        page = mine()[f"{OPERATOR_NS}/{parent['metadata']['name']}"].get_data()
        # The parent pages as soon as MIN_CLUSTERS clusters share the cause, and once: a third child that joins
        # later is in the parent's status, not in a second page.
        assert "shop/cart" in page["title"] and 2 <= len(page["children"]) <= 3, page["children"]
        assert all(c.split("/")[-1] in ("cart-hub", "cart-s1", "cart-s2") for c in page["children"]), page["children"]
        assert receiver.duplicates == 0
        # The 404: a dead letter at once, named in the parent's status and condition, listed by the CLI.
        notified = wait_for(
            lambda: condition(kubectl.get("incident", parent["metadata"]["name"], OPERATOR_NS), "Notified"),
            timeout=30,
            what="the parent's Notified condition",
        )
        assert (
            notified["reason"] == "DeliveryFailed" and "broken" in notified["message"] and "404" in notified["message"]
        )
        parent = kubectl.get("incident", parent["metadata"]["name"], OPERATOR_NS)
        states = {(n["channel"], n["stage"]): n["state"] for n in parent["status"]["notifications"]}
        assert states == {("pager", "diagnosed"): "Sent", ("broken", "diagnosed"): "Dead"}
        dead = subprocess.run([sys.executable, "-m", "aiops.cli", "notifications", "--dead", "--dsn", dsn],
                              capture_output=True, text=True, timeout=60, check=True).stdout  # fmt: skip
        lines = [ln for ln in dead.strip().splitlines() if ln.split()[2] in ours or f" {namespace}/" in ln]
        assert len(lines) == 2 and all(" broken diagnosed " in line and "HTTP 404" in line for line in lines), dead
        assert {line.split()[2] for line in lines} == {
            f"{OPERATOR_NS}/{parent['metadata']['name']}",
            f"{namespace}/search-s1",
        }
        describe = kubectl("describe", "incident", parent["metadata"]["name"], "-n", OPERATOR_NS).stdout
        print(describe)
        assert "SharedCause" in describe
