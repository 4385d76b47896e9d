"""Analysis workers (`aiops worker`) beside a controller in workers mode, on the local control plane: every run
diagnosed exactly once by two workers; a worker killed mid-burst loses nothing, its runs finished by the other
once their leases lapse; a worker without rights to Leases claims nothing, says so, and resumes when granted."""

from __future__ import annotations

import contextlib
import socket
import time

import pytest
import yaml

from aiops_dev.controlplane import free_port
from aiops_dev.eval import cases
from harness import (
    OperatorProcess,
    checkout_incident,
    condition,
    kubeconfig_for_secret,
    phase,
    wait_for,
)
from support.diagnoses import reply_for
from support.observe import DiagnosisLog, scrape
from support.scripted_openai import ScriptedOpenAI, answer, delayed

DONE = ("Diagnosed", "Failed")


def workers_env(**extra: str) -> dict[str, str]:
    return {"AIOPS_RUN_EXECUTION": "workers", "AIOPS_RUN_LEASE_S": "6", **extra}


def start_worker(kubeconfig: str, log_dir, name: str, namespace: str, env: dict[str, str]) -> OperatorProcess:
    worker = OperatorProcess(kubeconfig, log_dir / f"{name}.log", env, command=("worker", "-n", namespace))
    worker.start()
    return worker


def holder(worker: OperatorProcess) -> str:
    return f"{socket.gethostname()}-{worker.proc.pid}"


def incidents(kubectl, names: list[str], namespace: str, **spec) -> None:
    docs = [yaml.safe_dump(checkout_incident(n, **spec)) for n in names]
    kubectl("apply", "-n", namespace, "-f", "-", input="\n---\n".join(docs))


def all_done(kubectl, names: list[str], namespace: str) -> bool:
    items = {i["metadata"]["name"]: i for i in kubectl.json("get", "incidents", "-n", namespace)["items"]}
    return all(phase(items.get(n) or {}) in DONE for n in names)


def runs_by_incident(kubectl, namespace: str) -> dict[str, dict]:
    items = kubectl.json("get", "analysisruns", "-n", namespace)["items"]
    return {r["spec"]["incidentRef"]["name"]: r for r in items}


def leases(kubectl, namespace: str) -> list[dict]:
    return kubectl.json("get", "leases.coordination.k8s.io", "-n", namespace, "-l", "aiops.dev/analysis-run")["items"]


def assert_diagnosed_once(kubectl, log: DiagnosisLog, names: list[str], namespace: str) -> None:
    for n in names:
        assert len(log.diagnosed_at.get(n, ())) == 1, f"{n}: diagnosed at {log.diagnosed_at.get(n)}"
        obj = kubectl.get("incident", n, namespace)
        assert phase(obj) == "Diagnosed", (n, obj["status"].get("diagnosis"))
        reasons = [e["reason"] for e in obj["status"]["timeline"]]
        assert reasons.count("RootCauseIdentified") == 1, (n, reasons)
        events = [e for e in kubectl.events(namespace, n) if e["reason"] == "RootCauseIdentified"]
        assert sum(e.get("count") or 1 for e in events) == 1, (n, events)
    assert leases(kubectl, namespace) == [], "every lease released once its run was written"


def test_two_workers_diagnose_every_incident_exactly_once(kubeconfig, kubectl, operator_env, namespace, writer,
                                                          tmp_path):  # fmt: skip
    cases.write("checkout-oomkilled", writer)
    port, ports = free_port(), [free_port(), free_port()]
    operator_env({"AIOPS_RUN_EXECUTION": "workers", "AIOPS_METRICS_PORT": str(port)})
    names = [f"burst-{i:02d}" for i in range(20)]
    # A model answering after 1 s: twenty runs outlast a worker's start, so both workers get a share. Without it
    # the analyzers take milliseconds and the first worker up finishes the queue before the second claims.
    llm = ScriptedOpenAI(*[delayed(1, answer(reply_for(writer)))] * 20)
    with llm, DiagnosisLog(kubeconfig, namespace) as log:
        incidents(kubectl, names, namespace)
        # No worker yet: the controller accepts the runs, executes none, and exports them as the queue.
        wait_for(lambda: scrape(port, "aiops_runs_queued") == 20, 60, "20 runs queued")
        assert {phase(r) for r in runs_by_incident(kubectl, namespace).values()} == {"Pending"}
        workers = [
            start_worker(kubeconfig, tmp_path, f"worker-{i}", namespace,
                         workers_env(AIOPS_ANALYSIS_WORKERS="2", AIOPS_METRICS_PORT=str(ports[i]),
                                     AIOPS_LLM_BASE_URL=llm.url, AIOPS_LLM_MODEL=llm.model))
            for i in range(2)
        ]  # fmt: skip
        try:
            wait_for(lambda: all_done(kubectl, names, namespace), 90, "the burst diagnosed")
            wait_for(lambda: scrape(port, "aiops_runs_queued") == 0, 30, "an empty queue")
            # A worker counts a run once it has released its lease, a moment after the outcome is written.
            finished = [0.0, 0.0]

            def counted() -> bool:
                finished[:] = [scrape(p, 'aiops_worker_runs_total{outcome="finished"}') or 0 for p in ports]
                return sum(finished) >= 20

            with contextlib.suppress(AssertionError):
                wait_for(counted, 10, "both workers' run counters")
        finally:
            for w in workers:
                w.stop()
    assert_diagnosed_once(kubectl, log, names, namespace)
    assert {r["status"]["attempts"] for r in runs_by_incident(kubectl, namespace).values()} == {1}
    assert sum(finished) == 20 and min(finished) > 0, f"runs per worker: {finished}"
    assert "Traceback" not in "".join(w.log() for w in workers)


def test_a_killed_workers_runs_are_finished_by_the_other_after_their_leases_lapse(
    kubeconfig, kubectl, operator_env, namespace, writer, tmp_path
):
    cases.write("checkout-oomkilled", writer)
    reply = reply_for(writer)
    names = [f"slow-{i:02d}" for i in range(10)]
    with ScriptedOpenAI(*[delayed(3, answer(reply))] * 40) as llm:
        operator_env({"AIOPS_RUN_EXECUTION": "workers"})
        env = workers_env(AIOPS_ANALYSIS_WORKERS="2", AIOPS_LLM_BASE_URL=llm.url, AIOPS_LLM_MODEL=llm.model)
        doomed = start_worker(kubeconfig, tmp_path, "doomed", namespace, env)
        survivor = start_worker(kubeconfig, tmp_path, "survivor", namespace, env)
        dead = holder(doomed)
        with DiagnosisLog(kubeconfig, namespace) as log:
            incidents(kubectl, names, namespace)
            runs = {}

            def doomed_is_mid_run() -> list[str]:
                runs.update({r["metadata"]["name"]: r for r in runs_by_incident(kubectl, namespace).values()})
                mine = [
                    lease["metadata"]["labels"]["aiops.dev/analysis-run"]
                    for lease in leases(kubectl, namespace)
                    if lease["spec"]["holderIdentity"] == dead
                ]
                return [n for n in mine if phase(runs.get(n) or {}) == "Running"]

            wait_for(doomed_is_mid_run, 60, "the doomed worker to be running analyses")
            time.sleep(1)  # its model requests are out
            orphans = doomed_is_mid_run()
            doomed.stop(kill=True)
            wait_for(lambda: all_done(kubectl, names, namespace), 120, "every run finished")
        survivor.stop()
    assert orphans, "the kill left nothing to take over"
    assert_diagnosed_once(kubectl, log, names, namespace)
    attempts = {r["metadata"]["name"]: r["status"]["attempts"] for r in runs_by_incident(kubectl, namespace).values()}
    assert {n: attempts[n] for n in orphans} == dict.fromkeys(orphans, 2), "each orphan started over, once"
    assert set(attempts.values()) <= {1, 2} and sum(attempts.values()) == len(names) + len(orphans), attempts
    for run in orphans:
        line = f"took over the expired lease of AnalysisRun {namespace}/{run} from {dead}"
        assert line in survivor.log(), line
    assert len(names) <= len(llm.requests) <= len(names) + len(orphans)


def rbac_for(namespace: str, *values: str) -> list[dict]:
    """The chart's RBAC for a release in `namespace`, cluster-scoped names made the test's own."""
    from test_chart import render

    docs = [d for d in yaml.safe_load_all(render(namespace, *values)) if d and d["kind"] in (
        "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")]  # fmt: skip
    for d in docs:
        if d["kind"].startswith("Cluster"):
            d["metadata"]["name"] = f"{namespace}-{d['metadata']['name']}"
        if d["kind"] == "ClusterRoleBinding":
            d["roleRef"]["name"] = f"{namespace}-{d['roleRef']['name']}"
    return docs


def test_a_worker_refused_leases_claims_nothing_says_so_and_resumes_once_granted(
    kubeconfig, kubectl, operator_env, namespace, writer, tmp_path
):
    cases.write("checkout-oomkilled", writer)
    operator_env({"AIOPS_RUN_EXECUTION": "workers"})
    docs = rbac_for(namespace, "--set", "workers.enabled=true")
    bindings = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    lease_binding = next(d for d in bindings if d["metadata"]["name"].endswith("-worker-leases"))
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([d for d in docs if d is not lease_binding]))
    # The worker runs as the chart's ServiceAccount, everything granted but the run leases.
    token = kubectl("create", "token", "aiops-aiops-operator", "-n", namespace).stdout.strip()
    sa_kubeconfig = tmp_path / "worker.kubeconfig"
    sa_kubeconfig.write_bytes(kubeconfig_for_secret(kubeconfig, token))
    port = free_port()
    worker = start_worker(str(sa_kubeconfig), tmp_path, "worker", namespace,
                          workers_env(AIOPS_METRICS_PORT=str(port)))  # fmt: skip
    try:
        kubectl.apply(checkout_incident("refused", analysis={"llm": False}), namespace)
        refused = f"the Lease API answered 403 Forbidden in namespace {namespace}"
        said = f"not claiming runs: {refused}"
        wait_for(lambda: said in worker.log(), 30, "the worker to say it cannot claim")
        run = wait_for(lambda: condition(runs_by_incident(kubectl, namespace).get("refused"), "Claimed"), 15,
                       "Claimed on the run")  # fmt: skip
        assert (run["status"], run["reason"]) == ("False", "LeaseUnavailable")
        assert (
            run["message"] == f"no worker can claim it: the Lease API answered 403 Forbidden in namespace {namespace}"
        )
        assert scrape(port, "aiops_worker_claiming") == 0
        time.sleep(4)  # a sweep or two: still nothing claimed, the run waits
        assert phase(runs_by_incident(kubectl, namespace)["refused"]) == "Pending"

        kubectl("apply", "-f", "-", input=yaml.safe_dump(lease_binding))
        kubectl.wait("incident", "refused", namespace, until=lambda o: phase(o) in DONE, timeout=30, what="diagnosed")
        assert "the Lease API answers again: claiming runs" in worker.log()
        assert scrape(port, "aiops_worker_claiming") == 1
        claimed = condition(runs_by_incident(kubectl, namespace)["refused"], "Claimed")
        assert (claimed["status"], claimed["reason"], claimed["message"]) == (
            "True",
            "Claimed",
            f"worker {holder(worker)}",
        )
    finally:
        worker.stop()


def test_workers_finish_every_run_across_an_api_server_restart(
    control_plane, kubeconfig, kubectl, operator_env, namespace, writer, tmp_path
):
    if control_plane is None:
        pytest.skip("restarts the local control plane's API server; not done to an AIOPS_TEST_KUBECONFIG cluster")
    cases.write("checkout-oomkilled", writer)
    names = [f"restart-{i:02d}" for i in range(12)]
    with ScriptedOpenAI(*[delayed(2, answer({"no": "diagnosis"}))] * 200) as llm:  # refused: analyzers' fallback
        operator_env({"AIOPS_RUN_EXECUTION": "workers"})
        env = workers_env(AIOPS_ANALYSIS_WORKERS="2", AIOPS_LLM_BASE_URL=llm.url, AIOPS_LLM_MODEL=llm.model)
        workers = [start_worker(kubeconfig, tmp_path, f"worker-{i}", namespace, env) for i in range(2)]
        try:
            with DiagnosisLog(kubeconfig, namespace) as log:
                incidents(kubectl, names, namespace)
                wait_for(lambda: len(leases(kubectl, namespace)) >= 3, 60, "runs in flight")
                control_plane.restart("kube-apiserver")
                wait_for(lambda: all_done(kubectl, names, namespace), 180, "every run finished after the restart")
        finally:
            for w in workers:
                w.stop()
    logs = "".join(w.log() for w in workers)
    assert "not claiming runs: the Lease API is unreachable" in logs, "the outage was noticed"
    assert "the Lease API answers again: claiming runs" in logs
    assert_diagnosed_once(kubectl, log, names, namespace)
