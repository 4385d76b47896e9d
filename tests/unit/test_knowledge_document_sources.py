"""Which ConfigMap keys and which files of a Git checkout become knowledge documents, and what is refused before
it is read (aiops.knowledge.documents); the settings that name the Git source; the retry backoff."""

import os

import pytest

from aiops.controllers.knowledge import backoff
from aiops.knowledge.documents import MAX_DOCUMENT_BYTES, from_configmap, from_tree
from aiops.settings import from_env


def configmap(data=None, binary=None) -> dict:
    return {"metadata": {"namespace": "ops", "name": "runbooks"}, "data": data, "binaryData": binary}


def test_configmap_data_keys_ending_md_or_txt_are_documents():
    docs, refused = from_configmap(
        configmap(
            {"payments.md": "# Payments down\n\nCheck the PSP.", "dns.TXT": "resolv.conf", "app.yaml": "a: 1"},
            {"diagram.md": "iVBORw0KGgo=", "logo.png": "iVBORw0KGgo="},
        )
    )
    assert [(d.kind, d.key, d.title) for d in docs] == [
        ("doc", "configmap/ops/runbooks/dns.TXT", "dns.TXT"),  # a .txt has no heading to take the title from
        ("doc", "configmap/ops/runbooks/payments.md", "Payments down"),
    ]
    assert docs[1].text == "# Payments down\n\nCheck the PSP."
    assert docs[1].meta == {"source": "configmap", "configmap": "ops/runbooks", "file": "payments.md"}
    assert [r.key for r in refused] == ["configmap/ops/runbooks/diagram.md"]  # logo.png is not a document at all
    assert "binaryData key 'diagram.md'" in refused[0].message and "put the text under data" in refused[0].message
    assert from_configmap(configmap()) == ([], [])


def git(tmp_path, files: dict[str, bytes]):
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    return tmp_path


def test_files_under_the_path_are_documents_keyed_by_url_and_path(tmp_path):
    checkout = git(tmp_path, {
        "runbooks/db/failover.md": b"Intro\n\n# Database failover\n\nPromote the replica.",
        "runbooks/readme.txt": "caf\u00e9 notes".encode(),
        "runbooks/values.yaml": b"a: 1",
        "other/ignored.md": b"# Elsewhere",
        ".git/description.md": b"git's own",
    })  # fmt: skip
    docs, refused = from_tree(checkout, "https://git.example/ops/docs.git", "runbooks/")
    assert refused == []
    assert [(d.key, d.title) for d in docs] == [
        ("git/https://git.example/ops/docs.git/runbooks/db/failover.md", "Database failover"),
        ("git/https://git.example/ops/docs.git/runbooks/readme.txt", "readme.txt"),
    ]
    assert docs[1].text == "caf\u00e9 notes"
    assert docs[0].meta == {
        "source": "git",
        "url": "https://git.example/ops/docs.git",
        "file": "runbooks/db/failover.md",
    }
    everything, _ = from_tree(checkout, "u", "")
    assert {d.meta["file"] for d in everything} == {
        "runbooks/db/failover.md",
        "runbooks/readme.txt",
        "other/ignored.md",
    }


def test_huge_binary_and_linked_files_are_refused_with_the_reason(tmp_path):
    checkout = git(tmp_path, {"docs/good.md": b"# Good\n\nfine", "docs/blob.md": b"\x89PNG\r\n\x1a\n\xff\xfe"})
    with open(checkout / "docs/huge.md", "wb") as f:  # 50 MB, sparse: refused by its size, never read
        f.truncate(50 * 1024 * 1024)
    os.symlink("/etc/passwd", checkout / "docs/passwd.md")
    docs, refused = from_tree(checkout, "file:///srv/docs.git", "docs")
    assert [d.key for d in docs] == ["git/file:///srv/docs.git/docs/good.md"]
    reasons = {r.key.rsplit("/", 1)[1]: r.message for r in refused}
    assert reasons["huge.md"].startswith("docs/huge.md: 52,428,800 bytes, more than a document may have")
    assert "split it into several documents" in reasons["huge.md"] and 50 * 1024 * 1024 > MAX_DOCUMENT_BYTES
    assert reasons["blob.md"] == "docs/blob.md: binary content (not UTF-8): index text documents only"
    assert reasons["passwd.md"] == "docs/passwd.md is a symbolic link: commit the document itself"
    _, missing = from_tree(checkout, "file:///srv/docs.git", "nowhere")
    assert "'nowhere' is not a folder of file:///srv/docs.git" in missing[0].message


def test_knowledge_settings():
    default = from_env({}).knowledge
    assert default.configmaps and not default.git_url and default.git_interval_s == 300
    assert default.git_token_secret == "aiops-gitops"
    env = {
        "AIOPS_KNOWLEDGE_GIT_URL": "https://git.example/ops/docs.git",
        "AIOPS_KNOWLEDGE_GIT_PATH": "/rb/",
        "AIOPS_KNOWLEDGE_GIT_REF": "main",
        "AIOPS_KNOWLEDGE_GIT_INTERVAL_S": "60",
        "AIOPS_GITOPS_TOKEN_SECRET": "forge-tokens",
        "AIOPS_KNOWLEDGE_CONFIGMAPS": "false",
    }
    cfg = from_env(env).knowledge
    assert (cfg.git_url, cfg.git_ref, cfg.git_path, cfg.git_interval_s) == (
        env["AIOPS_KNOWLEDGE_GIT_URL"],
        "main",
        "rb",
        60,
    )
    assert cfg.git_token_secret == "forge-tokens" and not cfg.configmaps
    with pytest.raises(SystemExit, match="AIOPS_KNOWLEDGE_GIT_URL='/srv/docs'"):
        from_env({"AIOPS_KNOWLEDGE_GIT_URL": "/srv/docs"})
    with pytest.raises(SystemExit, match="AIOPS_KNOWLEDGE_GIT_INTERVAL_S"):
        from_env({"AIOPS_KNOWLEDGE_GIT_INTERVAL_S": "0"})


def test_retries_back_off_exponentially_up_to_the_cap():
    assert [backoff(n) for n in (1, 2, 3, 7, 8, 20)] == [5, 10, 20, 300, 300, 300]
    assert backoff(9, cap=600) == 600
