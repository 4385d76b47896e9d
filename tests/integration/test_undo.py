"""Snapshot, verify and undo for every action type, on a real API server: the runbook engine drives real
Deployments, their scale subresource, Nodes and Pods, and after an undo the object's spec is the snapshot's,
field for field. The same through the operator, with `kubectl describe`, is in test_remediation.py."""

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import config

from aiops.api.incident import IncidentSpec
from aiops.api.sop import SOPSpec
from aiops.core import kube
from aiops.settings import ApprovalSettings
from aiops.sops import approvals
from aiops.sops.remediation import actions, engine, undo
from aiops.sops.remediation.matching import Match
from aiops_dev.eval import cases
from aiops_dev.eval.workloads import container
from harness import checkout_incident, condition, phase

T0 = datetime.now(UTC).replace(microsecond=0)  # pod status times are compared with it: the clock's own
OLD, NEW = "registry.example.com/shop/web:1.0", "registry.example.com/shop/web:2.0"


@pytest.fixture
def api(kubeconfig):
    client = config.new_client_from_config(config_file=kubeconfig)
    yield client
    client.close()


def get(api, path: str) -> dict:
    return json.loads(kube.request(api, "GET", path))


def running(image: str, restarts: int = 0, finished: datetime | None = None) -> dict:
    cs = {"name": "app", "ready": True, "restartCount": restarts, "image": image, "imageID": "",
          "state": {"running": {"startedAt": T0.strftime("%Y-%m-%dT%H:%M:%SZ")}}}  # fmt: skip
    if finished:
        cs["lastState"] = {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                          "finishedAt": finished.strftime("%Y-%m-%dT%H:%M:%SZ")}}  # fmt: skip
    return {"phase": "Running", "containerStatuses": [cs]}


def web(writer) -> dict:
    """Deployment web at revision 2 (image 2.0), its ReplicaSets of revisions 1 and 2, two running pods."""
    dep = writer.deployment("web", [container(image=NEW)], replicas=2)
    writer.replicaset(dep, [container(image=OLD)], 1)
    rs = writer.replicaset(dep, [container(image=NEW)], 2)
    for suffix in ("a", "b"):
        writer.pod(rs, f"{rs['metadata']['name']}-{suffix}", [container(image=NEW)], running(NEW))
    return dep


def runbook(action: dict, **verify) -> SOPSpec:
    step = {"id": "fix", "type": "action", "title": "Fix it", "action": action, "automation": "auto",
            "approvalRequired": False, "verify": {"timeoutSeconds": 4, "settleSeconds": 0, **verify}}  # fmt: skip
    return SOPSpec.model_validate({"title": "t", "steps": [step]})


def world(api, spec: SOPSpec, namespace: str, **targets) -> engine.World:
    incident = IncidentSpec(title="t", severity="critical")
    return engine.World(
        api=api,
        prometheus=None,
        variables={"NAMESPACE": namespace},
        targets=actions.Targets(namespace, **targets),
        approvals=approvals.judge(incident, spec, "uid", ApprovalSettings()),
        incident=f"{namespace}/t",
    )


def drive(spec: SOPSpec, w: engine.World, between=lambda p: None) -> list[engine.Progress]:
    """Passes 2 s apart, as the remediation timer makes them, until the runbook ends; `between` runs after each."""
    sop, passes = engine.start(Match("t", 1.0, "test"), spec, T0), []
    for i in range(8):
        passes.append(engine.advance(sop, spec, w, T0 + timedelta(seconds=2 * i)))
        sop = passes[-1].sop
        if passes[-1].outcome in ("resolved", "escalated"):
            return passes
        between(passes[-1])
    raise AssertionError(f"the runbook did not end: {passes[-1].sop}")


# action, its params, the object's path, the targets it acts on by default, the fields it changes
CASES = {
    "rolloutRestart": ({}, "/apis/apps/v1/namespaces/{ns}/deployments/web", {"deployment": "web"}),
    "rollbackDeployment": ({}, "/apis/apps/v1/namespaces/{ns}/deployments/web", {"deployment": "web"}),
    "setResources": ({"limits.memory": "512Mi", "requests.cpu": "250m"},
                     "/apis/apps/v1/namespaces/{ns}/deployments/web", {"deployment": "web"}),
    "scaleDeployment": ({"replicas": "5"}, "/apis/apps/v1/namespaces/{ns}/deployments/web", {"deployment": "web"}),
    "cordonNode": ({}, "/api/v1/nodes/{node}", {"node": "{node}"}),
}  # fmt: skip


@pytest.mark.parametrize("action", sorted(CASES))
def test_undo_restores_the_exact_previous_object(action, api, writer, namespace):
    params, path, targets = CASES[action]
    node = f"{namespace}-node"[:63]
    web(writer)
    writer.node(node, [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}], {"cpu": "4", "pods": "110"})
    path = path.format(ns=namespace, node=node)
    before = get(api, path)
    # The check never holds: no controller runs here to make the Deployment Available, and the node is NotReady.
    spec = runbook({"type": action, "params": params}, condition="Ready" if action == "cordonNode" else "Available")
    seen = []
    passes = drive(spec, world(api, spec, namespace, **{k: v.format(node=node) for k, v in targets.items()}),
                   lambda p: seen.append(get(api, path)))  # fmt: skip

    changed = seen[1]  # after the second pass: the change made, not yet judged
    assert changed["spec"] != before["spec"], "the action changed nothing"
    after = get(api, path)
    assert after["spec"] == before["spec"]  # the undo restored it exactly
    last = passes[-1]
    assert last.outcome == "escalated" and [s.state for s in last.sop.steps] == ["Failed"]
    [change] = last.sop.changes
    assert change.state == "Undone" and change.reason.startswith("verification failed within 4s:")
    made, undone = last.sop.audit
    assert (made.undo, made.outcome, undone.undo, undone.dry_run) == (None, "done", True, "passed")
    assert undone.outcome == "undone: the snapshot is restored" and undone.reason == change.reason
    assert [e[1] for e in last.events] == ["ActionUndone", "Escalated"]
    # An undo is made once: asked again (an operator restarted before recording it), it writes nothing.
    version = after["metadata"]["resourceVersion"]
    again = undo.restore(api, change, spec.steps[0].action.type)
    assert again.succeeded and again.outcome.startswith("undone already")
    assert get(api, path)["metadata"]["resourceVersion"] == version


def test_a_restarted_pod_cannot_be_undone_and_the_incident_escalates_saying_so(api, writer, namespace):
    web(writer)
    pod = next(p for (kind, p) in writer.written if kind == "Pod")
    spec = runbook({"type": "restartPod", "params": {"pod": pod}}, condition="Available")
    passes = drive(spec, world(api, spec, namespace))
    last = passes[-1]
    [change] = last.sop.changes
    assert change.state == "NotUndone" and last.outcome == "escalated"
    undone = last.sop.audit[-1]
    assert undone.undo and undone.dry_run == "not attempted"
    assert "a restart has no undo" in undone.outcome
    assert [e[1] for e in last.events] == ["UndoFailed", "Escalated"]


def test_a_guard_worse_than_before_undoes_the_change_before_its_timeout(api, writer, namespace):
    web(writer)
    spec = runbook({"type": "rollbackDeployment"}, condition="Available", timeoutSeconds=600)
    w = world(api, spec, namespace, deployment="web")
    before = get(api, f"/apis/apps/v1/namespaces/{namespace}/deployments/web")

    def crash_after_the_change(p):
        if p.sop.changes[0].state == "Verifying":  # the rolled back pods start crashing
            name = next(p for (kind, p) in writer.written if kind == "Pod")
            body = {"status": running(OLD, restarts=1, finished=datetime.now(UTC))}
            kube.request(api, "PATCH", f"/api/v1/namespaces/{namespace}/pods/{name}/status", body=body,
                         content_type=kube.MERGE_PATCH)  # fmt: skip

    last = drive(spec, w, crash_after_the_change)[-1]
    [change] = last.sop.changes
    assert change.state == "Undone" and change.reason == "worse than before the change: restarts 0 -> 1"
    assert [(g.name, g.before, g.after, g.note) for g in change.guards] == [("restarts", 0, 1, "pod status")]
    assert get(api, f"/apis/apps/v1/namespaces/{namespace}/deployments/web")["spec"] == before["spec"]


def test_a_verified_change_stays_and_the_runbook_goes_on(api, writer, namespace):
    web(writer)
    spec = runbook({"type": "scaleDeployment", "params": {"replicas": "3"}}, condition="Available")
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/web"

    def controller(p):  # what the deployment controller would write once it has rolled out the change
        dep = get(api, path)
        available = {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}
        status = {"observedGeneration": dep["metadata"]["generation"], "replicas": 3, "conditions": [available]}
        kube.request(api, "PATCH", f"{path}/status", body={"status": status}, content_type=kube.MERGE_PATCH)

    last = drive(spec, world(api, spec, namespace, deployment="web"), controller)[-1]
    assert last.outcome == "resolved" and [s.state for s in last.sop.steps] == ["Succeeded"]
    assert last.sop.changes[0].state == "Verified"
    assert "Available=True MinimumReplicasAvailable; guards: restarts 0 -> 0" in last.sop.steps[0].output
    assert get(api, path)["spec"]["replicas"] == 3
    assert [e[1] for e in last.events] == ["ChangeVerified"]


def test_a_change_someone_made_since_is_not_overwritten(api, writer, namespace):
    web(writer)
    spec = runbook({"type": "scaleDeployment", "params": {"replicas": "3"}}, condition="Available")
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/web/scale"

    def someone_scales(p):
        if p.sop.changes[0].state == "Verifying":
            kube.request(api, "PATCH", path, body={"spec": {"replicas": 7}}, content_type=kube.MERGE_PATCH)

    last = drive(spec, world(api, spec, namespace, deployment="web"), someone_scales)[-1]
    [change] = last.sop.changes
    assert change.state == "NotUndone" and last.outcome == "escalated"
    assert "changed again after the action (/spec/replicas): not overwritten" in last.sop.audit[-1].outcome
    assert get(api, path)["spec"]["replicas"] == 7


def test_an_object_changed_between_snapshot_and_action_is_not_acted_on(api, writer, namespace):
    web(writer)
    spec = runbook({"type": "rolloutRestart"}, condition="Available")
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/web"

    def someone_edits(p):
        if p.sop.changes[0].state == "SnapshotTaken":
            dep = get(api, path)
            template = copy.deepcopy(dep["spec"]["template"])
            template["metadata"].setdefault("annotations", {})["edited-by"] = uuid.uuid4().hex
            patch = [{"op": "replace", "path": "/spec/template", "value": template}]
            kube.request(api, "PATCH", path, body=patch, content_type=actions.JSON_PATCH)

    last = drive(spec, world(api, spec, namespace, deployment="web"), someone_edits)[-1]
    [change] = last.sop.changes
    assert change.state == "NotMade" and last.outcome == "escalated"
    assert "changed after the snapshot and before the action (/spec/template)" in change.reason
    assert last.sop.audit == []  # the action never ran
    assert "kubectl.kubernetes.io/restartedAt" not in get(api, path)["spec"]["template"]["metadata"]["annotations"]


def test_the_operator_undoes_a_rollback_that_fails_its_verification(kubectl, operator_env, namespace, writer, tmp_path):
    """Through the operator: approved, rolled back, not Available in time, undone, escalated; `kubectl describe`
    tells it (the output is kept in the test's tmp_path)."""
    operator_env({"AIOPS_APPROVALS": "unverified-allowed"})
    cases.write("checkout-oomkilled", writer)
    step = {"id": "rollback", "type": "action", "title": "Roll back to the previous revision",
            "action": {"type": "rollbackDeployment"}, "automation": "auto", "approvalRequired": True,
            "verify": {"condition": "Available", "timeoutSeconds": 20, "settleSeconds": 5}}  # fmt: skip
    sop = {"apiVersion": "aiops.dev/v1alpha1", "kind": "SOP", "metadata": {"name": "verified-rollback"},
           "spec": {"title": "Roll back checkout, verified", "steps": [step]}}  # fmt: skip
    kubectl.apply(sop, namespace)
    before = kubectl.json("-n", namespace, "get", "deploy", "checkout")["spec"]
    approved = [{"step": "rollback", "approvedBy": "jane@example.com", "comment": "OOM since 1.5.0"}]
    incident = checkout_incident("undo", sopRef={"name": "verified-rollback"}, approvals=approved,
                                 analysis={"llm": False})  # fmt: skip
    kubectl.apply(incident, namespace)
    inc = kubectl.wait("incident", "undo", namespace, until=lambda o: phase(o) in ("Resolved", "Escalated"),
                       timeout=120, what="the runbook to end")  # fmt: skip
    assert phase(inc) == "Escalated", inc["status"]["sop"]
    assert kubectl.json("-n", namespace, "get", "deploy", "checkout")["spec"] == before
    verified = condition(inc, "ChangeVerified")
    assert (verified["status"], verified["reason"]) == ("False", "Undone")
    assert "verification failed within 20s: no condition Available" in verified["message"]
    made, undone = inc["status"]["sop"]["audit"]
    assert "checkout:1.4.2" in made["after"] and undone["undo"] and "checkout:1.5.0" in undone["after"]
    described = kubectl("-n", namespace, "describe", "incident", "undo").stdout
    (tmp_path / "undo-describe.txt").write_text(described)
    for said in ("ActionExecuted", "ActionUndone", "Escalated", "Undone", "undone: the snapshot is restored"):
        assert said in described, said
