"""The two changes the MCP server makes, each for a reviewed caller (auth.py): start an AnalysisRun, and
approve an SOP step of an Incident.

An approval is what `kubectl patch` would write (docs/security.md): an entry in the Incident's
spec.approvals with `approvedBy` the caller's Kubernetes username, written with the caller's own token (the
`client` approve_step gets), so the operator's admission webhook checks and seals it as for kubectl. The
runbook engine (sops/remediation/engine.py) acts on it on its next pass. The list is replaced under the
Incident's resourceVersion, so two approvals at once cannot drop each other.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Literal

from kubernetes.client.exceptions import ApiException
from pydantic import Field, ValidationError, model_validator

from aiops import API_VERSION
from aiops.api import ANALYSIS_RUN, INCIDENT
from aiops.api.analysisrun import AnalysisRunSpec
from aiops.api.common import DNS_LABEL, field_path
from aiops.api.incident import Approval
from aiops.clusters.reviews import Caller
from aiops.clusters.words import short
from aiops.core import kube
from aiops.tools.context import Args
from aiops.tools.kubernetes import NAME
from aiops.tools.result import ToolError

REQUESTED_BY = "aiops.dev/requested-by"
CONFLICT_RETRIES = 5


class StartRunArgs(Args):
    namespace: str = Field(max_length=63, pattern=DNS_LABEL)
    type: Literal["query", "rootCause"]
    question: str | None = Field(default=None, max_length=8192, description="type query: what to find out.")
    incident: str | None = Field(
        default=None, max_length=253, pattern=NAME, description="type rootCause: the Incident to diagnose."
    )
    cluster: str | None = Field(
        default=None, max_length=253, pattern=NAME, description="A ManagedCluster; default local."
    )

    @model_validator(mode="after")
    def _fits_type(self) -> StartRunArgs:
        if self.type == "query" and not self.question:
            raise ValueError("a query run needs question")
        if self.type == "rootCause" and not self.incident:
            raise ValueError("a rootCause run needs incident")
        return self


def start_run(client: kube.Client, caller: Caller, args: StartRunArgs) -> dict:
    """Creates the AnalysisRun (named mcp-<type>-<random>) and returns it as stored."""
    spec: dict = {"type": args.type}
    if args.question:
        spec["inputs"] = {"question": args.question}
    if args.incident:
        if client.get(INCIDENT, args.incident, args.namespace) is None:
            raise ToolError(f"incident: Incident {args.namespace}/{args.incident} does not exist")
        spec["incidentRef"] = {"name": args.incident}
    if args.cluster:
        spec["clusterRef"] = {"name": args.cluster}
    try:
        AnalysisRunSpec.model_validate(spec)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ToolError(f"spec.{field_path(err['loc'])}: {err['msg']}") from None
    body = {
        "apiVersion": API_VERSION,
        "kind": ANALYSIS_RUN.kind,
        "metadata": {
            "generateName": f"mcp-{args.type.lower()}-",
            "namespace": args.namespace,
            "annotations": {REQUESTED_BY: caller.username},
        },
        "spec": spec,
    }
    try:
        created, _ = client.create(ANALYSIS_RUN, body)
    except ApiException as exc:
        raise ToolError(f"creating an AnalysisRun in {args.namespace}: HTTP {exc.status} {exc.reason}") from None
    return created


class ApproveArgs(Args):
    namespace: str = Field(max_length=63, pattern=DNS_LABEL)
    incident: str = Field(min_length=1, max_length=253, pattern=NAME)
    step: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL, description="The SOP step's id.")
    comment: str | None = Field(default=None, max_length=1024)


def approve_step(client: kube.Client, caller: Caller, args: ApproveArgs, now: datetime | None = None) -> str:
    """Appends the caller's approval of the step (another person's approval of it is no reason not to: a policy
    may ask for two); what happened, in words. ToolError when the step is not one of the Incident's SOP, or
    when the API server or its admission webhook refuses the write."""
    where = f"Incident {args.namespace}/{args.incident}"
    for _ in range(CONFLICT_RETRIES):
        obj = client.get(INCIDENT, args.incident, args.namespace)
        if obj is None:
            raise ToolError(f"{where} does not exist")
        steps = [s.get("id") for s in ((obj.get("status") or {}).get("sop") or {}).get("steps") or []]
        if steps and args.step not in steps:
            raise ToolError(f"step: {where}'s SOP has no step {args.step!r} (steps: {', '.join(steps)})")
        approvals = list((obj.get("spec") or {}).get("approvals") or [])
        if any((a.get("step"), a.get("approvedBy")) == (args.step, caller.username) for a in approvals):
            return f"step {args.step} of {where} was already approved by {caller.username}"
        approval = Approval(
            step=args.step,
            approved_by=caller.username,
            approved_at=(now or datetime.now(UTC)).replace(microsecond=0),
            comment=args.comment,
        )
        version = obj["metadata"]["resourceVersion"]
        try:
            client.patch(
                INCIDENT,
                args.incident,
                args.namespace,
                {"metadata": {"resourceVersion": version}, "spec": {"approvals": [*approvals, approval.wire()]}},
            )
        except ApiException as exc:
            if exc.status == 409:
                continue  # changed since we read it: read again
            raise ToolError(
                f"approving step {args.step} of {where} as {caller.username}: HTTP {exc.status} {exc.reason}{_why(exc)}"
            ) from None
        return f"approved step {args.step} of {where} as {caller.username}"
    raise ToolError(f"{where} kept changing while approving step {args.step}: try again")


def _why(exc: ApiException) -> str:
    """The API server's message (an admission webhook's refusal, RBAC's), which says what to do."""
    try:
        message = json.loads(exc.body or "{}").get("message")
    except (ValueError, AttributeError):
        return ""
    return f": {short(message, 1000)}" if message else ""
