"""An MCP session with `aiops mcp`, printed request by request: for the docs and for reviewing the server.

    python tests/bench/mcp_transcript.py [--kubeconfig PATH]

Without --kubeconfig it starts a local control plane (aiops_dev.controlplane), installs the CRDs and writes
a small scene into namespace `shop`: a crash-looping Deployment with its Events, an Incident, and two
ServiceAccounts, `approver` (granted the verb approve on incidents) and `viewer` (granted nothing). With
--kubeconfig it writes the same scene there (a test cluster only: the context must look like one).

Then, over streamable HTTP with the SDK's own client: tools/list, a read (k8s_describe), a refused
approval (viewer), an accepted one (approver), a bad argument, and a request without the server's token.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import anyio
import httpx
from kubernetes import config
from mcp import ClientSession
from mcp.shared.exceptions import MCPError

from aiops.api import KINDS
from aiops_dev import crdgen
from aiops_dev.controlplane import ControlPlane, free_port
from aiops_dev.eval.workloads import Writer, container

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import guard_test_context  # noqa: E402  (tests/ is not a package)
from support.kubeusers import service_account_tokens  # noqa: E402
from support.mcpclient import http_session as session  # noqa: E402

NS = "shop"
TOKEN = "transcript-" + os.urandom(8).hex()
WIDTH = 116


def kubectl(kubeconfig: str, *args: str, input: str | None = None) -> str:
    done = subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, *args], input=input, check=True, capture_output=True, text=True
    )
    return done.stdout


def scene(kubeconfig: str) -> dict[str, str]:
    """The objects the session reads and approves; the two people's Kubernetes tokens."""
    kubectl(kubeconfig, "apply", "-f", "-", input="---\n".join(crdgen.render(k) for k in KINDS))
    kubectl(kubeconfig, "wait", "--for=condition=established", "--timeout=60s", "crd", "--all")
    kubectl(kubeconfig, "create", "namespace", NS)
    api = config.new_client_from_config(config_file=kubeconfig)
    writer = Writer(api, NS)
    image = "registry.example.com/shop/checkout:2.4.1"
    deployment = writer.deployment("checkout", [container(image=image)])
    rs = writer.replicaset(deployment, [container(image=image)], revision=2)
    waiting = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}}
    last = {"terminated": {"reason": "Error", "exitCode": 1, "finishedAt": "2026-12-06T07:58:00Z"}}
    status = {
        "phase": "Running",
        "containerStatuses": [
            {"name": "app", "image": image, "ready": False, "restartCount": 7, "state": waiting, "lastState": last}
        ],
    }
    pod = writer.pod(rs, "checkout-7d9f-x2kqz", [container(image=image)], status)
    writer.event(pod, "BackOff", "Back-off restarting failed container app", count=7)
    kubectl(
        kubeconfig,
        "apply",
        "-n",
        NS,
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "aiops.dev/v1alpha1",
                "kind": "Incident",
                "metadata": {"name": "checkout-503"},
                "spec": {"title": "checkout returns 503", "severity": "critical"},
            }
        ),
    )
    kubectl(
        kubeconfig, "-n", NS, "create", "role", "incident-approver", "--verb=approve", "--resource=incidents.aiops.dev"
    )
    kubectl(
        kubeconfig, "-n", NS, "create", "rolebinding", "incident-approver", "--role=incident-approver",
        f"--serviceaccount={NS}:approver",
    )  # fmt: skip
    tokens = service_account_tokens(api, NS, ("approver", "viewer"))
    api.close()
    return tokens


def show(direction: str, text: str, lines: int = 16) -> None:
    """`text` after the arrow, long lines wrapped, at most `lines` lines."""
    body = [part for line in text.splitlines() or [""] for part in textwrap.wrap(line, WIDTH) or [""]]
    cut = body[:lines] + ([f"... ({len(body) - lines} more lines)"] if len(body) > lines else [])
    for i, line in enumerate(cut):
        print(f"{direction if i == 0 else '  '} {line}")


async def call(s: ClientSession, name: str, arguments: dict, who: str = "") -> None:
    show("->", f"tools/call {name} {json.dumps(arguments)}" + (f"   [X-Kubernetes-Token: {who}]" if who else ""))
    try:
        result = await s.call_tool(name, arguments)
    except MCPError as exc:
        show("<-", f"JSON-RPC error {exc.code}: {exc.message}")
        return
    show("<-", ("isError: " if result.is_error else "") + "\n".join(c.text for c in result.content))


async def transcript(url: str, tokens: dict[str, str]) -> None:
    async with session(url, TOKEN) as s:
        show("->", "initialize, then tools/list")
        tools = (await s.list_tools()).tools
        show("<-", f"{len(tools)} tools: " + ", ".join(t.name for t in tools))
        describe = next(t for t in tools if t.name == "k8s_describe")
        show("  ", f"k8s_describe inputSchema: {json.dumps(describe.input_schema)}", lines=4)
        await call(s, "k8s_describe", {"kind": "pod", "name": "checkout-7d9f-x2kqz", "namespace": NS})
        await call(s, "k8s_rollout_history", {"namespace": NS, "deployment": "checkout"})
        await call(s, "k8s_get", {"kind": "secrets", "name": "db", "namespace": NS})
        await call(s, "k8s_list", {"kind": "pods", "limit": 0})
    approval = {"namespace": NS, "incident": "checkout-503", "step": "rollback", "comment": "rolling back 2.4.1"}
    async with session(url, TOKEN, tokens["viewer"]) as s:
        await call(s, "approve_step", approval, "viewer")
    async with session(url, TOKEN, tokens["approver"]) as s:
        await call(s, "approve_step", approval, "approver")
    show("->", "POST /mcp with Authorization: Bearer wrong")
    answer = httpx.post(url, json={}, headers={"Authorization": "Bearer wrong"}, timeout=5)
    show("<-", f"HTTP {answer.status_code} {answer.text}")


def run(kubeconfig: str, workdir: Path) -> None:
    tokens = scene(kubeconfig)
    port = free_port()
    env = {**os.environ, "KUBECONFIG": kubeconfig, "AIOPS_MCP_TOKEN": TOKEN}
    aiops = str(Path(sys.executable).with_name("aiops"))
    log = open(workdir / "mcp.log", "wb")
    server = subprocess.Popen(
        [aiops, "mcp", "--transport", "http", "--listen", f"127.0.0.1:{port}"], env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        for _ in range(100):
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        print(f"$ AIOPS_MCP_TOKEN=... aiops mcp --transport http --listen 127.0.0.1:{port}\n")
        anyio.run(transcript, url, tokens)
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", help="a test cluster's kubeconfig (default: start a local control plane)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.kubeconfig:
            guard_test_context(args.kubeconfig)
            run(args.kubeconfig, Path(tmp))
            return 0
        plane = ControlPlane(workdir=Path(tmp) / "plane", name="aiops-mcp-transcript")
        kubeconfig = str(plane.start())
        try:
            run(kubeconfig, Path(tmp))
        finally:
            plane.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
