"""Pull requests on GitHub, GitLab and Gitea through their REST APIs: open one, read its state and merge commit.

Which forge serves a repository comes from its host (github.com, gitlab.com, codeberg.org, a host named
gitlab.*, gitea.* ...) or from AIOPS_GITOPS_FORGES (`git.corp.example=gitea`, with `@API URL` where the API
is not in its usual place). The token is sent in the header each forge documents and never appears in a
message: errors name the forge, the API URL and the HTTP status.

    GitHub  POST/GET {api}/repos/{owner}/{repo}/pulls[/{number}]           Authorization: Bearer TOKEN
    GitLab  POST/GET {api}/projects/{url-encoded path}/merge_requests[/{iid}]   PRIVATE-TOKEN: TOKEN
    Gitea   POST/GET {api}/repos/{owner}/{repo}/pulls[/{index}]            Authorization: token TOKEN
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from aiops.api.incident import PullRequestState
from aiops.clusters.words import connection_words, short
from aiops.settings import ForgeSetting

TIMEOUT_S = 20
# user@host:path, the scp-like form of an SSH URL
SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")
# Hosts whose forge their name tells; others need AIOPS_GITOPS_FORGES.
KNOWN_HOSTS = {"github.com": "github", "gitlab.com": "gitlab", "codeberg.org": "gitea", "gitea.com": "gitea"}
# The user name that goes with the token in HTTPS basic authentication for git itself.
GIT_USER = {"github": "x-access-token", "gitlab": "oauth2", "gitea": "oauth2"}


class ForgeError(Exception):
    """A forge could not be reached, refused the request or answered something unexpected."""


@dataclass(frozen=True)
class Repository:
    """A repository on a forge: where git reaches it and where its REST API is."""

    kind: str  # github | gitlab | gitea
    host: str
    project: str  # owner/name (GitLab: group/subgroup/name)
    api_url: str
    clone_url: str  # https, whatever scheme the Application's repoURL uses: the token authenticates over HTTPS

    @property
    def git_user(self) -> str:
        return GIT_USER[self.kind]


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str
    state: PullRequestState
    merge_commit: str | None  # once merged


def repository(repo_url: str, forges: tuple[ForgeSetting, ...]) -> Repository:
    """The forge repository of an Application's repoURL (https://, ssh://, or git@host:path)."""
    if scp := SCP_LIKE.match(repo_url) if "://" not in repo_url else None:
        host, path = scp["host"], scp["path"]
    else:
        parts = urlsplit(repo_url)
        host, path = (parts.hostname or ""), parts.path
    project = path.strip("/").removesuffix(".git")
    if not host or project.count("/") < 1:
        raise ForgeError(f"repoURL {repo_url!r} does not name a repository on a forge (https://HOST/OWNER/REPO)")
    host = host.lower()
    setting = next((f for f in forges if f.host == host), None)
    kind = setting.kind if setting else KNOWN_HOSTS.get(host) or _kind_by_name(host)
    if kind is None:
        raise ForgeError(
            f"cannot tell which forge serves {host}: add {host}=github, {host}=gitlab or {host}=gitea "
            "to AIOPS_GITOPS_FORGES"
        )
    api = setting.api_url if setting and setting.api_url else _default_api(kind, host)
    return Repository(kind, host, project, api, f"https://{host}/{project}.git")


def _kind_by_name(host: str) -> str | None:
    first = host.split(".")[0]
    if first.startswith(("gitea", "forgejo")):  # Forgejo speaks Gitea's API
        return "gitea"
    return next((k for k in ("gitlab", "github") if first.startswith(k)), None)


def _default_api(kind: str, host: str) -> str:
    if kind == "github":
        return "https://api.github.com" if host == "github.com" else f"https://{host}/api/v3"  # Enterprise Server
    return f"https://{host}/api/v4" if kind == "gitlab" else f"https://{host}/api/v1"


def _headers(repo: Repository, token: str) -> dict[str, str]:
    if repo.kind == "github":
        return {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
    if repo.kind == "gitlab":
        return {"PRIVATE-TOKEN": token, "Accept": "application/json"}
    return {"Authorization": f"token {token}", "Accept": "application/json"}


def _base(repo: Repository) -> str:
    if repo.kind == "gitlab":
        return f"{repo.api_url}/projects/{quote(repo.project, safe='')}/merge_requests"
    return f"{repo.api_url}/repos/{repo.project}/pulls"


def _call(
    repo: Repository, token: str, method: str, url: str, body: dict | None = None, missing_ok: bool = False
) -> tuple[int, Any]:
    where = f"{repo.kind} API {url.split('?')[0]}"
    try:
        resp = httpx.request(method, url, json=body, headers=_headers(repo, token), timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise ForgeError(f"{where}: {connection_words(exc)}") from None
    try:
        data = resp.json()
    except ValueError:
        data = None
    if resp.status_code in (401, 403):
        raise ForgeError(
            f"{where} refused the token (HTTP {resp.status_code}): it needs the right to push branches and open "
            f"pull requests on {repo.project}"
        )
    if resp.status_code == 404 and not missing_ok:
        raise ForgeError(f"{where}: HTTP 404: no repository {repo.project}, or the token may not see it")
    if resp.status_code >= 400 and resp.status_code not in (404, 409, 422):
        message = data.get("message") if isinstance(data, dict) else resp.text
        raise ForgeError(f"{where}: HTTP {resp.status_code}: {short(str(message), 300)}")
    return resp.status_code, data


def _parse(repo: Repository, data: Any) -> PullRequest:
    try:
        if repo.kind == "gitlab":
            state = {"opened": "open", "locked": "open"}.get(data["state"], data["state"])
            # A fast-forward merge has no merge commit: the source branch's head is what landed.
            merged = data.get("merge_commit_sha") or data.get("squash_commit_sha") or data.get("sha")
            return PullRequest(int(data["iid"]), data["web_url"], PullRequestState(state),
                               merged if state == "merged" else None)  # fmt: skip
        merged = bool(data.get("merged") or data.get("merged_at"))
        state = PullRequestState.MERGED if merged else PullRequestState(data["state"])
        return PullRequest(
            int(data["number"]), data["html_url"], state, data.get("merge_commit_sha") if merged else None
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ForgeError(
            f"{repo.kind} API {_base(repo)}: an answer without the fields of a pull request ({exc})"
        ) from None


def create(repo: Repository, token: str, head: str, base: str, title: str, body: str) -> PullRequest:
    """Opens a pull request of `head` into `base`; the open one of the same branches when there is one already
    (the operator was stopped after opening it, before it could record it)."""
    if repo.kind == "gitlab":
        request = {"source_branch": head, "target_branch": base, "title": title, "description": body,
                   "remove_source_branch": True}  # fmt: skip
    else:
        request = {"head": head, "base": base, "title": title, "body": body}
    status, data = _call(repo, token, "POST", _base(repo), request)
    if status in (409, 422):
        existing = find(repo, token, head, base)
        if existing is None:
            message = data.get("message") if isinstance(data, dict) else data
            raise ForgeError(f"{repo.kind} API {_base(repo)} refused the pull request: {short(str(message), 300)}")
        return existing
    return _parse(repo, data)


def get(repo: Repository, token: str, number: int) -> PullRequest:
    return _parse(repo, _call(repo, token, "GET", f"{_base(repo)}/{number}")[1])


def find(repo: Repository, token: str, head: str, base: str) -> PullRequest | None:
    """The open pull request of `head` into `base`, if any."""
    if repo.kind == "github":
        owner = repo.project.split("/")[0]
        url = f"{_base(repo)}?state=open&head={quote(owner)}:{quote(head, safe='')}&base={quote(base, safe='')}"
    elif repo.kind == "gitlab":
        url = f"{_base(repo)}?state=opened&source_branch={quote(head, safe='')}&target_branch={quote(base, safe='')}"
    else:  # Gitea: one pull request by its base and head
        status, data = _call(
            repo, token, "GET", f"{_base(repo)}/{quote(base, safe='')}/{quote(head, safe='')}", None, True
        )
        found = _parse(repo, data) if status == 200 else None
        return found if found and found.state == PullRequestState.OPEN else None
    status, data = _call(repo, token, "GET", url)
    items = data if isinstance(data, list) else []
    return _parse(repo, items[0]) if items else None
