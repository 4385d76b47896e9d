"""`aiops mcp` in-process, through the SDK's own client, with canned API answers: protocol errors for bad
arguments and identities, approvals written for the reviewed user only, and the HTTP bearer gate."""

from __future__ import annotations

import json

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from aiops.api import INCIDENT
from aiops.core import kube
from aiops.mcpserver import server
from aiops.mcpserver.auth import BearerGate, check_bearer
from aiops.tools import ToolContext
from support.fakekube import FakeClient

NS = "shop"
USERS = {"alice-token": "alice", "bob-token": "bob"}  # alice may approve, bob may not


class Recording(FakeClient):
    def __init__(self):
        super().__init__()
        self.patches: list[dict] = []
        self.patched_as: list[object] = []  # the client each patch went through
        self.api: object = None

    def create(self, kind, body):
        meta = body["metadata"]
        meta.setdefault("name", meta.pop("generateName", "") + "x7k2q")
        return super().create(kind, body)

    def patch(self, kind, name, namespace, body):
        self.patches.append(body)
        self.patched_as.append(self.api)
        return super().patch(kind, name, namespace, body)


@pytest.fixture
def cluster(monkeypatch) -> Recording:
    fake = Recording()
    fake.put(
        INCIDENT,
        {"metadata": {"name": "checkout-503", "namespace": NS}, "spec": {"title": "t", "severity": "critical"}},
    )

    def client(api=None):
        fake.api = api
        return fake

    monkeypatch.setattr(kube, "ApiServer", client)
    monkeypatch.setattr(server, "acting_as", lambda api, token: f"the API server, as the holder of {token}")

    def request(api, method, path, query=None, body=None, content_type=None, timeout=10):
        if path.endswith("/tokenreviews"):
            user = USERS.get(body["spec"]["token"])
            status = {"authenticated": True, "user": {"username": user, "groups": ["people"]}} if user else {}
            return json.dumps({"status": status}).encode()
        if path.endswith("/subjectaccessreviews"):
            spec = body["spec"]
            allowed = spec["user"] == "alice" and spec["resourceAttributes"]["verb"] in ("approve", "create")
            return json.dumps({"status": {"allowed": allowed}}).encode()
        raise AssertionError(f"unexpected {method} {path}")

    monkeypatch.setattr(kube, "request", request)
    return fake


def session(stdio_token: str | None = None):
    return Client(server.build(ToolContext(api=None), stdio_token), mode="legacy")


APPROVE = {"namespace": NS, "incident": "checkout-503", "step": "rollback"}


def call(name: str, arguments: dict, stdio_token: str | None = None):
    """The tool's result; a protocol error is raised as MCPError (caught inside the session, which would wrap
    it in an ExceptionGroup on the way out)."""

    async def main():
        async with session(stdio_token) as client:
            try:
                return await client.call_tool(name, arguments)
            except MCPError as exc:
                return exc

    answer = anyio.run(main)
    if isinstance(answer, MCPError):
        raise answer
    return answer


def test_tools_are_listed_with_their_schemas(cluster):
    async def main():
        async with session() as client:
            return (await client.list_tools()).tools

    tools = {t.name: t for t in anyio.run(main)}
    assert tools["k8s_get"].input_schema["required"] == ["kind", "name"]
    assert tools["k8s_get"].annotations.read_only_hint is True
    assert tools["approve_step"].annotations.read_only_hint is False
    assert set(tools["approve_step"].input_schema["properties"]) == {"namespace", "incident", "step", "comment"}


@pytest.mark.parametrize(
    ("name", "arguments", "words"),
    [
        ("k8s_get", {"kind": "pod"}, "bad arguments: name: Field required"),
        ("approve_step", {**APPROVE, "approvedBy": "alice"}, "approvedBy: Extra inputs are not permitted"),
        ("start_run", {"namespace": NS, "type": "rootCause"}, "a rootCause run needs incident"),
        ("rm", {}, "no tool 'rm'"),
    ],
)
def test_bad_arguments_are_protocol_errors(cluster, name, arguments, words):
    with pytest.raises(MCPError) as caught:
        call(name, arguments, "alice-token")
    assert caught.value.code == -32602 and words in caught.value.message
    assert cluster.patches == []


@pytest.mark.parametrize(
    ("token", "code", "words"),
    [
        (None, -32001, "X-Kubernetes-Token"),
        ("forged", -32001, "does not accept the caller's token"),
        ("bob-token", -32003, "bob may not approve incidents.aiops.dev shop/checkout-503"),
    ],
)
def test_approval_needs_a_reviewed_user_with_the_verb(cluster, token, code, words):
    with pytest.raises(MCPError) as caught:
        call("approve_step", APPROVE, token)
    assert caught.value.code == code and words in caught.value.message
    assert cluster.patches == []


def test_approval_is_written_as_the_reviewed_user(cluster):
    result = call("approve_step", {**APPROVE, "comment": "go"}, "alice-token")
    assert (
        not result.is_error
        and result.content[0].text == "approved step rollback of Incident shop/checkout-503 as alice"
    )
    (patch,) = cluster.patches
    (approval,) = patch["spec"]["approvals"]
    assert approval["approvedBy"] == "alice" and approval["step"] == "rollback" and approval["comment"] == "go"
    assert patch["metadata"]["resourceVersion"]  # replaced only if nobody changed it meanwhile
    # Written with alice's own token, so that the admission webhook sees alice as the requester.
    assert cluster.patched_as == ["the API server, as the holder of alice-token"]


def test_a_step_outside_the_incidents_sop_or_already_approved_by_the_caller_writes_nothing(cluster):
    stored = cluster.objects[("incidents", NS, "checkout-503")]
    stored["status"] = {"sop": {"name": "crash", "steps": [{"id": "check", "state": "Done"}]}}
    unknown = call("approve_step", APPROVE, "alice-token")
    assert unknown.is_error and "has no step 'rollback' (steps: check)" in unknown.content[0].text
    stored["spec"]["approvals"] = [{"step": "check", "approvedBy": "alice"}]
    again = call("approve_step", {**APPROVE, "step": "check"}, "alice-token")
    assert again.content[0].text == "step check of Incident shop/checkout-503 was already approved by alice"
    assert cluster.patches == []


def test_a_second_person_approves_a_step_someone_else_approved(cluster):
    stored = cluster.objects[("incidents", NS, "checkout-503")]
    stored["spec"]["approvals"] = [{"step": "rollback", "approvedBy": "carol"}]
    result = call("approve_step", APPROVE, "alice-token")
    assert result.content[0].text == "approved step rollback of Incident shop/checkout-503 as alice"
    (patch,) = cluster.patches
    assert [(a["step"], a["approvedBy"]) for a in patch["spec"]["approvals"]] == [
        ("rollback", "carol"),
        ("rollback", "alice"),
    ]


def test_start_run_creates_an_analysisrun_for_the_caller(cluster):
    result = call("start_run", {"namespace": NS, "type": "rootCause", "incident": "checkout-503"}, "alice-token")
    assert result.content[0].text == "created AnalysisRun shop/mcp-rootcause-x7k2q (rootCause) for alice"
    (run,) = [o for (plural, _, _), o in cluster.objects.items() if plural == "analysisruns"]
    assert run["spec"] == {"type": "rootCause", "incidentRef": {"name": "checkout-503"}}
    assert run["metadata"]["annotations"]["aiops.dev/requested-by"] == "alice"


def test_bearer_check_is_exact():
    assert check_bearer(b"Bearer s3cret-token-123456", b"s3cret-token-123456")
    assert check_bearer(b"bearer s3cret-token-123456", b"s3cret-token-123456")
    for header in (b"", b"Bearer", b"Bearer s3cret", b"Basic s3cret-token-123456", b"Bearer s3cret-token-1234567"):
        assert not check_bearer(header, b"s3cret-token-123456")


def test_the_gate_answers_401_and_calls_nothing():
    reached, sent = [], []

    async def app(scope, receive, send):
        reached.append(scope["type"])

    async def send(message):
        sent.append(message)

    gate = BearerGate(app, "s3cret-token-123456")
    anyio.run(gate, {"type": "http", "headers": [(b"authorization", b"Bearer nope")]}, None, send)
    assert reached == [] and sent[0]["status"] == 401
    anyio.run(gate, {"type": "http", "headers": [(b"authorization", b"Bearer s3cret-token-123456")]}, None, send)
    assert reached == ["http"]
    with pytest.raises(ValueError, match="at least 16"):
        BearerGate(app, "short")
