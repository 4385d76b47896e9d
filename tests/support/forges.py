"""A forge on 127.0.0.1 that answers the pull-request endpoints of GitHub, GitLab or Gitea with each API's own
JSON (tests/data/forges/*.json, written from the APIs' documented response examples: there is no network to the
forges here), keeps the pull requests it opened, and lets a test merge or close them as a reviewer would.

    GitHub  POST /repos/O/R/pulls, GET /repos/O/R/pulls/N, GET /repos/O/R/pulls?state=open&head=O:B&base=B
    GitLab  POST /api/v4/projects/O%2FR/merge_requests, GET .../merge_requests/N, GET ...?source_branch=B
    Gitea   POST /api/v1/repos/O/R/pulls, GET /api/v1/repos/O/R/pulls/N, GET /api/v1/repos/O/R/pulls/BASE/HEAD

Each checks its own auth header (Bearer / PRIVATE-TOKEN / token) and answers a wrong token as the forge does;
a second pull request for the same open branch gets the forge's conflict answer (422, 409, 409).
"""

from __future__ import annotations

import copy
import http.server
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from aiops_dev.controlplane import free_port

DATA = Path(__file__).resolve().parents[1] / "data" / "forges"
TEMPLATE = {"github": "github-pull.json", "gitlab": "gitlab-merge-request.json", "gitea": "gitea-pull.json"}
PREFIX = {"github": "", "gitlab": "/api/v4", "gitea": "/api/v1"}
UNAUTHORIZED = {
    "github": {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
    "gitlab": {"message": "401 Unauthorized"},
    "gitea": {"message": "token is required", "url": "https://forge.test/api/swagger"},
}


def _conflict(kind: str, head: str, existing: dict) -> tuple[int, dict]:
    """What each forge answers to a second pull request of a branch that has an open one."""
    if kind == "github":
        error = {
            "resource": "PullRequest",
            "code": "custom",
            "message": f"A pull request already exists for acme:{head}.",
        }
        return 422, {"message": "Validation Failed", "errors": [error]}
    if kind == "gitlab":
        return 409, {
            "message": [f"Another open merge request already exists for this source branch: !{existing['iid']}"]
        }
    return 409, {"message": "pull request already exists for these targets", "url": ""}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class RecordedForge:
    kind: str  # github | gitlab | gitea
    token: str
    project: str = "acme/shop"
    port: int = field(default_factory=free_port)
    pulls: dict[int, dict] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PREFIX[self.kind]}"

    # What a reviewer does on the forge.
    def merge(self, number: int, sha: str) -> None:
        pull = self.pulls[number]
        if self.kind == "gitlab":
            pull.update(state="merged", merged_at="2026-01-01T00:00:00Z", merge_commit_sha=sha)
        else:
            pull.update(state="closed", merged=True, merged_at="2026-01-01T00:00:00Z", merge_commit_sha=sha)

    def close(self, number: int) -> None:
        pull = self.pulls[number]
        pull.update(state="closed", closed_at="2026-01-01T00:00:00Z")
        if self.kind != "gitlab":
            pull["merge_commit_sha"] = None  # GitHub keeps a test merge's sha; nothing landed either way

    # The API.
    def _authorized(self, headers: dict[str, str]) -> bool:
        expected = {"github": ("authorization", f"Bearer {self.token}"), "gitlab": ("private-token", self.token),
                    "gitea": ("authorization", f"token {self.token}")}[self.kind]  # fmt: skip
        return {k.lower(): v for k, v in headers.items()}.get(expected[0]) == expected[1]

    def _new(self, body: dict) -> dict:
        pull = copy.deepcopy(json.loads((DATA / TEMPLATE[self.kind]).read_text()))
        pull.pop("_source")
        number = len(self.pulls) + 1
        web = f"https://forge.test/{self.project}"
        if self.kind == "gitlab":
            pull.update(iid=number, id=1000 + number, title=body["title"], description=body.get("description"),
                        source_branch=body["source_branch"], target_branch=body["target_branch"],
                        web_url=f"{web}/-/merge_requests/{number}")  # fmt: skip
        else:
            head, base = body["head"], body["base"]
            pull.update(
                number=number,
                id=1000 + number,
                title=body["title"],
                body=body.get("body"),
                html_url=f"{web}/pull/{number}" if self.kind == "github" else f"{web}/pulls/{number}",
            )
            pull["head"].update(ref=head, label=head)
            pull["base"].update(ref=base, label=base)
            if self.kind == "github":
                pull["merge_commit_sha"] = "e5bd3914e2e596debea16f433f57875b5b90bcd6"  # the test merge, as documented
        self.pulls[number] = pull
        return pull

    def _open_for(self, head: str, base: str) -> dict | None:
        for pull in self.pulls.values():
            if self.kind == "gitlab":
                if pull["state"] == "opened" and (pull["source_branch"], pull["target_branch"]) == (head, base):
                    return pull
            elif pull["state"] == "open" and (pull["head"]["ref"], pull["base"]["ref"]) == (head, base):
                return pull
        return None

    def answer(self, method: str, path: str, query: dict[str, str], headers: dict, body: Any) -> tuple[int, Any]:
        self.requests.append(Seen(method, path, headers, body))
        if not self._authorized(headers):
            return 401, UNAUTHORIZED[self.kind]
        parts = [unquote(p) for p in path.removeprefix(PREFIX[self.kind]).strip("/").split("/")]
        if self.kind == "gitlab":
            if parts[:3] != ["projects", self.project, "merge_requests"]:
                return 404, {"message": "404 Project Not Found"}
            rest = parts[3:]
        else:
            if parts[:4] != ["repos", *self.project.split("/"), "pulls"]:
                return 404, {"message": "Not Found"}
            rest = parts[4:]
        if method == "POST" and not rest:
            head, base = (
                (body["source_branch"], body["target_branch"])
                if self.kind == "gitlab"
                else (body["head"], body["base"])
            )
            if (existing := self._open_for(head, base)) is not None:
                return _conflict(self.kind, head, existing)
            return 201, self._new(body)
        if method == "GET" and len(rest) == 1 and rest[0].isdigit():
            pull = self.pulls.get(int(rest[0]))
            return (200, pull) if pull else (404, {"message": "Not Found"})
        if method == "GET" and not rest:  # GitHub and GitLab list, filtered
            if self.kind == "github":
                found = self._open_for(query.get("head", "").split(":", 1)[-1], query.get("base", ""))
            else:
                found = self._open_for(query.get("source_branch", ""), query.get("target_branch", ""))
            return 200, [found] if found else []
        if method == "GET" and self.kind == "gitea" and len(rest) == 2:
            found = next((p for p in self.pulls.values() if (p["base"]["ref"], p["head"]["ref"]) == tuple(rest)), None)
            return (200, found) if found else (404, {"message": "pull request does not exist", "url": ""})
        return 404, {"message": "Not Found"}

    def __enter__(self) -> RecordedForge:
        forge = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _serve(self):
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                status, answer = forge.answer(self.command, parts.path, query, dict(self.headers), body)
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = _serve

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
