"""The knowledge index in PostgreSQL (the history database, migration 0004): upsert, delete, hybrid search.

A Document is one unit of knowledge: an SOP step, a past incident, a postmortem, a document of a ConfigMap,
a feedback. `upsert` cuts it into chunks, embeds them and replaces the document's rows in one transaction,
unless its content hash (text, title, meta and the embedding model) is unchanged: then nothing is written.

`search` ranks chunks twice, by full-text (ts_rank_cd over the OR of the query's lexemes: an incident
description is a paragraph, and requiring all its words would match nothing) and by cosine similarity of
the embeddings (exact: pgvector's `<=>` where the server has it, else numpy over the real[] column), keeps
each document's best chunk in each list and fuses the two lists by reciprocal rank (k = 60).

`db` is an asyncpg Pool or Connection on a database migrated by aiops.stores.history.migrate.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg
import numpy as np

from aiops.knowledge.chunking import DocumentError, check, chunks
from aiops.knowledge.embed import Embedder
from aiops.stores.history.store import ANY_WORD_CTE, MAX_QUERY_CHARS, clean

KINDS = frozenset({"sop-step", "incident", "postmortem", "doc", "feedback"})
MODES = ("hybrid", "fulltext", "vector")
RRF_K = 60
CANDIDATES = 50  # chunks each ranking contributes to the fusion, at least
EXCERPT_CHARS = 300


@dataclass(frozen=True)
class Document:
    kind: str  # one of KINDS
    key: str  # unique within the kind, e.g. "namespace/sop-name#step-id" or an Incident's namespace/name
    title: str
    text: str
    meta: dict = field(default_factory=dict)  # JSON: links, labels, what a caller wants back in a Hit


@dataclass(frozen=True)
class Hit:
    kind: str
    key: str
    title: str
    excerpt: str  # the best-matching chunk, shortened
    score: float  # the fused score (RRF); higher is closer
    fulltext_rank: int | None  # 1-based place in the full-text ranking, None when not in it
    vector_rank: int | None  # 1-based place in the vector ranking
    meta: dict


@asynccontextmanager
async def _connection(db: asyncpg.Pool | asyncpg.Connection):
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            yield conn
    else:
        yield db


def content_hash(doc: Document, model: str) -> str:
    payload = json.dumps([doc.kind, doc.key, doc.title, doc.text, doc.meta, model], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


def _validate(doc: Document) -> tuple[list[str], dict]:
    where = f"{doc.kind} {doc.key!r}"
    if doc.kind not in KINDS:
        raise DocumentError(f"{where}: kind must be one of {', '.join(sorted(KINDS))}")
    if not doc.key or len(doc.key) > 512:
        raise DocumentError(f"{where}: key must have 1 to 512 characters")
    if len(doc.title) > 1024:
        raise DocumentError(f"{where}: title longer than 1024 characters")
    check(doc.text, where)
    try:
        meta = json.loads(json.dumps(clean(doc.meta)))
    except (TypeError, ValueError) as exc:
        raise DocumentError(f"{where}: meta is not JSON: {exc}") from None
    pieces = chunks(doc.text)
    if not pieces:
        raise DocumentError(f"{where}: no text to index")
    return pieces, meta


async def _has_pgvector(conn: asyncpg.Connection) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns "
            "WHERE table_name = 'knowledge_chunks' AND column_name = 'vec')"
        )
    )


def _vector_literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"


async def upsert(db: asyncpg.Pool | asyncpg.Connection, doc: Document, embedder: Embedder) -> bool:
    """Indexes `doc`; True when it was written, False when the same content was indexed already.

    Raises DocumentError (a ValueError) for a document that cannot be indexed: nothing is written then.
    """
    return (await upsert_many(db, [doc], embedder))[0]


async def upsert_many(db: asyncpg.Pool | asyncpg.Connection, docs: list[Document], embedder: Embedder) -> list[bool]:
    """Indexes `docs`, each in its own transaction; per document, whether it was written (False: unchanged).

    The changed documents' chunks are embedded in one call, so the embedder can spread them over every core.
    Raises DocumentError for the first document that cannot be indexed, before anything is written.
    """
    checked = [(doc, *_validate(doc), content_hash(doc, embedder.name)) for doc in docs]
    async with _connection(db) as conn:
        stored = {
            (r["kind"], r["key"]): r["content_hash"]
            for r in await conn.fetch(
                "SELECT kind, key, content_hash FROM knowledge_documents WHERE (kind, key) IN"
                " (SELECT * FROM unnest($1::text[], $2::text[]))",
                [d.kind for d in docs], [d.key for d in docs],
            )
        }  # fmt: skip
        changed = [c for c in checked if stored.get((c[0].kind, c[0].key)) != c[3]]
        # The title rides along in each chunk's vector: a step's text alone often lacks the runbook's subject.
        texts = [f"{doc.title}\n{p}" for doc, pieces, _, _ in changed for p in pieces]
        vectors = iter(await asyncio.to_thread(embedder.embed, texts) if texts else [])
        pgvector = await _has_pgvector(conn) if changed else False
        for doc, pieces, meta, digest in changed:
            rows = [
                (doc.kind, doc.key, i, clean(p), (v := next(vectors)).tolist(), clean(doc.title))
                + ((_vector_literal(v),) if pgvector else ())
                for i, p in enumerate(pieces)
            ]
            async with conn.transaction():
                await conn.execute("DELETE FROM knowledge_documents WHERE kind = $1 AND key = $2", doc.kind, doc.key)
                await conn.execute(
                    """INSERT INTO knowledge_documents (kind, key, title, meta, content_hash, model)
                       VALUES ($1, $2, $3, $4::jsonb, $5, $6)""",
                    doc.kind, doc.key, clean(doc.title), json.dumps(meta), digest, embedder.name,
                )  # fmt: skip
                await conn.executemany(
                    """INSERT INTO knowledge_chunks (kind, key, ordinal, text, embedding, search{vec})
                       VALUES ($1, $2, $3, $4, $5,
                               setweight(to_tsvector('english', $6), 'A') || setweight(to_tsvector('english', $4), 'B')
                               {vec_value})""".format(
                        vec=", vec" if pgvector else "", vec_value=", $7::vector" if pgvector else ""
                    ),
                    rows,
                )
    done = {(c[0].kind, c[0].key) for c in changed}
    return [(d.kind, d.key) in done for d in docs]


async def delete(db: asyncpg.Pool | asyncpg.Connection, kind: str, key: str) -> None:
    """Removes a document and its chunks (nothing when it is not indexed)."""
    async with _connection(db) as conn:
        await conn.execute("DELETE FROM knowledge_documents WHERE kind = $1 AND key = $2", kind, key)


async def keys(db: asyncpg.Pool | asyncpg.Connection, kind: str, prefix: str = "") -> set[str]:
    """The keys of a kind's indexed documents that start with `prefix`: what a re-index may have to delete."""
    async with _connection(db) as conn:
        rows = await conn.fetch(
            "SELECT key FROM knowledge_documents WHERE kind = $1 AND starts_with(key, $2)", kind, prefix
        )
    return {r["key"] for r in rows}


_FULLTEXT_SQL = (
    ANY_WORD_CTE
    + """
SELECT c.kind, c.key, c.ordinal, ts_rank_cd(c.search, q.query) AS rank
FROM knowledge_chunks c CROSS JOIN q
WHERE q.query IS NOT NULL AND c.search @@ q.query AND ($2::text[] IS NULL OR c.kind = ANY($2))
ORDER BY rank DESC, c.kind, c.key, c.ordinal
LIMIT $3
"""
)


async def _fulltext(conn: asyncpg.Connection, text: str, kinds: list[str] | None, limit: int) -> list[tuple]:
    rows = await conn.fetch(_FULLTEXT_SQL, text, kinds, limit)
    return [(r["kind"], r["key"], r["ordinal"]) for r in rows]


async def _vector(
    conn: asyncpg.Connection, query: np.ndarray, model: str, kinds: list[str] | None, limit: int
) -> list[tuple]:
    if await _has_pgvector(conn):
        rows = await conn.fetch(
            """SELECT c.kind, c.key, c.ordinal FROM knowledge_chunks c
               JOIN knowledge_documents d USING (kind, key)
               WHERE d.model = $2 AND ($3::text[] IS NULL OR c.kind = ANY($3))
               ORDER BY c.vec <=> $1::vector, c.kind, c.key, c.ordinal LIMIT $4""",
            _vector_literal(query), model, kinds, limit,
        )  # fmt: skip
        return [(r["kind"], r["key"], r["ordinal"]) for r in rows]
    rows = await conn.fetch(
        """SELECT c.kind, c.key, c.ordinal, c.embedding FROM knowledge_chunks c
           JOIN knowledge_documents d USING (kind, key)
           WHERE d.model = $1 AND ($2::text[] IS NULL OR c.kind = ANY($2))""",
        model, kinds,
    )  # fmt: skip
    if not rows:
        return []
    matrix = np.asarray([r["embedding"] for r in rows], np.float32)
    if matrix.shape[1] != query.shape[0]:
        return []
    scores = matrix @ query
    # Exact top-k; ties broken by the key, so the order does not depend on the rows' physical order.
    order = sorted(range(len(rows)), key=lambda i: (-scores[i], rows[i]["kind"], rows[i]["key"], rows[i]["ordinal"]))
    return [(rows[i]["kind"], rows[i]["key"], rows[i]["ordinal"]) for i in order[:limit]]


def _places(ranked: list[tuple]) -> dict[tuple[str, str], tuple[int, int]]:
    """Each document's best place (1-based, counted over documents) and the chunk that earned it."""
    best: dict[tuple[str, str], tuple[int, int]] = {}
    for kind, key, ordinal in ranked:
        if (kind, key) not in best:
            best[(kind, key)] = (len(best) + 1, ordinal)
    return best


async def search(
    db: asyncpg.Pool | asyncpg.Connection,
    text: str,
    *,
    kinds: set[str] | None = None,
    k: int = 5,
    embedder: Embedder,
    mode: str = "hybrid",
) -> list[Hit]:
    """The `k` documents closest to `text`, best first; `mode` fulltext or vector ranks by one list alone."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    text = clean(text or "")[:MAX_QUERY_CHARS]
    if not text.strip() or k < 1:
        return []
    wanted = sorted(kinds) if kinds else None
    limit = max(CANDIDATES, k * 10)
    async with _connection(db) as conn:
        fulltext = await _fulltext(conn, text, wanted, limit) if mode != "vector" else []
        vector: list[tuple] = []
        if mode != "fulltext":
            query = (await asyncio.to_thread(embedder.embed, [text]))[0]
            vector = await _vector(conn, query, embedder.name, wanted, limit)
        by_text, by_vector = _places(fulltext), _places(vector)
        scored = []
        for doc in by_text.keys() | by_vector.keys():
            t, v = by_text.get(doc), by_vector.get(doc)
            score = sum(1.0 / (RRF_K + place[0]) for place in (t, v) if place)
            scored.append((-score, doc, t, v))
        scored.sort(key=lambda s: (s[0], s[1]))
        top = scored[:k]
        if not top:
            return []
        wanted_chunks = [(d[0], d[1], (t or v)[1]) for _, d, t, v in top]
        rows = await conn.fetch(
            """SELECT d.kind, d.key, d.title, d.meta, c.text FROM knowledge_documents d
               JOIN knowledge_chunks c USING (kind, key)
               JOIN unnest($1::text[], $2::text[], $3::int[]) AS w(kind, key, ordinal)
                 ON w.kind = c.kind AND w.key = c.key AND w.ordinal = c.ordinal""",
            [w[0] for w in wanted_chunks], [w[1] for w in wanted_chunks], [w[2] for w in wanted_chunks],
        )  # fmt: skip
    found = {(r["kind"], r["key"]): r for r in rows}
    hits = []
    for negative, doc, t, v in top:
        row = found.get(doc)
        if row is None:  # deleted between the two queries
            continue
        excerpt = row["text"] if len(row["text"]) <= EXCERPT_CHARS else row["text"][: EXCERPT_CHARS - 1] + "…"
        hits.append(
            Hit(
                kind=doc[0],
                key=doc[1],
                title=row["title"],
                excerpt=excerpt,
                score=round(-negative, 6),
                fulltext_rank=t[0] if t else None,
                vector_rank=v[0] if v else None,
                meta=json.loads(row["meta"]) if isinstance(row["meta"], str) else dict(row["meta"]),
            )
        )
    return hits


__all__ = ["KINDS", "Document", "DocumentError", "Hit", "delete", "keys", "search", "upsert", "upsert_many"]
