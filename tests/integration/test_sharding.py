"""Two controller shards on one control plane: each Incident, run and ManagedCluster is handled by exactly the
shard its label selects, and objects applied without the label are labelled by shard 0 and then handled."""

import pytest
import yaml

from aiops.api import INCIDENT
from aiops.core.sharding import SHARD_LABEL, Shard, bucket, shard_labels
from harness import OperatorProcess, managed_cluster, wait_for

SHARDS = 2


def incident(name, cluster=None, labels=None):
    spec = {"title": f"symptom {name}", "severity": "warning", "analysis": {"llm": False}}
    if cluster:
        spec["clusterRef"] = {"name": cluster}
    meta = {"name": name, **({"labels": labels} if labels else {})}
    return {"apiVersion": "aiops.dev/v1alpha1", "kind": "Incident", "metadata": meta, "spec": spec}


def covering(candidates, per_shard=2):
    """Keys from the candidates, `per_shard` of them landing on each shard."""
    chosen = {i: [k for k in candidates if bucket(k) % SHARDS == i][:per_shard] for i in range(SHARDS)}
    assert all(len(keys) == per_shard for keys in chosen.values()), chosen
    return [k for keys in chosen.values() for k in keys]


def handled_in(log: str, prefix: str) -> bool:
    return any(f"[{prefix}] Handler 'reconcile' succeeded" in line for line in log.splitlines())


@pytest.mark.timeout(300)
def test_each_object_is_handled_by_its_shard_only(kubeconfig, kubectl, namespace, alone, tmp_path):
    namespaces = covering([f"{namespace}-n{i}" for i in range(16)])
    clusters = covering([f"{namespace}-c{i}" for i in range(16)], per_shard=1)
    for ns in namespaces:
        kubectl("create", "namespace", ns)
    shards = [
        OperatorProcess(kubeconfig, tmp_path / f"shard-{i}.log", {"AIOPS_SHARD": f"{i}/{SHARDS}"})
        for i in range(SHARDS)
    ]
    try:
        for shard in shards:
            shard.start()
        for name in clusters:
            kubectl.apply(managed_cluster(name))
        # Incidents about the local cluster in each namespace (one already labelled, as the ingest labels them,
        # one with a label no shard selects), and Incidents about the managed clusters, all without labels.
        wanted = []
        for ns in namespaces:
            labelled = incident("labelled")
            labelled["metadata"]["labels"] = shard_labels(INCIDENT, {**labelled, "metadata": {"namespace": ns}})
            for obj in (incident("applied"), labelled, incident("bogus", labels={SHARD_LABEL: "not-a-bucket"})):
                kubectl.apply(obj, ns)
                wanted.append((ns, obj["metadata"]["name"], ns))
        for name in clusters:
            short = f"on-{name.rsplit('-', 1)[1]}"  # the run's name adds 10 characters, within 63
            kubectl.apply(incident(short, cluster=name), namespace)
            wanted.append((namespace, short, name))

        def phase(ns, name):
            return ((kubectl.get("incident", name, ns) or {}).get("status") or {}).get("phase")

        ended = ("Diagnosed", "Failed")  # the analysis ran (without a target it ends Failed), its run handled too
        wait_for(lambda: all(phase(ns, name) in ended for ns, name, _ in wanted), 120, "every Incident analysed")
        logs = [shard.log() for shard in shards]
        for ns, name, key in wanted:
            obj = kubectl.get("incident", name, ns)
            owner = Shard(bucket(key) % SHARDS, SHARDS)
            assert obj["metadata"]["labels"][SHARD_LABEL] == str(bucket(key)), f"{ns}/{name}"
            by = [i for i, log in enumerate(logs) if handled_in(log, f"{ns}/{name}")]
            assert by == [owner.index], f"{ns}/{name} (shard key {key}) handled by shards {by}, not {owner}"
            [run] = [r for r in kubectl.json("get", "analysisruns", "-n", ns)["items"]
                     if r["metadata"]["ownerReferences"][0]["name"] == name]  # fmt: skip
            assert run["metadata"]["labels"][SHARD_LABEL] == str(bucket(key))
            assert [i for i, log in enumerate(logs) if handled_in(log, f"{ns}/{run['metadata']['name']}")] == by
        for name in clusters:
            by = [i for i, log in enumerate(logs) if handled_in(log, name)]
            assert by == [bucket(name) % SHARDS], f"ManagedCluster {name} handled by shards {by}"
        # Only shard 0 labels, and only what came without a (valid) label.
        stamped = [line for line in logs[0].splitlines() if f": labelled {{'{SHARD_LABEL}'" in line]
        assert "labelled" not in "".join(line for line in logs[1].splitlines() if "aiops.core.sharding" in line)
        assert not [line for line in stamped if "/labelled:" in line]
        assert sum("/bogus:" in line for line in stamped) == len(namespaces)
        print(f"\n{len(wanted)} Incidents over {SHARDS} shards; shard 0 labelled {len(stamped)} objects")
        print(yaml.safe_dump({f"shard {i}": sum("Handler 'reconcile' succeeded" in ln for ln in log.splitlines())
                              for i, log in enumerate(logs)}))  # fmt: skip
    finally:
        for shard in shards:
            shard.stop()
        for name in clusters:
            kubectl("delete", "managedcluster", name, "--wait=false", check=False)
        for ns in namespaces:
            kubectl("delete", "namespace", ns, "--wait=false", check=False)
