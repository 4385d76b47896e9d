import pytest

from aiops.diagnosis.analyzers import image_pull

from .objects import bundle, event, pod, status, waiting

POD = "checkout-7d9f8b6c5-x2kqz"
IMG = "registry.example.com/shop/checkout:1.5.0"


def pulling(reason: str, message: str, name: str = POD, image: str = IMG):
    return pod(name, statuses=[status(state=waiting(reason, message), ready=False, image=image)])


def failed_event(message: str, name: str = POD):
    return event("Pod", name, "Failed", message, count=4, field_path="spec.containers{app}")


@pytest.mark.parametrize(
    "message, mode",
    [
        (
            f'failed to pull and unpack image "{IMG}": failed to resolve reference "{IMG}": failed to authorize:'
            " failed to fetch anonymous token: unexpected status from GET request: 401 Unauthorized",
            "ImagePullAuthError",
        ),
        (
            'failed to resolve reference "docker.io/acme/private:2": pull access denied, repository does not exist'
            " or may require authorization: server message: insufficient_scope: authorization failed",
            "ImagePullAuthError",
        ),
        (f'failed to resolve reference "{IMG}": {IMG}: not found', "ImageNotFound"),
        ("rpc error: code = NotFound desc = failed to pull and unpack image: manifest unknown", "ImageNotFound"),
        (
            'failed to do request: Head "https://registry.example.com/v2/shop/checkout/manifests/1.5.0": dial tcp:'
            " lookup registry.example.com on 10.96.0.10:53: no such host",
            "RegistryUnreachable",
        ),
    ],
)
def test_cause_is_read_from_the_failed_pull_event(message, mode):
    p = pulling("ImagePullBackOff", f'Back-off pulling image "{IMG}"')
    events = [failed_event(f'Failed to pull image "{IMG}": {message}'), failed_event("Error: ErrImagePull")]
    [f] = image_pull.analyze(bundle(pods=[p], events=events))
    assert f.suspect.failure_mode == mode
    assert f.suspect.score == 0.9
    assert f.suspect.resource == f"Pod/{POD}"
    assert f.suspect.evidence[0] == f"imagepull-{POD}-app"
    assert f.suspect.evidence[1].startswith(f"imagepull-event-{POD}")


def test_waiting_message_alone_is_enough():
    p = pulling("ErrImagePull", f'failed to pull and unpack image "{IMG}": 403 Forbidden')
    [f] = image_pull.analyze(bundle(pods=[p]))
    assert f.suspect.failure_mode == "ImagePullAuthError"
    assert "imagePullSecrets" in f.suspect.mitigation and "registry.example.com" in f.suspect.mitigation


def test_invalid_image_name():
    bad = "Registry.Example.com/Shop/Checkout:1.5"
    p = pulling("InvalidImageName", f'Failed to apply default image tag "{bad}": invalid reference format', image=bad)
    [f] = image_pull.analyze(bundle(pods=[p]))
    assert f.suspect.failure_mode == "InvalidImageName"


def test_replicas_failing_alike_make_one_suspect_on_the_workload():
    pods = [pulling("ImagePullBackOff", f"{IMG}: not found", name=f"checkout-7d9f8b6c5-{s}") for s in ("a", "b")]
    [f] = image_pull.analyze(bundle(pods=pods))
    assert f.suspect.resource == "Deployment/checkout"
    assert "2 pod(s)" in f.suspect.reason
    assert len(f.evidence) == 2


def test_unclassified_pull_failure_scores_lower():
    [f] = image_pull.analyze(bundle(pods=[pulling("ErrImagePull", "rpc error: code = Unknown desc = EOF")]))
    assert (f.suspect.failure_mode, f.suspect.score) == ("ImagePullError", 0.75)


def test_running_pods_and_unrelated_events_give_nothing():
    other = event("Pod", POD, "Failed", "Error: failed to start container")
    assert image_pull.analyze(bundle(pods=[pod()], events=[other])) == []
    assert image_pull.analyze(bundle()) == []


def test_the_image_and_its_registry_are_the_causes():
    p = pulling("ErrImagePull", f'failed to pull and unpack image "{IMG}": 403 Forbidden')
    [f] = image_pull.analyze(bundle(pods=[p]))
    assert [(c.kind, c.value) for c in f.suspect.causes] == [("image", IMG), ("dependency", "registry.example.com")]
    [f] = image_pull.analyze(bundle(pods=[pulling("ErrImagePull", "manifest unknown", image="nginx:1.27")]))
    assert f.suspect.causes[1].value == "docker.io"
