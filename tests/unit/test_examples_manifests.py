"""Every example manifest parses with its kind's spec model, and the generated ones match their sources:
cheap checks that catch drift between examples/, deploy/ and the models without a cluster."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from aiops.api import KINDS
from aiops.api.analysisrun import AnalysisType
from aiops.api.common import DNS_SUBDOMAIN
from aiops.clusters import probe
from aiops_dev import argocd
from aiops_dev.eval.cases import CASES

REPO = Path(__file__).resolve().parents[2]
BY_KIND = {k.kind: k for k in KINDS}
MANIFEST_DIRS = ("examples", "deploy/sop-library")


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def manifests() -> list[tuple[Path, dict]]:
    out = []
    for folder in MANIFEST_DIRS:
        for path in sorted((REPO / folder).rglob("*.yaml")):
            if path.name == "kustomization.yaml" or "prometheus" in path.parts:  # prometheus/: rule files
                continue
            out += [(path.relative_to(REPO), doc) for doc in documents(path)]
    return out


MANIFESTS = manifests()
OURS = [(p, d) for p, d in MANIFESTS if d.get("apiVersion") == "aiops.dev/v1alpha1"]


def test_found_the_examples():
    kinds = {d["kind"] for _, d in OURS}
    assert kinds == {k.kind for k in KINDS}, kinds
    assert len(OURS) >= 45


@pytest.mark.parametrize("path,doc", OURS, ids=[f"{p}:{d['metadata']['name']}" for p, d in OURS])
def test_example_parses_with_its_model(path, doc):
    kind = BY_KIND[doc["kind"]]
    assert set(doc) <= {"apiVersion", "kind", "metadata", "spec"}, f"{path}: no status in a manifest"
    kind.spec.model_validate(doc["spec"])
    name = doc["metadata"]["name"]
    assert len(name) <= 63 and re.match(DNS_SUBDOMAIN, name), name
    if not kind.namespaced:
        assert "namespace" not in doc["metadata"], f"{path}: {kind.kind} is cluster-scoped"


def test_an_analysisrun_of_every_type():
    types = {d["spec"]["type"] for _, d in OURS if d["kind"] == "AnalysisRun"}
    assert types == {t.value for t in AnalysisType}


def test_an_incident_per_failure_scenario():
    incidents = {p.stem: d for p, d in OURS if p.parent == Path("examples/incidents")}
    assert set(incidents) == {c.name for c in CASES}
    for case in CASES:
        spec = incidents[case.name]["spec"]
        assert spec == case.incident["spec"]
        assert case.failure_mode not in yaml.safe_dump(spec), "the Incident names the symptom only"


def test_sop_library_rendered_for_every_runbook():
    runbooks = {p.stem for p in (REPO / "sop-library").glob("*.md") if p.name != "README.md"}
    rendered = {p.stem for p, d in OURS if p.parent == Path("deploy/sop-library")}
    assert rendered == runbooks


def test_generated_files_match_their_sources():
    stale = [str(path) for path, _, _ in argocd.check(REPO)]
    assert not stale, f"stale: {stale}; run `aiops-dev argocd` and commit"


def test_check_names_a_leftover_and_a_changed_file(tmp_path):
    for folder in ("sop-library", "deploy", "examples/incidents"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    assert argocd.check(tmp_path) == []
    (tmp_path / "deploy/sop-library/gone.yaml").write_text("kind: SOP\n")
    (tmp_path / "sop-library/oomkilled.md").write_text(
        (REPO / "sop-library/oomkilled.md").read_text().replace("owner: platform-sre", "owner: sre-team")
    )
    stale = {str(p) for p, _, _ in argocd.check(tmp_path)}
    assert stale == {"deploy/sop-library/gone.yaml", "deploy/sop-library/oomkilled.yaml"}
    argocd.write_all(tmp_path)
    assert argocd.check(tmp_path) == []
    assert "owner: sre-team" in (tmp_path / "deploy/sop-library/oomkilled.yaml").read_text()


def test_spoke_secret_matches_the_reference_and_its_kubeconfig_loads():
    (cluster,) = [d for p, d in OURS if p == Path("examples/fleet/managedcluster-spoke.yaml")]
    (secret,) = [d for p, d in MANIFESTS if p == Path("examples/fleet/spoke-kubeconfig-secret.yaml")]
    ref = cluster["spec"]["kubeconfigSecretRef"]
    assert (secret["kind"], secret["metadata"]["name"], secret["metadata"]["namespace"]) == (
        "Secret",
        ref["name"],
        ref["namespace"],
    )
    raw = secret["stringData"][ref["key"]]
    assert "REPLACE" in raw and ".invalid" in raw, "the placeholder says so"
    # A well-formed kubeconfig: applied as is, the probe says Unreachable rather than InvalidSpec.
    probe.client_from_kubeconfig(raw.encode())


def test_applications_point_at_paths_in_this_repository():
    apps = [d for p, d in MANIFESTS if d.get("kind") == "Application"]
    assert {a["metadata"]["name"] for a in apps} == {"aiops-examples", "aiops-operator"}
    for app in apps:
        assert (REPO / app["spec"]["source"]["path"]).is_dir(), app["spec"]["source"]["path"]
    assert (REPO / "examples/argocd/content/kustomization.yaml").exists()


def _kustomize(path: str) -> list[dict]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not installed")
    out = subprocess.run(["kubectl", "kustomize", str(REPO / path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def test_sync_waves_put_the_crds_first():
    docs = _kustomize("examples/argocd")
    waves = {}
    for d in docs:
        annotations = d["metadata"].get("annotations") or {}
        waves.setdefault(d["kind"], set()).add(annotations.get("argocd.argoproj.io/sync-wave"))
    assert waves == {"CustomResourceDefinition": {"-1"}, "SOP": {"0"}, "Incident": {"1"}}
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    assert len(crds) == len(KINDS)
    assert all("Prune=false" in d["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] for d in crds)
    content = _kustomize("examples/argocd/content")
    assert {d["kind"] for d in content} == {"SOP", "Incident"}, "content alone leaves the CRDs to the chart"
