"""Leader election: the Lease protocol between two candidates, and two operator processes of which one acts;
the leader killed mid-burst, the standby takes over within the failover target and loses no Incident."""

import time

import pytest
import yaml
from kubernetes import client, config

from aiops.leader import LEADER_LABEL, Elector
from aiops.settings import LeaderSettings
from harness import OperatorProcess, condition, symptom_incident, wait_for

FAILOVER_TARGET_S = 15.0
DONE = ("Diagnosed", "Failed")  # the analysis ended: without a target it ends Failed, its condition says why


def phase_of(kubectl, name, namespace):
    return ((kubectl.get("incident", name, namespace) or {}).get("status") or {}).get("phase")


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_the_lease_goes_to_one_candidate_expires_and_is_released(kubeconfig, kubectl, namespace):
    api = config.new_client_from_config(config_file=kubeconfig)
    clock = FakeClock()

    def candidate(identity):
        conf = LeaderSettings(lease_name="protocol", lease_s=10, renew_s=2, identity=identity)
        return Elector(conf, namespace, api=api, clock=clock)

    a, b = candidate("a"), candidate("b")
    assert a.try_acquire()  # no Lease yet: a creates it
    assert not b.try_acquire()  # held, and b has just seen it
    clock.now += 9
    assert a.try_acquire() and not b.try_acquire()  # renewed: b saw it change
    clock.now += 9.9
    assert not b.try_acquire()  # 9.9 s since b saw the renewal: not expired yet
    clock.now += 0.2
    assert b.try_acquire()  # a stopped renewing: b takes over
    lease = client.CoordinationV1Api(api).read_namespaced_lease("protocol", namespace)
    assert lease.spec.holder_identity == "b" and lease.spec.lease_transitions == 1
    assert not a.try_acquire()  # a must not take it back
    b._label_pod = lambda value: None
    b.release()  # a clean stop: a may take it at once, without waiting for the lease to run out
    assert a.try_acquire()
    assert client.CoordinationV1Api(api).read_namespaced_lease("protocol", namespace).spec.lease_transitions == 2
    api.close()


def pod(name):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "operator", "image": "aiops-operator"}]},
    }


def leader_label(kubectl, name, namespace):
    return (kubectl.get("pod", name, namespace) or {}).get("metadata", {}).get("labels", {}).get(LEADER_LABEL)


@pytest.mark.timeout(300)
def test_the_standby_takes_over_a_killed_leader_and_loses_nothing(kubeconfig, kubectl, namespace, alone, tmp_path):
    # The settings the chart ships (and the defaults): lease 10 s, renewal every 2 s.
    env = {"AIOPS_LEADER_ELECTION": "true", "AIOPS_NAMESPACE": namespace, "AIOPS_LEADER_LEASE_NAME": "ha"}
    for name in ("op-a", "op-b"):  # pods as the Deployment would make them; the leader labels its own
        kubectl.apply(pod(name), namespace)
    a = OperatorProcess(kubeconfig, tmp_path / "a.log", {**env, "AIOPS_POD_NAME": "op-a"})
    b = OperatorProcess(kubeconfig, tmp_path / "b.log", {**env, "AIOPS_POD_NAME": "op-b"})
    a.start(until="leading with Lease")
    b.start(until="waiting for Lease")
    try:
        kubectl.apply(symptom_incident("first"), namespace)
        wait_for(lambda: phase_of(kubectl, "first", namespace) in DONE, 60, "the leader to handle an Incident")
        assert f"[{namespace}/first]" in a.log() and f"[{namespace}/first]" not in b.log()
        assert "Initial authentication" not in b.log(), "the standby started kopf"
        assert (leader_label(kubectl, "op-a", namespace), leader_label(kubectl, "op-b", namespace)) == ("true", "false")

        names = [f"burst-{i:02d}" for i in range(20)]
        burst = "\n---\n".join(yaml.safe_dump(symptom_incident(n)) for n in names)
        kubectl("apply", "-n", namespace, "-f", "-", input=burst)

        def started():
            phases = [phase_of(kubectl, n, namespace) for n in names]
            return sum(p is not None for p in phases) >= 3

        wait_for(started, 60, "the leader to be part way through the burst")
        a.stop(kill=True)
        killed = time.monotonic()
        kubectl.apply(symptom_incident("after-failover"), namespace)
        wait_for(lambda: phase_of(kubectl, "after-failover", namespace) is not None, 60, "the standby to take over")
        failover = time.monotonic() - killed
        print(f"\nfailover: leader SIGKILLed -> standby handled a new Incident in {failover:.1f}s")
        assert "leading with Lease" in b.log()
        assert failover <= FAILOVER_TARGET_S, f"failover took {failover:.1f}s (target {FAILOVER_TARGET_S}s)"

        everything = [*names, "after-failover"]
        wait_for(lambda: all(phase_of(kubectl, n, namespace) in DONE for n in everything), 120, "the whole burst")
        runs = kubectl.json("get", "analysisruns", "-n", namespace)["items"]
        owners = sorted(r["metadata"]["ownerReferences"][0]["name"] for r in runs)
        assert owners == sorted(["first", *everything]), "exactly one AnalysisRun per Incident"
        for n in everything:  # analysed (not merely accepted) by one operator or the other
            assert condition(kubectl.get("incident", n, namespace), "Diagnosed")["reason"] == "AnalysisFailed"
        assert leader_label(kubectl, "op-b", namespace) == "true"
    finally:
        a.stop()
        b.stop()


@pytest.mark.timeout(120)
def test_a_leader_stopped_cleanly_hands_over_at_once(kubeconfig, kubectl, namespace, alone, tmp_path):
    env = {"AIOPS_LEADER_ELECTION": "true", "AIOPS_NAMESPACE": namespace, "AIOPS_LEADER_LEASE_NAME": "ha"}
    a = OperatorProcess(kubeconfig, tmp_path / "a.log", env)
    b = OperatorProcess(kubeconfig, tmp_path / "b.log", env)
    a.start(until="leading with Lease")
    b.start(until="waiting for Lease")
    try:
        signalled = time.monotonic()
        a.stop()  # SIGTERM: kopf stops, the Lease is released
        # kopf waits 5 s for its stop-flag task when a signal stops it, unless the cleanup ends it (liveness.release)
        assert time.monotonic() - signalled < 4, "the leader took 5 s or more to exit after SIGTERM"
        assert "released Lease" in a.log()
        stopped = time.monotonic()
        wait_for(lambda: "leading with Lease" in b.log(), 10, "the standby to lead")
        assert time.monotonic() - stopped < 5, "the standby waited for the lease to expire"
    finally:
        a.stop()
        b.stop()
