"""Read-only checks behind SOP check and decision steps and action verifications: a PromQL expression, a
kubectl command, or (verifying an action) a condition of the object it changed.

A PromQL check passes when the expression returns at least one series, as an alerting rule fires:
write the threshold into the expression (`... > 0.9`). A command check passes when kubectl exits 0
with some output. Commands are kubectl only, split like a shell would but never run by one (no pipes,
no redirection), and limited to reading verbs; `$NAMESPACE`, `$TARGET`, `$KIND`, `$POD` and `$NODE`
are filled in from the Incident. A check that cannot run (Prometheus down, a refused command) fails
with the reason as its output, and the runbook takes its failure branch.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_api_client.exceptions import PrometheusApiClientException
from requests.exceptions import RequestException

from aiops.api.sop import SOPStep
from aiops.clusters.prometheus import PrometheusSource
from aiops.core.kube import request

TIMEOUT_S = 20
MAX_OUTPUT = 1500
READ_VERBS = {"get", "describe", "logs", "top", "explain", "version", "api-resources", "events"}
READ_SUBCOMMANDS = {("rollout", "history"), ("rollout", "status"), ("auth", "can-i")}
# Flags whose value is the next argument; the verb is the first argument that is neither.
VALUE_FLAGS = {"-n", "--namespace", "-l", "--selector", "-o", "--output", "-c", "--container", "--field-selector",
               "--since", "--tail", "--sort-by", "-L", "--label-columns", "--revision"}  # fmt: skip
# Flags that would point kubectl at another cluster or identity than the operator's own.
IDENTITY_FLAGS = ("--kubeconfig", "--context", "--cluster", "--server", "-s", "--token", "--as", "--user")
VARIABLE = re.compile(r"\$([A-Z_]+)|\$\{([A-Z_]+)\}")


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    output: str


class CheckError(Exception):
    """The check could not run; the message says why."""


def substitute(text: str, variables: dict[str, str]) -> str:
    def fill(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        if name not in variables:
            raise CheckError(f"unknown variable ${name}; known: {', '.join('$' + v for v in sorted(variables))}")
        if not variables[name]:
            raise CheckError(f"${name} has no value for this Incident")
        return variables[name]

    return VARIABLE.sub(fill, text)


def kubectl_argv(command: str, variables: dict[str, str]) -> list[str]:
    """The command as an argument list, refused unless it only reads."""
    try:
        argv = shlex.split(substitute(command, variables))
    except ValueError as exc:
        raise CheckError(f"cannot parse the command: {exc}") from None
    if not argv or argv[0] != "kubectl":
        raise CheckError("only kubectl commands run as checks")
    if any(token in ("|", ">", ">>", "<", "&&", ";", "||") for token in argv):
        raise CheckError("pipes, redirection and command chains are not run: one kubectl command per check")
    if any(a.split("=", 1)[0] in IDENTITY_FLAGS for a in argv[1:]):
        raise CheckError("checks run as the operator, against the Incident's cluster: no identity or cluster flags")
    words, skip = [], False
    for arg in argv[1:]:
        if skip:
            skip = False
        elif arg in VALUE_FLAGS:
            skip = True
        elif not arg.startswith("-"):
            words.append(arg)
    if not words or not (words[0] in READ_VERBS or tuple(words[:2]) in READ_SUBCOMMANDS):
        raise CheckError(f"kubectl {' '.join(words[:2])!s} is not a read-only command")
    return [shutil.which("kubectl") or "kubectl", *argv[1:]]


def run_command(command: str, variables: dict[str, str]) -> CheckResult:
    argv = kubectl_argv(command, variables)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
    except FileNotFoundError:
        raise CheckError("kubectl is not installed where the operator runs") from None
    except subprocess.TimeoutExpired:
        raise CheckError(f"kubectl did not finish within {TIMEOUT_S}s") from None
    out = (done.stdout.strip() or done.stderr.strip())[:MAX_OUTPUT]
    if done.returncode != 0:
        return CheckResult(False, f"exit {done.returncode}: {out}")
    return CheckResult(bool(done.stdout.strip()), out or "(no output)")


def run_promql(query: str, source: PrometheusSource | None, variables: dict[str, str]) -> CheckResult:
    if source is None:
        raise CheckError("no Prometheus endpoint is configured (AIOPS_PROMETHEUS_URL or the ManagedCluster's)")
    prom = source.connect(timeout=10)
    expr = substitute(query, variables)
    try:
        result = prom.custom_query(expr)
    except (PrometheusApiClientException, RequestException, ValueError) as exc:
        raise CheckError(f"Prometheus query failed: {type(exc).__name__}: {str(exc)[:300]}") from None
    if not result:
        return CheckResult(False, f"no series: the condition does not hold ({expr[:300]})")
    shown = "; ".join(
        f"{{{','.join(f'{k}={v}' for k, v in sorted(r['metric'].items()))}}} {r['value'][1]}" for r in result[:5]
    )
    more = f" (+{len(result) - 5} more)" if len(result) > 5 else ""
    return CheckResult(True, f"{len(result)} series: {shown}{more}"[:MAX_OUTPUT])


def run_check(step: SOPStep, source: PrometheusSource | None, variables: dict[str, str]) -> CheckResult:
    """Runs the step's PromQL, else its command; raises CheckError when it cannot run."""
    if step.promql:
        return run_promql(step.promql, source, variables)
    if step.command:
        return run_command(step.command, variables)
    raise CheckError(f"step {step.id} has neither promql nor command to check")


def run_condition(api: client.ApiClient, path: str, type_: str) -> CheckResult:
    """Holds when the object's condition `type_` is True and its controller has seen its latest spec
    (status.observedGeneration, where the kind has one, at least metadata.generation): a Deployment that was
    Available before a change says nothing about the change until then."""
    try:
        obj = json.loads(request(api, "GET", path) or b"{}")
    except ApiException as exc:
        raise CheckError(f"cannot read {path}: HTTP {exc.status} {exc.reason}") from None
    status, generation = obj.get("status") or {}, obj["metadata"].get("generation")
    observed = status.get("observedGeneration")
    if observed is not None and generation is not None and observed < generation:
        return CheckResult(False, f"its controller has observed generation {observed} of {generation}")
    cond = next((c for c in status.get("conditions") or [] if c.get("type") == type_), None)
    if cond is None:
        known = ", ".join(c.get("type", "?") for c in status.get("conditions") or []) or "none"
        return CheckResult(False, f"no condition {type_} (conditions: {known})")
    said = f"{type_}={cond.get('status')}" + "".join(f" {cond[k]}" for k in ("reason", "message") if cond.get(k))
    return CheckResult(cond.get("status") == "True", said[:MAX_OUTPUT])
