"""Offline diagnosis of bundles written from the failure scenarios: the collectors and analyzers run
unchanged on the bundle, triage finds what is broken, the outputs, the CLI, and rootCause runs with
spec.bundle."""

import base64
import json
from datetime import UTC, datetime

import pytest
import yaml
from test_runs import context

from aiops.api import ANALYSIS_RUN, INCIDENT
from aiops.api.incident import Diagnosis
from aiops.bundles import analyze, reader, source, stored, triage
from aiops.cli import main
from aiops.diagnosis.collectors import kubernetes as k8s_collector
from aiops.diagnosis.evidence import EvidenceBundle, Target
from aiops.runs import execute
from aiops.settings import Settings
from aiops_dev.eval.cases import CASES, load
from support.bundles import dump_tree, must_gather_tree, scenario_objects, tar_gz
from support.fakekube import FakeClient

NOW = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
POD = "checkout-a77687ea6c-x2kqz"
LOGS = {
    ("shop", POD, "app"): [
        f"request {i} failed: dial tcp 10.0.0.7:5432: connect: connection refused" for i in range(30)
    ]
}


@pytest.fixture(scope="module")
def oom_dump(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundle") / "dump"
    objects = scenario_objects(load("checkout-oomkilled"), "shop", NOW)
    objects += scenario_objects(load("ledger-node-not-ready"), "ledger", NOW)
    return dump_tree(root, objects, LOGS)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_scenario_ranks_its_root_cause_first_from_a_must_gather(tmp_path, case):
    snap = reader.load(must_gather_tree(tmp_path, scenario_objects(case, "scenario", NOW)))
    t = case.target
    target = Target(t["kind"], t["name"], "scenario")
    result = analyze.analyze(snap, Settings(llm=None), target).diagnoses[0].result
    top = result.diagnosis.suspects[0]
    assert case.expects(top.failure_mode, top.resource), [
        (s.failure_mode, s.resource) for s in result.diagnosis.suspects
    ]


def test_the_collector_reads_a_bundle_through_the_cache_and_the_api(oom_dump):
    snap = reader.load(oom_dump)
    access = source.access(snap)
    bundle = EvidenceBundle(Target("Deployment", "checkout", "shop"), NOW, NOW)
    k8s_collector.collect(access.api, bundle, access.cache)
    assert sorted(p["metadata"]["name"] for p in bundle.pods) == ["checkout-a77687ea6c-p7mfd", POD]
    assert [rs["metadata"]["name"] for rs in bundle.replicasets] == ["checkout-a77687ea6c", "checkout-d68a762545"]
    assert [n["metadata"]["name"] for n in bundle.nodes] == ["worker-1"] and len(bundle.events) == 2
    assert bundle.logs[f"{POD}/app"] == LOGS[("shop", POD, "app")]
    assert bundle.missing == [
        "kubernetes/resourcequotas: HTTP 404 not in the bundle: the kubectl cluster-info dump holds no resourcequotas",
        "logs/checkout-a77687ea6c-p7mfd/app: HTTP 404 the bundle holds no log of container app of pod "
        "shop/checkout-a77687ea6c-p7mfd",
    ]


def test_logs_are_served_tailed_and_the_previous_container_first(oom_dump):
    snap = reader.load(oom_dump)
    snap.logs[("shop", POD, "app")]["previous"] = "before the crash\nOOM"
    api = source.BundleApi(snap)
    base = f"{source.HOST}/api/v1/namespaces/shop/pods/{POD}/log?container=app"
    assert api.call_api("GET", f"{base}&tailLines=2").read().decode().count("\n") == 1
    assert api.call_api("GET", f"{base}&previous=true").read() == b"before the crash\nOOM"
    assert api.call_api("DELETE", base).status == 405


def test_without_a_target_the_broken_targets_are_diagnosed_worst_first(oom_dump):
    snap = reader.load(oom_dump)
    problems = triage.find(snap)
    assert [p.key for p in problems] == ["Deployment/shop/checkout", "Deployment/ledger/ledger", "Node/worker-3"]
    assert problems[0].symptoms[:2] == [
        "container app: CrashLoopBackOff (pods checkout-a77687ea6c-x2kqz, checkout-a77687ea6c-p7mfd)",
        "container app: OOMKilled (pods checkout-a77687ea6c-x2kqz, checkout-a77687ea6c-p7mfd)",
    ]
    assert "0/3 replicas ready" in problems[1].symptoms and problems[2].symptoms == ["NotReady (NodeStatusUnknown)"]
    result = analyze.analyze(snap, Settings(llm=None))
    tops = {d.key: (d.result.diagnosis.suspects[0].failure_mode, d.result.diagnosis.suspects[0].resource)
            for d in result.diagnoses}  # fmt: skip
    assert tops == {
        "Deployment/shop/checkout": ("OOMKilled", "Pod/checkout-a77687ea6c-p7mfd"),
        "Deployment/ledger/ledger": ("NodeNotReady", "Node/worker-3"),
        "Node/worker-3": ("NodeNotReady", "Node/worker-3"),
    }
    oom = result.diagnoses[0].result.diagnosis
    assert "ConnectionRefused" in {s.failure_mode for s in oom.suspects}  # from the bundle's log file
    assert "prometheus: a support bundle holds no metrics" in result.diagnoses[0].result.evidence_gaps
    capped = analyze.analyze(snap, Settings(llm=None), max_targets=1)
    assert [d.key for d in capped.diagnoses] == ["Deployment/shop/checkout"]
    assert [p.key for p in capped.not_diagnosed] == ["Deployment/ledger/ledger", "Node/worker-3"]
    assert "3 broken targets found; the worst 1 diagnosed (at most 1" in analyze.report(capped)


def test_the_outputs_hold_the_incident_diagnosis_and_what_the_bundle_held(oom_dump):
    result = analyze.analyze(
        reader.load(oom_dump), Settings(llm=None), analyze.parse_target("deployment/shop/checkout")
    )
    data = analyze.to_dict(result)
    entry = data["diagnoses"][0]
    assert entry["target"] == "Deployment/shop/checkout"
    assert Diagnosis.model_validate(entry["diagnosis"]).suspects[0].failure_mode == "OOMKilled"
    assert data["bundle"]["layout"] == "kubectl cluster-info dump" and data["bundle"]["logFiles"] == 1
    text = analyze.report(result)
    for line in (
        f"Bundle: {oom_dump} (kubectl cluster-info dump), taken at 2026-12-06T06:00:00Z",
        "== 1. Deployment/shop/checkout ==",
        "Root cause (95% confidence, COMPLETED, deterministic-analyzers):",
        "Evidence gaps:",
    ):
        assert line in text
    assert "     - oom-checkout-a77687ea6c-" in text  # each suspect with its evidence


@pytest.mark.parametrize("text", ["Deployment/checkout", "Widget/shop/x", "Pod//x", "Node/a/b"])
def test_a_bad_target_says_the_expected_form(text):
    with pytest.raises(ValueError, match="expected Kind/namespace/name \\(or Node/name, Namespace/name\\)"):
        analyze.parse_target(text)


def test_the_cli_prints_yaml_json_or_a_report_and_fails_clearly(oom_dump, tmp_path, capsys):
    bundle = str(tar_gz(oom_dump, tmp_path / "dump.tar.gz"))
    assert main(["analyze", bundle, "--target", "Node/worker-3", "-o", "yaml"]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    assert doc["diagnoses"][0]["diagnosis"]["suspects"][0]["failureMode"] == "NodeNotReady"
    assert main(["analyze", bundle, "-o", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["diagnoses"]) == 3
    assert main(["analyze", str(tmp_path / "nothing")]) == 1
    assert "aiops analyze: " in capsys.readouterr().err
    assert main(["analyze", bundle, "--target", "Deployment/x"]) == 2
    assert main(["analyze", bundle, "--model-url", "http://127.0.0.1:1/v1"]) == 2
    assert "--model-url and --model go together" in capsys.readouterr().err


def run_with_bundle(client: FakeClient, bundle: dict) -> None:
    meta = {"name": "checkout", "namespace": "shop", "creationTimestamp": "2026-12-06T07:00:00Z"}
    spec = {
        "title": "checkout restarting",
        "severity": "critical",
        "target": {"kind": "Deployment", "name": "checkout"},
    }
    status = {"phase": "Triaging", "analysisRunRef": {"name": "checkout-rca"}}
    client.put(INCIDENT, {"metadata": meta, "spec": spec, "status": status})
    run_spec = {"type": "rootCause", "incidentRef": {"name": "checkout"}, "bundle": bundle}
    run = {
        "apiVersion": "aiops.dev/v1alpha1",
        "metadata": {"name": "checkout-rca", "namespace": "shop"},
        "spec": run_spec,
    }
    run = client.put(ANALYSIS_RUN, run | {"status": {"phase": "Pending", "attempts": 0}})
    execute(context(client), run)


def test_a_rootcause_run_diagnoses_its_incident_from_a_configmap_bundle(oom_dump, tmp_path, monkeypatch):
    packed = tar_gz(oom_dump, tmp_path / "dump.tar.gz").read_bytes()
    cm = {"binaryData": {"bundle.tar.gz": base64.b64encode(packed).decode()}}
    monkeypatch.setattr(stored.kube, "api_client", lambda: None)
    monkeypatch.setattr(stored.kube, "request", lambda api, method, path: json.dumps(cm).encode())
    client = FakeClient()
    run_with_bundle(client, {"configMap": {"name": "checkout-dump"}})
    status = client.get(INCIDENT, "checkout", "shop")["status"]
    assert status["phase"] == "Diagnosed" and status["diagnosis"]["suspects"][0]["failureMode"] == "OOMKilled"
    assert "prometheus: a support bundle holds no metrics" in status["evidenceGaps"]
    assert client.get(ANALYSIS_RUN, "checkout-rca", "shop")["status"]["phase"] == "Succeeded"

    cm = {"data": {"bundle.tar.gz": "text"}}
    client = FakeClient()
    run_with_bundle(client, {"configMap": {"name": "checkout-dump"}})
    error = client.get(ANALYSIS_RUN, "checkout-rca", "shop")["status"]["error"]
    assert error.startswith("spec.bundle: ConfigMap shop/checkout-dump has no key bundle.tar.gz in binaryData")


def test_a_rootcause_run_with_a_volume_bundle_fails_saying_what_to_use(monkeypatch):
    client = FakeClient()
    run_with_bundle(client, {"persistentVolumeClaim": {"claimName": "dumps", "path": "case-123/dump.tar.gz"}})
    status = client.get(ANALYSIS_RUN, "checkout-rca", "shop")["status"]
    assert status["phase"] == "Failed"
    assert "needs the claim mounted into the operator, which it does not do" in status["error"]
    assert "use spec.bundle.configMap, or run `aiops analyze` on it" in status["error"]
    assert client.get(INCIDENT, "checkout", "shop")["status"]["phase"] == "Triaging"
