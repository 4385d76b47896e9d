"""The read-only tools: evidence a model or a person can ask for, defined once for every caller.

The `query` AnalysisRun's agent calls them through OpenAI tool calling (`REGISTRY.definitions()`) and
`aiops mcp` serves them as MCP tools. Each has a pydantic argument model (its JSON schema is both the
OpenAI function's parameters and the MCP tool's input schema), returns a `ToolResult` (ok, empty, error or
truncated) capped in characters, passes the session's Redactor, and renders as a fenced block of
untrusted data (`ToolResult.fenced`).

    kubernetes.py   get, list, describe, events, rollout history, pod logs (never Secrets)
    telemetry.py    PromQL instant and range, LogQL, trace search (Tempo or Jaeger)
    incidents.py    Incidents, their diagnoses, AnalysisRuns
    knowledge.py    past Incidents from the PostgreSQL history, SOPs by their words
    registry.py     name -> tool; OpenAI definitions; call() that validates and never raises
    context.py      what the tools reach: the cluster, its telemetry, the history, the allowed namespaces
    result.py       ToolResult, the size cap, redaction, instructions to a model cut out, fencing
    survey.py       the reads a query run makes before the model's first reply: what the question names
"""

from aiops.tools import incidents, knowledge, kubernetes, telemetry
from aiops.tools.context import ToolContext
from aiops.tools.registry import Registry, Tool
from aiops.tools.result import Status, ToolError, ToolResult

REGISTRY = Registry([*kubernetes.TOOLS, *telemetry.TOOLS, *incidents.TOOLS, *knowledge.TOOLS])

__all__ = ["REGISTRY", "Registry", "Status", "Tool", "ToolContext", "ToolError", "ToolResult"]
