"""Documents for the knowledge index from ConfigMaps labelled aiops.dev/knowledge=true and from a Git path.

Every `.md` or `.txt` of a source is one `doc` Document, keyed by where it lives:

    configmap/<namespace>/<name>/<data key>      a data key of a labelled ConfigMap
    git/<repository URL>/<path in the repository> a file under the configured path of the repository

`sync` brings the index in line with one source: each document upserted alone (one transaction each; an unchanged
content hash writes nothing), the source's documents that are gone deleted, and what the index refuses reported
per document while the others go in. A refused document keeps its previous version, if any, in the index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from aiops.knowledge.chunking import MAX_DOCUMENT_CHARS, DocumentError
from aiops.knowledge.embed import Embedder
from aiops.knowledge.index import Document, delete, upsert

LABEL = "aiops.dev/knowledge"
SUFFIXES = (".md", ".txt")
KIND = "doc"
# Checked before a file is read: UTF-8 takes at most 4 bytes a character, so a larger file cannot be a document.
MAX_DOCUMENT_BYTES = 4 * MAX_DOCUMENT_CHARS
_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.M)


@dataclass(frozen=True)
class Refusal:
    key: str  # the document's key, or the source's place for what never became a document
    message: str  # what is wrong and what to do


@dataclass
class SyncResult:
    written: int = 0
    unchanged: int = 0
    deleted: int = 0
    refused: list[Refusal] = field(default_factory=list)


def is_document(name: str) -> bool:
    return name.lower().endswith(SUFFIXES)


def _title(text: str, fallback: str) -> str:
    heading = _HEADING.search(text[:4096]) if fallback.lower().endswith(".md") else None
    return heading.group(1)[:200] if heading else fallback


def configmap_prefix(namespace: str, name: str) -> str:
    return f"configmap/{namespace}/{name}/"


def from_configmap(configmap: dict) -> tuple[list[Document], list[Refusal]]:
    """The documents of a ConfigMap's data keys ending in .md or .txt (other keys are not documents), and a
    refusal for each such key in binaryData: binary content is not knowledge."""
    meta = configmap["metadata"]
    prefix = configmap_prefix(meta["namespace"], meta["name"])
    docs = [
        Document(KIND, prefix + key, _title(text or "", key), text or "",
                 {"source": "configmap", "configmap": f"{meta['namespace']}/{meta['name']}", "file": key})
        for key, text in sorted((configmap.get("data") or {}).items())
        if is_document(key)
    ]  # fmt: skip
    refused = [
        Refusal(prefix + key, f"binaryData key {key!r}: binary content is not indexed; put the text under data")
        for key in sorted(configmap.get("binaryData") or {})
        if is_document(key)
    ]
    return docs, refused


def git_prefix(url: str) -> str:
    return f"git/{url}/"


def from_tree(checkout: Path, url: str, path: str) -> tuple[list[Document], list[Refusal]]:
    """The .md and .txt files under `path` of a checkout of `url`. Refused without being read: a file larger
    than MAX_DOCUMENT_BYTES and a symbolic link (it could point out of the checkout); refused after reading:
    a file that is not UTF-8. The index's own checks (size in characters, binary, Markdown) come in `sync`."""
    root = checkout / path.strip("/") if path.strip("/") else checkout
    prefix = git_prefix(url)
    if not root.is_dir() or root.is_symlink():
        return [], [Refusal(prefix + path, f"path {path!r} is not a folder of {url}: set AIOPS_KNOWLEDGE_GIT_PATH")]
    docs: list[Document] = []
    refused: list[Refusal] = []
    for file in sorted(root.rglob("*")):
        relative = file.relative_to(checkout).as_posix()
        if ".git" in file.relative_to(checkout).parts or not is_document(file.name):
            continue
        key = prefix + relative
        if file.is_symlink():
            refused.append(Refusal(key, f"{relative} is a symbolic link: commit the document itself"))
            continue
        if not file.is_file():
            continue
        size = file.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            message = f"{relative}: {size:,} bytes, more than a document may have ({MAX_DOCUMENT_CHARS:,} characters)"
            refused.append(Refusal(key, message + ": split it into several documents"))
            continue
        try:
            text = file.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            refused.append(Refusal(key, f"{relative}: binary content (not UTF-8): index text documents only"))
            continue
        docs.append(Document(KIND, key, _title(text, file.name), text, {"source": "git", "url": url, "file": relative}))
    return docs, refused


async def stored_keys(db: asyncpg.Pool | asyncpg.Connection, prefix: str) -> set[str]:
    rows = await db.fetch("SELECT key FROM knowledge_documents WHERE kind = $1 AND starts_with(key, $2)", KIND, prefix)
    return {r["key"] for r in rows}


async def sync(
    db: asyncpg.Pool | asyncpg.Connection, prefix: str, docs: list[Document], refused: list[Refusal],
    embedder: Embedder,
) -> SyncResult:  # fmt: skip
    """Makes the index's documents under `prefix` those of `docs`: each upserted in its own transaction, those
    no longer in the source deleted. `refused` (found by the reader) and the documents the index refuses are in
    the result's `refused`. Errors of PostgreSQL or the embedder propagate: the caller retries the whole sync,
    which writes again only what did not go in."""
    result = SyncResult(refused=list(refused))
    for doc in docs:
        try:
            if await upsert(db, doc, embedder):
                result.written += 1
            else:
                result.unchanged += 1
        except DocumentError as exc:
            result.refused.append(Refusal(doc.key, str(exc)))
    keep = {d.key for d in docs} | {r.key for r in result.refused}
    for key in sorted(await stored_keys(db, prefix) - keep):
        await delete(db, KIND, key)
        result.deleted += 1
    return result
