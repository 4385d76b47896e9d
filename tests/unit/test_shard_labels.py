"""Sharding's pure parts: the shard a string names, the stable hash, the labels and selectors, who sets them;
and the leader-election settings."""

import json
import zlib

import pytest

from aiops.api import ANALYSIS_RUN, INCIDENT, MANAGED_CLUSTER, SOP
from aiops.api.incident import IncidentSpec
from aiops.controllers.incident import analysis_run_manifest
from aiops.core.sharding import BUCKETS, SHARD_LABEL, UNSHARDED, Shard, bucket, shard_key, shard_labels
from aiops.ingest.ingestor import Ingestor
from aiops.ingest.wire import parse
from aiops.settings import from_env
from support.fakekube import FakeClient


def incident(name="db-down", namespace="shop", cluster=None, labels=None):
    spec = {"title": "db down", "severity": "critical"}
    if cluster:
        spec["clusterRef"] = {"name": cluster}
    meta = {"name": name, "namespace": namespace, "uid": "0f6c1d2e-aaaa-bbbb-cccc-000000000001"}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "aiops.dev/v1alpha1", "kind": "Incident", "metadata": meta, "spec": spec}


def test_the_hash_is_crc32_and_the_same_in_every_process():
    # Fixed values: a change of hash would move every object to another shard on upgrade.
    assert bucket("shop") == zlib.crc32(b"shop") % BUCKETS == 34
    assert bucket("prod-eu-1") == 60
    assert [bucket(f"cluster-{i}") for i in range(4)] == [zlib.crc32(f"cluster-{i}".encode()) % 64 for i in range(4)]


@pytest.mark.parametrize(
    ("text", "shard"), [("0/1", Shard(0, 1)), ("1/2", Shard(1, 2)), ("63/64", Shard(63, 64)), ("0/3", Shard(0, 3))]
)
def test_a_shard_parses(text, shard):
    assert Shard.parse(text) == shard and str(shard) == text


@pytest.mark.parametrize("text", ["2/2", "1", "a/b", "0/0", "0/65", "-1/2", "1/2/3", ""])
def test_a_bad_shard_is_refused(text):
    with pytest.raises(ValueError, match="i/N"):
        Shard.parse(text)


def test_the_shards_select_every_bucket_exactly_once():
    for count in (1, 2, 3, 5, 64):
        owners = [i for i in range(count) for _ in Shard(i, count).buckets()]
        assert sorted(b for i in range(count) for b in Shard(i, count).buckets()) == list(range(BUCKETS))
        assert len(owners) == BUCKETS
    assert Shard(0, 1).selector() is None  # one shard: no selector, it sees everything
    assert Shard(1, 3).selector() == f"{SHARD_LABEL} in (" + ",".join(str(b) for b in range(1, 64, 3)) + ")"
    assert UNSHARDED.startswith(f"{SHARD_LABEL} notin (0,1,2,") and UNSHARDED.endswith(",63)")
    assert Shard(0, 4).primary and not Shard(3, 4).primary


def test_an_object_is_sharded_by_the_cluster_it_is_about():
    assert shard_key(INCIDENT, incident(cluster="prod-eu-1")) == "prod-eu-1"
    assert shard_key(INCIDENT, incident()) == "shop"  # the local cluster: its namespace
    cluster = {"metadata": {"name": "prod-eu-1"}, "spec": {}}
    assert shard_key(MANAGED_CLUSTER, cluster) == "prod-eu-1"
    run = {"metadata": {"name": "r", "namespace": "shop"}, "spec": {"clusterRef": {"name": "prod-eu-1"}}}
    assert shard_key(ANALYSIS_RUN, run) == "prod-eu-1"
    assert shard_key(SOP, {"metadata": {"name": "s", "namespace": "shop"}}) == "shop"
    # An Incident, its run and its cluster on one shard.
    together = ((INCIDENT, incident(cluster="prod-eu-1")), (ANALYSIS_RUN, run), (MANAGED_CLUSTER, cluster))
    assert {shard_labels(kind, obj)[SHARD_LABEL] for kind, obj in together} == {"60"}


def test_a_valid_label_is_kept_and_an_invalid_one_replaced():
    assert shard_labels(INCIDENT, incident(labels={SHARD_LABEL: "40"})) == {SHARD_LABEL: "40"}
    for bad in ("x", "64", "-1", ""):
        assert shard_labels(INCIDENT, incident(labels={SHARD_LABEL: bad})) == {SHARD_LABEL: "34"}


def test_an_analysis_run_inherits_its_incidents_label():
    body = incident(cluster="prod-eu-1", labels={SHARD_LABEL: "33"})
    run = analysis_run_manifest(body, IncidentSpec.model_validate(body["spec"]))
    assert run["metadata"]["labels"][SHARD_LABEL] == "33"
    unlabelled = incident(cluster="prod-eu-1")
    run = analysis_run_manifest(unlabelled, IncidentSpec.model_validate(unlabelled["spec"]))
    assert run["metadata"]["labels"][SHARD_LABEL] == str(bucket("prod-eu-1"))


def test_the_alertmanager_ingest_labels_the_incidents_it_creates():
    labels = {"alertname": "KubePodCrashLooping", "namespace": "shop"}
    alert = {"status": "firing", "labels": labels, "annotations": {}, "startsAt": "2026-01-02T03:04:05Z",
             "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "3f2a9c81be07d4e1"}  # fmt: skip
    note = {"version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "aiops", "groupLabels": labels,
            "commonLabels": labels, "commonAnnotations": {}, "externalURL": "http://am", "alerts": [alert]}  # fmt: skip
    kube = FakeClient()
    result = Ingestor("aiops-system", client=kube).apply(parse(json.dumps(note).encode()))
    assert result.outcome == "created"
    ns, name = result.incident.split("/")
    assert kube.get(INCIDENT, name, ns)["metadata"]["labels"][SHARD_LABEL] == str(bucket("shop"))


def test_leader_election_settings():
    assert from_env({}).leader is None and from_env({}).shard == Shard(0, 1)
    conf = from_env({"AIOPS_LEADER_ELECTION": "true", "AIOPS_POD_NAME": "op-7d9-x2", "AIOPS_SHARD": "1/2"})
    assert conf.leader.lease_s == 10 and conf.leader.renew_s == 2
    assert conf.leader.identity == "op-7d9-x2" and conf.leader.lease_name == "aiops-operator-shard-1"
    local = from_env({"AIOPS_LEADER_ELECTION": "on", "AIOPS_LEADER_LEASE_NAME": "mine"}).leader
    assert local.lease_name == "mine" and local.pod_name is None and "-" in local.identity  # hostname-pid
    with pytest.raises(SystemExit, match="every third of the lease"):
        from_env({"AIOPS_LEADER_ELECTION": "true", "AIOPS_LEADER_LEASE_S": "5", "AIOPS_LEADER_RENEW_S": "2"})
    with pytest.raises(SystemExit, match="AIOPS_SHARD='3/2'"):
        from_env({"AIOPS_SHARD": "3/2"})
