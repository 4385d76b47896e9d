"""The real `git`, for pull-request delivery: a shallow clone, a commit on a branch, a push; and whether a
revision contains a commit.

The token travels in an `http.<url>.extraHeader` given through GIT_CONFIG_COUNT/KEY/VALUE in the child's
environment: never on a command line (other processes can read those), never in the remote URL (git would
store it in .git/config and repeat it in its messages), and only to the repository's own host. Git never
prompts (GIT_TERMINAL_PROMPT=0) and every command has a timeout.
"""

from __future__ import annotations

import base64
import os
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

TIMEOUT_S = 120


class GitError(Exception):
    """A git command failed; the message has its stderr, without credentials."""


@dataclass(frozen=True)
class Remote:
    url: str  # https://host/owner/repo.git
    user: str = field(repr=False, default="")
    token: str = field(repr=False, default="")
    author: tuple[str, str] = ("aiops-operator", "aiops-operator@users.noreply.invalid")

    def env(self, date: datetime | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_AUTHOR_", "GIT_COMMITTER_"))}
        env.update(GIT_TERMINAL_PROMPT="0", GCM_INTERACTIVE="never", LC_ALL="C")
        env.update(GIT_AUTHOR_NAME=self.author[0], GIT_AUTHOR_EMAIL=self.author[1])
        env.update(GIT_COMMITTER_NAME=self.author[0], GIT_COMMITTER_EMAIL=self.author[1])
        if date is not None:  # the same change on the same base is the same commit: a retry pushes nothing new
            env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date.isoformat()
        if self.token:
            n = int(env.get("GIT_CONFIG_COUNT") or 0)  # after whatever configuration the environment gives
            prefix = self.url.split("//", 1)[0] + "//" + self.url.split("//", 1)[1].split("/", 1)[0] + "/"
            basic = base64.b64encode(f"{self.user}:{self.token}".encode()).decode()
            env.update(
                {
                    "GIT_CONFIG_COUNT": str(n + 1),
                    f"GIT_CONFIG_KEY_{n}": f"http.{prefix}.extraHeader",
                    f"GIT_CONFIG_VALUE_{n}": f"Authorization: Basic {basic}",
                }
            )
        return env


def git(
    remote: Remote, *args: str, cwd: Path | None = None, date: datetime | None = None, stdin: str | None = None
) -> str:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, env=remote.env(date), input=stdin, capture_output=True, text=True,
            timeout=TIMEOUT_S,
        )  # fmt: skip
    except FileNotFoundError:
        raise GitError("git is not installed where the operator runs") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} against {remote.url} took longer than {TIMEOUT_S}s") from None
    if proc.returncode != 0:
        message = " ".join((proc.stderr or proc.stdout).split())
        if remote.token:
            message = message.replace(remote.token, "<token>")
        raise GitError(f"git {args[0]} against {remote.url} failed: {message[:500]}")
    return proc.stdout


def branch(remote: Remote, revision: str) -> str:
    """The branch a pull request goes into: `revision` when it is a branch, the default branch for HEAD or ""."""
    if revision in ("", "HEAD"):
        out = git(remote, "ls-remote", "--symref", remote.url, "HEAD")
        ref = next((line.split()[1] for line in out.splitlines() if line.startswith("ref: ")), "")
        if not ref.startswith("refs/heads/"):
            raise GitError(f"{remote.url} has no default branch")
        return ref.removeprefix("refs/heads/")
    name = revision.removeprefix("refs/heads/")
    if not git(remote, "ls-remote", "--heads", remote.url, f"refs/heads/{name}").strip():
        raise GitError(
            f"targetRevision {revision!r} is not a branch of {remote.url} (a tag or a commit): a pull request needs "
            "a branch to merge into; point the Application at a branch, or change the pinned revision by hand"
        )
    return name


def clone(remote: Remote, base: str, dest: Path) -> Path:
    """A shallow clone of one branch."""
    git(remote, "clone", "--quiet", "--depth", "1", "--single-branch", "--no-tags", "--branch", base, remote.url,
        str(dest))  # fmt: skip
    return dest


def commit_and_push(
    remote: Remote, repo: Path, branch_name: str, files: list[str], message: str, date: datetime
) -> str:
    """Commits `files` on a new branch and pushes it, replacing a branch of the same name from an earlier try
    (the branch is this step's own). Returns the commit's id."""
    git(remote, "checkout", "--quiet", "-B", branch_name, cwd=repo)
    git(remote, "add", "--", *files, cwd=repo)
    git(remote, "commit", "--quiet", "--no-verify", "--file", "-", cwd=repo, date=date, stdin=message)
    git(remote, "push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{branch_name}", cwd=repo)
    return git(remote, "rev-parse", "HEAD", cwd=repo).strip()


def contains(remote: Remote, base: str, commit: str, revision: str, workdir: Path) -> bool:
    """Whether `revision` is `commit` or has it in its history: the branch's history is fetched without file
    contents (a partial clone where the server allows it) and asked."""
    if revision == commit:
        return True
    repo = workdir / "history"
    git(remote, "init", "--quiet", "--bare", str(repo))
    git(remote, "fetch", "--quiet", "--no-tags", "--filter=blob:none", remote.url,
        f"+refs/heads/{base}:refs/heads/{base}", cwd=repo)  # fmt: skip
    for sha in (commit, revision):
        try:
            git(remote, "cat-file", "-e", f"{sha}^{{commit}}", cwd=repo)
        except GitError:
            return False  # not on the branch (yet): the Application has synced something else
    try:
        git(remote, "merge-base", "--is-ancestor", commit, revision, cwd=repo)
    except GitError:
        return False
    return True
