"""`aiops mcp` against the real API server, through the MCP SDK's own client over stdio and streamable HTTP.

Two ServiceAccounts stand for two people: `approver` holds the custom verb `approve` on incidents, with get and
patch to write the approval as itself (and create on analysisruns) through a Role, `viewer` holds nothing. Their
tokens come from the TokenRequest API, so the server's TokenReview and SubjectAccessReview run exactly as on a
real cluster.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from kubernetes import config
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from aiops_dev.controlplane import free_port
from aiops_dev.eval.workloads import container
from harness import wait_for
from support.kubeusers import service_account_tokens
from support.mcpclient import http_session as mcp_http_session

AIOPS = str(Path(sys.executable).with_name("aiops"))
SERVER_TOKEN = "mcp-test-token-0123456789"
ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "Role",
    "metadata": {"name": "incident-approver"},
    "rules": [
        {"apiGroups": ["aiops.dev"], "resources": ["incidents"], "verbs": ["get", "patch", "approve"]},
        {"apiGroups": ["aiops.dev"], "resources": ["analysisruns"], "verbs": ["create"]},
    ],
}


@pytest.fixture
def people(kubeconfig, kubectl, namespace) -> dict[str, str]:
    """Kubernetes tokens of `approver` (may approve) and `viewer` (may not), by name."""
    kubectl.apply(ROLE, namespace)
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "incident-approver"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "incident-approver"},
        "subjects": [{"kind": "ServiceAccount", "name": "approver", "namespace": namespace}],
    }
    kubectl.apply(binding, namespace)
    api = config.new_client_from_config(config_file=kubeconfig)
    tokens = service_account_tokens(api, namespace, ("approver", "viewer"))
    api.close()
    return tokens


@pytest.fixture
def incident(kubectl, namespace) -> str:
    kubectl.apply(
        {
            "apiVersion": "aiops.dev/v1alpha1",
            "kind": "Incident",
            "metadata": {"name": "checkout-down"},
            "spec": {"title": "checkout returns 503", "severity": "critical"},
        },
        namespace,
    )
    return "checkout-down"


@pytest.fixture
def http_server(kubeconfig, kubectl, tmp_path):
    """`aiops mcp --transport http` on a free loopback port; its URL."""
    port = free_port()
    env = {**os.environ, "KUBECONFIG": kubeconfig, "AIOPS_MCP_TOKEN": SERVER_TOKEN}
    log = open(tmp_path / "mcp.log", "wb")
    proc = subprocess.Popen(
        [AIOPS, "mcp", "--transport", "http", "--listen", f"127.0.0.1:{port}"], env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}/mcp"

    def up() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 401
        except httpx.TransportError:
            assert proc.poll() is None, (tmp_path / "mcp.log").read_text()
            return False

    wait_for(up, 30, "aiops mcp to listen")
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


def http_session(url: str, kube_token: str | None = None):
    return mcp_http_session(url, SERVER_TOKEN, kube_token)


@asynccontextmanager
async def stdio_session(kubeconfig: str, kube_token: str | None = None):
    env = {"KUBECONFIG": kubeconfig, "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    if kube_token:
        env["AIOPS_MCP_KUBE_TOKEN"] = kube_token
    params = StdioServerParameters(command=AIOPS, args=["mcp"], env=env)
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


def test_stdio_lists_tools_reads_the_cluster_and_refuses_secrets(kubeconfig, namespace, writer):
    deployment = writer.deployment("checkout", [container(env=[{"name": "DB_PASSWORD", "value": "hunter2-xyz"}])])
    writer.replicaset(deployment, [container()], revision=1)

    async def main():
        async with stdio_session(kubeconfig) as session:
            names = {t.name for t in (await session.list_tools()).tools}
            assert {"k8s_get", "k8s_describe", "promql", "logql", "traces", "approve_step", "start_run"} <= names
            listed = await session.call_tool("k8s_list", {"kind": "deployments", "namespace": namespace})
            got = await session.call_tool("k8s_get", {"kind": "deploy", "name": "checkout", "namespace": namespace})
            history = await session.call_tool("k8s_rollout_history", {"namespace": namespace, "deployment": "checkout"})
            secret = await session.call_tool("k8s_get", {"kind": "Secret", "name": "x", "namespace": namespace})
            with pytest.raises(MCPError) as bad:
                await session.call_tool("k8s_list", {"kind": "pods", "limit": "many"})
            return listed, got, history, secret, bad.value

    listed, got, history, secret, bad = anyio.run(main)
    assert not listed.is_error and "checkout  ready 0/1" in listed.content[0].text
    assert listed.content[0].text.startswith("[[BEGIN TOOL_RESULT tool=k8s_list status=ok boundary=")
    assert listed.structured_content["status"] == "ok"
    assert "hunter2-xyz" not in got.content[0].text and "<masked" in got.content[0].text
    assert (
        "revision 1" in history.content[0].text and "app=registry.example.com/shop/app:1.0" in history.content[0].text
    )
    assert secret.is_error and "Secrets are never readable" in secret.content[0].text
    assert bad.code == -32602 and "limit" in bad.message and "Traceback" not in bad.message


def test_stdio_approval_is_written_for_the_reviewed_user(kubeconfig, kubectl, namespace, people, incident):
    async def main():
        async with stdio_session(kubeconfig, people["approver"]) as session:
            args = {"namespace": namespace, "incident": incident, "step": "rollback", "approvedBy": "someone-else"}
            with pytest.raises(MCPError) as extra:
                await session.call_tool("approve_step", args)  # a caller-supplied name is not an argument at all
            del args["approvedBy"]
            return extra.value, await session.call_tool("approve_step", {**args, "comment": "go"})

    extra, done = anyio.run(main)
    assert extra.code == -32602 and "approvedBy" in extra.message
    user = f"system:serviceaccount:{namespace}:approver"
    assert not done.is_error and user in done.content[0].text
    (approval,) = kubectl.get("incident", incident, namespace)["spec"]["approvals"]
    assert approval["step"] == "rollback" and approval["approvedBy"] == user and approval["comment"] == "go"


def test_http_requires_the_bearer_token(http_server):
    assert httpx.post(http_server, json={}, timeout=5).status_code == 401
    wrong = httpx.post(http_server, json={}, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert wrong.status_code == 401 and "AIOPS_MCP_TOKEN" in wrong.text

    async def main():
        async with create_mcp_http_client(headers={"Authorization": "Bearer wrong-token"}) as http:
            async with streamable_http_client(http_server, http_client=http) as (read, write):
                async with ClientSession(read, write, read_timeout_seconds=10) as session:
                    try:
                        await session.initialize()
                    except MCPError as exc:
                        return exc

    refused = anyio.run(main)
    assert isinstance(refused, MCPError) and refused.message == "Server returned an error response"


def test_http_start_run_and_approvals_by_kubernetes_identity(http_server, kubectl, namespace, people, incident):
    approve = {"namespace": namespace, "incident": incident, "step": "rollback"}

    async def main():
        async with http_session(http_server, people["viewer"]) as session:
            with pytest.raises(MCPError) as refused:
                await session.call_tool("approve_step", approve)
        async with http_session(http_server, "not-a-token") as session:
            with pytest.raises(MCPError) as unknown:
                await session.call_tool("approve_step", approve)
        async with http_session(http_server) as session:
            with pytest.raises(MCPError) as anonymous:
                await session.call_tool("approve_step", approve)
            diagnosis = await session.call_tool("incident_diagnosis", {"namespace": namespace, "name": incident})
        async with http_session(http_server, people["approver"]) as session:
            run = await session.call_tool(
                "start_run", {"namespace": namespace, "type": "query", "question": "why does checkout fail?"}
            )
            with pytest.raises(MCPError) as bad:
                await session.call_tool("start_run", {"namespace": namespace, "type": "query"})
            approved = await session.call_tool("approve_step", approve)
        return refused.value, unknown.value, anonymous.value, diagnosis, run, bad.value, approved

    refused, unknown, anonymous, diagnosis, run, bad, approved = anyio.run(main)
    viewer = f"system:serviceaccount:{namespace}:viewer"
    assert refused.code == -32003 and f"{viewer} may not approve incidents.aiops.dev" in refused.message
    assert unknown.code == -32001 and "does not accept" in unknown.message
    assert anonymous.code == -32001 and "X-Kubernetes-Token" in anonymous.message
    # The session's operator diagnoses every Incident: the read finds the diagnosis or says there is none yet.
    read = (diagnosis.structured_content["status"], diagnosis.content[0].text)
    assert read[0] == "empty" and "no diagnosis yet" in read[1] or read[0] == "ok" and "root cause (" in read[1], read
    assert bad.code == -32602 and "question" in bad.message

    name = run.content[0].text.split(f"AnalysisRun {namespace}/")[1].split()[0]
    stored = kubectl.get("analysisrun", name, namespace)
    assert stored["spec"] == {"type": "query", "inputs": {"question": "why does checkout fail?"}}
    approver = f"system:serviceaccount:{namespace}:approver"
    assert stored["metadata"]["annotations"]["aiops.dev/requested-by"] == approver
    assert approver in approved.content[0].text
    approvals = kubectl.get("incident", incident, namespace)["spec"]["approvals"]
    assert [(a["step"], a["approvedBy"]) for a in approvals] == [("rollback", approver)]
