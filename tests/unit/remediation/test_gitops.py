"""Pull-request delivery without servers: Argo CD tracking, the token's way into git, the settings, the SOP field,
and a pull request that is not merged in time."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from aiops import settings
from aiops.api.incident import IncidentSpec, PullRequestState, PullRequestStatus, StepState
from aiops.api.sop import SOPSpec
from aiops.settings import ApprovalSettings, ForgeSetting, GitOpsSettings
from aiops.sops import approvals
from aiops.sops.remediation import actions, argocd, engine, gitops, gitrepo
from aiops.sops.remediation.matching import Match

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def meta(**extra) -> dict:
    return {"name": "checkout", "namespace": "shop", **extra}


def test_argo_cd_tracking_by_annotation_label_and_apps_in_any_namespace():
    tracked = {"argocd.argoproj.io/tracking-id": "shop-prod:apps/Deployment:shop/checkout"}
    assert argocd.tracked(meta(annotations=tracked), "apps", "Deployment", "argocd")[:2] == ("argocd", "shop-prod")
    other_ns = {"argocd.argoproj.io/tracking-id": "teams_shop-prod:apps/Deployment:shop/checkout"}
    assert argocd.tracked(meta(annotations=other_ns), "apps", "Deployment", "argocd")[:2] == ("teams", "shop-prod")
    label = {"app.kubernetes.io/instance": "shop-prod"}
    assert argocd.tracked(meta(labels=label), "apps", "Deployment", "gitops")[:2] == ("gitops", "shop-prod")
    # Copied from another object (Argo CD ignores it too), and no marks at all: not managed.
    copied = {"argocd.argoproj.io/tracking-id": "shop-prod:apps/Deployment:shop/cart"}
    assert argocd.tracked(meta(annotations=copied, labels=label), "apps", "Deployment", "argocd") is None
    assert argocd.tracked(meta(), "apps", "Deployment", "argocd") is None


def test_the_token_reaches_git_as_a_header_for_its_host_only(monkeypatch):
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")  # configuration the environment already gives stays first
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "url.file:///mirror/.insteadOf")
    remote = gitrepo.Remote("https://forge.test/acme/shop.git", "x-access-token", "s3cret-token")
    env = remote.env(T0)
    assert env["GIT_CONFIG_COUNT"] == "2" and env["GIT_CONFIG_KEY_0"] == "url.file:///mirror/.insteadOf"
    assert env["GIT_CONFIG_KEY_1"] == "http.https://forge.test/.extraHeader"
    header = env["GIT_CONFIG_VALUE_1"].removeprefix("Authorization: Basic ")
    assert base64.b64decode(header) == b"x-access-token:s3cret-token"
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_COMMITTER_DATE"] == T0.isoformat()
    assert "s3cret-token" not in repr(remote)
    assert "GIT_CONFIG_KEY_1" not in gitrepo.Remote("https://forge.test/acme/shop.git").env()


def test_gitops_settings_name_the_bad_value():
    assert settings.from_env({}).gitops == GitOpsSettings()
    parsed = settings.from_env({"AIOPS_GITOPS_DELIVERY": "PullRequest", "AIOPS_GITOPS_FORGES": " git.corp=gitea ,"
                                "Code.Corp=gitlab@https://code.corp/gl/api/v4/"})  # fmt: skip
    assert parsed.gitops.delivery == "pullRequest"
    assert parsed.gitops.forges == (
        ForgeSetting("git.corp", "gitea"),
        ForgeSetting("code.corp", "gitlab", "https://code.corp/gl/api/v4"),
    )
    for env, message in (
        ({"AIOPS_GITOPS_DELIVERY": "git"}, "AIOPS_GITOPS_DELIVERY='git': expected one of auto, pullRequest, live"),
        ({"AIOPS_GITOPS_FORGES": "git.corp=bitbucket"}, "AIOPS_GITOPS_FORGES: 'git.corp=bitbucket': expected"),
        ({"AIOPS_GITOPS_FORGES": "git.corp=gitea@ftp://x"}, "AIOPS_GITOPS_FORGES: 'git.corp=gitea@ftp://x'"),
        ({"AIOPS_GITOPS_AUTHOR": "bot"}, "AIOPS_GITOPS_AUTHOR='bot': expected 'Name <email>'"),
    ):
        with pytest.raises(SystemExit, match=message):
            settings.from_env(env)


def test_delivery_is_a_field_of_action_steps_that_git_can_carry():
    step = {"id": "s", "type": "action", "title": "t", "action": {"type": "restartPod"}, "delivery": "pullRequest"}
    with pytest.raises(ValidationError, match="steps\\[0\\].delivery: restartPod cannot be a pull request"):
        SOPSpec.model_validate({"title": "t", "steps": [step]})
    check = {"id": "c", "type": "check", "title": "t", "command": "kubectl get pods", "delivery": "live"}
    with pytest.raises(ValidationError, match="steps\\[0\\].delivery: only action steps have a delivery"):
        SOPSpec.model_validate({"title": "t", "steps": [check]})
    ok = {**step, "action": {"type": "setResources", "params": {"limits.memory": "1Gi"}}}
    assert SOPSpec.model_validate({"title": "t", "steps": [ok]}).steps[0].delivery == "pullRequest"


def test_a_pull_request_not_merged_and_synced_in_time_fails_the_step():
    step = {"id": "scale", "type": "action", "title": "Scale out", "automation": "auto", "approvalRequired": False,
            "action": {"type": "scaleDeployment", "params": {"replicas": "4"}}, "timeoutSeconds": 600}  # fmt: skip
    s = SOPSpec.model_validate({"title": "t", "steps": [step]})
    unreachable = GitOpsSettings(forges=(ForgeSetting("forge.test", "github", "http://127.0.0.1:1"),))
    ctx = gitops.GitOps(unreachable, "shop/checkout", "uid-1", "sop", "OOMKilled", lambda host: "tok", "Secret x/y")
    incident = IncidentSpec(title="t", severity="critical")
    world = engine.World(api=None, prometheus=None, variables={}, targets=actions.Targets("shop", "checkout"),
                         approvals=approvals.judge(incident, s, "uid-1", ApprovalSettings()), incident="shop/checkout",
                         gitops=ctx)  # fmt: skip
    sop = engine.start(Match("sop", 1.0, "r"), s, T0)
    st = sop.steps[0]
    st.started_at, st.state = T0, StepState.AWAITING_SYNC
    st.pull_request = PullRequestStatus(
        url="https://forge.test/acme/shop/pull/7", number=7, forge="github", repository="https://forge.test/acme/shop",
        branch="aiops/checkout/scale", base="main", commit="c" * 40, application="argocd/shop",
        state=PullRequestState.OPEN,
    )  # fmt: skip
    waiting = engine.advance(sop, s, world, T0 + timedelta(seconds=30))
    assert waiting.outcome == "waiting" and waiting.sop.steps[0].state == StepState.AWAITING_SYNC
    # The forge cannot be reached: waited out, and said.
    assert waiting.sop.steps[0].output == (
        "pull request #7 https://forge.test/acme/shop/pull/7: github API http://127.0.0.1:1/repos/acme/shop/pulls/7: "
        "connection refused"
    )
    late = engine.advance(waiting.sop, s, world, T0 + timedelta(seconds=601))
    assert late.outcome == "escalated" and late.sop.steps[0].state == StepState.FAILED
    assert late.sop.steps[0].output.startswith("not merged and synced in time: pull request #7")
