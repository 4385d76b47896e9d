"""`aiops analyze` on real `kubectl cluster-info dump` output of the test cluster (with the container logs a
kubelet would have given it written in) and on a must-gather written from the same objects: the same root
cause as the live diagnosis, the model path, a ConfigMap-held bundle, and the time it takes."""

import json
import time

import pytest
import yaml

from aiops.api.analysisrun import BundleSource, ConfigMapBundle
from aiops.bundles import analyze, reader, stored
from aiops.bundles.archive import BundleError
from aiops.diagnosis.evidence import Target
from aiops.settings import Settings
from aiops_dev.eval.cases import CASES, load
from aiops_dev.eval.scenario_suite import diagnose_scenario, local_cluster
from support.bundles import (
    DUMP_FILES,
    big_dump,
    cluster_info_dump,
    live_objects,
    must_gather_tree,
    run_cli,
    tar_gz,
    write_dump_logs,
)
from support.scripted_openai import ScriptedOpenAI, answer


@pytest.fixture(scope="module", autouse=True)
def pipeline_cluster(kubeconfig):
    """The live diagnosis reads the cluster through kube.api_client(): point it at the session's cluster."""
    with local_cluster(kubeconfig) as api:
        yield api


@pytest.fixture(autouse=True)
def no_stray_nodes(kubectl):
    """Nodes are cluster-wide: the ones a scenario writes (a NotReady worker) would degrade the shared control
    plane's hub for the tests after this one."""
    before = {n["metadata"]["name"] for n in kubectl.json("get", "nodes")["items"]}
    yield
    for node in kubectl.json("get", "nodes")["items"]:
        if node["metadata"]["name"] not in before:
            kubectl("delete", "node", node["metadata"]["name"], "--wait=false", check=False)


def top(result) -> tuple[str, str]:
    s = result.diagnosis.suspects[0]
    return s.failure_mode, s.resource


def crash_logs(namespace: str, pods: list[str]) -> dict:
    return {
        (namespace, pod, "app"): [f"order {i}: dial tcp 10.0.3.4:5432: connect: connection refused" for i in range(40)]
        for pod in pods
    }


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_bundle_of_each_scenario_names_the_live_root_cause(case, kubectl, namespace, writer, tmp_path):
    case.write(writer)
    kubectl.apply(case.incident_manifest(namespace), namespace)
    incident = kubectl.json("get", "incident", case.name, "-n", namespace)
    live = diagnose_scenario(case, incident, Settings(llm=None))
    assert live.rank == 1, live
    target = Target(case.target["kind"], case.target["name"], namespace)

    mg = reader.load(must_gather_tree(tmp_path / "mg", live_objects(kubectl, namespace)))
    offline = analyze.analyze(mg, Settings(llm=None), target).diagnoses[0].result
    assert top(offline) == (live.ranked[0], live.resources[0]), offline.diagnosis.suspects

    # A cluster-info dump holds pods, workloads, services, events and nodes only: the scenarios that need no more.
    if {d["kind"] for d in case.documents} <= {*DUMP_FILES, "Node"}:
        dump = reader.load(cluster_info_dump(kubectl, [namespace], tmp_path / "dump"))
        assert dump.layout == reader.CLUSTER_INFO_DUMP
        offline = analyze.analyze(dump, Settings(llm=None), target).diagnoses[0].result
        assert top(offline) == (live.ranked[0], live.resources[0]), offline.diagnosis.suspects


def test_aiops_analyze_alone_finds_and_diagnoses_what_is_broken(kubectl, namespace, writer, tmp_path):
    load("checkout-oomkilled").write(writer)
    pods = [p["metadata"]["name"] for p in kubectl.json("get", "pods", "-n", namespace)["items"]]
    dump = cluster_info_dump(kubectl, [namespace], tmp_path / "dump")
    assert sorted(p.name for p in (dump / namespace).iterdir() if p.is_dir()) == sorted(pods)
    write_dump_logs(dump, crash_logs(namespace, pods[:1]))
    mg = must_gather_tree(tmp_path / "mg", live_objects(kubectl, namespace), crash_logs(namespace, pods[:1]))

    for bundle in (dump, tar_gz(dump, tmp_path / "dump.tar.gz"), mg, tar_gz(mg, tmp_path / "mg.tar.gz")):
        proc = run_cli("analyze", str(bundle))
        assert proc.returncode == 0, proc.stderr
        text = proc.stdout
        assert f"== 1. Deployment/{namespace}/checkout ==" in text, text
        assert "Root cause (95% confidence, COMPLETED, deterministic-analyzers):" in text
        assert "OOMKilled" in text.split("Suspects:")[1].splitlines()[1]
        assert "ConnectionRefused" in text, "the bundle's logs feed the log analyzers"
        assert "1 container logs" in text
    assert "(must-gather)" in text

    proc = run_cli("analyze", str(dump), "--target", f"Deployment/{namespace}/checkout", "-o", "yaml")
    doc = yaml.safe_load(proc.stdout)
    assert doc["bundle"]["layout"] == "kubectl cluster-info dump" and doc["bundle"]["byKind"]["ReplicaSet"] == 2
    assert doc["diagnoses"][0]["diagnosis"]["suspects"][0]["failureMode"] == "OOMKilled"


def test_with_a_model_the_bundle_goes_through_the_gateway(kubectl, namespace, writer, tmp_path):
    load("checkout-oomkilled").write(writer)
    pods = sorted(p["metadata"]["name"] for p in kubectl.json("get", "pods", "-n", namespace)["items"])
    dump = cluster_info_dump(kubectl, [namespace], tmp_path / "dump")
    write_dump_logs(dump, crash_logs(namespace, pods))
    snap = reader.load(dump)
    expected = analyze.analyze(snap, Settings(llm=None), Target("Deployment", "checkout", namespace))
    suspect = expected.diagnoses[0].result.diagnosis.suspects[0]
    reply = {
        "rootCause": "checkout 1.5.0 exceeds its 256Mi memory limit and is OOMKilled.",
        "reasoning": "Both pods were OOMKilled with exit 137 after revision 2.",
        "mitigation": "Roll back checkout to revision 1.",
        "prevention": "Load-test memory before release.",
        "recommendation": "Roll back, then profile the heap of 1.5.0.",
        "confidence": 85,
        "evidence": suspect.evidence[:1],
        "suspects": [{"resource": suspect.resource, "failureMode": "OOMKilled", "reason": "exit 137"}],
    }
    with ScriptedOpenAI(answer(reply)) as llm:
        proc = run_cli("analyze", str(dump), "--target", f"Deployment/{namespace}/checkout", "-o", "json",
                       "--model-url", llm.url, "--model", llm.model)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)["diagnoses"][0]["diagnosis"]
    assert d["executionStatus"] == "COMPLETED" and d["model"] == llm.model and d["rootCause"] == reply["rootCause"]
    sent = json.dumps(llm.requests[0]["messages"])
    assert "connection refused" in sent, "the bundle's log templates reach the model"
    assert "10.0.3.4" not in sent, "what reaches the model is redacted"


def test_a_rootcause_bundle_is_read_from_a_configmap(kubectl, namespace, writer, tmp_path, pipeline_cluster):
    load("checkout-oomkilled").write(writer)
    packed = tar_gz(cluster_info_dump(kubectl, [namespace], tmp_path / "dump"), tmp_path / "dump.tar.gz")
    kubectl("create", "configmap", "dump", "-n", namespace, f"--from-file=bundle.tar.gz={packed}")
    snap = stored.load(BundleSource(config_map=ConfigMapBundle(name="dump")), namespace, pipeline_cluster)
    assert snap.source == f"ConfigMap {namespace}/dump key bundle.tar.gz"
    assert len(snap.all("Pod")) == 2 and snap.layout == reader.CLUSTER_INFO_DUMP
    with pytest.raises(BundleError, match=f"ConfigMap {namespace}/absent does not exist"):
        stored.load(BundleSource(config_map=ConfigMapBundle(name="absent")), namespace, pipeline_cluster)


def test_a_500_object_bundle_is_analysed_within_5_seconds(tmp_path):
    dump = big_dump(tmp_path / "dump", 500)
    started = time.perf_counter()
    proc = run_cli("analyze", str(dump))
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr
    assert "the worst 10 diagnosed (at most 10" in proc.stdout
    assert elapsed <= 5, f"aiops analyze took {elapsed:.1f}s on a {reader.load(dump).counts()} bundle"
