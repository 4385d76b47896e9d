"""The Helm chart: lint, values schema, rendering over value combinations applied to the control plane
with a server-side dry run, and an RBAC proof with `kubectl auth can-i` as the operator's ServiceAccount."""

import base64
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from aiops.api import KINDS
from aiops.api.sop import ApprovalPolicy
from aiops.inference import catalogue
from aiops.notify import config as notify_config
from aiops.settings import from_env
from harness import REPO

CHART = REPO / "charts" / "aiops-operator"
HELM = shutil.which("helm") or str(Path(sys.executable).parent / "helm")
KUBE_VERSION = "1.20.2"  # the local control plane's; the chart adapts its API versions to it
COMBINATIONS = {
    "defaults": [],
    "everything-on": [
        "--set", "rbac.actions.restartPod=true,rbac.actions.rolloutRestart=true,rbac.actions.rollbackDeployment=true",
        "--set", "rbac.actions.scaleDeployment=true,rbac.actions.cordonNode=true",
        "--set", "metrics.serviceMonitor.enabled=true,networkPolicy.enabled=true,podDisruptionBudget.enabled=true",
        "--set", "llm.baseURL=http://vllm.models.svc:8000/v1,llm.model=qwen,llm.apiKeySecret.name=llm-key",
        "--set", "prometheus.url=http://prometheus.monitoring.svc:9090,watchNamespaces={shop,payments}",
        "--set", "webhook.enabled=true,webhook.tokenSecret.name=am-token,webhook.tlsSecret=am-tls",
        "--set", "history.postgresDSNSecret.name=pg,events.redisURLSecret.name=redis",
        "--set-json", 'notifications.config={"channels":[{"type":"webhook","name":"pager","url":{"env":"PAGER_URL"}}],'
                      '"default":["pager"]}',
        "--set", "notifications.secretName=notify-secrets",
        "--set", "postmortems.secret=postmortems",
        "--set-json", 'approvals.policy={"rules":[{"severities":["critical"],"approvers":"two","group":"sre-leads"}]}',
    ],
    "workers": [
        "--set", "workers.enabled=true,workers.autoscaling.enabled=true,watchNamespaces={shop}",
        "--set", "llm.baseURL=http://vllm.models.svc:8000/v1,llm.model=qwen,history.postgresDSNSecret.name=pg",
    ],
    "ha-sharded": [
        "--set", "replicaCount=2,controller.leaderElection.enabled=true,sharding.shards=3",
        "--set", "podDisruptionBudget.enabled=true",
        "--set", "webhook.enabled=true,webhook.tokenSecret.name=am-token",
    ],
    "existing-serviceaccount": ["--set", "serviceAccount.create=false,serviceAccount.name=ops,rbac.create=false"],
}  # fmt: skip
# A permissive stand-in for the Prometheus Operator's CRD, so a ServiceMonitor can be dry-run.
SERVICE_MONITOR_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {"plural": "servicemonitors", "singular": "servicemonitor", "kind": "ServiceMonitor"},
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}],
    },
}  # fmt: skip


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([HELM, *args], capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def render(namespace: str, *values: str) -> str:
    return helm("template", "aiops", str(CHART), "-n", namespace, "--kube-version", KUBE_VERSION, *values).stdout


def test_lint_is_clean():
    out = helm("lint", "--strict", str(CHART)).stdout
    assert "0 chart(s) failed" in out


def test_chart_crds_are_the_generated_ones():
    generated = sorted(path.name for path in (REPO / "crds").glob("*.yaml"))
    assert len(generated) == len(KINDS), f"crds/ holds {generated}, not one file per kind"
    assert sorted(path.name for path in (CHART / "crds").glob("*.yaml")) == generated, "run `aiops-dev crds`"
    for name in generated:
        assert (CHART / "crds" / name).read_text() == (REPO / "crds" / name).read_text(), f"{name}: `aiops-dev crds`"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "replicaCount=2"], "replicaCount > 1 needs controller.leaderElection.enabled"),
        (["--set", "replicaCount=6,controller.leaderElection.enabled=true"], "at '/replicaCount': maximum: got 6"),
        (["--set", "sharding.shards=65"], "at '/sharding/shards': maximum: got 65"),
        (
            ["--set", "controller.leaderElection.enabled=true,controller.leaderElection.renewSeconds=5"],
            "renewSeconds must be at most a third of leaseSeconds",
        ),
        (["--set", "rbac.actions.deleteEverything=true"], "additional properties 'deleteEverything' not allowed"),
        (["--set", "llm.structuredOutput=xml"], "/llm/structuredOutput"),
        (["--set", "prometheus.url=prometheus:9090"], "/prometheus/url"),
        (["--set", "llm.baseURL=http://vllm:8000/v1"], "llm.model is required when llm.baseURL is set"),
        (["--set", "webhook.enabled=true"], "webhook.tokenSecret.name is required when webhook.enabled"),
        (["--set", "history.retentionDays=0"], "/history/retentionDays"),
        (["--set", "approvals.mode=trusting"], "/approvals/mode"),
        (["--set", "approvals.webhook.failurePolicy=Sometimes"], "/approvals/webhook/failurePolicy"),
    ],
)
def test_invalid_values_are_refused_naming_the_field(values, message):
    proc = helm("template", "aiops", str(CHART), *values, check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


def test_security_context_fits_restricted_v2():
    docs = [d for d in yaml.safe_load_all(render("aiops-system")) if d]
    [deploy] = [d for d in docs if d["kind"] == "Deployment"]
    pod = deploy["spec"]["template"]["spec"]
    [c] = pod["containers"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert "runAsUser" not in pod["securityContext"] and "runAsUser" not in c["securityContext"]
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert c["args"] == ["run"] and c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert not [e for e in c["env"] if e["name"].startswith(("AIOPS_WEBHOOK", "AIOPS_POSTGRES", "AIOPS_REDIS"))]


def catalogue_values(tmp_path) -> str:
    example = yaml.safe_load((REPO / "examples" / "models" / "catalogue.yaml").read_text())
    path = tmp_path / "models.yaml"
    rollouts = {"rootCause": {"candidate": {"model": "hosted"}, "mode": "canary", "canaryPercent": 10}}
    values = {"modelCatalogue": example["models"], "modelDefaults": example["defaults"], "modelRollouts": rollouts}
    path.write_text(yaml.safe_dump(values))
    return str(path)


def test_the_model_catalogue_reaches_the_operator_as_it_reads_it(tmp_path):
    docs = [d for d in yaml.safe_load_all(render("aiops-system", "-f", catalogue_values(tmp_path))) if d]
    [cm] = [d for d in docs if d["kind"] == "ConfigMap"]
    parsed = catalogue.parse(yaml.safe_load(cm["data"]["catalogue.yaml"]), "the chart's ConfigMap")
    assert parsed.get("qwen-coder") is not None and parsed.get("hosted") is not None
    assert (parsed.defaults.default, parsed.defaults.run_types) == ("qwen-coder", {"query": "hosted"})
    assert (parsed.rollouts.root_cause.candidate.model, parsed.rollouts.root_cause.canary_percent) == ("hosted", 10)
    [deploy] = [d for d in docs if d["kind"] == "Deployment"]
    [c] = deploy["spec"]["template"]["spec"]["containers"]
    assert {"name": "AIOPS_MODEL_CATALOGUE", "value": "/etc/aiops/catalogue/catalogue.yaml"} in c["env"]
    alone = helm("template", "aiops", str(CHART), "--set", "modelDefaults.default=qwen-coder", check=False)
    assert alone.returncode != 0 and "modelDefaults, modelRollouts: they name models of modelCatalogue" in alone.stderr
    wrong = helm("template", "aiops", str(CHART), "--set", "modelDefaults.runTypes.changeReview=x", check=False)
    assert wrong.returncode != 0 and "/modelDefaults/runTypes" in wrong.stderr and "changeReview" in wrong.stderr


def test_notifications_reach_the_operator_as_it_reads_them():
    docs = [d for d in yaml.safe_load_all(render("aiops-system", *COMBINATIONS["everything-on"])) if d]
    [cm] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-notify")]
    parsed = notify_config.parse(yaml.safe_load(cm["data"]["notify.yaml"]), "the chart's ConfigMap")
    assert [c.name for c in parsed.channels] == ["pager"]
    [deploy] = [d for d in docs if d["kind"] == "Deployment"]
    [c] = deploy["spec"]["template"]["spec"]["containers"]
    assert {"name": "AIOPS_NOTIFY_CONFIG", "value": "/etc/aiops/notify/notify.yaml"} in c["env"]
    assert c["envFrom"] == [{"secretRef": {"name": "notify-secrets"}}]
    no_outbox = helm("template", "aiops", str(CHART), "--set-json", 'notifications.config={"default":[]}', check=False)
    assert no_outbox.returncode != 0 and "history.postgresDSNSecret" in no_outbox.stderr


def test_webhook_history_and_events_come_from_secrets():
    docs = [d for d in yaml.safe_load_all(render("aiops-system", *COMBINATIONS["everything-on"])) if d]
    [deploy] = [d for d in docs if d["kind"] == "Deployment"]
    [c] = deploy["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in c["env"]}
    assert env["AIOPS_WEBHOOK_ADDR"]["value"] == ":9443"
    assert env["AIOPS_WEBHOOK_TOKEN_FILE"]["value"] == "/var/run/aiops/webhook-token/token"
    assert env["AIOPS_POSTGRES_DSN"]["valueFrom"]["secretKeyRef"] == {"name": "pg", "key": "dsn"}
    assert env["AIOPS_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "redis", "key": "url"}
    assert env["AIOPS_POSTMORTEM_ENDPOINT"]["valueFrom"]["secretKeyRef"] == {"name": "postmortems", "key": "endpoint"}
    assert env["AIOPS_POSTMORTEM_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "secretKey"
    assert env["AIOPS_POSTMORTEM_REGION"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert (env["AIOPS_EVENTS_STREAM_MAXLEN"]["value"], env["AIOPS_EVENTS_PUBSUB"]["value"]) == ("100000", "true")
    conf = from_env({e["name"]: e["value"] for e in c["env"] if e["name"].startswith("AIOPS_EVENTS_")})
    assert (conf.events_stream_maxlen, conf.events_pubsub) == (100_000, True)
    [svc] = [d for d in docs if d["kind"] == "Service"]
    assert {"name": "webhook", "port": 9443, "targetPort": "webhook"} in svc["spec"]["ports"]


@pytest.mark.parametrize("combination", sorted(COMBINATIONS))
def test_rendered_manifests_pass_a_server_side_dry_run(kubectl, namespace, combination):
    kubectl.apply(SERVICE_MONITOR_CRD)
    manifests = render(namespace, *COMBINATIONS[combination])
    out = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=manifests)
    kinds = {line.split("/", 1)[0] for line in out.stdout.splitlines()}
    assert "deployment.apps" in kinds, out.stdout
    if combination == "everything-on":
        assert {"servicemonitor.monitoring.coreos.com", "networkpolicy.networking.k8s.io"} <= kinds, out.stdout
    if combination == "workers":
        assert "horizontalpodautoscaler.autoscaling" in kinds, out.stdout


def test_workers_run_apart_from_the_controller_which_only_accepts():
    docs = [d for d in yaml.safe_load_all(render("ops", *COMBINATIONS["workers"])) if d]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    controller, worker = deployments["aiops-aiops-operator"], deployments["aiops-aiops-operator-worker"]

    def env(deploy: dict) -> dict:
        [c] = deploy["spec"]["template"]["spec"]["containers"]
        return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}

    assert env(controller)["AIOPS_RUN_EXECUTION"] == env(worker)["AIOPS_RUN_EXECUTION"] == "workers"
    assert worker["spec"]["template"]["spec"]["containers"][0]["args"] == ["worker", "--namespace=shop"]
    assert env(worker)["AIOPS_LLM_BASE_URL"] == env(controller)["AIOPS_LLM_BASE_URL"]
    assert env(worker)["AIOPS_POSTGRES_DSN"] == {
        "secretKeyRef": {"name": "pg", "key": "dsn"}
    }  # diagnoses go to history
    # The controller's selectors (Deployment, Service) must not take the workers' pods for its own.
    worker_pods = worker["spec"]["template"]["metadata"]["labels"]
    [svc] = [d for d in docs if d["kind"] == "Service"]
    for selector in (controller["spec"]["selector"]["matchLabels"], svc["spec"]["selector"]):
        assert not selector.items() <= worker_pods.items(), selector
    [hpa] = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    assert "replicas" not in worker["spec"], "the HPA owns the replica count"
    assert [m["external"]["metric"]["name"] for m in hpa["spec"]["metrics"]] == [
        "aiops_runs_queued",
        "aiops_runs_claimed",
    ]
    plain = [d for d in yaml.safe_load_all(render("ops")) if d]
    assert not any(d["kind"] == "HorizontalPodAutoscaler" or "worker" in d["metadata"]["name"] for d in plain)
    [controller] = [d for d in plain if d["kind"] == "Deployment"]
    assert "AIOPS_RUN_EXECUTION" not in env(controller), "off by default: the controller executes runs itself"


def can_i(kubectl, namespace: str, *what: str) -> bool:
    sa = f"system:serviceaccount:{namespace}:aiops-aiops-operator"
    proc = kubectl("auth", "can-i", *what, "--as", sa, check=False)
    return proc.stdout.strip() == "yes"


def test_rbac_grants_what_the_features_need_and_nothing_more(kubectl, namespace, tmp_path):
    rbac_kinds = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}

    def install(*values: str) -> None:
        docs = [d for d in yaml.safe_load_all(render(namespace, *values)) if d and d["kind"] in rbac_kinds]
        for d in docs:  # cluster-scoped names are per release: give each test its own
            if d["kind"].startswith("Cluster"):
                d["metadata"]["name"] = f"{namespace}-{d['metadata']['name']}"
            if d["kind"] == "ClusterRoleBinding":
                d["roleRef"]["name"] = f"{namespace}-{d['roleRef']['name']}"
        kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))

    install()
    allowed = [
        ("list", "pods", "--all-namespaces"),
        ("get", "pods/log", "-n", "shop"),
        ("watch", "deployments.apps", "--all-namespaces"),
        ("list", "replicasets.apps", "-n", "shop"),
        ("get", "nodes"),
        ("create", "incidents.aiops.dev", "-n", "shop"),
        ("patch", "incidents.aiops.dev", "--subresource=status", "-n", "shop"),
        ("create", "analysisruns.aiops.dev", "-n", "shop"),
        ("patch", "sops.aiops.dev", "--subresource=status", "-n", "shop"),
        ("create", "events", "-n", "shop"),
        ("get", "secrets", "-n", namespace),
        ("create", "subjectaccessreviews.authorization.k8s.io"),  # the approvals webhook: may the requester approve?
        ("get", "configmaps/aiops-suspend", "-n", namespace),  # the fleet-wide kill switch
        ("watch", "configmaps/aiops-suspend", "-n", namespace),  # ... kept by a watch (clusters/suspension.py)
        ("list", "poddisruptionbudgets.policy", "-n", "shop"),  # changeReview runs
    ]
    denied = [
        ("get", "secrets", "-n", "shop"),  # Secrets only in the operator's own namespace
        ("list", "secrets", "-n", namespace),
        ("create", "secrets", "-n", namespace),
        ("delete", "pods", "-n", "shop"),  # actions are off by default
        ("patch", "deployments.apps", "-n", "shop"),
        ("patch", "deployments.apps", "--subresource=scale", "-n", "shop"),
        ("patch", "nodes"),
        ("create", "deployments.apps", "-n", "shop"),
        ("update", "configmaps", "-n", "shop"),
        ("get", "configmaps/other", "-n", namespace),  # that one ConfigMap only
        ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
        ("create", "poddisruptionbudgets.policy", "-n", "shop"),
        ("*", "*"),  # no cluster-admin
    ]
    for what in allowed:
        assert can_i(kubectl, namespace, *what), f"denied but needed: {what}"
    for what in denied:
        assert not can_i(kubectl, namespace, *what), f"allowed but not needed: {what}"

    assert not can_i(kubectl, namespace, "create", "deployments.apps", "-n", namespace)  # no pools, no rights
    assert not can_i(kubectl, namespace, "create", "leases.coordination.k8s.io", "-n", "shop")  # no workers

    install("--set", "rbac.actions.restartPod=true,rbac.actions.rollbackDeployment=true,rbac.actions.cordonNode=true")
    assert can_i(kubectl, namespace, "delete", "pods", "-n", "shop")
    assert can_i(kubectl, namespace, "patch", "deployments.apps", "-n", "shop")
    assert can_i(kubectl, namespace, "patch", "nodes")
    assert not can_i(kubectl, namespace, "patch", "deployments.apps", "--subresource=scale", "-n", "shop")
    assert not can_i(kubectl, namespace, "create", "secrets", "-n", namespace)

    # A model catalogue: the pools' Deployments and Services, in the operator's namespace only.
    install("-f", catalogue_values(tmp_path))
    assert can_i(kubectl, namespace, "create", "deployments.apps", "-n", namespace)
    assert can_i(kubectl, namespace, "delete", "services", "-n", namespace)
    assert not can_i(kubectl, namespace, "create", "deployments.apps", "-n", "shop")

    # Workers: their run leases live in each run's namespace.
    install("--set", "workers.enabled=true")
    for verb in ("create", "update", "delete", "list", "watch"):
        assert can_i(kubectl, namespace, verb, "leases.coordination.k8s.io", "-n", "shop"), verb
    assert not can_i(kubectl, namespace, "patch", "leases.coordination.k8s.io", "-n", "shop")


def test_ha_and_sharding_render_a_deployment_per_shard_with_its_lease_and_budget():
    docs = [d for d in yaml.safe_load_all(render("aiops-system", *COMBINATIONS["ha-sharded"])) if d]
    deploys = sorted((d for d in docs if d["kind"] == "Deployment"), key=lambda d: d["metadata"]["name"])
    assert [d["metadata"]["name"] for d in deploys] == [f"aiops-aiops-operator-shard-{i}" for i in range(3)]
    for i, deploy in enumerate(deploys):
        spec = deploy["spec"]
        assert spec["replicas"] == 2 and spec["strategy"]["type"] == "RollingUpdate"
        assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
        assert spec["selector"]["matchLabels"]["aiops.dev/shard-index"] == str(i)  # the shards' pods never mix
        [c] = spec["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}
        assert env["AIOPS_SHARD"] == f"{i}/3" and env["AIOPS_LEADER_ELECTION"] == "true"
        assert env["AIOPS_LEADER_LEASE_S"] == "10" and env["AIOPS_LEADER_RENEW_S"] == "2"
        assert env["AIOPS_LEADER_LEASE_NAME"] == "aiops-aiops-operator"  # the operator appends -shard-i
        assert env["AIOPS_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        assert ("AIOPS_WEBHOOK_ADDR" in env) == (i == 0), "one Alertmanager receiver, on shard 0"
    pdbs = sorted((d for d in docs if d["kind"] == "PodDisruptionBudget"), key=lambda d: d["metadata"]["name"])
    assert [p["spec"]["minAvailable"] for p in pdbs] == [1, 1, 1]
    assert [p["spec"]["selector"]["matchLabels"]["aiops.dev/shard-index"] for p in pdbs] == ["0", "1", "2"]
    services = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "Service"}
    assert services["aiops-aiops-operator"]["selector"]["aiops.dev/leader"] == "true"
    # The Alertmanager receiver is shard 0's alone; the approvals webhook any shard's leader answers (one seal key).
    assert [p["name"] for p in services["aiops-aiops-operator"]["ports"]] == ["metrics", "admission"]
    webhook = services["aiops-aiops-operator-webhook"]
    assert webhook["selector"]["aiops.dev/shard-index"] == "0" and webhook["selector"]["aiops.dev/leader"] == "true"

    # Without either: one Deployment, Recreate, the PDB of one replica, no Lease rights.
    docs = [d for d in yaml.safe_load_all(render("aiops-system", "--set", "podDisruptionBudget.enabled=true")) if d]
    [deploy] = [d for d in docs if d["kind"] == "Deployment"]
    assert deploy["metadata"]["name"] == "aiops-aiops-operator" and deploy["spec"]["strategy"] == {"type": "Recreate"}
    [c] = deploy["spec"]["template"]["spec"]["containers"]
    assert not [e for e in c["env"] if e["name"].startswith(("AIOPS_LEADER", "AIOPS_SHARD"))]
    [pdb] = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    assert pdb["spec"] == {"maxUnavailable": 0, "selector": deploy["spec"]["selector"]}
    assert not [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-leader")]


def test_leader_election_may_take_leases_and_label_pods_in_its_namespace_only(kubectl, namespace):
    docs = [d for d in yaml.safe_load_all(render(namespace, *COMBINATIONS["ha-sharded"])) if d]
    rbac = [d for d in docs if d["kind"] in ("ServiceAccount", "Role", "RoleBinding")]
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(rbac))
    for verb in ("get", "create", "update"):
        assert can_i(kubectl, namespace, verb, "leases.coordination.k8s.io", "-n", namespace)
    assert can_i(kubectl, namespace, "patch", "pods", "-n", namespace)
    assert not can_i(kubectl, namespace, "delete", "leases.coordination.k8s.io", "-n", namespace)
    assert not can_i(kubectl, namespace, "update", "leases.coordination.k8s.io", "-n", "kube-system")
    assert not can_i(kubectl, namespace, "patch", "pods", "-n", "shop")


def test_the_approvals_webhook_is_served_by_the_operator_over_the_chart_ca():
    docs = [d for d in yaml.safe_load_all(render("aiops-system", *COMBINATIONS["everything-on"])) if d]
    [tls] = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-admission-tls")]
    ca = x509.load_pem_x509_certificate(base64.b64decode(tls["data"]["ca.crt"]))
    cert = x509.load_pem_x509_certificate(base64.b64decode(tls["data"]["tls.crt"]))
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert "aiops-aiops-operator.aiops-system.svc" in sans
    services = {}
    for kind, webhook in (("MutatingWebhookConfiguration", "approvals-seal"), ("ValidatingWebhookConfiguration",
                                                                             "approvals-check")):  # fmt: skip
        [conf] = [d for d in docs if d["kind"] == kind]
        [hook] = conf["webhooks"]
        assert hook["name"] == f"{webhook}.aiops.dev" and hook["failurePolicy"] == "Fail"
        assert hook["rules"] == [{"apiGroups": ["aiops.dev"], "apiVersions": ["v1alpha1"], "operations": [
            "CREATE", "UPDATE"], "resources": ["incidents"], "scope": "Namespaced"}]  # fmt: skip
        assert hook["clientConfig"]["caBundle"] == tls["data"]["ca.crt"]
        services[webhook] = hook["clientConfig"]["service"]
    # kopf routes by the handler id in the path (aiops.controllers.admission)
    assert {s["path"] for s in services.values()} == {"/approvals-seal", "/approvals-check"}
    [svc] = [d for d in docs if d["kind"] == "Service"]
    assert {"name": "admission", "port": 8443, "targetPort": "admission"} in svc["spec"]["ports"]
    assert {s["name"] for s in services.values()} == {svc["metadata"]["name"]}
    [deploy] = [d for d in docs if d["kind"] == "Deployment"]
    pod = deploy["spec"]["template"]["spec"]
    [c] = pod["containers"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert env["AIOPS_ADMISSION_ADDR"] == ":8443" and env["AIOPS_APPROVALS"] == "verified"
    assert env["AIOPS_ADMISSION_TLS_CERT"] == mounts["admission-tls"] + "/tls.crt"
    assert volumes["admission-tls"]["secret"]["secretName"] == tls["metadata"]["name"]
    [key] = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-approval-key")]
    assert env["AIOPS_APPROVAL_KEY_FILE"] == mounts["approval-key"] + "/key"
    assert volumes["approval-key"]["secret"]["secretName"] == key["metadata"]["name"]
    assert len(base64.b64decode(key["data"]["key"])) >= 32
    assert key["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"  # a new key unverifies approvals
    # The cluster policy, as the operator reads it.
    [cm] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-approval-policy")]
    policy = ApprovalPolicy.model_validate(yaml.safe_load(cm["data"]["policy.yaml"]))
    assert (policy.rules[0].approvers, policy.rules[0].group) == ("two", "sre-leads")
    assert env["AIOPS_APPROVAL_POLICY"] == mounts["approval-policy"] + "/policy.yaml"
    [role] = [d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("-approver")]
    assert role["rules"][0]["verbs"] == ["get", "list", "watch", "patch", "approve"]

    # cert-manager instead of the chart's CA: it injects the CA bundle.
    docs = [d for d in yaml.safe_load_all(render("ops", "--set", "approvals.webhook.certManager.enabled=true")) if d]
    [certificate] = [d for d in docs if d["kind"] == "Certificate"]
    assert certificate["spec"]["secretName"] == "aiops-aiops-operator-admission-tls"
    for conf in (d for d in docs if d["kind"].endswith("WebhookConfiguration")):
        assert conf["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "ops/aiops-aiops-operator-admission"
        assert "caBundle" not in conf["webhooks"][0]["clientConfig"]
    # Off (a dev setup): no webhook and no rights to review; approvals then count only in mode unverified-allowed.
    docs = [d for d in yaml.safe_load_all(render("ops", "--set", "approvals.webhook.enabled=false")) if d]
    assert not [d for d in docs if d["kind"].endswith("WebhookConfiguration") or d["kind"] == "Certificate"]
    [deploy] = [d for d in docs if d["kind"] == "Deployment"]
    [c] = deploy["spec"]["template"]["spec"]["containers"]
    assert not [e for e in c["env"] if e["name"].startswith("AIOPS_ADMISSION")]
    [cluster_role] = [d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "aiops-aiops-operator"]
    assert not [r for r in cluster_role["rules"] if "subjectaccessreviews" in r["resources"]]
