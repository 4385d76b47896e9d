"""Documents into the knowledge index on a real control plane and PostgreSQL (aiops.controllers.knowledge): a
labelled ConfigMap's good Markdown is found by `aiops search`, a broken one, a binaryData key and one of more than
a million characters each get a Warning Event naming the key, an edit re-indexes, a removed key and the label
taken off leave the index; and a Git path in a real bare repository (file:// URL), unreachable at first (logged
with the next try), then polled: files added, edited and removed follow, a broken one is logged."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import asyncpg
import yaml

from harness import aiops_cli, wait_for
from support.servers import query

GOOD = """# Payments provider outage

When card payments fail with gateway timeouts, check the payment service provider's status page first,
then switch the checkout to the secondary acquirer with the feature flag `psp-failover`.
"""
BROKEN = "# Broken\n\n```bash\nkubectl get pods\n\nthe fence is never closed\n"


def doc_keys(dsn: str, prefix: str) -> dict[str, str]:
    """The indexed documents under `prefix`; none while the operator has not migrated the fresh database yet."""
    try:
        sql = "SELECT key, content_hash FROM knowledge_documents WHERE kind = 'doc' AND starts_with(key, $1)"
        rows = query(dsn, sql, prefix)
    except asyncpg.UndefinedTableError:
        return {}
    return {r["key"]: r["content_hash"] for r in rows}


def search(dsn: str, prefix: str, *words: str) -> list[str]:
    """`aiops search`'s lines (two a hit) for the hits under `prefix`: other tests' labelled ConfigMaps stay in
    the cluster and may be indexed too."""
    out = aiops_cli("search", *words, "--kind", "doc", dsn=dsn)
    assert out.returncode == 0, out.stderr
    rows = out.stdout.splitlines()
    return [line for i in range(0, len(rows), 2) if rows[i].split()[2].startswith(prefix) for line in rows[i : i + 2]]


def configmap(namespace: str, data: dict, binary: dict | None = None, labelled: bool = True) -> str:
    meta = {"name": "runbooks", "namespace": namespace}
    if labelled:
        meta["labels"] = {"aiops.dev/knowledge": "true"}
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data,
                           "binaryData": binary or {}})  # fmt: skip


def rejections(kubectl, namespace: str) -> dict[str, str]:
    return {
        e["message"].split("'")[1]: e["message"]
        for e in kubectl.events(namespace, "runbooks")
        if e["reason"] == "DocumentRejected" and e["type"] == "Warning"
    }


def test_a_labelled_configmap_is_indexed_refusals_are_events_and_edits_follow(dsn, operator_env, kubectl, namespace):
    operator = operator_env({"AIOPS_POSTGRES_DSN": dsn})
    wait_for(lambda: "history is on" in operator.log(since_start=True), 30, "the operator to say history is on")
    prefix = f"configmap/{namespace}/runbooks/"
    data = {"payments.md": GOOD, "broken.md": BROKEN, "huge.txt": "a" * 1_000_001, "app.yaml": "replicas: 2"}
    binary = {"diagram.md": base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()}
    # create, not apply: apply's last-applied annotation would not hold the megabyte.
    kubectl("create", "-f", "-", input=configmap(namespace, data, binary))
    wait_for(lambda: list(doc_keys(dsn, prefix)) == [prefix + "payments.md"], 90, "payments.md in the index")
    refused = wait_for(lambda: (r := rejections(kubectl, namespace)) and len(r) == 3 and r, 30, "three Warnings")
    assert "code fence opened at line 3 is never closed" in refused["broken.md"]
    assert "1,000,001 characters, more than the 1,000,000" in refused["huge.txt"]
    assert "binaryData key 'diagram.md': binary content is not indexed" in refused["diagram.md"]
    lines = search(dsn, prefix, "card", "payments", "failing", "what", "to", "do")
    assert lines and lines[0].split()[2] == prefix + "payments.md" and "Payments provider outage" in lines[1], lines

    # An edit re-indexes; a key that leaves the ConfigMap leaves the index.
    before = doc_keys(dsn, prefix)[prefix + "payments.md"]
    edited = {"payments.md": GOOD + "\nEscalate to the payments on-call after 15 minutes.\n", "dns.txt": "CoreDNS"}
    kubectl("replace", "-f", "-", input=configmap(namespace, edited))
    wait_for(lambda: (k := doc_keys(dsn, prefix)).keys() == {prefix + "payments.md", prefix + "dns.txt"}
             and k[prefix + "payments.md"] != before, 60, "the edit in the index")  # fmt: skip

    # The label taken off: the watch (selected by the label) says DELETED, and the documents go.
    kubectl("replace", "-f", "-", input=configmap(namespace, edited, labelled=False))
    wait_for(lambda: not doc_keys(dsn, prefix), 60, "the unlabelled ConfigMap's documents to leave the index")


def sh(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_a_git_path_is_polled_into_the_index(dsn, operator_env, tmp_path):
    bare = tmp_path / "docs.git"
    url = bare.as_uri()
    git_env = {
        "AIOPS_KNOWLEDGE_GIT_URL": url,
        "AIOPS_KNOWLEDGE_GIT_PATH": "runbooks",
        "AIOPS_KNOWLEDGE_GIT_INTERVAL_S": "2",
    }
    operator = operator_env({"AIOPS_POSTGRES_DSN": dsn, **git_env})
    # Not there yet: the failure is logged with the next try, and tried again.
    wait_for(lambda: f"Git documents from {url} not indexed: GitError" in operator.log(), 30, "the failure logged")
    assert "next try in 5s at " in operator.log()

    sh("git", "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    work = tmp_path / "work"
    sh("git", "clone", "--quiet", url, str(work))
    for key, value in (("user.name", "Dev"), ("user.email", "dev@example.com")):
        sh("git", "config", key, value, cwd=work)
    (work / "runbooks").mkdir()
    (work / "runbooks" / "payments.md").write_text(GOOD)
    (work / "runbooks" / "broken.md").write_text(BROKEN)
    (work / "runbooks" / "old.txt").write_text("to be removed")
    (work / "README.md").write_text("# Not under the path\n")
    sh("git", "add", ".", cwd=work)
    sh("git", "commit", "--quiet", "-m", "runbooks", cwd=work)
    sh("git", "push", "--quiet", "origin", "HEAD:main", cwd=work)

    prefix = f"git/{url}/runbooks/"
    wait_for(lambda: doc_keys(dsn, f"git/{url}/").keys() == {prefix + "payments.md", prefix + "old.txt"}, 90,
             "the repository's documents in the index")  # fmt: skip
    wait_for(lambda: f"{prefix}broken.md not indexed for search" in operator.log(), 10, "the broken file logged")
    assert "code fence opened at line 3 is never closed" in operator.log()
    lines = search(dsn, prefix, "card", "payments", "failing", "what", "to", "do")
    assert lines and lines[0].split()[2] == prefix + "payments.md", lines

    before = doc_keys(dsn, prefix)[prefix + "payments.md"]
    (work / "runbooks" / "payments.md").write_text(GOOD + "\nEscalate after 15 minutes.\n")
    sh("git", "rm", "--quiet", "runbooks/old.txt", cwd=work)
    sh("git", "commit", "--quiet", "-am", "edit", cwd=work)
    sh("git", "push", "--quiet", "origin", "HEAD:main", cwd=work)
    wait_for(lambda: (k := doc_keys(dsn, prefix)).keys() == {prefix + "payments.md"}
             and k[prefix + "payments.md"] != before, 60, "the edit and the removal in the index")  # fmt: skip


def test_postgresql_down_is_an_event_and_a_retry_with_backoff(dsn, postgres, operator_env, kubectl, namespace):
    operator = operator_env({"AIOPS_POSTGRES_DSN": dsn})
    wait_for(lambda: "history is on" in operator.log(since_start=True), 30, "the operator to say history is on")
    prefix = f"configmap/{namespace}/runbooks/"
    migrated = "SELECT to_regclass('knowledge_documents') IS NOT NULL AS ok"
    wait_for(lambda: query(dsn, migrated)[0]["ok"], 30, "the history's migrations")  # PostgreSQL goes away later
    postgres.stop()
    try:
        kubectl.apply(configmap(namespace, {"payments.md": GOOD}))
        failed = wait_for(lambda: [e for e in kubectl.events(namespace, "runbooks") if e["reason"] == "IndexFailed"],
                          90, "an IndexFailed Event")  # fmt: skip
        assert failed[0]["type"] == "Warning" and "documents not indexed: " in failed[0]["message"]
        assert "; next try in 5s" in failed[0]["message"]
        assert f"ConfigMap {namespace}/runbooks: documents not indexed" in operator.log()
    finally:
        postgres.start()
    wait_for(lambda: list(doc_keys(dsn, prefix)) == [prefix + "payments.md"], 120, "the retry to index it")
