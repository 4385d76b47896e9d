"""SOP actions on workloads that Argo CD manages, delivered as pull requests instead of live patches.

Argo CD puts back what Git says at its next sync (at once with selfHeal), so a live patch of a workload it
manages does not last: the change has to go to the Application's source repository. For rollbackDeployment
(the images of the previous revision), scaleDeployment and setResources the engine hands the approved step
here (`run`), which, when the step's delivery (its `delivery`, else AIOPS_GITOPS_DELIVERY) is pullRequest,
or auto and the Deployment carries Argo CD's tracking annotation or instance label:

1. finds the Application and its Git source, computes the change from the live objects (the previous
   ReplicaSet's images, the replicas asked for, the resources asked for) and runs it as a server-side dry
   run when the operator may (admission and quotas answer; without patch rights, as GitOps intends, the
   dry run is skipped and the audit says so);
2. clones the source's branch (shallow), edits the workload's manifest or kustomization (manifests.py),
   commits with the Incident, the diagnosis and the audit id in the message, pushes the branch
   `aiops/<namespace>/<incident>/<step>` and opens a pull request on GitHub, GitLab or Gitea (forges.py);
3. records the pull request on the step (`pullRequest`) and in the audit log, posts an Event, and leaves
   the step AwaitingSync; each later pass reads the pull request and the Application: merged, and the
   Application Synced at a revision that contains the merge commit, the step succeeds and the runbook
   goes on to its verification; closed without merging, the step fails.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aiops.api.conditions import Reason
from aiops.api.incident import AuditEntry, PullRequestState, PullRequestStatus, SOPStepStatus
from aiops.api.sop import GIT_DELIVERABLE, ActionType, Delivery, SOPStep
from aiops.core import kube
from aiops.diagnosis.redaction import Redactor
from aiops.settings import GitOpsSettings
from aiops.sops.remediation import actions, argocd, forges, gitrepo, manifests

OPENED = "pull request opened"
Event = tuple[str, str, str]  # (type, reason, message)


class AwaitingSync(Exception):
    """The step's pull request is open, or merged and not yet synced; the message says which."""


@dataclass(frozen=True)
class GitOps:
    """What delivery needs besides the step: the configuration, the Incident, and the forge tokens."""

    settings: GitOpsSettings
    incident: str  # namespace/name
    uid: str
    sop: str
    diagnosis: str  # the root cause, for the commit message
    token: Callable[[str], str | None]  # a forge host's token, None when there is none
    token_source: str  # where tokens come from, for messages


def secret_tokens(namespace: str, secret: str) -> Callable[[str], str | None]:
    """A forge host's token from the Secret: the key named after the host, else the key `token`."""

    def token(host: str) -> str | None:
        for key in (host, "token"):
            raw = kube.read_secret_key(secret, namespace, key)
            if raw and raw.strip():
                return raw.decode().strip()
        return None

    return token


@dataclass
class _Step:
    """One pass over one step: what it records."""

    step: SOPStep
    st: SOPStepStatus
    audit: list[AuditEntry]
    events: list[Event]
    now: datetime

    def failed(
        self, target: str, message: str, approved_by: str | None, dry_run: str = "not attempted"
    ) -> tuple[bool, str]:
        self.audit.append(AuditEntry(at=self.now, step=self.step.id, action=str(self.step.action.type),
                                     target=target, approved_by=approved_by, dry_run=dry_run[:1024],
                                     outcome=f"no pull request: {message}"[:1024]))  # fmt: skip
        self.events.append(("Warning", Reason.PULL_REQUEST_FAILED, f"step {self.step.id}: {message}"))
        return False, f"{self.step.action.type} not delivered as a pull request: {message}"


def run(
    api: client.ApiClient,
    step: SOPStep,
    st: SOPStepStatus,
    targets: actions.Targets,
    ctx: GitOps,
    approved_by: str | None,
    audit: list[AuditEntry],
    events: list[Event],
    now: datetime,
) -> tuple[bool, str] | None:
    """The approved action step through Git: (succeeded, output) once decided; raises AwaitingSync while its pull
    request waits; None when the change is to be made live (not Argo CD-managed, or delivery live)."""
    here = _Step(step, st, audit, events, now)
    if st.pull_request is not None:
        return _follow(api, here, ctx)
    delivery = step.delivery or Delivery(ctx.settings.delivery)
    if delivery == Delivery.LIVE or step.action.type not in GIT_DELIVERABLE:
        return None
    name = step.action.params.get("deployment") or targets.deployment
    if not name:
        return None  # the live action says that it has nothing to act on
    target = f"Deployment/{targets.namespace}/{name}"
    try:
        deployment = json.loads(
            kube.request(api, "GET", f"/apis/apps/v1/namespaces/{targets.namespace}/deployments/{name}")
        )
        app = argocd.application(api, deployment["metadata"], "apps", "Deployment", ctx.settings.argocd_namespace)
    except ApiException as exc:
        if exc.status == 404 and delivery == Delivery.AUTO:
            return None  # nothing to deliver to: the live action says so in its own words
        return here.failed(target, f"cannot read {target}: {actions.refusal(exc)}", approved_by)
    except argocd.ArgoError as exc:
        return here.failed(target, str(exc), approved_by)
    if app is None:
        if delivery == Delivery.AUTO:
            return None
        return here.failed(
            target,
            f"{target} carries neither {argocd.TRACKING_ID} nor {argocd.INSTANCE_LABEL} naming an Argo CD "
            f"Application, so there is no repository to propose the change to; set delivery: live or auto on step "
            f"{step.id}",
            approved_by,
        )
    return _deliver(api, here, ctx, targets, deployment, app, target, approved_by)


def _change(
    api: client.ApiClient, step: SOPStep, targets: actions.Targets, deployment: dict
) -> tuple[manifests.Change, str, str]:
    """(manifests.Change, a summary for titles, a note for the pull request)."""
    action, name = step.action, deployment["metadata"]["name"]
    template = deployment["spec"]["template"]
    if action.type == ActionType.ROLLBACK_DEPLOYMENT:
        back = actions.rollback_target(api, action, targets)
        now = {c["name"]: c.get("image") for c in template["spec"]["containers"]}
        then = {c["name"]: c.get("image") for c in back.template["spec"]["containers"]}
        images = {c: (now[c], image) for c, image in then.items() if c in now and now[c] != image}
        if not images:
            raise actions.ActionError(
                f"revision {back.revision} of Deployment {name} has the same images as revision {back.current}: "
                "only image rollbacks can be proposed in Git; revert the commit that changed its template instead"
            )
        note = ""
        if _without_images(back.template) != _without_images(template):
            note = (f"Revision {back.revision} also differs from revision {back.current} in more than its images; "
                    "only the images are rolled back here.")  # fmt: skip
        wanted = ", ".join(f"{c}={image}" for c, (_, image) in images.items())
        return manifests.Change(images=images), f"roll back {name} to {wanted} (revision {back.revision})", note
    if action.type == ActionType.SCALE_DEPLOYMENT:
        raw = action.params.get("replicas") or ""
        if not raw.isdigit():
            raise actions.ActionError(f"scaleDeployment: params.replicas must be a whole number, not {raw!r}")
        return manifests.Change(replicas=int(raw)), f"scale {name} to {raw} replicas", ""
    resources = actions.resource_changes(action)
    container = actions.container_name(action, template, name)
    wanted = ", ".join(f"{k}.{r}={v}" for k, values in resources.items() for r, v in values.items())
    change = manifests.Change(container=container, resources=resources)
    return change, f"set {wanted} on container {container} of {name}", ""


def _without_images(template: dict) -> str:
    spec = template.get("spec", {})
    containers = [{k: v for k, v in c.items() if k != "image"} for c in spec.get("containers", [])]
    return json.dumps({**template, "spec": {**spec, "containers": containers}}, sort_keys=True)


def _dry_run(api: client.ApiClient, step: SOPStep, targets: actions.Targets) -> tuple[str, str | None]:
    """(the dry run's outcome, the live state before) of the live change; ApiException when it is refused."""
    try:
        _, before, _ = actions.CATALOGUE[step.action.type](api, step.action, targets, True)
    except ApiException as exc:
        if exc.status != 403:
            raise
        return f"skipped: the operator may not patch it ({actions.refusal(exc)}); Argo CD applies the change", None
    return "passed", before


def _deliver(
    api: client.ApiClient,
    here: _Step,
    ctx: GitOps,
    targets: actions.Targets,
    deployment: dict,
    app: argocd.Application,
    target: str,
    approved_by: str | None,
) -> tuple[bool, str]:
    step = here.step
    try:
        change, summary, note = _change(api, step, targets, deployment)
        dry_run, before = _dry_run(api, step, targets)
    except actions.ActionError as exc:
        return here.failed(target, str(exc), approved_by)
    except ApiException as exc:
        why = actions.refusal(exc)
        return here.failed(target, f"the dry run was refused, nothing proposed: {why}", approved_by, f"refused: {why}")
    workload = manifests.Workload("Deployment", deployment["metadata"]["name"], targets.namespace)
    branch = f"aiops/{ctx.incident}/{step.id}"  # namespace/name: Incidents of two namespaces may share a repository
    title = f"aiops: {summary}"[:250]
    missing = []
    for source in app.sources:
        if source.helm and not source.path:  # a chart from a Helm repository: nothing to clone
            missing.append(f"{source.repo_url} is a Helm chart repository")
            continue
        try:
            repo = forges.repository(source.repo_url, ctx.settings.forges)
            token = ctx.token(repo.host)
        except forges.ForgeError as exc:
            return here.failed(target, str(exc), approved_by, dry_run)
        except ApiException as exc:
            return here.failed(target, f"cannot read {ctx.token_source}: HTTP {exc.status}", approved_by, dry_run)
        if not token:
            message = (f"no token for {repo.host}: add the key {repo.host!r} (or 'token') to {ctx.token_source}, or "
                       "set delivery: live on the step (Argo CD reverts a live patch at its next sync)")  # fmt: skip
            return here.failed(target, message, approved_by, dry_run)
        remote = gitrepo.Remote(
            repo.clone_url, repo.git_user, token, (ctx.settings.author_name, ctx.settings.author_email)
        )
        try:
            with tempfile.TemporaryDirectory(prefix="aiops-gitops-") as tmp:
                base = gitrepo.branch(remote, source.target_revision)
                checkout = gitrepo.clone(remote, base, Path(tmp) / "repo")
                try:
                    edits = manifests.plan(checkout, source.path, source.recurse, source.helm, workload, change)
                except manifests.NotFound as exc:
                    missing.append(f"{source.repo_url} path {source.path or '.'}: {exc}")
                    continue
                for edit in edits:
                    (checkout / edit.path).write_text(edit.text)
                message = _message(title, ctx, app, step, approved_by, edits, note)
                commit = gitrepo.commit_and_push(remote, checkout, branch, [e.path for e in edits], message,
                                                 here.st.started_at or here.now)  # fmt: skip
            pr = forges.create(repo, token, branch, base, title, message.split("\n", 2)[2])
        except (manifests.ManifestError, gitrepo.GitError, forges.ForgeError) as exc:
            return here.failed(target, f"Application {app.ref}: {exc}", approved_by, dry_run)
        here.st.pull_request = PullRequestStatus(
            url=pr.url, number=pr.number, forge=repo.kind, repository=source.repo_url, branch=branch, base=base,
            files=[e.path for e in edits][:20], commit=commit, application=app.ref, source=source.index,
            state=PullRequestState.OPEN,
        )  # fmt: skip
        changed = "; ".join(line for e in edits for line in e.what)
        here.audit.append(AuditEntry(at=here.now, step=step.id, action=str(step.action.type), target=target,
                                     approved_by=approved_by, dry_run=dry_run[:1024], before=before,
                                     after=f"{changed} ({', '.join(e.path for e in edits)})"[:2048],
                                     outcome=f"{OPENED}: {pr.url}"[:1024], pull_request=pr.url))  # fmt: skip
        here.events.append(("Normal", Reason.PULL_REQUEST_OPENED,
                            f"step {step.id}: {summary}: pull request #{pr.number} {pr.url} against {source.repo_url} "
                            f"({base}), for Argo CD Application {app.ref} ({app.tracked_by})"))  # fmt: skip
        raise AwaitingSync(f"pull request #{pr.number} is open: {pr.url}; waiting for it to be merged")
    message = f"the manifest of {workload} is in none of Application {app.ref}'s sources: {'; '.join(missing)}"
    if any(s.helm for s in app.sources):
        message = f"Application {app.ref} renders {workload} from a Helm chart: Helm sources need a manual change: "
        message += manifests.wanted(change)
    return here.failed(target, message, approved_by, dry_run)


def _message(
    title: str,
    ctx: GitOps,
    app: argocd.Application,
    step: SOPStep,
    approved_by: str | None,
    edits: list[manifests.Edit],
    note: str,
) -> str:
    """The commit message; all but its first line is also the pull request's description."""
    changes = "\n".join(f"- {e.path}: {line}" for e in edits for line in e.what)
    lines = [
        title,
        "",
        f"Incident {ctx.incident}, SOP {ctx.sop}, step {step.id} ({step.title}).",
        # The forge is outside the cluster: the diagnosis goes redacted, as it would to a model.
        f"Diagnosis: {Redactor().redact(ctx.diagnosis) if ctx.diagnosis else 'none recorded'}",
        "",
        "Changes:",
        changes,
        *(["", note] if note else []),
        "",
        f"The Incident waits (step state AwaitingSync) until this is merged and Argo CD Application {app.ref} has "
        "synced a revision that contains it; then its runbook goes on to verify the fix. Closing this without "
        "merging fails the step.",
        "",
        f"Approved-by: {approved_by or 'policy (no approval required)'}",
        f"Audit-Id: {ctx.uid}/{step.id}",
        f"Incident: {ctx.incident}",
    ]
    return "\n".join(lines)


def _follow(api: client.ApiClient, here: _Step, ctx: GitOps) -> tuple[bool, str]:
    """A pass over a step whose pull request is out: merged? synced? Trouble reading either is waited out
    (the step's and the runbook's timeouts bound the wait)."""
    pr = here.st.pull_request
    opened = next((a for a in here.audit if a.pull_request == pr.url), None)
    namespace, name = pr.application.split("/", 1)
    try:
        repo = forges.repository(pr.repository, ctx.settings.forges)
        token = ctx.token(repo.host) or ""
        if pr.state == PullRequestState.OPEN:
            now = forges.get(repo, token, pr.number)
            if now.state == PullRequestState.CLOSED:
                here.st.pull_request = pr.model_copy(update={"state": PullRequestState.CLOSED})
                message = f"pull request #{pr.number} was closed without being merged: {pr.url}"
                _audit(here, opened, message)
                here.events.append(("Warning", Reason.PULL_REQUEST_CLOSED, f"step {here.step.id}: {message}"))
                return False, message
            if now.state == PullRequestState.OPEN:
                raise AwaitingSync(f"pull request #{pr.number} is open: {pr.url}; waiting for it to be merged")
            pr = pr.model_copy(update={"state": PullRequestState.MERGED, "merge_commit": now.merge_commit})
            here.st.pull_request = pr
            here.events.append(("Normal", Reason.PULL_REQUEST_MERGED,
                                f"step {here.step.id}: pull request #{pr.number} merged as {now.merge_commit}; "
                                f"waiting for Argo CD Application {pr.application} to sync it"))  # fmt: skip
        merged = f"pull request #{pr.number} merged as {(pr.merge_commit or '?')[:12]}"
        sync = argocd.sync_state(api, namespace, name, pr.source)
        if not (sync.synced and sync.revision and pr.merge_commit):
            state = "Synced" if sync.synced else "not Synced"
            note = f"; {sync.note}" if sync.note else ""
            raise AwaitingSync(f"{merged}; Application {pr.application} is {state} at {sync.revision or '-'}{note}")
        if sync.revision != pr.synced_revision:  # a revision not looked at yet: ask git whether it has the merge
            remote = gitrepo.Remote(
                repo.clone_url, repo.git_user, token, (ctx.settings.author_name, ctx.settings.author_email)
            )
            with tempfile.TemporaryDirectory(prefix="aiops-gitops-") as tmp:
                contained = gitrepo.contains(remote, pr.base, pr.merge_commit, sync.revision, Path(tmp))
            here.st.pull_request = pr = pr.model_copy(update={"synced_revision": sync.revision})
            if contained:
                message = f"{merged}; Argo CD Application {pr.application} synced {sync.revision[:12]}, which has it"
                _audit(here, opened, "done", message)
                here.events.append(("Normal", Reason.SYNCED, f"step {here.step.id}: {message}"))
                return True, message
        raise AwaitingSync(f"{merged}; Application {pr.application} is Synced at {sync.revision[:12]}, without it yet")
    except (forges.ForgeError, gitrepo.GitError, argocd.ArgoError) as exc:
        raise AwaitingSync(f"pull request #{pr.number} {pr.url}: {exc}") from None
    except ApiException as exc:
        raise AwaitingSync(
            f"pull request #{pr.number} {pr.url}: cannot read {ctx.token_source}: HTTP {exc.status}"
        ) from None


def _audit(here: _Step, opened: AuditEntry | None, outcome: str, detail: str | None = None) -> None:
    """The entry that closes the change the opening entry proposed (the audit log is append-only)."""
    if opened is None:
        return
    after = f"{opened.after}; {detail}" if detail else opened.after
    here.audit.append(
        opened.model_copy(update={"at": here.now, "outcome": outcome[:1024], "after": (after or "")[:2048]})
    )
