from aiops.diagnosis.analyzers import unschedulable

from .objects import bundle, event, pending_pod, pod

GPU = (
    "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: },"
    " 2 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for"
    " scheduling, 2 No preemption victims found for incoming pod."
)


def by_mode(findings):
    return {f.suspect.failure_mode: f.suspect for f in findings}


def test_gpu_shortage_outranks_the_expected_control_plane_taint():
    found = by_mode(unschedulable.analyze(bundle(pods=[pending_pod("trainer-0", GPU)])))
    assert set(found) == {"InsufficientGPU", "UntoleratedTaint"}
    assert found["InsufficientGPU"].score == 0.8  # 0.6 + 0.3 x 2/3
    assert found["UntoleratedTaint"].score == 0.3
    assert "2/3 nodes" in found["InsufficientGPU"].reason
    assert "nvidia.com/gpu" in found["InsufficientGPU"].mitigation


def test_parse_reads_every_cause_with_its_node_count():
    total, causes = unschedulable.parse(
        "0/6 nodes are available: 1 node(s) had taint {node.kubernetes.io/not-ready: }, that the pod didn't"
        " tolerate, 2 Insufficient cpu, 2 Insufficient memory, 1 node(s) didn't match Pod's node"
        " affinity/selector."
    )
    assert total == 6
    assert [(mode, key, n) for mode, key, _, n in causes] == [
        ("UntoleratedTaint", "node.kubernetes.io/not-ready:", 1),
        ("InsufficientCPU", "cpu", 2),
        ("InsufficientMemory", "memory", 2),
        ("NodeAffinityMismatch", "node(s) didn't match Pod's node affinity/selector", 1),
    ]


def test_unbound_pvc_has_no_count_and_rules_out_every_node():
    total, causes = unschedulable.parse(
        "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes are"
        " available: 3 Preemption is not helpful for scheduling."
    )
    assert (total, [(c[0], c[3]) for c in causes]) == (3, [("UnboundPVC", 3)])


def test_newest_failed_scheduling_event_wins_and_is_cited():
    p = pending_pod("web-1", "0/3 nodes are available: 3 Insufficient cpu.")
    old = event("Pod", "web-1", "FailedScheduling", "0/3 nodes are available: 3 Insufficient cpu.", last=5)
    new = event("Pod", "web-1", "FailedScheduling", "0/4 nodes are available: 4 Insufficient memory.", last=20, count=9)
    [f] = unschedulable.analyze(bundle(pods=[p], events=[new, old]))
    assert f.suspect.failure_mode == "InsufficientMemory" and f.suspect.score == 0.9
    assert f.suspect.evidence[0] == "unschedulable-web-1"
    assert f.suspect.evidence[1].startswith("unschedulable-event-web-1-failedscheduling-")
    assert "(x9," in f.evidence[1].summary


def test_pods_pending_alike_make_one_suspect_on_the_workload():
    pods = [pending_pod(f"checkout-7d9f8b6c5-{s}", "0/3 nodes are available: 3 Insufficient cpu.") for s in "ab"]
    [f] = unschedulable.analyze(bundle(pods=pods))
    assert f.suspect.resource == "Deployment/checkout" and "2 pod(s)" in f.suspect.reason


def test_unparsable_message_is_reported_generically():
    [f] = unschedulable.analyze(bundle(pods=[pending_pod("web-1", "running PreFilter plugin: boom")]))
    assert f.suspect.failure_mode == "Unschedulable" and "boom" in f.suspect.reason


def test_scheduled_and_pending_but_unjudged_pods_give_nothing():
    waiting_for_image = pod("web-2", phase="Pending")  # scheduled, pulling
    assert unschedulable.analyze(bundle(pods=[pod(), waiting_for_image])) == []
