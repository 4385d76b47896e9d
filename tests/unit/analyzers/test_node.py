from aiops.diagnosis.analyzers import node

from .objects import bundle, pod
from .objects import node as node_obj


def test_not_ready_node_hosting_target_pods():
    sick = node_obj("node-a", Ready=("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status."))
    [f] = node.analyze(bundle(pods=[pod(node="node-a")], nodes=[sick]))
    s = f.suspect
    assert (s.resource, s.failure_mode, s.score) == ("Node/node-a", "NodeNotReady", 0.85)
    assert "1 target pod" in s.reason
    assert s.evidence == ["node-node-a-ready"]
    assert "Kubelet stopped posting" in f.evidence[0].summary


def test_pressure_conditions():
    sick = node_obj(
        "node-a",
        MemoryPressure=("True", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
        DiskPressure=("True", "KubeletHasDiskPressure", "kubelet has disk pressure"),
        NetworkUnavailable=("True", "NoRouteCreated", "Node created without a route"),
    )
    found = {f.suspect.failure_mode: f.suspect.score for f in node.analyze(bundle(pods=[pod()], nodes=[sick]))}
    assert found == {"MemoryPressure": 0.7, "DiskPressure": 0.7, "NetworkUnavailable": 0.7}


def test_nodes_without_target_pods_are_ignored_unless_the_node_is_the_target():
    sick = node_obj("node-b", PIDPressure=("True", "KubeletHasInsufficientPID", "kubelet has insufficient PID"))
    assert node.analyze(bundle(pods=[pod(node="node-a")], nodes=[sick])) == []
    [f] = node.analyze(bundle("Node", "node-b", nodes=[sick]))
    assert f.suspect.failure_mode == "PIDPressure" and "target pod" not in f.suspect.reason


def test_healthy_node_and_missing_status_give_nothing():
    bare = node_obj("node-c")
    del bare["status"]
    assert node.analyze(bundle(pods=[pod(node="node-a"), pod("p2", node="node-c")], nodes=[node_obj(), bare])) == []


def test_a_sick_node_claims_its_os_image_and_gpu_driver():
    sick = node_obj("node-a", Ready=("False", "KubeletNotReady", "PLEG is not healthy"))
    sick["status"]["nodeInfo"]["osImage"] = "Ubuntu 22.04.4 LTS"
    sick["metadata"]["labels"] |= {"nvidia.com/cuda.driver.major": "550", "nvidia.com/cuda.driver.minor": "54",
                                   "nvidia.com/cuda.driver.rev": "15"}  # fmt: skip
    [f] = node.analyze(bundle(pods=[pod(node="node-a")], nodes=[sick]))
    assert [(c.kind, c.value) for c in f.suspect.causes] == [
        ("nodeImage", "Ubuntu 22.04.4 LTS; kubelet v1.29.4"),
        ("gpuDriver", "550.54.15"),
    ]
