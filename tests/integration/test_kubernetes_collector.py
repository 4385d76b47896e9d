"""The Kubernetes collector on the control plane, with workloads written as controllers and a kubelet would."""

from datetime import UTC, datetime, timedelta

from aiops.diagnosis.collectors import kubernetes as collector
from aiops.diagnosis.evidence import EvidenceBundle, Target
from aiops_dev.eval.workloads import container


def bundle(kind, name, namespace):
    now = datetime.now(UTC)
    return EvidenceBundle(Target(kind, name, namespace), now - timedelta(hours=1), now)


def crashed(restarts=3):
    return {
        "phase": "Running",
        "containerStatuses": [
            {
                "name": "app",
                "image": "registry.example.com/shop/app:1.1",
                "imageID": "",
                "ready": False,
                "restartCount": restarts,
                "state": {
                    "waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}
                },
                "lastState": {
                    "terminated": {
                        "reason": "OOMKilled",
                        "exitCode": 137,
                        "startedAt": "2026-11-23T14:05:00Z",
                        "finishedAt": "2026-11-23T14:07:00Z",
                    }
                },
            }
        ],
    }


def test_deployment_target_gathers_the_owner_chain(writer, namespace):
    node = writer.node(
        "worker-collector",
        [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        {"cpu": "4", "memory": "16Gi", "pods": "110"},
    )
    old = [container(image="registry.example.com/shop/app:1.0")]
    new = [container(image="registry.example.com/shop/app:1.1")]
    dep = writer.deployment("checkout", new)
    writer.replicaset(dep, old, revision=1)
    rs = writer.replicaset(dep, new, revision=2)
    pod = writer.pod(rs, "checkout-abc12", new, crashed(), node="worker-collector")
    writer.event(pod, "BackOff", "Back-off restarting failed container")
    writer.event(node, "NodeReady", "Node worker-collector status is now: NodeReady", type_="Normal")
    writer.pod(None, "unrelated", [container()], {"phase": "Running"})

    b = collector.collect(writer.api, bundle("Deployment", "checkout", namespace))
    assert [p["metadata"]["name"] for p in b.pods] == ["checkout-abc12"]
    status = b.pods[0]["status"]["containerStatuses"][0]
    assert status["lastState"]["terminated"]["reason"] == "OOMKilled", "raw API shape, camelCase"
    assert [d["metadata"]["name"] for d in b.deployments] == ["checkout"]
    revisions = sorted(r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for r in b.replicasets)
    assert revisions == ["1", "2"], "the whole rollout history, not only the current ReplicaSet"
    assert [n["metadata"]["name"] for n in b.nodes] == ["worker-collector"]
    reasons = sorted(e["reason"] for e in b.events)
    assert reasons == ["BackOff", "NodeReady"]
    # No kubelet serves logs here: that is missing evidence, named, not a failure.
    assert any(m.startswith("logs/checkout-abc12/app:") for m in b.missing), b.missing


def test_pod_target_climbs_to_its_deployment(writer, namespace):
    containers = [container()]
    dep = writer.deployment("web", containers)
    rs = writer.replicaset(dep, containers, revision=1)
    writer.pod(rs, "web-xyz", containers, {"phase": "Pending"})
    b = collector.collect(writer.api, bundle("Pod", "web-xyz", namespace))
    assert [d["metadata"]["name"] for d in b.deployments] == ["web"]
    assert len(b.replicasets) == 1


def test_missing_target_is_missing_evidence(writer, namespace):
    b = collector.collect(writer.api, bundle("Deployment", "ghost", namespace))
    assert b.pods == [] and any("kubernetes/Deployment ghost: HTTP 404" in m for m in b.missing), b.missing
