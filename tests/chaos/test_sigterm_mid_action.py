"""SIGTERM reaches the operator while an approved SOP action (a rollback of a real Deployment) is under way, held
up by a slow admission webhook on Deployments as a policy engine can be: the change is made once or not at all,
and the runbook's audit says which."""

from __future__ import annotations

import base64
import threading
import time

import yaml

from aiops_dev.eval import cases
from harness import checkout_incident, phase, rollback_sop
from support import counting
from support.receivers import HttpReceiver, Received, Reply, self_signed

ADMISSION_S = 3.0  # each of the action's requests (its dry run, then the change) waits this long for admission
SLOW = "chaos.aiops.dev/slow-admission"
RUNBOOK = rollback_sop(
    "oom-rollback",
    "Roll back an OOMKilled release",
    match={"symptoms": ["OOMKilled"], "resourceKinds": ["Deployment"]},
)


class SlowAdmission:
    """A validating admission webhook for the Deployments of labelled namespaces that allows every request after
    ADMISSION_S, and keeps them: `requests` (their AdmissionReview requests), `arrived` once the first came."""

    def __init__(self, folder):
        self.arrived = threading.Event()
        self.cert, key = self_signed(folder)
        self.server = HttpReceiver(self._answer, tls=(self.cert, key))

    def _answer(self, received: Received) -> Reply:
        request = received.json()["request"]
        self.arrived.set()
        response = {"uid": request["uid"], "allowed": True}
        return Reply(200, {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response},
                     delay=ADMISSION_S)  # fmt: skip

    @property
    def requests(self) -> list[dict]:
        return [r.json()["request"] for r in self.server.requests]

    def configuration(self, name: str) -> dict:
        return {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [{
                "name": "slow.chaos.aiops.dev",
                "clientConfig": {"url": f"{self.server.url}/validate",
                                 "caBundle": base64.b64encode(self.cert.read_bytes()).decode()},
                "rules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["UPDATE"],
                           "resources": ["deployments"], "scope": "Namespaced"}],
                "namespaceSelector": {"matchLabels": {SLOW: "true"}},
                "sideEffects": "None",  # so that dry runs are sent to it too
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 10,
                "failurePolicy": "Fail",
            }],
        }  # fmt: skip


def test_sigterm_while_an_approved_rollback_is_under_way(kubectl, operator_env, namespace, writer, tmp_path, tally):
    cases.write("checkout-oomkilled", writer)
    kubectl.apply(RUNBOOK, namespace)
    generation = kubectl.get("deployment", "checkout", namespace)["metadata"]["generation"]
    admission = SlowAdmission(tmp_path)
    hook = f"chaos-slow-{namespace}"[:63]
    with admission.server:
        kubectl.apply(admission.configuration(hook))
        kubectl("label", "namespace", namespace, f"{SLOW}=true")
        try:
            operator = operator_env({"AIOPS_APPROVALS": "unverified-allowed"})
            approval = {"step": "rollback", "approvedBy": "jane@example.com"}
            kubectl.apply(checkout_incident("oom", analysis={"llm": False}, approvals=[approval]), namespace)
            reached = admission.arrived.wait(90)  # the action's dry run waits on the webhook: the pass is under way
            stopping = time.monotonic()
            operator.stop()  # SIGTERM
            stopped_s = time.monotonic() - stopping
            operator.start()
            counting.until(lambda: phase(kubectl.get("incident", "oom", namespace)) in ("Resolved", "Escalated"), 60)
        finally:
            kubectl("delete", "validatingwebhookconfiguration", hook, check=False)
    inc = kubectl.get("incident", "oom", namespace)
    deployment = kubectl.get("deployment", "checkout", namespace)
    writes = [r for r in admission.requests if not r.get("dryRun")]  # each change that reached the API server
    done = [a for a in (inc["status"].get("sop") or {}).get("audit") or [] if a["outcome"] == "done"]
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    lost = [f"{len(writes) - len(done)} change(s) made but not in the audit"] if len(writes) > len(done) else []
    duplicated = [f"{len(writes)} changes made"] if len(writes) > 1 else []
    duplicated += [f"{len(done)} audit entries for {len(writes)} change(s)"] if len(done) > len(writes) else []
    tally(1, len(lost), len(duplicated),
          f"SIGTERM mid dry run, exit after {stopped_s:.1f}s; {len(writes)} change(s) admitted, "
          f"{len(done)} audited; generation +{deployment['metadata']['generation'] - generation}, image {image}; "
          f"Incident {phase(inc)}")  # fmt: skip
    assert reached, "the action never reached the API server: nothing was under way when SIGTERM came"
    assert not lost and not duplicated, yaml.safe_dump(inc["status"].get("sop"))
    assert (phase(inc), image.endswith("1.4.2")) == (("Resolved", True) if writes else ("Escalated", False))
