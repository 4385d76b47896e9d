"""The watch-fed cache against the local kube-apiserver: a diagnosis' evidence read from it equals the
evidence read from the API server, and it follows creations, changes and deletions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client, config

from aiops.clusters import informer
from aiops.diagnosis.collectors import kubernetes as k8s
from aiops.diagnosis.evidence import EvidenceBundle, Target
from aiops_dev.eval import cases
from harness import wait_for

FIELDS = ("pods", "deployments", "replicasets", "jobs", "nodes", "pvcs", "quotas", "events", "statefulsets")


@pytest.fixture
def cache(kubeconfig):
    api = config.new_client_from_config(config_file=kubeconfig)
    c = informer.Cache(api).start()
    assert c.wait_synced(60), {p: i.last_error for p, i in c.informers.items()}
    yield api, c
    c.stop()
    api.close()


def bundle(case: cases.Case, namespace: str) -> EvidenceBundle:
    target = case.target
    now = datetime.now(UTC)
    return EvidenceBundle(Target(target["kind"], target["name"], namespace), now - timedelta(hours=1), now)


@pytest.mark.parametrize("scenario", ["checkout-oomkilled", "wiki-pvc-no-storageclass", "ledger-node-not-ready"])
def test_evidence_from_the_cache_equals_evidence_from_the_api_server(cache, writer, namespace, scenario):
    api, c = cache
    case = cases.load(scenario)
    written = case.write(writer)

    # The cache has caught up once it holds every object written.
    def missing():
        return [
            (o["kind"], o["metadata"]["name"])
            for o in written
            if (p := _path(o)) in c.informers
            and not c.informers[p].get(o["metadata"].get("namespace") or "", o["metadata"]["name"])
        ]

    try:
        wait_for(lambda: not missing(), timeout=20, what="the cache to hold the scenario")
    except AssertionError:
        raise AssertionError(f"not in the cache: {missing()}") from None
    live = k8s.collect(api, bundle(case, namespace))
    cached = k8s.collect(api, bundle(case, namespace), c)
    for field in FIELDS:
        strip = lambda objs: sorted((informer.trim(dict(o)) for o in objs), key=lambda o: o["metadata"]["name"])  # noqa: E731
        assert strip(getattr(cached, field)) == strip(getattr(live, field)), field
    assert cached.logs == live.logs and cached.missing == live.missing


def test_the_cache_follows_changes_and_deletions(cache, namespace):
    api, c = cache
    core = client.CoreV1Api(api)
    pods = c.informers["/api/v1/pods"]
    body = {"metadata": {"name": "p", "labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    core.create_namespaced_pod(namespace, body)
    wait_for(lambda: pods.get(namespace, "p"), timeout=10, what="the pod in the cache")
    core.patch_namespaced_pod("p", namespace, {"metadata": {"labels": {"app": "b"}}})
    wait_for(lambda: pods.get(namespace, "p")["metadata"]["labels"]["app"] == "b", timeout=10, what="the change")
    core.delete_namespaced_pod("p", namespace, grace_period_seconds=0)
    # Without a kubelet the pod only gets a deletionTimestamp; finalizers aside, force it away.
    wait_for(lambda: pods.get(namespace, "p") is None or pods.get(namespace, "p")["metadata"].get("deletionTimestamp"),
             timeout=10, what="the deletion")  # fmt: skip
    counts = c.stats()
    assert counts["/api/v1/pods"][0] >= 1 and counts["/api/v1/pods"][1] > 0


def _path(obj: dict) -> str:
    group = obj.get("apiVersion", "v1")
    plural = {"Pod": "pods", "Event": "events", "Node": "nodes", "PersistentVolumeClaim": "persistentvolumeclaims",
              "ResourceQuota": "resourcequotas", "Service": "services", "Deployment": "deployments",
              "ReplicaSet": "replicasets", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets",
              "Job": "jobs"}.get(obj.get("kind"), "")  # fmt: skip
    return f"/api/v1/{plural}" if group == "v1" else f"/apis/{group}/{plural}"
