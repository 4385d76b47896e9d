from aiops.diagnosis.analyzers import oom

from .objects import bundle, container, pod, replicaset, running, status, terminated, waiting


def test_oomkilled_last_state_reports_exit_code_restarts_and_limit():
    p = pod(
        statuses=[status(state=running(), last_state=terminated("OOMKilled", 137), restarts=4)],
        containers=[container(memory="256Mi")],
    )
    [f] = oom.analyze(bundle(pods=[p]))
    s = f.suspect
    assert (s.resource, s.failure_mode, s.score) == ("Pod/checkout-7d9f8b6c5-x2kqz", "OOMKilled", 0.95)
    assert "exit 137" in s.reason and "4 times" in s.reason and "256Mi" in s.reason
    assert s.evidence == ["oom-checkout-7d9f8b6c5-x2kqz-app"]
    assert "limit 256Mi" in s.mitigation


def test_mitigation_names_the_revision_when_the_replicaset_is_known():
    rs = replicaset(7, created=-60)
    p = pod(statuses=[status(last_state=terminated("OOMKilled", 137), restarts=1)], rs=rs["metadata"]["name"])
    [f] = oom.analyze(bundle(pods=[p], replicasets=[rs]))
    assert "revision 7" in f.suspect.mitigation


def test_current_state_and_init_containers_count_too():
    p = pod(statuses=[status(state=terminated("OOMKilled", 137), ready=False)], containers=[container(memory=None)])
    p["status"]["initContainerStatuses"] = [status("migrate", state=terminated("OOMKilled", 137), ready=False)]
    findings = oom.analyze(bundle(pods=[p]))
    assert [f.evidence[0].id for f in findings] == [
        "oom-checkout-7d9f8b6c5-x2kqz-migrate",
        "oom-checkout-7d9f8b6c5-x2kqz-app",
    ]
    assert "no memory limit" in findings[1].suspect.reason


def test_healthy_pods_and_other_terminations_give_nothing():
    healthy = pod(statuses=[status(last_state=terminated("Completed", 0), restarts=1)])
    crashing = pod("other", statuses=[status(state=waiting("CrashLoopBackOff"), last_state=terminated("Error", 1))])
    assert oom.analyze(bundle(pods=[healthy, crashing])) == []


def test_missing_status_fields_are_tolerated():
    bare = pod(statuses=[])
    del bare["status"]
    no_last = pod("p2", statuses=[{"name": "app", "ready": True, "restartCount": 0, "state": {}}])
    assert oom.analyze(bundle(pods=[bare, no_last])) == []
