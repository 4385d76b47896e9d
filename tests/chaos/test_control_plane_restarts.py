"""The API server, then etcd, restarted under a burst of Incidents (model off): every Incident is diagnosed,
each exactly once, with one AnalysisRun. A watch that kopf gave up on ends the operator, saying which, instead of
leaving it running blind."""

from __future__ import annotations

import time

import pytest

from aiops_dev.controlplane import free_port
from aiops_dev.eval import cases
from harness import OperatorProcess, kubeconfig_for_secret
from support import counting
from support.observe import DiagnosisLog, total

BURST = 200


@pytest.mark.timeout(420)
def test_api_server_and_etcd_restart_during_a_burst(control_plane, kubeconfig, kubectl, operator_env, namespace,
                                                     writer, tally):  # fmt: skip
    if control_plane is None:
        pytest.skip("restarts the local control plane; not done to an AIOPS_TEST_KUBECONFIG cluster")
    cases.write("checkout-oomkilled", writer)
    port = free_port()
    operator_env({"AIOPS_METRICS_PORT": str(port)})
    names = [f"burst-{i:03d}" for i in range(BURST)]
    started = time.monotonic()
    with DiagnosisLog(kubeconfig, namespace) as log:
        counting.create(kubectl, names, namespace, analysis={"llm": False})
        created = time.monotonic() - started

        counting.until(counting.reached(kubectl, namespace, "Diagnosed", BURST // 5), 120)
        control_plane.restart("kube-apiserver", down_s=2)
        api_back = time.monotonic() - started
        counting.until(counting.reached(kubectl, namespace, "Diagnosed", BURST // 2), 120)
        control_plane.restart("etcd", down_s=2)
        etcd_back = time.monotonic() - started
        counting.until(counting.reached(kubectl, namespace, "Diagnosed", BURST), 180)
    count = counting.diagnoses(kubectl, names, namespace, log)
    analyses = total(port, "aiops_analysis_duration_seconds_count", type="rootCause")
    count.duplicated += [f"{analyses - BURST:.0f} analyses recorded more than once"] * max(int(analyses) - BURST, 0)
    tally(BURST, len(count.lost), len(count.duplicated),
          f"created in {created:.0f}s; API server back at {api_back:.0f}s, etcd at {etcd_back:.0f}s; "
          f"{analyses:.0f} analyses recorded")  # fmt: skip
    assert not count.lost and not count.duplicated, f"{count}\n{counting.summary(kubectl, namespace)}"


@pytest.mark.timeout(300)
def test_a_watch_kopf_gave_up_on_ends_the_operator(control_plane, kubeconfig, kubectl, namespace, tmp_path, tally):
    """kopf never starts again a watcher whose requests gave up (a 5xx or 403 answer past the retries), so the
    operator would run on without seeing that kind: it exits with status 1 and names the watch, for the Deployment
    to restart it. Here its rights are revoked and the API server restarted, which ends every watch stream."""
    if control_plane is None:
        pytest.skip("restarts the local control plane; not done to an AIOPS_TEST_KUBECONFIG cluster")
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": f"{namespace}-operator"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
               "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": namespace}]}  # fmt: skip
    kubectl("create", "serviceaccount", "operator", "-n", namespace)
    kubectl.apply(binding)
    token = kubectl("create", "token", "operator", "-n", namespace).stdout.strip()
    own = tmp_path / "operator.kubeconfig"
    own.write_bytes(kubeconfig_for_secret(kubeconfig, token))
    env = {"AIOPS_API_RETRY_S": "20"}
    operator = OperatorProcess(str(own), tmp_path / "operator.log", env, ("run", "-n", namespace))
    operator.start()
    try:
        kubectl("delete", "clusterrolebinding", binding["metadata"]["name"])
        started = time.monotonic()
        control_plane.restart("kube-apiserver")
        if not counting.until(lambda: operator.proc.poll() is not None, 150):
            pytest.fail(f"the operator did not exit within 150 s; it was at:\n{operator.stacks()}")
        code, log = operator.proc.returncode, operator.log()
    finally:
        operator.stop()
    tally(1, int(code != 1), 0, f"exit status {code}, {time.monotonic() - started:.0f}s after the restart began")
    assert code == 1, log[-3000:]
    # Either kopf's watcher ends alone (the heartbeat sees it and stops kopf), or kopf's orchestrator of watchers fails
    # with it and kopf stops on its own (or wedges, and the watchdog ends it): each says which watch failed, and why.
    said = [line for line in log.splitlines() if "kopf stopped watching" in line or "multitasker has failed" in line]
    assert said and "forbidden" in said[0].lower(), log[-3000:]
