"""The fleet: a hub (the session's control plane) and a spoke (a second one started here).

The spoke is reached through a kubeconfig Secret in the operator's namespace; the operator probes it
every 2 s (AIOPS_CLUSTER_PROBE_INTERVAL_S), diagnoses an Incident from the spoke's objects, notices the
spoke going away and coming back. Bad kubeconfigs, rejected tokens and a dead Prometheus are named in
conditions without a hot loop.
"""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from aiops.clusters.probe import GPU_PRODUCT_LABEL, GPU_RESOURCE
from aiops_dev.controlplane import ControlPlane, free_port
from aiops_dev.eval import cases
from aiops_dev.eval.workloads import Writer
from harness import OPERATOR_NS, condition, kubeconfig_for_secret, managed_cluster, phase, put_secret, ready_reason

PROBE = {"AIOPS_CLUSTER_PROBE_INTERVAL_S": "2"}
H100 = "NVIDIA-H100-80GB-HBM3"


def cluster_events(kubectl, name: str) -> list[dict]:
    """Events about a cluster-scoped object (kopf posts them in the default namespace)."""
    items = kubectl.json("get", "events", "-A", "--field-selector", f"involvedObject.name={name}")["items"]
    return sorted(items, key=lambda e: e.get("firstTimestamp") or e.get("eventTime") or "")


def probed_after(stamp: str | None):
    return lambda obj: (obj.get("status") or {}).get("lastProbeTime") not in (None, stamp)


@pytest.fixture
def spoke(tmp_path):
    plane = ControlPlane(workdir=tmp_path / "spoke", name="aiops-spoke")
    plane.start()
    yield plane
    plane.stop(remove=False)


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0")


def restart_in_place(plane: ControlPlane, argv: dict[str, list[str]]) -> None:
    """Starts etcd and kube-apiserver again with the same data dir, port, certificates and token."""
    for name in ("etcd", "kube-apiserver"):
        plane._spawn(name, argv[name], detach=False)
    kc = yaml.safe_load(plane.kubeconfig.read_text())
    plane.wait_ready(
        kc["clusters"][0]["cluster"]["server"],
        kc["users"][0]["user"]["token"],
        Path(kc["clusters"][0]["cluster"]["certificate-authority"]),
    )


@pytest.mark.timeout(420)
def test_spoke_probed_diagnosed_lost_and_back(kubectl, operator_env, namespace, spoke):
    operator_env(PROBE)
    # The spoke: a GPU node, a ready worker, and checkout failing with OOMKilled in a namespace named as ours.
    api = config.new_client_from_config(config_file=str(spoke.kubeconfig))
    client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    w = Writer(api, namespace)
    w.node(
        "gpu-h100-1",
        [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        {"cpu": "64", "memory": "512Gi", "pods": "110", GPU_RESOURCE: "4"},
        labels={GPU_PRODUCT_LABEL: H100},
    )
    cases.write("checkout-oomkilled", w)
    api.close()

    name = f"{namespace}-spoke"
    put_secret(kubectl, name, {"kubeconfig": kubeconfig_for_secret(spoke.kubeconfig)})
    kubectl.apply(managed_cluster(name, name, displayName="Spoke", environment="test"))
    mc = kubectl.wait("managedcluster", name, until=lambda o: phase(o) == "Ready", timeout=60, what="Ready")
    st = mc["status"]
    assert st["kubernetesVersion"].startswith("v1.20") and "openshiftVersion" not in st
    assert st["nodeCount"] == 2 and st["readyNodeCount"] == 2
    assert st["gpuInventory"] == {"total": 4, "models": [{"product": H100, "count": 4, "nodes": ["gpu-h100-1"]}]}
    assert {"kubernetes", "gpu"} <= set(st["capabilities"])
    assert condition(mc, "APIServerReachable")["status"] == "True"
    assert condition(mc, "NodesReady")["reason"] == "AllNodesReady"
    assert ready_reason(mc) == "Probed" and "4 GPUs" in condition(mc)["message"]
    # The timer keeps probing.
    kubectl.wait("managedcluster", name, until=probed_after(st["lastProbeTime"]), timeout=30, what="a second probe")

    # An Incident on the hub pointing at the spoke is diagnosed from the spoke's objects.
    assert kubectl("get", "deployment", "checkout", "-n", namespace, check=False).returncode != 0, "not on the hub"
    kubectl.apply(
        {
            "apiVersion": "aiops.dev/v1alpha1",
            "kind": "Incident",
            "metadata": {"name": "spoke-checkout"},
            "spec": {
                "title": "checkout restarting on the spoke",
                "severity": "critical",
                "clusterRef": {"name": name},
                "target": {"kind": "Deployment", "name": "checkout"},
            },
        },
        namespace,
    )
    inc = kubectl.wait(
        "incident", "spoke-checkout", namespace, timeout=90, what="a diagnosis",
        until=lambda o: phase(o) in ("Diagnosed", "Remediating", "Failed"),
    )  # fmt: skip
    d = inc["status"]["diagnosis"]
    assert phase(inc) != "Failed", inc["status"]
    assert d["suspects"][0]["failureMode"] == "OOMKilled" and "checkout" in d["suspects"][0]["resource"], d
    run = kubectl.get("analysisrun", inc["status"]["analysisRunRef"]["name"], namespace)
    assert run["spec"]["clusterRef"] == {"name": name}

    # The spoke goes away: Unreachable, with a Warning Event, the last known facts kept.
    argv = {n: cmdline(pid) for n, pid in spoke.pids.items()}
    spoke.stop(remove=False)
    mc = kubectl.wait("managedcluster", name, until=lambda o: phase(o) == "Unreachable", timeout=60, what="lost")
    assert ready_reason(mc) == "Unreachable" and condition(mc)["status"] == "False"
    api_cond = condition(mc, "APIServerReachable")
    assert api_cond["status"] == "False" and api_cond["reason"] == "Unreachable"
    assert "cannot reach the API server at https://127.0.0.1:" in api_cond["message"], api_cond
    assert "Traceback" not in str(mc["status"]) and "object at 0x" not in str(mc["status"])
    assert mc["status"]["nodeCount"] == 2, "the last known inventory stays"
    warnings = [e for e in cluster_events(kubectl, name) if e["type"] == "Warning" and e["reason"] == "Unreachable"]
    assert warnings, cluster_events(kubectl, name)
    # No hot loop: probes keep coming at the interval, the Event is not repeated.
    stamp = mc["status"]["lastProbeTime"]
    kubectl.wait("managedcluster", name, until=probed_after(stamp), timeout=40, what="another probe while down")
    again = [e for e in cluster_events(kubectl, name) if e["reason"] == "Unreachable"]
    assert len(again) == 1 and again[0].get("count", 1) == 1, again

    # It comes back (same data dir, port and credentials): Ready again, with a Normal Event.
    restart_in_place(spoke, argv)
    mc = kubectl.wait("managedcluster", name, until=lambda o: phase(o) == "Ready", timeout=60, what="back")
    assert condition(mc, "APIServerReachable")["status"] == "True" and mc["status"]["gpuInventory"]["total"] == 4
    reasons = [(e["type"], e["reason"]) for e in cluster_events(kubectl, name)]
    assert ("Normal", "Probed") in reasons and ("Warning", "Unreachable") in reasons, reasons


class AlertmanagerReady(http.server.BaseHTTPRequestHandler):
    token = "am-token-0123456789"

    def do_GET(self):
        ok = self.path == "/-/ready" and self.headers.get("Authorization") == f"Bearer {self.token}"
        self.send_response(200 if ok else 401)
        self.end_headers()
        self.wfile.write(b"OK" if ok else b"no")

    def log_message(self, *args):
        pass


@pytest.fixture
def alertmanager():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AlertmanagerReady)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.mark.timeout(300)
def test_bad_kubeconfigs_and_a_dead_prometheus(kubectl, operator_env, namespace, kubeconfig, alertmanager):
    operator_env(PROBE)
    # A token the API server does not know (revoked, expired): Unauthorized, once.
    bad = f"{namespace}-badtoken"
    put_secret(kubectl, bad, {"kubeconfig": kubeconfig_for_secret(kubeconfig, token="expired-token-123")})
    kubectl.apply(managed_cluster(bad, bad))
    mc = kubectl.wait("managedcluster", bad, until=phase, timeout=40, what="a probe result")
    assert phase(mc) == "Unreachable" and ready_reason(mc) == "Unauthorized", mc["status"]
    cond = condition(mc, "APIServerReachable")
    assert cond["reason"] == "Unauthorized" and "401" in cond["message"] and "expired" in cond["message"]
    assert "expired-token-123" not in str(mc["status"]), "credentials never land in status"
    kubectl.wait("managedcluster", bad, until=probed_after(mc["status"]["lastProbeTime"]), timeout=30)
    events = [e for e in cluster_events(kubectl, bad) if e["reason"] == "Unauthorized"]
    assert len(events) == 1 and events[0]["type"] == "Warning" and events[0].get("count", 1) == 1, events

    # An unparseable kubeconfig: InvalidSpec naming the Secret; fixing the Secret alone brings it back.
    broken = f"{namespace}-broken"
    put_secret(kubectl, broken, {"kubeconfig": b"apiVersion: v1\nclusters: [unclosed\n"})
    kubectl.apply(managed_cluster(broken, broken))
    mc = kubectl.wait("managedcluster", broken, until=lambda o: ready_reason(o) == "InvalidSpec", timeout=40)
    assert phase(mc) == "Unreachable" and condition(mc, "APIServerReachable")["reason"] == "InvalidKubeconfig"
    assert f"Secret {OPERATOR_NS}/{broken} key 'kubeconfig': not valid YAML" in condition(mc)["message"]
    put_secret(kubectl, broken, {"kubeconfig": kubeconfig_for_secret(kubeconfig)})
    kubectl.wait("managedcluster", broken, until=lambda o: phase(o) == "Ready", timeout=40, what="fixed Secret")

    # A server nobody listens on.
    dead = f"{namespace}-dead"
    data = yaml.safe_load(kubeconfig_for_secret(kubeconfig))
    data["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    put_secret(kubectl, dead, {"kubeconfig": yaml.safe_dump(data).encode()})
    kubectl.apply(managed_cluster(dead, dead))
    mc = kubectl.wait("managedcluster", dead, until=phase, timeout=40, what="a probe result")
    assert phase(mc) == "Unreachable" and "connection refused" in condition(mc, "APIServerReachable")["message"]

    # The local cluster with Prometheus at a closed port and a working Alertmanager behind a token.
    put_secret(kubectl, f"{namespace}-am", {"token": AlertmanagerReady.token.encode()})
    prom_url = f"http://127.0.0.1:{free_port()}"
    endpoints = {
        "prometheus": {"url": prom_url},
        "alertmanager": {"url": alertmanager, "authSecretRef": {"name": f"{namespace}-am", "key": "token"}},
    }
    local = f"{namespace}-local"
    kubectl.apply(managed_cluster(local, endpoints=endpoints))
    mc = kubectl.wait("managedcluster", local, until=lambda o: condition(o, "PrometheusReachable"), timeout=40)
    assert phase(mc) == "Degraded" and ready_reason(mc) == "Degraded"
    prom = condition(mc, "PrometheusReachable")
    assert prom["status"] == "False" and prom["reason"] == "ConnectionFailed"
    assert f"{prom_url}/-/ready" in prom["message"] and "connection refused" in prom["message"]
    assert condition(mc, "AlertmanagerReachable")["status"] == "True", condition(mc, "AlertmanagerReachable")
    assert "alertmanager" in mc["status"]["capabilities"] and "prometheus" not in mc["status"]["capabilities"]
    assert any(e["type"] == "Warning" and e["reason"] == "ConnectionFailed" for e in cluster_events(kubectl, local))

    # Prometheus removed from the spec: its condition goes, the cluster is no longer degraded by it.
    kubectl.apply(managed_cluster(local, endpoints={"alertmanager": endpoints["alertmanager"]}))
    mc = kubectl.wait(
        "managedcluster", local, timeout=40, what="no Prometheus condition",
        until=lambda o: not condition(o, "PrometheusReachable"),
    )  # fmt: skip
    if not (condition(mc, "NodesReady") or {}).get("status") == "False":  # other tests may leave NotReady nodes
        assert phase(mc) == "Ready", mc["status"]
