"""Postmortems through the real operator into a real S3-compatible server (moto's, on loopback): stored once at
its key, linked from status, written again after feedback; an unreachable store and a missing bucket are
conditions on the Incident, retried with backoff until the store is there."""

import hashlib
import json

import pytest
from minio import Minio

from aiops_dev.controlplane import free_port
from aiops_dev.eval import cases
from harness import checkout_incident, condition, phase
from support.artifacts import keep
from support.servers import MotoServer

BUCKET = "postmortems"

RUNBOOK = {
    "apiVersion": "aiops.dev/v1alpha1",
    "kind": "SOP",
    "metadata": {"name": "look-at-checkout"},
    "spec": {
        "title": "Look at checkout",
        "steps": [
            {
                "id": "rollout",
                "type": "check",
                "title": "The Deployment is readable",
                "command": "kubectl -n $NAMESPACE get deployment $TARGET",
            },
        ],  # fmt: skip
    },
}


@pytest.fixture
def s3():
    server = MotoServer().start()
    yield server
    server.close()


def client(endpoint: str) -> Minio:
    return Minio(endpoint.removeprefix("http://"), access_key="test", secret_key="test", secure=False)


def env(endpoint: str) -> dict[str, str]:
    return {
        "AIOPS_POSTMORTEM_ENDPOINT": endpoint,
        "AIOPS_POSTMORTEM_BUCKET": BUCKET,
        "AIOPS_POSTMORTEM_ACCESS_KEY": "test",
        "AIOPS_POSTMORTEM_SECRET_KEY": "test",
    }


def resolve(kubectl, namespace, writer, name):
    cases.write("checkout-oomkilled", writer)
    kubectl.apply(RUNBOOK, namespace)
    kubectl.apply(checkout_incident(name, analysis={"llm": False}, sopRef={"name": "look-at-checkout"}), namespace)


def read(s3: Minio, key: str) -> bytes:
    response = s3.get_object(BUCKET, key)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def test_a_resolved_incident_gets_its_postmortem_stored_linked_and_rewritten_after_feedback(
    kubectl, operator_env, namespace, writer, s3
):
    client(s3.endpoint).make_bucket(BUCKET)
    operator_env(env(s3.endpoint))
    resolve(kubectl, namespace, writer, "pm")
    inc = kubectl.wait("incident", "pm", namespace, timeout=90, what="the postmortem",
                       until=lambda o: (o.get("status") or {}).get("postmortem"))  # fmt: skip
    assert phase(inc) == "Resolved"
    uid, link = inc["metadata"]["uid"], inc["status"]["postmortem"]
    key = f"postmortems/{namespace}/pm-{uid}.md"
    assert (link["bucket"], link["key"], link["url"]) == (BUCKET, key, f"{s3.endpoint}/{BUCKET}/{key}")
    body = read(client(s3.endpoint), key)
    assert hashlib.sha256(body).hexdigest() == link["sha256"]
    lines = body.decode().splitlines()
    assert lines[0] == f"# Postmortem: {inc['spec']['title']}"
    assert f"| Incident | {namespace}/pm (uid {uid}) |" in lines
    assert any(line.startswith("| MTTR | ") and line.endswith("s |") for line in lines)
    assert "No model summary: no model is configured (AIOPS_LLM_BASE_URL)." in lines
    assert any(line.startswith("SOP look-at-checkout") for line in lines) and "## Feedback" in lines
    assert "| rollout | The Deployment is readable | Succeeded |" in "\n".join(lines)
    written = condition(inc, "PostmortemWritten")
    assert (written["status"], written["reason"]) == ("True", "PostmortemWritten") and key in written["message"]
    assert [e["reason"] for e in kubectl.events(namespace, "pm")].count("PostmortemWritten") == 1

    feedback = {"spec": {"feedback": {"correct": False, "by": "carol", "rootCause": "a leak in the cart cache"}}}
    kubectl("-n", namespace, "patch", "incident", "pm", "--type", "merge", "-p", json.dumps(feedback))
    inc = kubectl.wait("incident", "pm", namespace, timeout=60, what="the postmortem written again",
                       until=lambda o: o["status"]["postmortem"]["sha256"] != link["sha256"])  # fmt: skip
    assert inc["status"]["postmortem"]["generation"] == inc["metadata"]["generation"]
    body = read(client(s3.endpoint), key).decode()
    assert "Corrected root cause: a leak in the cart cache" in body
    keep(
        "postmortem.txt",
        f"key: {key}\nurl: {inc['status']['postmortem']['url']}\n\n" + "\n".join(body.splitlines()[:20]),
    )


def test_an_unreachable_store_then_a_missing_bucket_are_conditions_retried_until_it_is_stored(
    kubectl, operator_env, namespace, writer
):
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    operator_env(env(endpoint))  # nothing listens there yet
    resolve(kubectl, namespace, writer, "pm-retry")

    def failed_with(reason):
        return lambda o: (condition(o, "PostmortemWritten") or {}).get("reason") == reason

    inc = kubectl.wait("incident", "pm-retry", namespace, timeout=90, until=failed_with("StoreUnreachable"),
                       what="PostmortemWritten=False StoreUnreachable")  # fmt: skip
    message = condition(inc, "PostmortemWritten")["message"]
    assert condition(inc, "PostmortemWritten")["status"] == "False" and "postmortem" not in inc["status"]
    assert f"object store {endpoint}, bucket '{BUCKET}': cannot reach it" in message and "retrying in" in message

    server = MotoServer(port).start()  # the store comes up, without the bucket
    try:
        inc = kubectl.wait("incident", "pm-retry", namespace, timeout=60, until=failed_with("BucketMissing"),
                           what="PostmortemWritten=False BucketMissing, on a retry")  # fmt: skip
        message = condition(inc, "PostmortemWritten")["message"]
        assert f"object store {endpoint}, bucket '{BUCKET}': the bucket does not exist" in message
        reasons = [e["reason"] for e in kubectl.events(namespace, "pm-retry")]
        assert {"StoreUnreachable", "BucketMissing"} <= set(reasons), reasons

        client(endpoint).make_bucket(BUCKET)
        inc = kubectl.wait("incident", "pm-retry", namespace, timeout=120, what="the postmortem, after the bucket",
                           until=lambda o: (o.get("status") or {}).get("postmortem"))  # fmt: skip
        assert condition(inc, "PostmortemWritten")["status"] == "True"
        assert read(client(endpoint), inc["status"]["postmortem"]["key"]).startswith(b"# Postmortem: ")
    finally:
        server.close()
