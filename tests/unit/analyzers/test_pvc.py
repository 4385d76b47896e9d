from aiops.diagnosis.analyzers import pvc

from .objects import bundle, event, pod, unix
from .objects import pvc as pvc_obj


def test_claim_pending_on_a_missing_storage_class():
    claim = pvc_obj(phase="Pending", storage_class="fast-ssd")
    e = event(
        "PersistentVolumeClaim",
        "data-checkout-0",
        "ProvisioningFailed",
        'storageclass.storage.k8s.io "fast-ssd" not found',
        count=14,
        component="persistentvolume-controller",
    )
    [f] = pvc.analyze(bundle(pvcs=[claim], events=[e]))
    s = f.suspect
    assert (s.resource, s.failure_mode, s.score) == (
        "PersistentVolumeClaim/data-checkout-0",
        "StorageClassMissing",
        0.85,
    )
    assert "Create StorageClass fast-ssd" in s.mitigation
    assert s.evidence[0] == "pvc-data-checkout-0"
    assert s.evidence[1].startswith("pvc-event-data-checkout-0-provisioningfailed-")


def test_claim_pending_for_a_provisioner_error():
    e = event(
        "PersistentVolumeClaim",
        "data-checkout-0",
        "ProvisioningFailed",
        'failed to provision volume with StorageClass "fast-ssd": rpc error: code = ResourceExhausted desc ='
        " VolumeLimitExceeded",
    )
    [f] = pvc.analyze(bundle(pvcs=[pvc_obj(phase="Pending")], events=[e]))
    assert f.suspect.failure_mode == "PVCPending" and "VolumeLimitExceeded" in f.suspect.reason


def test_claim_pending_with_no_events_yet():
    [f] = pvc.analyze(bundle(pvcs=[pvc_obj(phase="Pending", storage_class=None)]))
    assert f.suspect.failure_mode == "PVCPending" and "no provisioning event" in f.suspect.reason


def test_multi_attach_and_mount_failures():
    events = [
        event(
            "Pod",
            "db-0",
            "FailedAttachVolume",
            'Multi-Attach error for volume "pvc-3f1c" Volume is already exclusively attached to one node and'
            " can't be attached to another",
            component="attachdetach-controller",
        ),
        event("Pod", "db-0", "FailedMount", "Unable to attach or mount volumes: unmounted volumes=[data]: timed out"),
        # a missing Secret volume is config_missing's
        event("Pod", "db-0", "FailedMount", 'MountVolume.SetUp failed for volume "tls" : secret "db-tls" not found'),
    ]
    found = {f.suspect.failure_mode: f for f in pvc.analyze(bundle(pods=[pod("db-0")], events=events))}
    assert set(found) == {"VolumeAttachFailed", "VolumeMountFailed"}
    assert "ReadWriteOnce" in found["VolumeAttachFailed"].suspect.mitigation
    assert len(found["VolumeMountFailed"].evidence) == 1


def test_nearly_full_volume_from_metrics():
    label = "namespace=shop,persistentvolumeclaim=data-checkout-0"
    metrics = {
        "pvc_usage": {label: [(unix(0), 0.80), (unix(30), 0.97)], "persistentvolumeclaim=logs": [(unix(30), 0.5)]}
    }
    [f] = pvc.analyze(bundle(metrics=metrics))
    assert f.suspect.resource == "PersistentVolumeClaim/data-checkout-0"
    assert f.suspect.score == 0.725  # 0.55 + 0.25 x (0.97-0.9)/0.1
    assert "97% full" in f.suspect.reason


def test_bound_claims_and_empty_series_give_nothing():
    assert pvc.analyze(bundle(pvcs=[pvc_obj()], metrics={"pvc_usage": {"x": []}})) == []
