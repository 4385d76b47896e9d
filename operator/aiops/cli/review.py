"""`aiops review`: a `changeReview` AnalysisRun of a proposed manifest (a file, stdin, or a ConfigMap key) or of
a merge patch to a live workload, followed until it ends, the review printed, and a gate's exit status.

Exit status: 0 the change may ship (its risk is below --fail-on, or its object carries the override annotation),
1 it may not, 2 there is no review (bad input, the run failed, the operator did not answer in time). A gate
such as the Argo CD PreSync hook (deploy/argocd/change-review/) fails the sync on anything but 0.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from kubernetes.client.exceptions import ApiException

from aiops import API_VERSION, GROUP
from aiops.api import ANALYSIS_RUN
from aiops.api.analysisrun import ChangeRisk
from aiops.cli.follow import run_to_end
from aiops.core import kube

ORDER = list(ChangeRisk)
OVERRIDE = f"{GROUP}/change-review-override"
MARK = {"high": "HIGH", "medium": "medium", "low": "low", "none": "info"}


def manifest(change: dict[str, Any], cluster: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "changeReview", "inputs": {"change": change}}
    if cluster:
        spec["clusterRef"] = {"name": cluster}
    meta = {"generateName": "review-"}
    return {"apiVersion": API_VERSION, "kind": ANALYSIS_RUN.kind, "metadata": meta, "spec": spec}


def change_from(
    namespace: str, *, file: str | None, configmap: str | None, patch: str | None, target: str | None
) -> dict[str, Any]:
    """inputs.change from the command line; ValueError saying what is wrong."""
    if sum(x is not None for x in (file, configmap, patch)) != 1:
        raise ValueError("give exactly one of -f/--filename, --configmap or --patch")
    change: dict[str, Any] = {}
    if target:
        kind, _, name = target.partition("/")
        if not kind or not name:
            raise ValueError(f"--target {target!r}: expected Kind/name, e.g. Deployment/checkout")
        change["target"] = {"kind": kind, "name": name}
    if patch is not None:
        if not target:
            raise ValueError("--patch needs --target: the live object it applies to")
        change["patch"] = _read(patch)
    elif file is not None:
        change["manifest"] = _read(file)
    else:
        change["manifest"] = _configmap_text(str(configmap), namespace)
    return change


def _read(path: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror}") from None


def _configmap_text(ref: str, namespace: str) -> str:
    """NAME[/KEY] in `namespace`; without a key, the ConfigMap's only key."""
    name, _, key = ref.partition("/")
    try:
        cm = kube.core().read_namespaced_config_map(name, namespace, _request_timeout=10)
    except ApiException as exc:
        raise ValueError(
            f"--configmap: ConfigMap {namespace}/{name} could not be read: {exc.status} {exc.reason}"
        ) from None
    data = cm.data or {}
    if not key:
        if len(data) != 1:
            raise ValueError(f"--configmap: ConfigMap {namespace}/{name} has keys {sorted(data)}: name one as NAME/KEY")
        key = next(iter(data))
    if key not in data:
        raise ValueError(f"--configmap: ConfigMap {namespace}/{name} has no key {key!r} (it has {sorted(data)})")
    return data[key]


def render(run: dict[str, Any]) -> str:
    """Each object's risk, what changed, the findings with their evidence and the recommendation."""
    status = run.get("status") or {}
    result = status.get("result") or {}
    if status.get("phase") == "Failed":
        return f"No review: {status.get('error')}"
    lines = []
    for r in result.get("reviews") or []:
        head = f"{r['object']}: {r['risk'].upper()} risk" + ("" if r.get("live") else " (a new object)")
        lines.append(head + (f", overridden: {r['override']}" if r.get("override") else ""))
        for c in r.get("changes") or []:
            lines.append(f"  changed  {c['category']:9} {c['path']}: {c.get('before', '-')} -> {c.get('after', '-')}")
        for f in r.get("findings") or []:
            where = f" ({f['path']})" if f.get("path") else ""
            lines.append(f"  [{MARK[f['severity']]}] {f['check']}: {f['message']}{where}")
            lines += [f"        {e}" for e in f.get("evidence") or []]
        lines.append(f"  recommendation: {r['recommendation']}")
    lines += [f"skipped {s}" for s in result.get("skipped") or []]
    meta = run["metadata"]
    lines.append(
        f"-- risk {result.get('risk')}, reviewed in {status.get('durationSeconds', 0)}s "
        f"(kubectl describe analysisrun {meta['name']} -n {meta['namespace']})"
    )
    return "\n".join(lines)


def verdict(run: dict[str, Any], fail_on: str) -> tuple[int, str]:
    """The gate: (exit status, why)."""
    status = run.get("status") or {}
    if status.get("phase") != "Succeeded":
        return 2, f"no review: {status.get('error') or status.get('phase')}"
    if fail_on == "never":
        return 0, "not gating (--fail-on never)"
    blocked = [
        r for r in (status.get("result") or {}).get("reviews") or []
        if ORDER.index(ChangeRisk(r["risk"])) >= ORDER.index(ChangeRisk(fail_on)) and not r.get("override")
    ]  # fmt: skip
    if blocked:
        names = ", ".join(f"{r['object']} ({r['risk']})" for r in blocked)
        return 1, f"blocked: {names}; fix the findings, or annotate the object {OVERRIDE}: <reason>"
    return 0, f"passed: no object at {fail_on} risk or above without an override"


def review(
    namespace: str,
    *,
    file: str | None = None,
    configmap: str | None = None,
    patch: str | None = None,
    target: str | None = None,
    cluster: str | None = None,
    fail_on: str = "high",
    timeout: float = 120,
    output: str = "text",
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    try:
        body = manifest(change_from(namespace, file=file, configmap=configmap, patch=patch, target=target), cluster)
    except ValueError as exc:
        print(f"aiops review: {exc}", file=err)
        return 2
    run = run_to_end("review", body, namespace, timeout, err)
    if run is None:
        return 2
    print(json.dumps(run, indent=2) if output == "json" else render(run), file=out)
    code, why = verdict(run, fail_on)
    print(f"aiops review: {why}", file=err)
    return code
