from aiops.diagnosis.analyzers import CATALOGUE, analyze

from .objects import (
    bundle,
    certificate,
    condition,
    container,
    deployment,
    hpa,
    node,
    pod,
    quota,
    replicaset,
    running,
    status,
    terminated,
    waiting,
)

LIMITED = condition("ScalingLimited", "True", "TooManyReplicas", "the desired replica count is more than the maximum")


def incident():
    """A bad morning: a rollout at 10:02 halved the memory limit, the new pods are OOMKilled from 10:05, the
    node is under memory pressure, the HPA is pinned at its maximum and the quota is full."""
    old = replicaset(6, created=-3000)
    new = replicaset(7, created=2, containers=[container(memory="128Mi")])
    oom_pod = pod(
        "checkout-new-1",
        statuses=[status(state=running(6), last_state=terminated("OOMKilled", 137, finished=5), restarts=5)],
        containers=[container(memory="128Mi")],
        rs=new["metadata"]["name"],
    )
    pressure = ("True", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available")
    return bundle(
        pods=[oom_pod],
        deployments=[deployment(revision=7)],
        replicasets=[old, new],
        nodes=[node("node-a", MemoryPressure=pressure)],
        hpas=[hpa(current=10, desired=10, maximum=10, conditions=[LIMITED])],
        quotas=[quota(hard={"pods": "10"}, used={"pods": "10"})],
    )


def test_the_catalogue_covers_at_least_fifteen_failure_modes_once_each():
    modes = [mode for a in CATALOGUE for mode in a.failure_modes]
    assert len(CATALOGUE) >= 15 and len(modes) >= 15
    assert len(modes) == len(set(modes))
    assert len({a.name for a in CATALOGUE}) == len(CATALOGUE)


def test_several_problems_are_ranked_by_score():
    suspects, evidence, errors = analyze(incident())
    assert errors == []
    assert [(s.failure_mode, s.resource) for s in suspects] == [
        ("OOMKilled", "Pod/checkout-new-1"),  # 0.95: direct proof
        ("RecentRollout", "Deployment/checkout"),  # 0.775: 3 minutes before the first OOM kill
        ("MemoryPressure", "Node/node-a"),  # 0.7
        ("HPAAtMaxReplicas", "HorizontalPodAutoscaler/checkout"),  # 0.6
        ("QuotaExhausted", "ResourceQuota/compute-resources"),  # 0.45: weak
    ]
    assert "revision 7" in suspects[0].mitigation
    assert "limits.memory: 256Mi -> 128Mi" in suspects[1].reason


def test_evidence_is_cited_unique_and_in_ranking_order():
    suspects, evidence, _ = analyze(incident())
    ids = [e.id for e in evidence]
    assert len(ids) == len(set(ids))
    assert ids == list(dict.fromkeys(i for s in suspects for i in s.evidence))
    assert ids[0] == "oom-checkout-new-1-app"


def test_every_finding_cites_its_own_evidence_and_declares_its_failure_mode():
    b = incident()
    found = 0
    for a in CATALOGUE:
        for f in a.analyze(b):
            assert f.suspect.failure_mode in a.failure_modes
            assert f.suspect.evidence and set(f.suspect.evidence) <= {e.id for e in f.evidence}
            found += 1
    assert found, "no analyzer found anything in the bundle: nothing was checked"


def test_analysis_is_deterministic():
    assert analyze(incident()) == analyze(incident())


def test_equal_scores_rank_by_catalogue_order_then_resource():
    pull = "failed to pull and unpack image: 401 Unauthorized"
    b = bundle(
        pods=[
            pod("b-pod", statuses=[status(state=waiting("CreateContainerConfigError", 'secret "db" not found'))]),
            pod("z-pod", statuses=[status(state=waiting("ErrImagePull", pull), ready=False)]),
            pod("a-pod", statuses=[status(state=waiting("ErrImagePull", pull), ready=False, image="other:1")]),
        ]
    )
    suspects, _, _ = analyze(b)
    assert [(s.score, s.failure_mode, s.resource) for s in suspects] == [
        (0.9, "ImagePullAuthError", "Pod/a-pod"),
        (0.9, "ImagePullAuthError", "Pod/z-pod"),
        (0.9, "MissingSecret", "Secret/db"),
    ]


def test_findings_on_the_same_resource_and_failure_mode_are_merged():
    both = pod(
        statuses=[
            status("app", last_state=terminated("OOMKilled", 137), restarts=2),
            status("sidecar", last_state=terminated("OOMKilled", 137), restarts=1),
        ]
    )
    suspects, evidence, _ = analyze(bundle(pods=[both]))
    [s] = suspects
    assert s.evidence == ["oom-checkout-7d9f8b6c5-x2kqz-app", "oom-checkout-7d9f8b6c5-x2kqz-sidecar"]
    assert [e.id for e in evidence] == s.evidence


def test_a_broken_analyzer_is_reported_and_the_others_still_run():
    b = incident()
    broken = certificate("checkout-tls")
    broken["status"]["notAfter"] = "next tuesday"  # no API server writes this: breaks certificates only
    b.certificates = [broken]
    suspects, _, errors = analyze(b)
    assert len(errors) == 1 and errors[0].startswith("analyzer/certificates: ValueError: ")
    assert [s.failure_mode for s in suspects][:2] == ["OOMKilled", "RecentRollout"]
    assert len(suspects) == 5
