"""Change review through the real operator: a live Deployment, a real Prometheus backfilled with three hours of
its pods' usage and an SLO burn rate (Sloth's recording rule), past Incidents in a real PostgreSQL history, and
the Argo CD PreSync hook of deploy/argocd/change-review/ rendered by kustomize, applied, and its Job's command
run as the Job runs it: a risky change fails the gate, the same change overridden passes, a safe one passes."""

import os
import shutil
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import yaml

from aiops.core.status import now_utc
from aiops_dev.prometheus import PrometheusServer
from harness import REPO, condition, phase
from support.history import record_incidents

pytestmark = pytest.mark.skipif(not shutil.which("prometheus"), reason="needs prometheus and promtool")

HOOK = REPO / "deploy" / "argocd" / "change-review"
MIB = 1024 * 1024
MINUTES = 180
PODS = ("checkout-6f7c9d8b5-k2x9q", "checkout-6f7c9d8b5-p4m7w")
PEAK_MIB = 420  # one pod's working set peaks here; the example's 512Mi limit is above it, 256Mi below
# and its p95 is 300 MiB, under the example's 384Mi request
OVERRIDE = "aiops.dev/change-review-override"


def openmetrics(namespace: str, now: int) -> str:
    memory, cpu, burn = (
        "container_memory_working_set_bytes",
        "container_cpu_usage_seconds",
        "slo:current_burn_rate:ratio",
    )
    lines = [f"# TYPE {memory} gauge", f"# TYPE {cpu} counter", f"# TYPE {burn} gauge"]
    for minute in range(MINUTES + 1):
        t = now - MINUTES * 60 + minute * 60
        for n, pod in enumerate(PODS):
            where = f'namespace="{namespace}",pod="{pod}",container="api"'
            spike = n == 0 and minute % 60 < 2  # 2 minutes an hour: the peak, above the p95 (300 MiB)
            used = (PEAK_MIB if spike else 300 - 20 * n) * MIB
            lines.append(f"{memory}{{{where}}} {used:.0f} {t}")
            lines.append(f"{cpu}_total{{{where}}} {0.3 * 60 * minute:.3f} {t}")
        lines.append(f'{burn}{{sloth_service="checkout",sloth_slo="requests-availability"}} 0.5 {t}')
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture
def prom(tmp_path, namespace):
    server = PrometheusServer(tmp_path)
    server.backfill(openmetrics(namespace, int(time.time()) // 60 * 60))
    server.start()
    yield server
    server.stop()


def rendered() -> list[dict]:
    out = subprocess.run(["kubectl", "kustomize", str(HOOK)], capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def hook_command(docs: list[dict], namespace: str) -> list[str]:
    """The Job's command and args as the kubelet would run them ($(POD_NAMESPACE) expanded), as a local process."""
    job = next(d for d in docs if d["kind"] == "Job")
    container = job["spec"]["template"]["spec"]["containers"][0]
    argv = [a.replace("$(POD_NAMESPACE)", namespace) for a in container["command"] + container["args"]]
    assert argv[0] == "aiops"
    return [sys.executable, "-m", "aiops.cli", *argv[1:]]


def cli_env(kubectl) -> dict[str, str]:
    """A user's shell: the cluster's kubeconfig, none of this process's AIOPS_* settings."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")},
        "KUBECONFIG": kubectl.env["KUBECONFIG"],
    }


def run_hook(kubectl, argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, env=cli_env(kubectl), timeout=300)


def proposed(docs: list[dict], **changes) -> str:
    deployment = yaml.safe_load(yaml.safe_dump(next(d for d in docs if d["kind"] == "Deployment")))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    if "memory" in changes:
        container["resources"]["limits"]["memory"] = changes["memory"]
        container["resources"]["requests"]["memory"] = changes["memory"]
    if "image" in changes:
        container["image"] = changes["image"]
    if "override" in changes:
        deployment["metadata"]["annotations"] = {OVERRIDE: changes["override"]}
    return yaml.safe_dump(deployment)


def set_proposed(kubectl, namespace: str, text: str) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "aiops-proposed-change"},
          "data": {"deployment.yaml": text}}  # fmt: skip
    kubectl.apply(cm, namespace)


def last_run(kubectl, namespace: str) -> dict:
    runs = kubectl.json("get", "analysisruns", "-n", namespace)["items"]
    return max(runs, key=lambda r: r["metadata"]["creationTimestamp"] + r["metadata"]["name"])


def test_the_argocd_presync_gate_blocks_a_risky_change_passes_it_overridden_and_passes_a_safe_one(
    kubectl, operator_env, namespace, prom, dsn
):
    record_incidents(
        dsn,
        [(f"{namespace}/oom-{i}", f"u-oom-{i}", "checkout pods OOMKilled", "memory limit too low") for i in (1, 2)],
        target={"kind": "Deployment", "name": "checkout"},
        failure_mode="OOMKilled",
        at=now_utc() - timedelta(days=10),
    )
    operator_env({"AIOPS_PROMETHEUS_URL": prom.url, "AIOPS_POSTGRES_DSN": dsn})
    docs = rendered()
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"ServiceAccount", "Role", "RoleBinding", "Job", "ConfigMap", "Deployment"}
    for kind in ("ServiceAccount", "Role", "RoleBinding", "Job", "ConfigMap"):  # all hooks; the workload is not
        assert kinds[kind]["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync", kind
    assert "annotations" not in kinds["Deployment"]["metadata"]
    # What Argo CD does, in its order: the PreSync hooks (the ConfigMap holds the Deployment from Git), then,
    # with the Job passed, the workload. Here the live Deployment is the one in Git; the Job runs as a process.
    for doc in docs:
        if doc["kind"] != "Job":
            kubectl.apply(doc, namespace)
    sa = f"system:serviceaccount:{namespace}:aiops-change-review"
    for verb, what in (("create", "analysisruns.aiops.dev"), ("get", "configmaps/aiops-proposed-change")):
        assert kubectl("auth", "can-i", verb, what, "-n", namespace, "--as", sa, check=False).stdout.strip() == "yes"
    assert kubectl("auth", "can-i", "get", "secrets", "-n", namespace, "--as", sa, check=False).stdout.strip() == "no"
    argv = hook_command(docs, namespace)

    # 1. The memory limit lowered to 256Mi: under the observed peak, and twice OOMKilled before: blocked.
    set_proposed(kubectl, namespace, proposed(docs, memory="256Mi"))
    blocked = run_hook(kubectl, argv)
    assert blocked.returncode == 1, blocked.stdout + blocked.stderr
    run = last_run(kubectl, namespace)
    review = run["status"]["result"]["reviews"][0]
    shown = blocked.stdout
    assert run["status"]["result"]["risk"] == "high" and review["risk"] == "high", shown
    assert review["object"] == f"Deployment/{namespace}/checkout" and review["live"] is True, shown
    assert {"path": "spec.template.spec.containers[api].resources.limits.memory", "category": "resources",
            "before": "512Mi", "after": "256Mi"} in review["changes"], review["changes"]  # fmt: skip
    checks: dict[str, dict] = {}
    for f in review["findings"]:  # the most severe first: keep each check's first
        checks.setdefault(f["check"], f)
    assert checks["usage"]["severity"] == "high" and "container_memory_working_set_bytes" in " ".join(
        checks["usage"]["evidence"]
    ), checks["usage"]
    assert checks["history"]["severity"] == "high", checks["history"]
    assert all(f"{namespace}/oom-{i}" in " ".join(checks["history"]["evidence"]) for i in (1, 2)), checks["history"]
    assert "slo" not in checks or checks["slo"]["severity"] == "none", checks.get("slo")  # burning at 0.5: fine
    assert condition(run, "ChangeRisk")["reason"] == "HighRisk"
    assert "HIGH risk" in shown and "blocked" in blocked.stderr and OVERRIDE in blocked.stderr
    described = kubectl("describe", "analysisrun", run["metadata"]["name"], "-n", namespace).stdout
    assert "ChangeRisk" in described and "HighRisk" in described, described
    print(f"\nrisky change reviewed in {run['status']['durationSeconds']}s:\n{shown}\n{described}")

    # 2. The same change with the override annotation in Git: reviewed as high, let through.
    set_proposed(kubectl, namespace, proposed(docs, memory="256Mi", override="INC-1234: approved by the on-call lead"))
    overridden = run_hook(kubectl, argv)
    assert overridden.returncode == 0, overridden.stdout + overridden.stderr
    run = last_run(kubectl, namespace)
    assert run["status"]["result"]["reviews"][0]["override"] == "INC-1234: approved by the on-call lead"
    assert run["status"]["result"]["risk"] == "high" and condition(run, "ChangeRisk")["reason"] == "Overridden"

    # 3. An image bump with the resources kept: nothing in the history relates to it, usage fits: passes.
    set_proposed(kubectl, namespace, proposed(docs, image="registry.example.com/shop/checkout:1.4.4"))
    safe = run_hook(kubectl, argv)
    assert safe.returncode == 0, safe.stdout + safe.stderr
    run = last_run(kubectl, namespace)
    review = run["status"]["result"]["reviews"][0]
    assert review["risk"] in ("none", "low"), safe.stdout
    assert [c["category"] for c in review["changes"]] == ["image"], review["changes"]
    assert condition(run, "ChangeRisk")["status"] == "False"
    print(f"safe change reviewed in {run['status']['durationSeconds']}s")

    # Bad input: a manifest without a Deployment fails the run, naming what it found; the gate says so (exit 2).
    set_proposed(kubectl, namespace, yaml.safe_dump({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}}))
    refused = run_hook(kubectl, argv)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    run = last_run(kubectl, namespace)
    assert phase(run) == "Failed" and "no apps/v1 Deployment or StatefulSet" in run["status"]["error"], run["status"]
    assert "Service/x" in run["status"]["error"] and "No review" in refused.stdout


def test_a_manifest_that_does_not_parse_is_refused_naming_the_field(kubectl, namespace):
    body = {"apiVersion": "aiops.dev/v1alpha1", "kind": "AnalysisRun", "metadata": {"name": "bad-yaml"},
            "spec": {"type": "changeReview", "inputs": {"change": {"manifest": "kind: [Deployment"}}}}  # fmt: skip
    kubectl.apply(body, namespace)
    run = kubectl.wait("analysisrun", "bad-yaml", namespace, until=lambda o: condition(o, "Ready"), timeout=30,
                       what="the spec judged")  # fmt: skip
    ready = condition(run, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec", ready
    assert "spec.inputs.change" in ready["message"] and "manifest is not YAML or JSON" in ready["message"], ready
    assert not (run["status"].get("result") or {}).get("reviews")


def test_a_patch_to_a_live_deployment_is_reviewed_and_one_to_a_missing_one_is_refused(kubectl, operator, namespace):
    live = next(d for d in rendered() if d["kind"] == "Deployment")
    kubectl.apply(live, namespace)
    patch = yaml.safe_dump({"spec": {"replicas": 1, "template": {"spec": {"containers": [
        {"name": "api", "image": "registry.example.com/shop/checkout:latest"}]}}}})  # fmt: skip
    env = cli_env(kubectl)
    argv = [sys.executable, "-m", "aiops.cli", "review", "--patch", "-", "--target", "Deployment/checkout",
            "-n", namespace, "--fail-on", "never", "-o", "json"]  # fmt: skip
    done = subprocess.run(argv, input=patch, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    run = yaml.safe_load(done.stdout)
    review = run["status"]["result"]["reviews"][0]
    categories = {c["category"] for c in review["changes"]}
    assert {"image", "replicas"} <= categories, review["changes"]
    assert any("latest" in f["message"] for f in review["findings"]), review["findings"]
    # No Prometheus, no history on the shared operator: those checks say they did not run.
    gaps = " ".join(f["message"] for f in review["findings"] if f["severity"] == "none")
    assert "Prometheus" in gaps and "history" in gaps, gaps

    argv[argv.index("Deployment/checkout")] = "Deployment/nowhere"
    missing = subprocess.run(argv, input=patch, capture_output=True, text=True, env=env, timeout=120)
    assert missing.returncode == 2, missing.stderr
    assert "inputs.change.target: Deployment" in missing.stdout and "does not exist" in missing.stdout, missing.stdout
