"""An MCP client session over streamable HTTP with the SDK's own client, as `aiops mcp --transport http` expects
it: the server's bearer token, and the caller's Kubernetes token for changes."""

from __future__ import annotations

from contextlib import asynccontextmanager

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


@asynccontextmanager
async def http_session(url: str, bearer: str, kube_token: str | None = None):
    headers = {"Authorization": f"Bearer {bearer}"}
    if kube_token:
        headers["X-Kubernetes-Token"] = kube_token
    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session
