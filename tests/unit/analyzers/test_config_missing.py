from aiops.diagnosis.analyzers import config_missing

from .objects import bundle, event, pod, status, waiting


def config_error(name: str, message: str):
    return pod(name, statuses=[status(state=waiting("CreateContainerConfigError", message), ready=False)])


def test_missing_configmap_groups_the_pods_that_need_it():
    pods = [config_error(f"checkout-7d9f8b6c5-{s}", 'configmap "checkout-config" not found') for s in ("a", "b")]
    [f] = config_missing.analyze(bundle(pods=pods))
    s = f.suspect
    assert (s.resource, s.failure_mode, s.score) == ("ConfigMap/checkout-config", "MissingConfigMap", 0.9)
    assert "2 pods" in s.reason and "shop/checkout-config" in s.reason
    assert s.evidence == ["config-checkout-7d9f8b6c5-a-app", "config-checkout-7d9f8b6c5-b-app"]


def test_missing_secret_and_missing_key():
    pods = [
        config_error("p1", 'secret "db-credentials" not found'),
        config_error("p2", "couldn't find key DATABASE_URL in ConfigMap shop/checkout.config"),
    ]
    found = {(f.suspect.resource, f.suspect.failure_mode) for f in config_missing.analyze(bundle(pods=pods))}
    assert found == {("Secret/db-credentials", "MissingSecret"), ("ConfigMap/checkout.config", "MissingConfigKey")}


def test_a_missing_config_volume_shows_only_in_failed_mount_events():
    e = event(
        "Pod",
        "p1",
        "FailedMount",
        'MountVolume.SetUp failed for volume "tls" : secret "checkout-tls" not found',
        count=12,
    )
    [f] = config_missing.analyze(bundle(pods=[pod("p1")], events=[e]))
    assert f.suspect.failure_mode == "MissingSecret"
    assert f.evidence[0].source == "events"


def test_other_config_errors_and_healthy_pods_give_nothing():
    other = config_error("p1", "container has runAsNonRoot and image will run as root")
    assert config_missing.analyze(bundle(pods=[other, pod("p2")])) == []


def test_waiting_without_message_is_tolerated():
    bare = pod("p1", statuses=[status(state={"waiting": {"reason": "CreateContainerConfigError"}}, ready=False)])
    assert config_missing.analyze(bundle(pods=[bare])) == []
