"""Approvals bound to identity, on the real API server: the operator serves its admission webhook over HTTPS on
loopback (kopf registers the configurations, as in a dev setup) and the local kube-apiserver calls it for every
write of an Incident. People are ServiceAccounts with TokenRequest tokens, so the requester in each
AdmissionReview and the SubjectAccessReview for the verb `approve` are the API server's own:

- approver-a, approver-b: get, list, create, patch and approve on incidents;
- patcher: get, list, create and patch, not approve;
- the admin of the kubeconfig (system:masters): everything.

Also: a runbook step whose policy asks for two distinct approvers from a group waits after one and runs after the
second; without the webhook an approval is a claim, refused or marked unverified as AIOPS_APPROVALS says.
"""

from __future__ import annotations

import json
import uuid

import pytest
from kubernetes import config

from aiops_dev.controlplane import free_port
from aiops_dev.eval import cases
from harness import checkout_incident, condition, phase, wait_for
from support.kubeusers import service_account_tokens

KEY = "integration-test-approval-key-0123456789"
PEOPLE = ("approver-a", "approver-b", "patcher")
ROLLBACK_SOP = {
    "apiVersion": "aiops.dev/v1alpha1",
    "kind": "SOP",
    "metadata": {"name": "oom-rollback"},
    "spec": {
        "title": "Roll back an OOMKilled Deployment",
        "steps": [
            {"id": "rollback", "type": "action", "title": "Roll back to the previous revision",
             "action": {"type": "rollbackDeployment"}, "automation": "auto"},
        ],
    },
}  # fmt: skip


def role(name: str, verbs: list[str]) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name},
        "rules": [{"apiGroups": ["aiops.dev"], "resources": ["incidents"], "verbs": verbs}],
    }


def binding(role_name: str, sa: str, sa_namespace: str) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"{role_name}-{sa}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": sa_namespace}],
    }


@pytest.fixture
def people(kubeconfig, kubectl, namespace) -> dict[str, str]:
    """Tokens by person; their usernames are system:serviceaccount:NAMESPACE:NAME."""
    kubectl.apply(role("approver", ["get", "list", "create", "patch", "approve"]), namespace)
    kubectl.apply(role("patcher", ["get", "list", "create", "patch"]), namespace)
    for sa in PEOPLE:
        kubectl.apply(binding("patcher" if sa == "patcher" else "approver", sa, namespace), namespace)
    api = config.new_client_from_config(config_file=kubeconfig)
    tokens = service_account_tokens(api, namespace, PEOPLE)
    api.close()
    return tokens


@pytest.fixture
def webhook(operator_env, kubectl) -> str:
    """The operator restarted with its admission webhook on a free loopback port, kopf keeping the webhook
    configurations (named after this test) pointed at it; waits until the API server calls it."""
    name = f"t{uuid.uuid4().hex[:6]}.approvals.aiops.dev"
    env = {
        "AIOPS_ADMISSION_ADDR": f"127.0.0.1:{free_port()}",
        "AIOPS_ADMISSION_MANAGED": name,
        "AIOPS_APPROVAL_KEY": KEY,
    }
    operator_env(env)

    def configured() -> bool:
        for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
            obj = kubectl.get(kind, name)
            if not obj or not obj.get("webhooks"):
                return False
        return True

    wait_for(configured, 60, "kopf to register the approvals webhooks")
    yield name
    # kopf removes its webhooks on a clean stop; a killed operator must not leave them to refuse later writes.
    kubectl("delete", "mutatingwebhookconfiguration,validatingwebhookconfiguration", name, "--ignore-not-found")


class Person:
    """kubectl as one person (their token instead of the kubeconfig's admin)."""

    def __init__(self, kubectl, namespace: str, name: str, token: str | None):
        self.kubectl, self.namespace, self.name, self.token = kubectl, namespace, name, token
        self.user = f"system:serviceaccount:{namespace}:{name}" if token else "aiops-admin"

    def __call__(self, *args: str, input: str | None = None):
        auth = ("--token", self.token) if self.token else ()
        return self.kubectl(*auth, "-n", self.namespace, *args, input=input, check=False)

    def patch(self, incident: str, ops: list[dict]):
        return self("patch", "incident", incident, "--type", "json", "-p", json.dumps(ops))

    def approve(self, incident: str, step: str, approved_by: str | None = None, **extra):
        entry = {"step": step, "approvedBy": approved_by or self.user, **extra}
        existing = self.kubectl.get("incident", incident, self.namespace)["spec"].get("approvals")
        op = {"op": "add", "path": "/spec/approvals/-", "value": entry} if existing else {
            "op": "add", "path": "/spec/approvals", "value": [entry]}  # fmt: skip
        return self.patch(incident, [op])


def approvals(kubectl, incident: str, namespace: str) -> list[dict]:
    return kubectl.get("incident", incident, namespace)["spec"].get("approvals") or []


def test_every_forged_or_unauthorised_approval_is_refused(kubectl, namespace, people, webhook, capsys):
    a, b, patcher = (Person(kubectl, namespace, n, people[n]) for n in PEOPLE)
    admin = Person(kubectl, namespace, "admin", None)
    kubectl.apply(
        {"apiVersion": "aiops.dev/v1alpha1", "kind": "Incident", "metadata": {"name": "db-down"},
         "spec": {"title": "orders database down", "severity": "critical", "analysis": {"llm": False}}},
        namespace,
    )  # fmt: skip
    first = {"step": "failover", "approvedBy": a.user}
    rows: list[tuple[str, str, str, bool, object]] = []  # (who, tries, expected, forged, outcome)

    def attempt(person: Person, tries: str, proc, expected: str, forged: bool) -> None:
        rows.append((person.user.rsplit(":", 1)[-1], tries, expected, forged, proc))

    attempt(a, "approve as self (has approve)", a.approve("db-down", "failover"), "accepted", False)
    stored = approvals(kubectl, "db-down", namespace)
    attempt(patcher, "approve as self without the approve verb", patcher.approve("db-down", "failover"),
            "refused", True)  # fmt: skip
    attempt(patcher, "approve claiming approver-b's name", patcher.approve("db-down", "failover", b.user),
            "refused", True)  # fmt: skip
    attempt(b, "approve claiming approver-a's name", b.approve("db-down", "restart", a.user), "refused", True)
    attempt(admin, "approve claiming approver-b's name (cluster admin)", admin.approve("db-down", "failover", b.user),
            "refused", True)  # fmt: skip
    attempt(a, "edit own existing approval (comment)",
            a.patch("db-down", [{"op": "add", "path": "/spec/approvals/0/comment", "value": "meant restart"}]),
            "refused", True)  # fmt: skip
    attempt(b, "rename an existing approval to self",
            b.patch("db-down", [{"op": "replace", "path": "/spec/approvals/0/approvedBy", "value": b.user}]),
            "refused", True)  # fmt: skip
    attempt(b, "remove another's approval", b.patch("db-down", [{"op": "remove", "path": "/spec/approvals/0"}]),
            "refused", True)  # fmt: skip
    attempt(b, "merge-patch the list to own approval only",
            b("patch", "incident", "db-down", "--type", "merge",
              "-p", json.dumps({"spec": {"approvals": [{"step": "failover", "approvedBy": b.user}]}})),
            "refused", True)  # fmt: skip
    attempt(a, "approve the same step twice", a.approve("db-down", "failover"), "refused", True)
    created = {
        "apiVersion": "aiops.dev/v1alpha1",
        "kind": "Incident",
        "metadata": {"name": "pre-approved"},
        "spec": {"title": "t", "severity": "low", "approvals": [{"step": "failover", "approvedBy": a.user}]},
    }
    attempt(a, "create an Incident carrying an approval", a("create", "-f", "-", input=json.dumps(created)),
            "refused", True)  # fmt: skip
    attempt(b, "approve as self, claiming group sre-leads in a made-up seal",
            b.approve("db-down", "failover", verification={"groups": ["sre-leads"], "seal": "v1:made-up"}),
            "accepted", False)  # fmt: skip
    attempt(patcher, "change something else (spec.feedback)",
            patcher.patch("db-down", [{"op": "add", "path": "/spec/feedback", "value": {"correct": True}}]),
            "accepted", False)  # fmt: skip

    got = {i: ("accepted" if proc.returncode == 0 else "refused") for i, (*_, proc) in enumerate(rows)}
    lines = ["| # | user | tries | expected | got | API server's answer |", "| --- | --- | --- | --- | --- | --- |"]
    for i, (who, tries, expected, _, proc) in enumerate(rows):
        answer = (proc.stderr.strip() or proc.stdout.strip()).replace("\n", " ").split("denied the request: ")[-1]
        answer = answer.replace(f"system:serviceaccount:{namespace}:", "")  # the people's short names
        lines.append(f"| {i + 1} | {who} | {tries} | {expected} | {got[i]} | {answer[:150]} |")
    forged = [i for i, row in enumerate(rows) if row[3]]
    refused = [i for i in forged if got[i] == "refused"]
    lines.append(f"\nforged or unauthorised approvals refused: {len(refused)}/{len(forged)} "
                 f"({100 * len(refused) // len(forged)}%)")  # fmt: skip
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert all(got[i] == row[2] for i, row in enumerate(rows)), "\n".join(lines)
    assert len(refused) == len(forged) == 10

    # What the refusals say: the field, the user, what to do.
    def answer(i: int) -> str:
        return rows[i][4].stderr

    assert f"spec.approvals[1]: {patcher.user} may not approve incidents.aiops.dev {namespace}/db-down" in answer(1)
    assert "grant the verb 'approve'" in answer(1)
    assert f"spec.approvals[1].approvedBy: '{b.user}' is not who is asking" in answer(2)
    assert f"authenticated this request as '{patcher.user}'" in answer(2)
    assert "authenticated this request as 'aiops-admin'" in answer(4)
    assert "spec.approvals[0]: approvals are append-only" in answer(5)
    assert f"{b.user} would remove 1 of 1" in answer(7)
    assert "kubectl patch --type json" in answer(8)
    assert f"spec.approvals[1]: {a.user} already approved step 'failover' in spec.approvals[0]" in answer(9)
    assert "spec.approvals: an Incident is created without approvals" in answer(10)
    assert kubectl.get("incident", "pre-approved", namespace) is None

    # What was stored: a's entry as the webhook sealed it (its time, a's real groups), then b's, whose made-up
    # group and seal were replaced by what the API server knows of b.
    final = approvals(kubectl, "db-down", namespace)
    assert [(x["step"], x["approvedBy"]) for x in final] == [("failover", a.user), ("failover", b.user)]
    assert final[0] == stored[0] and stored[0]["approvedAt"] and stored[0]["verification"]["seal"].startswith("v1:")
    assert first.items() <= final[0].items()
    assert set(final[1]["verification"]["groups"]) == {
        "system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"
    }  # fmt: skip
    assert final[1]["verification"]["seal"] != "v1:made-up"

    # The operator's own writes pass the webhook: status through its subresource, then kopf's annotation on the
    # Incident (written after the handler returns: a busy machine showed the status a moment before it).
    def handled(o: dict) -> bool:
        marked = any(k.startswith("aiops.dev/") for k in o["metadata"].get("annotations", {}))
        return phase(o) not in (None, "New") and marked

    kubectl.wait("incident", "db-down", namespace, until=handled, timeout=60, what="the status and the annotation")


def test_two_distinct_approvers_from_the_group_then_the_rollback_runs(
    kubeconfig, kubectl, namespace, people, webhook, writer
):
    group = f"system:serviceaccounts:{namespace}"
    a, b = (Person(kubectl, namespace, n, people[n]) for n in ("approver-a", "approver-b"))
    policy = {"rules": [{"actions": ["rollbackDeployment"], "severities": ["critical"], "approvers": "two",
                         "group": group}]}  # fmt: skip
    # Someone with the verb but outside the group: a ServiceAccount of another namespace, bound here.
    other = f"{namespace}-x"[:63]
    kubectl("create", "namespace", other)
    kubectl.apply(binding("approver", "outsider", other), namespace)
    api = config.new_client_from_config(config_file=kubeconfig)
    outsider = Person(kubectl, namespace, "outsider", service_account_tokens(api, other, ("outsider",))["outsider"])
    api.close()
    outsider.user = f"system:serviceaccount:{other}:outsider"

    cases.write("checkout-oomkilled", writer)
    kubectl.apply({**ROLLBACK_SOP, "spec": {**ROLLBACK_SOP["spec"], "approvalPolicy": policy}}, namespace)
    kubectl.apply(checkout_incident("oom", analysis={"llm": False}, sopRef={"name": "oom-rollback"}), namespace)

    def rollback(o: dict) -> dict:
        return next(s for s in (o.get("status", {}).get("sop") or {}).get("steps", []) if s["id"] == "rollback")

    def waiting(text: str):
        return lambda o: (o.get("status", {}).get("sop") and rollback(o)["state"] == "AwaitingApproval"
                          and text in (rollback(o).get("output") or ""))  # fmt: skip

    kubectl.wait("incident", "oom", namespace, timeout=90, what="the rollback waiting for two approvals",
                 until=waiting(f"step rollback needs 2 approvals (2 distinct people) from group {group}"))  # fmt: skip

    assert outsider.approve("oom", "rollback").returncode == 0  # may approve here: the webhook lets it through
    assert a.approve("oom", "rollback").returncode == 0
    expected = (f"step rollback needs 1 more approval (2 distinct people) from group {group} (approved by {a.user}); "
                f"not counted: {outsider.user}: not in group {group}")  # fmt: skip
    inc = kubectl.wait("incident", "oom", namespace, timeout=30, what="one of two approvals counted",
                       until=waiting(expected))  # fmt: skip
    approved = condition(inc, "Approved")
    assert (approved["status"], approved["reason"], approved["message"]) == ("False", "AwaitingApproval", expected)
    assert phase(inc) == "Remediating" and inc["status"]["sop"]["audit"] == []

    assert b.approve("oom", "rollback").returncode == 0
    inc = kubectl.wait("incident", "oom", namespace, until=lambda o: phase(o) in ("Resolved", "Escalated"),
                       timeout=60, what="the runbook to finish")  # fmt: skip
    assert phase(inc) == "Resolved", inc["status"]["sop"]
    [audit] = inc["status"]["sop"]["audit"]
    assert audit["approvedBy"] == f"{a.user}, {b.user}" and audit["dryRun"] == "passed"
    approved = condition(inc, "Approved")
    assert (approved["status"], approved["reason"]) == ("True", "Approved")
    assert approved["message"] == f"step rollback approved by {a.user}, {b.user}"
    image = "{.spec.template.spec.containers[0].image}"
    assert kubectl("-n", namespace, "get", "deploy", "checkout", "-o", f"jsonpath={image}").stdout.endswith("1.4.2")


def test_without_the_webhook_an_approval_is_a_claim_refused_by_default(kubectl, operator, namespace, writer):
    cases.write("checkout-oomkilled", writer)
    kubectl.apply(ROLLBACK_SOP, namespace)
    kubectl.apply(checkout_incident("claim", analysis={"llm": False}, sopRef={"name": "oom-rollback"}), namespace)
    kubectl.wait("incident", "claim", namespace, timeout=90, what="the rollback waiting for approval",
                 until=lambda o: condition(o, "Approved"))  # fmt: skip
    approval = {"spec": {"approvals": [{"step": "rollback", "approvedBy": "jane@example.com"}]}}
    kubectl("-n", namespace, "patch", "incident", "claim", "--type", "merge", "-p", json.dumps(approval))
    inc = kubectl.wait("incident", "claim", namespace, timeout=30, what="the claim judged unverified",
                       until=lambda o: condition(o, "Approved")["reason"] == "UnverifiedApproval")  # fmt: skip
    message = condition(inc, "Approved")["message"]
    assert message == (
        "step rollback needs 1 approval; not counted: jane@example.com: unverified (no seal of the admission "
        "webhook); only approvals through the admission webhook count"
    )
    rollback = inc["status"]["sop"]["steps"][0]
    assert rollback["state"] == "AwaitingApproval" and rollback["output"] == message
    assert inc["status"]["sop"]["audit"] == []
    warnings = [e for e in kubectl.events(namespace, "claim") if e["reason"] == "UnverifiedApproval"]
    assert warnings and warnings[0]["type"] == "Warning"
