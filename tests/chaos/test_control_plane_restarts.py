"""The API server, then etcd, restarted under a burst of Incidents (model off): every Incident is diagnosed,
each exactly once, with one AnalysisRun."""

from __future__ import annotations

import time

import pytest

from aiops_dev.controlplane import free_port
from aiops_dev.eval import cases
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
