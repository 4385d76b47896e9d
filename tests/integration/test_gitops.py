"""Fixes as pull requests for Argo CD-managed workloads: the forge clients against GitHub's, GitLab's and Gitea's
recorded APIs (tests/support/forges.py), real `git` pushing to a bare repository on disk, and the whole road on
the local kube-apiserver: an approved rollback of a Deployment that carries Argo CD's tracking annotation becomes
a branch and a pull request, the Incident waits in AwaitingSync, and goes on once the pull request is merged and
the Application has synced a revision that contains the merge."""

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aiops.api.incident import PullRequestState
from aiops.settings import ForgeSetting
from aiops.sops.remediation import forges, gitrepo
from aiops.sops.remediation.manifests import Change, Workload, plan
from aiops_dev.eval import cases
from harness import REPO, checkout_incident, phase, put_secret, wait_for
from support.artifacts import keep
from support.forges import RecordedForge

TOKEN = "tok-0123456789abcdef"
IMAGE = "registry.example.com/shop/checkout"
MANIFEST = f"""\
# checkout: the shop's payment step. Argo CD syncs this folder (Application shop).
apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout
  labels: {{app: checkout}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: checkout}}
  template:
    metadata:
      labels: {{app: checkout}}
    spec:
      containers:
        - name: app
          image: {IMAGE}:1.5.0   # release 1.5.0
          resources:
            limits: {{memory: 256Mi}}
"""


def sh(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def bare_repository(tmp: Path) -> tuple[Path, Path]:
    """forge/acme/shop.git with apps/checkout/deployment.yaml on main, and a work clone of it."""
    bare = tmp / "forge" / "acme" / "shop.git"
    sh("git", "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    work = tmp / "work"
    sh("git", "clone", "--quiet", bare.as_uri(), str(work))
    (work / "apps" / "checkout").mkdir(parents=True)
    (work / "apps" / "checkout" / "deployment.yaml").write_text(MANIFEST)
    (work / "README.md").write_text("shop\n")
    for key, value in (("user.name", "Dev"), ("user.email", "dev@example.com")):
        sh("git", "config", key, value, cwd=work)
    sh("git", "add", ".", cwd=work)
    sh("git", "commit", "--quiet", "-m", "shop 1.5.0", cwd=work)
    sh("git", "tag", "v1.5.0", cwd=work)
    sh("git", "push", "--quiet", "--tags", "origin", "HEAD:main", cwd=work)
    return bare, work


def merge(work: Path, branch: str) -> str:
    """What the forge's merge button does: a merge commit of the branch on main."""
    sh("git", "fetch", "--quiet", "origin", cwd=work)
    sh("git", "checkout", "--quiet", "main", cwd=work)
    sh("git", "merge", "--quiet", "--ff-only", "origin/main", cwd=work)
    sh("git", "merge", "--quiet", "--no-ff", "-m", f"Merge branch {branch}", f"origin/{branch}", cwd=work)
    sh("git", "push", "--quiet", "origin", "main", cwd=work)
    return sh("git", "rev-parse", "HEAD", cwd=work)


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea"])
def test_forge_clients_against_the_recorded_apis(kind):
    with RecordedForge(kind, TOKEN) as forge:
        repo = forges.repository("git@forge.test:acme/shop.git", (ForgeSetting("forge.test", kind, forge.api_url),))
        assert (repo.kind, repo.project, repo.clone_url) == (kind, "acme/shop", "https://forge.test/acme/shop.git")
        pr = forges.create(repo, TOKEN, "aiops/inc/rollback", "main", "aiops: roll back", "why and what")
        assert (pr.number, pr.state, pr.merge_commit) == (1, PullRequestState.OPEN, None)
        assert pr.url.startswith("https://forge.test/acme/shop/")
        sent = forge.requests[-1].body
        head = sent["source_branch"] if kind == "gitlab" else sent["head"]
        assert (head, sent.get("description") or sent.get("body")) == ("aiops/inc/rollback", "why and what")
        # The operator stopped after opening it: asking again finds the same one, through the forge's conflict.
        again = forges.create(repo, TOKEN, "aiops/inc/rollback", "main", "aiops: roll back", "why and what")
        assert again == pr and len(forge.pulls) == 1
        assert forges.get(repo, TOKEN, 1).state == PullRequestState.OPEN

        forge.merge(1, "a" * 40)
        merged = forges.get(repo, TOKEN, 1)
        assert (merged.state, merged.merge_commit) == (PullRequestState.MERGED, "a" * 40)
        other = forges.create(repo, TOKEN, "aiops/inc/scale", "main", "aiops: scale", "")
        forge.close(other.number)
        assert forges.get(repo, TOKEN, other.number) == forges.PullRequest(2, other.url, PullRequestState.CLOSED, None)

        with pytest.raises(forges.ForgeError) as refused:
            forges.get(repo, "wrong-token", 1)
        assert f"{kind} API {forge.api_url}" in str(refused.value) and "refused the token (HTTP 401)" in str(
            refused.value
        )
        assert "wrong-token" not in str(refused.value)
        with pytest.raises(forges.ForgeError, match="HTTP 404: no repository acme/shop, or the token may not see it"):
            forges.get(repo, TOKEN, 99)


def test_forge_is_told_by_the_host_or_must_be_configured():
    assert forges.repository("https://github.com/acme/shop.git", ()).api_url == "https://api.github.com"
    assert forges.repository("https://git.corp/acme/shop", (ForgeSetting("git.corp", "github"),)).api_url == (
        "https://git.corp/api/v3"
    )
    lab = forges.repository("ssh://git@gitlab.corp.example/platform/team/shop.git", ())
    assert (lab.kind, lab.project, lab.api_url) == (
        "gitlab",
        "platform/team/shop",
        "https://gitlab.corp.example/api/v4",
    )
    assert forges.repository("https://codeberg.org/acme/shop", ()).api_url == "https://codeberg.org/api/v1"
    with pytest.raises(forges.ForgeError, match="add code.corp=github, code.corp=gitlab or code.corp=gitea to"):
        forges.repository("https://code.corp/acme/shop.git", ())


def test_git_branch_commit_push_and_contains_against_a_bare_repository(tmp_path):
    bare, work = bare_repository(tmp_path)
    remote = gitrepo.Remote(bare.as_uri(), "x-access-token", TOKEN, ("aiops-operator", "bot@example.com"))
    assert gitrepo.branch(remote, "") == gitrepo.branch(remote, "HEAD") == gitrepo.branch(remote, "main") == "main"
    with pytest.raises(gitrepo.GitError, match="targetRevision 'v1.5.0' is not a branch"):
        gitrepo.branch(remote, "v1.5.0")

    checkout = gitrepo.clone(remote, "main", tmp_path / "clone")
    assert sh("git", "rev-list", "--count", "HEAD", cwd=checkout) == "1"  # shallow
    workload = Workload("Deployment", "checkout", "shop")
    [edit] = plan(checkout, "apps/checkout", False, False, workload, Change(replicas=4))
    (checkout / edit.path).write_text(edit.text)
    when = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    commit = gitrepo.commit_and_push(remote, checkout, "aiops/inc/scale", [edit.path], "aiops: scale\n\nbody", when)
    # A retry of the same change on the same base is the same commit: nothing new to push.
    again = gitrepo.clone(remote, "main", tmp_path / "clone2")
    (again / edit.path).write_text(edit.text)
    assert (
        gitrepo.commit_and_push(remote, again, "aiops/inc/scale", [edit.path], "aiops: scale\n\nbody", when) == commit
    )

    pushed = sh("git", "show", f"{commit}:apps/checkout/deployment.yaml", cwd=bare)
    assert pushed == MANIFEST.replace("replicas: 2", "replicas: 4").rstrip("\n")
    assert (
        sh("git", "log", "-1", "--format=%an <%ae>|%s", commit, cwd=bare)
        == "aiops-operator <bot@example.com>|aiops: scale"
    )
    before = sh("git", "rev-parse", "main", cwd=bare)

    merged = merge(work, "aiops/inc/scale")
    assert gitrepo.contains(remote, "main", merged, merged, tmp_path / "c1")
    assert not gitrepo.contains(remote, "main", merged, before, tmp_path / "c2")
    (work / "README.md").write_text("shop, later\n")
    sh("git", "commit", "--quiet", "-am", "later", cwd=work)
    sh("git", "push", "--quiet", "origin", "main", cwd=work)
    later = sh("git", "rev-parse", "HEAD", cwd=work)
    assert gitrepo.contains(remote, "main", merged, later, tmp_path / "c3")
    assert not gitrepo.contains(remote, "main", merged, "f" * 40, tmp_path / "c4")  # not on the branch at all


def application(name: str, namespace: str, revision: str) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": "https://forge.test/acme/shop.git",
                "targetRevision": "main",
                "path": "apps/checkout",
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
        "status": {"sync": {"status": "Synced", "revision": revision}, "health": {"status": "Healthy"}},
    }


def argo_cd_managed(kubectl, namespace: str, writer, tmp_path: Path, secret_key: str) -> tuple:
    """The repository, Argo CD's Application CRD and an Application `namespace` (Synced at main) deploying
    apps/checkout into the namespace, the forge token, and the checkout-oomkilled workloads.
    (bare repository, work clone, base commit, git configuration for the operator)"""
    bare, work = bare_repository(tmp_path)
    base = sh("git", "rev-parse", "main", cwd=bare)
    gitconfig = tmp_path / "gitconfig"  # the forge's https URL reaches the bare repository, as a mirror would
    gitconfig.write_text(f'[url "{(tmp_path / "forge").as_uri()}/"]\n\tinsteadOf = https://forge.test/\n')
    kubectl("apply", "-f", str(REPO / "tests" / "data" / "argocd" / "application-crd.yaml"))
    kubectl("wait", "--for=condition=established", "--timeout=60s", "crd/applications.argoproj.io")
    kubectl("create", "namespace", "argocd", check=False)
    manifest = application(namespace, namespace, base)
    wait_for(lambda: kubectl.apply(manifest, check=False).returncode == 0, 30, "the Application CRD to serve")
    put_secret(kubectl, "aiops-gitops", {secret_key: TOKEN.encode()})
    cases.write("checkout-oomkilled", writer)
    return bare, work, base, gitconfig


def synced(kubectl, name: str, revision: str, status: str = "Synced") -> None:
    """What Argo CD writes once it has synced a revision (its Application CRD has no status subresource)."""
    patch = {"status": {"sync": {"status": status, "revision": revision},
                        "operationState": {"phase": "Succeeded", "syncResult": {"revision": revision}}}}  # fmt: skip
    kubectl("-n", "argocd", "patch", "application", name, "--type", "merge", "-p", json.dumps(patch))


def step_of(inc: dict, step_id: str) -> dict:
    return next(s for s in inc["status"]["sop"]["steps"] if s["id"] == step_id)


def rollback_state(inc: dict) -> str | None:
    return step_of(inc, "rollback")["state"] if (inc.get("status") or {}).get("sop") else None


ROLLBACK_SOP = {
    "apiVersion": "aiops.dev/v1alpha1",
    "kind": "SOP",
    "metadata": {"name": "oom-rollback-gitops"},
    "spec": {
        "title": "OOMKilled after a release: roll back",
        "match": {"symptoms": ["OOMKilled"], "resourceKinds": ["Deployment"]},
        "steps": [
            {"id": "rollback", "type": "action", "title": "Roll back to the previous image",
             "action": {"type": "rollbackDeployment"}, "automation": "auto", "onSuccess": "verify",
             "onFailure": "page"},
            {"id": "page", "type": "escalate", "title": "Page the checkout team"},
            {"id": "verify", "type": "check", "title": "The rollout history is readable",
             "command": "kubectl -n $NAMESPACE rollout history deployment/$TARGET"},
        ],
    },
}  # fmt: skip


def test_pr_delivered_rollback_waits_for_the_merge_and_the_sync(kubectl, operator_env, namespace, writer, tmp_path):
    bare, work, base, gitconfig = argo_cd_managed(kubectl, namespace, writer, tmp_path, "forge.test")
    app = namespace
    tracking = f"argocd.argoproj.io/tracking-id={app}:apps/Deployment:{namespace}/checkout"
    kubectl("-n", namespace, "annotate", "deployment", "checkout", tracking)

    with RecordedForge("github", TOKEN) as forge:
        operator_env({
            "AIOPS_APPROVALS": "unverified-allowed",
            "AIOPS_GITOPS_FORGES": f"forge.test=github@{forge.api_url}",
            "AIOPS_GITOPS_AUTHOR": "aiops-operator <aiops@example.com>",
            "GIT_CONFIG_GLOBAL": str(gitconfig),
        })  # fmt: skip
        kubectl.apply(ROLLBACK_SOP, namespace)
        kubectl.apply(checkout_incident("oom", analysis={"llm": False}), namespace)
        kubectl.wait("incident", "oom", namespace, timeout=90, what="the rollback step waiting for approval",
                     until=lambda o: rollback_state(o) == "AwaitingApproval")  # fmt: skip
        approval = {"spec": {"approvals": [{"step": "rollback", "approvedBy": "jane@example.com"}]}}
        kubectl("-n", namespace, "patch", "incident", "oom", "--type", "merge", "-p", json.dumps(approval))

        inc = kubectl.wait("incident", "oom", namespace, timeout=90, what="the pull request",
                           until=lambda o: step_of(o, "rollback")["state"] in ("AwaitingSync", "Failed"))  # fmt: skip
        step = step_of(inc, "rollback")
        assert step["state"] == "AwaitingSync", step
        pr = step["pullRequest"]
        branch = f"aiops/{namespace}/oom/rollback"
        assert pr["url"] == "https://forge.test/acme/shop/pull/1" and pr["number"] == 1 and pr["state"] == "open"
        assert (pr["forge"], pr["branch"], pr["base"], pr["files"]) == (
            "github",
            branch,
            "main",
            ["apps/checkout/deployment.yaml"],
        )
        assert pr["application"] == f"argocd/{app}" and step["output"].startswith("pull request #1 is open")
        # Nothing live changed: the Deployment still runs 1.5.0, Argo CD will bring 1.4.2 from Git.
        image = "{.spec.template.spec.containers[0].image}"
        assert kubectl("-n", namespace, "get", "deploy", "checkout", "-o", f"jsonpath={image}").stdout.endswith("1.5.0")

        # The branch in the bare repository: one line changed, comments and all else as they were.
        edited = sh("git", "show", f"{branch}:apps/checkout/deployment.yaml", cwd=bare)
        assert edited == MANIFEST.replace(f"{IMAGE}:1.5.0   #", f"{IMAGE}:1.4.2   #").rstrip("\n")
        assert sh("git", "rev-parse", branch, cwd=bare) == pr["commit"]
        message = sh("git", "log", "-1", "--format=%an <%ae>%n%B", branch, cwd=bare)
        assert message.startswith(
            f"aiops-operator <aiops@example.com>\naiops: roll back checkout to app={IMAGE}:1.4.2 (revision 1)"
        )
        uid = inc["metadata"]["uid"]
        for line in (f"Incident {namespace}/oom, SOP oom-rollback-gitops, step rollback", "Diagnosis: ",
                     "Approved-by: jane@example.com (unverified)", f"Audit-Id: {uid}/rollback"):  # fmt: skip
            assert line in message, (line, message)
        created = next(r for r in forge.requests if r.method == "POST")
        assert created.headers["Authorization"] == f"Bearer {TOKEN}"
        assert (created.body["head"], created.body["base"]) == (branch, "main")
        assert created.body["title"] == message.splitlines()[1] and f"Audit-Id: {uid}/rollback" in created.body["body"]
        [opened] = inc["status"]["sop"]["audit"]
        assert opened["outcome"] == f"pull request opened: {pr['url']}" and opened["pullRequest"] == pr["url"]
        assert opened["dryRun"] == "passed" and "checkout:1.5.0" in opened["before"]
        assert opened["approvedBy"] == "jane@example.com (unverified)"
        assert f"app.image: {IMAGE}:1.5.0 -> {IMAGE}:1.4.2" in opened["after"]
        events = {e["reason"]: e["message"] for e in kubectl.events(namespace, "oom")}
        assert pr["url"] in events["PullRequestOpened"] and f"argocd/{app}" in events["PullRequestOpened"]

        # Merged, but Argo CD has not synced it yet: still waiting, and saying so.
        merged = merge(work, branch)
        forge.merge(1, merged)
        inc = kubectl.wait("incident", "oom", namespace, timeout=30, what="the merge seen",
                           until=lambda o: step_of(o, "rollback")["pullRequest"]["state"] == "merged")  # fmt: skip
        step = step_of(inc, "rollback")
        assert step["state"] == "AwaitingSync" and step["pullRequest"]["mergeCommit"] == merged
        assert (
            f"merged as {merged[:12]}" in step["output"]
            and f"is Synced at {base[:12]}, without it yet" in step["output"]
        )
        assert phase(inc) == "Remediating"

        # Argo CD syncs a later revision of main, which contains the merge: the runbook goes on and verifies.
        (work / "README.md").write_text("shop, later\n")
        sh("git", "commit", "--quiet", "-am", "docs", cwd=work)
        sh("git", "push", "--quiet", "origin", "main", cwd=work)
        later = sh("git", "rev-parse", "HEAD", cwd=work)
        synced(kubectl, app, later)
        inc = kubectl.wait("incident", "oom", namespace, timeout=60, what="the runbook to finish",
                           until=lambda o: phase(o) in ("Resolved", "Escalated"))  # fmt: skip
    assert phase(inc) == "Resolved", inc["status"]["sop"]
    assert [s["state"] for s in inc["status"]["sop"]["steps"]] == ["Succeeded", "Skipped", "Succeeded"]
    step = step_of(inc, "rollback")
    assert step["pullRequest"]["syncedRevision"] == later
    assert (
        step["output"]
        == f"pull request #1 merged as {merged[:12]}; Argo CD Application argocd/{app} synced {later[:12]}, "
        "which has it"
    )
    opened, done = inc["status"]["sop"]["audit"]
    assert done["outcome"] == "done" and done["pullRequest"] == pr["url"] and done["at"] >= opened["at"]
    reasons = [e["reason"] for e in kubectl.events(namespace, "oom")]
    assert {"PullRequestOpened", "PullRequestMerged", "Synced"} <= set(reasons)
    describe = kubectl("-n", namespace, "describe", "incident", "oom").stdout
    excerpt = kubectl("-n", namespace, "get", "incident", "oom", "-o", "yaml").stdout
    keep(  # the example for the docs and the report
        "pr-rollback.txt",
        f"$ kubectl -n {namespace} describe incident oom\n{describe}\n$ kubectl get incident oom -o yaml\n{excerpt}",
    )


def test_a_pull_request_closed_without_merging_fails_the_step(kubectl, operator_env, namespace, writer, tmp_path):
    bare, _, _, gitconfig = argo_cd_managed(kubectl, namespace, writer, tmp_path, "token")  # one token for all hosts
    app = namespace
    # Label tracking, Argo CD's older default.
    kubectl("-n", namespace, "label", "deployment", "checkout", f"app.kubernetes.io/instance={app}")
    scale = {**ROLLBACK_SOP, "metadata": {"name": "scale-gitops"}}
    scale["spec"] = {**ROLLBACK_SOP["spec"], "steps": [
        {"id": "scale", "type": "action", "title": "Scale out", "action": {"type": "scaleDeployment",
         "params": {"replicas": "4"}}, "automation": "auto", "approvalRequired": False, "delivery": "pullRequest",
         "onFailure": "page"},
        {"id": "page", "type": "escalate", "title": "Page the checkout team"},
    ]}  # fmt: skip
    with RecordedForge("gitea", TOKEN) as forge:
        operator_env({"AIOPS_GITOPS_FORGES": f"forge.test=gitea@{forge.api_url}", "GIT_CONFIG_GLOBAL": str(gitconfig)})
        kubectl.apply(scale, namespace)
        kubectl.apply(checkout_incident("scale", analysis={"llm": False}, sopRef={"name": "scale-gitops"}), namespace)
        inc = kubectl.wait("incident", "scale", namespace, timeout=90, what="the pull request",
                           until=lambda o: ((o.get("status") or {}).get("sop") or {}).get("steps")
                           and step_of(o, "scale")["state"] in ("AwaitingSync", "Failed"))  # fmt: skip
        assert step_of(inc, "scale")["state"] == "AwaitingSync", step_of(inc, "scale")
        pr = step_of(inc, "scale")["pullRequest"]
        assert pr["url"] == "https://forge.test/acme/shop/pulls/1"
        edited = sh("git", "show", f"{pr['branch']}:apps/checkout/deployment.yaml", cwd=bare)
        assert edited == MANIFEST.replace("replicas: 2", "replicas: 4").rstrip("\n")
        forge.close(1)
        inc = kubectl.wait(
            "incident", "scale", namespace, timeout=60, what="escalation", until=lambda o: phase(o) == "Escalated"
        )
    step = step_of(inc, "scale")
    assert step["state"] == "Failed" and step["pullRequest"]["state"] == "closed"
    assert step["output"] == f"pull request #1 was closed without being merged: {pr['url']}"
    assert kubectl("-n", namespace, "get", "deploy", "checkout", "-o", "jsonpath={.spec.replicas}").stdout == "2"
    events = {e["reason"]: e["type"] for e in kubectl.events(namespace, "scale")}
    assert events["PullRequestClosed"] == "Warning" and events["Escalated"] == "Warning"
