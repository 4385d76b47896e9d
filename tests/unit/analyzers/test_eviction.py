from aiops.diagnosis.analyzers import eviction

from .objects import bundle, pod

MEMORY = (
    "The node was low on resource: memory. Threshold quantity: 100Mi, available: 52Mi. Container app was using"
    " 1800Mi, request is 256Mi, has larger consumption of its request. "
)


def evicted(name: str, message: str, node: str = "node-a"):
    return pod(name, statuses=[], node=node, phase="Failed", reason="Evicted", message=message)


def test_pods_evicted_for_memory_blame_the_node_and_name_the_hog():
    pods = [evicted("checkout-a", MEMORY), evicted("checkout-b", MEMORY), pod("checkout-c")]
    [f] = eviction.analyze(bundle(pods=pods))
    s = f.suspect
    assert (s.resource, s.failure_mode, s.score) == ("Node/node-a", "Evicted", 0.75)
    assert "2 pods evicted" in s.reason and "lack of memory" in s.reason
    assert "app (1800Mi used, 256Mi requested)" in s.reason
    assert s.evidence == ["evicted-checkout-a", "evicted-checkout-b"]


def test_ephemeral_storage_limit_blames_the_pod():
    message = "Pod ephemeral local storage usage exceeds the total limit of containers 1Gi. "
    [f] = eviction.analyze(bundle(pods=[evicted("checkout-a", message)]))
    assert f.suspect.resource == "Pod/checkout-a" and "ephemeral" in f.suspect.reason


def test_disk_pressure_on_two_nodes_makes_two_suspects():
    message = "The node was low on resource: ephemeral-storage. Threshold quantity: 10%, available: 4%. "
    found = eviction.analyze(bundle(pods=[evicted("a", message, "node-a"), evicted("b", message, "node-b")]))
    assert [f.suspect.resource for f in found] == ["Node/node-a", "Node/node-b"]
    assert all("ephemeral-storage" in f.suspect.reason for f in found)


def test_other_failed_pods_give_nothing():
    assert eviction.analyze(bundle(pods=[pod(phase="Failed"), pod("x", phase="Succeeded")])) == []
