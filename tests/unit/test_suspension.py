"""The kill switch as data: what the fleet-wide ConfigMap and a ManagedCluster's spec.suspend say, and how an
Incident's condition words it, and where they are read from: their watches when synced, else the API server.
Reading and writing them live is in tests/integration/test_suspend.py."""

from datetime import UTC, datetime

import pytest
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from aiops.api.managedcluster import ManagedClusterSpec
from aiops.clusters import informer, suspension


def test_the_fleet_switch_says_who_when_why_where_and_how_to_lift_it():
    held = suspension.fleet_from(
        {"by": "jane@example.com", "reason": "change freeze", "since": "2026-12-24T18:00:00Z"}, "aiops-system"
    )
    assert held.message() == (
        "suspended fleet-wide (ConfigMap aiops-system/aiops-suspend) by jane@example.com since 2026-12-24T18:00:00Z"
        ": change freeze; lift it with `aiops resume`"
    )
    # An empty ConfigMap (kubectl create configmap aiops-suspend) suspends too.
    empty = suspension.fleet_from(None, "ops").message()
    assert empty.startswith("suspended fleet-wide (ConfigMap ops/aiops-suspend);")


def test_a_cluster_switch_is_its_spec_suspend():
    since = datetime(2026, 12, 24, 18, 0, tzinfo=UTC)
    spec = ManagedClusterSpec.model_validate({"suspend": {"reason": "DR drill", "by": "sam", "since": since}})
    assert suspension.cluster_from("prod-east", spec).message() == (
        "suspended for cluster prod-east (ManagedCluster prod-east spec.suspend) by sam since 2026-12-24T18:00:00Z"
        ": DR drill; lift it with `aiops resume --cluster prod-east`"
    )
    assert suspension.cluster_from("prod-east", ManagedClusterSpec()) is None
    assert suspension.cluster_from("dev", ManagedClusterSpec.model_validate({"suspend": {}})) is not None


def test_an_invalid_cluster_spec_with_a_suspend_field_still_suspends():
    bad = {"metadata": {"name": "prod"}, "spec": {"suspend": True, "environment": "production"}}
    held = suspension.from_object(bad)
    assert held is not None and held.where == "for cluster prod (ManagedCluster prod, invalid spec)"
    assert suspension.from_object({"metadata": {"name": "prod"}, "spec": {"environment": "moon"}}) is None


def test_spec_suspend_is_an_object_and_says_so():
    with pytest.raises(ValidationError) as exc:
        ManagedClusterSpec.model_validate({"suspend": {"reason": "x" * 1025}})
    assert exc.value.errors()[0]["loc"] == ("suspend", "reason")


def watched(namespace: str, configmap: dict | None, clusters: list[dict]) -> suspension.Watched:
    """Both switches as their watches hold them (listed: synced), with no server behind."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    cache = informer.Cache(api=None, resources=(suspension.CLUSTERS_PATH, path))
    for obj in ([configmap] if configmap else []) + clusters:
        source = cache.informers[path if obj.get("kind") == "ConfigMap" else suspension.CLUSTERS_PATH]
        source.objects[informer._key(obj)] = informer.pack(obj)
    for source in cache.informers.values():
        source.synced.set()
    return suspension.Watched(namespace, cache)


def no_server(*_, **__):
    raise AssertionError("the API server was asked although the watches hold the switches")


def test_the_switches_are_read_from_their_watches_without_a_request(monkeypatch):
    monkeypatch.setattr(suspension.kube, "core", no_server)
    monkeypatch.setattr(suspension.kube.API, "get", no_server)
    monkeypatch.setattr(suspension.kube.API, "list", no_server)
    freeze = {"kind": "ConfigMap", "metadata": {"name": "aiops-suspend", "namespace": "ops"},
              "data": {"reason": "change freeze", "by": "jane"}}  # fmt: skip
    local = {"kind": "ManagedCluster", "metadata": {"name": "here"}, "spec": {"suspend": {"reason": "DR drill"}}}
    spoke = {"kind": "ManagedCluster", "metadata": {"name": "spoke"},
             "spec": {"kubeconfigSecretRef": {"name": "spoke"}}}  # fmt: skip

    monkeypatch.setattr(suspension, "_watched", watched("ops", freeze, [local, spoke]))
    assert (
        suspension.current(None, "ops")
        .message()
        .startswith("suspended fleet-wide (ConfigMap ops/aiops-suspend) by jane")
    )

    monkeypatch.setattr(suspension, "_watched", watched("ops", None, [local, spoke]))
    assert "for cluster here" in suspension.current(None, "ops").message()  # the local cluster's own switch
    assert suspension.current("spoke", "ops") is None


def test_without_synced_watches_for_that_namespace_the_api_server_is_asked(monkeypatch):
    asked = []

    class Core:
        def read_namespaced_config_map(self, name, namespace):
            asked.append((name, namespace))
            raise ApiException(status=404)

    monkeypatch.setattr(suspension.kube, "core", Core)
    monkeypatch.setattr(suspension.kube.API, "list", lambda kind: [])
    monkeypatch.setattr(suspension, "_watched", watched("ops", None, []))
    assert suspension.current(None, "elsewhere") is None
    assert asked == [("aiops-suspend", "elsewhere")]
    unsynced = watched("ops", None, [])
    unsynced.configmap.synced.clear()  # its watch is down: listing again
    monkeypatch.setattr(suspension, "_watched", unsynced)
    assert suspension.current(None, "ops") is None
    assert asked[-1] == ("aiops-suspend", "ops")
