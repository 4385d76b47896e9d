from aiops.diagnosis.analyzers import rollout

from .objects import IMAGE, bundle, container, deployment, event, pod, replicaset, status, terminated, waiting

NEW_IMAGE = "registry.example.com/shop/checkout:1.5.0"


def history(new_created: float = 2, **new_container):
    old = replicaset(6, created=-3000, containers=[container(env=[{"name": "LOG_LEVEL", "value": "info"}])])
    new = replicaset(
        7,
        created=new_created,
        containers=[
            container(
                image=NEW_IMAGE,
                memory="128Mi",
                env=[
                    {"name": "LOG_LEVEL", "value": "debug"},
                    {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                ],
                **new_container,
            )
        ],
    )
    return [old, new]


def crash_event(first: float):
    return event(
        "Pod", "checkout-x", "BackOff", "Back-off restarting failed container app", first=first, last=first + 5
    )


def test_rollout_minutes_before_the_first_failure_is_reported_with_its_diff():
    b = bundle(deployments=[deployment(revision=7)], replicasets=history(new_created=2), events=[crash_event(first=5)])
    [f] = rollout.analyze(b)
    s = f.suspect
    assert (s.resource, s.failure_mode) == ("Deployment/checkout", "RecentRollout")
    assert 0.77 < s.score <= 0.8  # 3 minutes before the first failure
    assert "revision 7 3 min before the first failure" in s.reason
    assert s.evidence == ["rollout-checkout-rev-7", "rollout-diff-checkout-rev-7"]
    diff = f.evidence[1].summary
    assert f"image: {IMAGE} -> {NEW_IMAGE}" in diff
    assert "env LOG_LEVEL: info -> debug" in diff
    assert "env DB_PASSWORD added" in diff
    assert "resources limits.memory: 256Mi -> 128Mi" in diff
    assert "pod-template-hash" not in diff
    assert "--to-revision=6" in s.mitigation


def test_score_falls_as_the_rollout_is_further_before_the_failure():
    near = rollout.analyze(bundle(deployments=[deployment()], replicasets=history(2), events=[crash_event(5)]))
    far = rollout.analyze(bundle(deployments=[deployment()], replicasets=history(2), events=[crash_event(30)]))
    assert near[0].suspect.score > far[0].suspect.score >= 0.55


def test_container_exit_times_count_as_failures():
    crashed = pod(statuses=[status(state=waiting("CrashLoopBackOff"), last_state=terminated("Error", 1, finished=4))])
    [f] = rollout.analyze(bundle(pods=[crashed], deployments=[deployment()], replicasets=history(2)))
    assert "2 min before the first failure" in f.suspect.reason


def test_rollout_long_before_or_after_the_first_failure_is_not_a_suspect():
    early = bundle(deployments=[deployment()], replicasets=history(new_created=-40), events=[crash_event(5)])
    late = bundle(deployments=[deployment()], replicasets=history(new_created=20), events=[crash_event(5)])
    assert rollout.analyze(early) == [] and rollout.analyze(late) == []


def test_without_failure_times_a_rollout_inside_the_window_is_weak_evidence():
    [f] = rollout.analyze(bundle(deployments=[deployment()], replicasets=history(new_created=10)))
    assert f.suspect.score == 0.5 and "no failure time known" in f.suspect.reason
    warning_before_window = crash_event(first=-300)
    assert (
        rollout.analyze(bundle(deployments=[deployment()], replicasets=history(-200), events=[warning_before_window]))
        == []
    )


def test_first_revision_and_a_restart_only_rollout():
    [first] = rollout.analyze(bundle(deployments=[deployment(revision=1)], replicasets=[replicaset(1, created=3)]))
    assert "first revision" in first.suspect.reason and len(first.evidence) == 1
    old, new = replicaset(3, created=-500), replicaset(4, created=3)
    new["spec"]["template"]["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "2024-05-01T10:03:00Z"}
    [restart] = rollout.analyze(bundle(deployments=[deployment(revision=4)], replicasets=[new, old]))
    assert "pod annotation kubectl.kubernetes.io/restartedAt added" in restart.suspect.reason


def test_replicasets_of_other_deployments_and_no_deployment_give_nothing():
    other = replicaset(2, created=3, deployment="payments")
    assert rollout.analyze(bundle(deployments=[deployment()], replicasets=[other])) == []
    assert rollout.analyze(bundle(replicasets=history(2))) == []


def test_the_images_a_rollout_brought_in_are_its_causes_by_digest_where_its_pods_report_one():
    old, new = history(new_created=2)
    b = bundle(deployments=[deployment(revision=7)], replicasets=[old, new], events=[crash_event(first=5)])
    [f] = rollout.analyze(b)
    assert [(c.kind, c.value) for c in f.suspect.causes] == [("image", NEW_IMAGE)]
    new_pod = pod(rs=new["metadata"]["name"], statuses=[status(image=NEW_IMAGE)])
    b.pods = [new_pod]
    [f] = rollout.analyze(b)
    assert [c.value for c in f.suspect.causes] == [f"registry.example.com/shop/checkout@sha256:{'c0' * 32}"]


def test_a_rollout_that_kept_its_image_claims_no_image():
    old = replicaset(6, created=-3000, containers=[container()])
    new = replicaset(7, created=2, containers=[container(memory="128Mi")])
    b = bundle(deployments=[deployment(revision=7)], replicasets=[old, new], events=[crash_event(first=5)])
    [f] = rollout.analyze(b)
    assert f.suspect.causes == []
