from aiops.diagnosis.analyzers import probes

from .objects import bundle, event, pod, running, status

POD = "checkout-7d9f8b6c5-x2kqz"
PATH = "spec.containers{app}"


def unhealthy(message: str, count: int = 5, last: float = 10):
    return event("Pod", POD, "Unhealthy", message, count=count, last=last, field_path=PATH)


def test_liveness_failure_that_restarted_the_container_scores_highest():
    events = [
        unhealthy("Liveness probe failed: HTTP probe failed with statuscode: 500", count=9),
        event(
            "Pod",
            POD,
            "Killing",
            "Container app failed liveness probe, will be restarted",
            "Normal",
            3,
            field_path=PATH,
        ),
    ]
    [f] = probes.analyze(bundle(pods=[pod()], events=events))
    s = f.suspect
    assert (s.failure_mode, s.score) == ("LivenessProbeFailing", 0.85)
    assert "9 times" in s.reason and "restarted" in s.reason
    assert "error status" in s.mitigation


def test_readiness_connection_refused_counts_every_event():
    events = [
        unhealthy(
            'Readiness probe failed: Get "http://10.244.1.17:8080/ready": dial tcp 10.244.1.17:8080: connect:'
            " connection refused",
            count=4,
            last=8,
        ),
        unhealthy(
            'Readiness probe failed: Get "http://10.244.1.17:8080/ready": context deadline exceeded'
            " (Client.Timeout exceeded while awaiting headers)",
            count=2,
            last=12,
        ),
    ]
    p = pod(statuses=[status(ready=False)])
    [f] = probes.analyze(bundle(pods=[p], events=events))
    assert (f.suspect.failure_mode, f.suspect.score) == ("ReadinessProbeFailing", 0.6)
    assert "6 times" in f.suspect.reason
    assert "too slowly" in f.suspect.mitigation  # the newest failure decides the advice
    assert len(f.evidence) == 2


def test_startup_probe():
    [f] = probes.analyze(bundle(events=[unhealthy('Startup probe failed: Get "http://10.244.1.17:8080/healthz": EOF')]))
    assert (f.suspect.failure_mode, f.suspect.score) == ("StartupProbeFailing", 0.75)


def test_a_not_ready_running_container_without_probe_events_is_weak_evidence():
    p = pod(statuses=[status(state=running(3), ready=False)])
    [f] = probes.analyze(bundle(pods=[p]))
    assert (f.suspect.failure_mode, f.suspect.score) == ("ContainerNotReady", 0.35)


def test_healthy_pods_and_normal_events_give_nothing():
    pulled = event("Pod", POD, "Pulled", "Container image already present on machine", "Normal", field_path=PATH)
    assert probes.analyze(bundle(pods=[pod()], events=[pulled])) == []


def test_event_without_field_path_is_tolerated():
    e = unhealthy("Liveness probe failed: command timed out")
    del e["involvedObject"]["fieldPath"]
    [f] = probes.analyze(bundle(events=[e]))
    assert "container ?" in f.suspect.reason
