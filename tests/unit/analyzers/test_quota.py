from aiops.diagnosis.analyzers import quota

from .objects import bundle, event
from .objects import quota as quota_obj

EXCEEDED = (
    'Error creating: pods "checkout-7d9f8b6c5-abcde" is forbidden: exceeded quota: compute-resources,'
    " requested: limits.memory=512Mi, used: limits.memory=3840Mi, limited: limits.memory=4Gi"
)


def failed_create(message: str, rs: str = "checkout-7d9f8b6c5"):
    return event("ReplicaSet", rs, "FailedCreate", message, count=17, component="replicaset-controller")


def test_replicaset_refused_by_quota_cites_events_and_the_quota_status():
    q = quota_obj(hard={"limits.memory": "4Gi"}, used={"limits.memory": "4Gi"})
    [f] = quota.analyze(bundle(events=[failed_create(EXCEEDED)], quotas=[q]))
    s = f.suspect
    assert (s.resource, s.failure_mode, s.score) == ("ResourceQuota/compute-resources", "QuotaExceeded", 0.9)
    assert "requested limits.memory=512Mi, used limits.memory=3840Mi, limited limits.memory=4Gi" in s.reason
    assert s.evidence[-1] == "quota-compute-resources"
    assert "limits.memory 4Gi/4Gi" in f.evidence[-1].summary


def test_quota_that_requires_limits():
    message = (
        'Error creating: pods "x" is forbidden: failed quota: compute-resources: must specify limits.cpu,limits.memory'
    )
    [f] = quota.analyze(bundle(events=[failed_create(message)]))
    assert f.suspect.failure_mode == "QuotaRequiresLimits"
    assert "limits.cpu,limits.memory" in f.suspect.mitigation


def test_a_full_quota_nobody_hit_yet_is_weak():
    full = quota_obj(hard={"pods": "10", "limits.cpu": "4"}, used={"pods": "10", "limits.cpu": "3900m"})
    [f] = quota.analyze(bundle(quotas=[full]))
    assert (f.suspect.failure_mode, f.suspect.score) == ("QuotaExhausted", 0.45)
    assert "pods 10/10" in f.suspect.reason and "limits.cpu" not in f.suspect.reason


def test_quotas_with_room_a_zero_ban_and_no_status_give_nothing():
    ban = quota_obj("no-lb", hard={"services.loadbalancers": "0"}, used={"services.loadbalancers": "0"})
    fresh = quota_obj("fresh")
    del fresh["status"]
    other = failed_create('Error creating: pods "x" is forbidden: error looking up service account shop/builder')
    assert quota.analyze(bundle(quotas=[quota_obj(), ban, fresh], events=[other])) == []
