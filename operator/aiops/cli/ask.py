"""`aiops ask "QUESTION" [-n NS]`: a `query` AnalysisRun, followed until it ends, its answer printed.

The run does the work in the operator (which holds the model and the tools); this command only creates
it, says on stderr how it progresses, and prints the answer with the tool calls it cites. Exit status: 0
answered, 3 refused, 1 no answer (the run's error is printed), 2 the run could not be created or followed.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from aiops import API_VERSION
from aiops.api import ANALYSIS_RUN
from aiops.cli.follow import run_to_end


def manifest(question: str, cluster: str | None, target: str | None, lookback: int | None) -> dict[str, Any]:
    inputs: dict[str, Any] = {"question": question}
    if target:
        kind, _, name = target.partition("/")
        if not kind or not name:
            raise ValueError(f"--target {target!r}: expected Kind/name, e.g. Deployment/checkout")
        inputs["target"] = {"kind": kind, "name": name}
    if lookback:
        inputs["window"] = {"lookbackMinutes": lookback}
    spec: dict[str, Any] = {"type": "query", "inputs": inputs}
    if cluster:
        spec["clusterRef"] = {"name": cluster}
    return {"apiVersion": API_VERSION, "kind": ANALYSIS_RUN.kind, "metadata": {"generateName": "ask-"}, "spec": spec}


def render(run: dict[str, Any]) -> str:
    """The answer (or refusal, or error) and the tool calls it cites, for a terminal."""
    status = run.get("status") or {}
    result = status.get("result") or {}
    lines = []
    if result.get("refusal") and not result.get("answer"):
        lines.append(f"Refused: {result['refusal']}")
    elif result.get("answer"):
        lines.append(result["answer"])
        if result.get("refusal"):
            lines.append(f"(refused: {result['refusal']})")
    else:
        lines.append(f"No answer: {status.get('error') or status.get('phase')}")
    for c in result.get("citations") or []:
        excerpt = " ".join(c.get("excerpt", "").split())[:160]
        lines.append(f"  [{c['id']}] {c['tool']} {c.get('arguments', '')}: {excerpt}")
    tokens = status.get("tokens") or {}
    lines.append(
        f"-- {len(result.get('toolCalls') or [])} tool calls, {result.get('steps', 0)} model replies, "
        f"{tokens.get('prompt', 0)}+{tokens.get('completion', 0)} tokens, {status.get('durationSeconds', 0)}s "
        f"(kubectl describe analysisrun {run['metadata']['name']} -n {run['metadata']['namespace']})"
    )
    return "\n".join(lines)


def ask(
    question: str,
    namespace: str,
    *,
    cluster: str | None = None,
    target: str | None = None,
    lookback: int | None = None,
    timeout: float = 600,
    output: str = "text",
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    try:
        body = manifest(question, cluster, target, lookback)
    except ValueError as exc:
        print(f"aiops ask: {exc}", file=err)
        return 2
    run = run_to_end("ask", body, namespace, timeout, err)
    if run is None:
        return 2
    phase = run["status"]["phase"]
    print(json.dumps(run, indent=2) if output == "json" else render(run), file=out)
    if phase == "Failed":
        return 1
    return 3 if ((run.get("status") or {}).get("result") or {}).get("refusal") else 0
