from aiops.diagnosis.analyzers import gpu

from .objects import bundle, pod, status

XID_79 = "[ 8822.125342] NVRM: Xid (PCI:0000:3b:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus."
XID_13 = (
    "[ 9011.004000] NVRM: Xid (PCI:0000:3b:00): 13, pid=4242, name=python3,"
    " Graphics SM Warp Exception on (GPC 1, TPC 0)"
)
OOM = (
    "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.15 GiB total capacity;"
    " 77.01 GiB already allocated)"
)


def trainer(name: str = "trainer-0", node: str = "gpu-node-1"):
    return pod(name, statuses=[status("trainer")], node=node, rs=None)


def test_hardware_xid_blames_the_node():
    [f] = gpu.analyze(bundle(pods=[trainer()], logs={"trainer-0/trainer": ["step 100", XID_79, XID_79]}))
    s = f.suspect
    assert (s.resource, s.failure_mode, s.score) == ("Node/gpu-node-1", "GPUHardwareFault", 0.9)
    assert "fallen off the bus" in s.reason and "2 lines" in s.reason
    assert "drain gpu-node-1" in s.mitigation
    assert s.evidence == ["gpu-xid-79-trainer-0-trainer"]


def test_application_xid_and_cuda_oom():
    logs = {"trainer-0/trainer": [XID_13, OOM], "loki:trainer-0/trainer": [OOM]}
    found = {f.suspect.failure_mode: f.suspect for f in gpu.analyze(bundle(pods=[trainer()], logs=logs))}
    assert found["GPUXidError"].resource == "Pod/trainer-0" and "Xid 13" in found["GPUXidError"].reason
    assert found["GPUXidError"].score == 0.6
    assert found["GPUOutOfMemory"].score == 0.8 and "1 log line" in found["GPUOutOfMemory"].reason


def test_unknown_xid_code_and_unknown_pod_are_tolerated():
    line = "NVRM: Xid (PCI:0000:3b:00): 119, pid=1, name=x, Timeout after 6s of waiting for RPC response from GPU0"
    [f] = gpu.analyze(bundle(logs={"dcgm-exporter-x/exporter": [line]}))
    assert f.suspect.failure_mode == "GPUXidError" and "outside the common catalogue" in f.suspect.reason


def test_logs_without_gpu_errors_give_nothing():
    assert gpu.analyze(bundle(logs={"trainer-0/trainer": ["epoch 1 loss 0.31", "CUDA device 0 ready"]})) == []
