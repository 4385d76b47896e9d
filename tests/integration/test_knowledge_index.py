"""The knowledge index in a real PostgreSQL (Debian's postgresql-15, which has no pgvector: these tests run the
real[] path with exact top-k in numpy, and check that they do)."""

import asyncio

import asyncpg
import pytest

from aiops.core.events import Event, EventType
from aiops.knowledge import incidents
from aiops.knowledge.embed import LocalEmbedder
from aiops.knowledge.index import Document, DocumentError, delete, search, upsert
from aiops.stores.history import migrate, store


@pytest.fixture(scope="module")
def embedder():
    return LocalEmbedder()


def run(dsn, fn):
    async def main():
        conn = await asyncpg.connect(dsn)
        try:
            await migrate.migrate(conn)
            return await fn(conn)
        finally:
            await conn.close()

    return asyncio.run(main())


DOCS = [
    Document("sop-step", "ops/oom#1", "Pod killed for memory", "Check the container's last state: OOMKilled, exit "
             "code 137. Raise the memory limit or find the leak.", {"sop": "ops/oom"}),
    Document("sop-step", "ops/cert#1", "Certificate expiry", "Read the ingress TLS secret's notAfter; renew the "
             "certificate with cert-manager.", {"sop": "ops/cert"}),
    Document("doc", "ops/dns", "DNS troubleshooting", "When name resolution fails, check CoreDNS pods and the "
             "kube-dns service endpoints.", {}),
]  # fmt: skip


def test_upsert_is_idempotent_and_replaces_on_change(dsn, embedder):
    async def go(conn):
        assert [await upsert(conn, d, embedder) for d in DOCS] == [True, True, True]
        before = await conn.fetch("SELECT kind, key, xmin::text AS x FROM knowledge_documents ORDER BY key")
        assert [await upsert(conn, d, embedder) for d in DOCS] == [False, False, False]  # same hash: no write
        after = await conn.fetch("SELECT kind, key, xmin::text AS x FROM knowledge_documents ORDER BY key")
        assert before == after
        changed = Document(DOCS[2].kind, DOCS[2].key, DOCS[2].title, DOCS[2].text + " Also check NodeLocal DNS.")
        assert await upsert(conn, changed, embedder) is True
        texts = await conn.fetch("SELECT text FROM knowledge_chunks WHERE key = 'ops/dns'")
        assert [r["text"] for r in texts] == [changed.text]
        await delete(conn, "doc", "ops/dns")
        assert await conn.fetchval("SELECT count(*) FROM knowledge_chunks WHERE key = 'ops/dns'") == 0
        # The float-array path: no pgvector column on this server.
        assert not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'knowledge_chunks' "
            "AND column_name = 'vec')"
        )

    run(dsn, go)


def test_hybrid_search_fuses_both_rankings(dsn, embedder):
    async def go(conn):
        for d in DOCS:
            await upsert(conn, d, embedder)
        # No shared word with the OOM step ("memory" is stemmed differently from nothing here): vector finds it.
        hits = await search(conn, "container ran out of RAM and was terminated", k=3, embedder=embedder)
        assert hits[0].key == "ops/oom#1" and hits[0].vector_rank == 1
        assert hits[0].meta == {"sop": "ops/oom"} and "OOMKilled" in hits[0].excerpt
        fulltext = await search(conn, "renew certificate", k=3, embedder=embedder, mode="fulltext")
        assert [h.key for h in fulltext] == ["ops/cert#1"] and fulltext[0].vector_rank is None
        both = await search(conn, "renew the expired TLS certificate", k=3, embedder=embedder)
        assert both[0].key == "ops/cert#1" and both[0].fulltext_rank == 1 and both[0].vector_rank == 1
        assert both[0].score == pytest.approx(2 / 61, abs=1e-6)  # RRF, k = 60, first in both lists
        only_docs = await search(conn, "certificate", kinds={"doc"}, k=3, embedder=embedder)
        assert {h.kind for h in only_docs} == {"doc"}
        assert await search(conn, "   ", k=3, embedder=embedder) == []

    run(dsn, go)


class FailingEmbedder:
    name = "all-MiniLM-L6-v2"

    def embed(self, texts):
        raise RuntimeError("embedding failed half-way")


def test_a_document_is_written_whole_or_not_at_all(dsn, embedder):
    async def go(conn):
        await upsert(conn, DOCS[0], embedder)
        long = Document("doc", "big", "Big", "\n\n".join(f"## Part {i}\n" + "words " * 150 for i in range(20)))
        with pytest.raises(RuntimeError):
            await upsert(conn, long, FailingEmbedder())
        # A chunk the database refuses (a duplicate ordinal forced by a trigger) rolls back the document row.
        await conn.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.ordinal = 3 THEN RAISE EXCEPTION 'refused chunk'; END IF; RETURN NEW; END $$;"
            "CREATE TRIGGER refuse BEFORE INSERT ON knowledge_chunks FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
        with pytest.raises(asyncpg.RaiseError, match="refused chunk"):
            await upsert(conn, long, embedder)
        assert await conn.fetchval("SELECT count(*) FROM knowledge_documents WHERE key = 'big'") == 0
        assert await conn.fetchval("SELECT count(*) FROM knowledge_chunks WHERE key = 'big'") == 0
        # The same failure on a re-index keeps the old version whole.
        v2 = Document(DOCS[0].kind, DOCS[0].key, DOCS[0].title, long.text)
        with pytest.raises(asyncpg.RaiseError):
            await upsert(conn, v2, embedder)
        rows = await conn.fetch("SELECT text FROM knowledge_chunks WHERE key = $1", DOCS[0].key)
        assert [r["text"] for r in rows] == [DOCS[0].text]
        for bad in ("x" * 1_000_001, "\x00\x01binary", "```\nunclosed"):
            with pytest.raises(DocumentError):
                await upsert(conn, Document("doc", "bad", "Bad", bad), embedder)
        assert await conn.fetchval("SELECT count(*) FROM knowledge_documents WHERE key = 'bad'") == 0

    run(dsn, go)


def test_past_incidents_are_indexed_on_read_and_follow_changes(dsn, embedder):
    def ev(type_, uid, **data):
        return Event(type=type_, key=f"shop/{uid}", uid=uid, generation=1, data=data)

    async def go(conn):
        await store.write(conn, ev(EventType.INCIDENT_CREATED, "a", title="checkout pods restarting",
                                   description="containers exit 137 under load"))  # fmt: skip
        await store.write(conn, ev(EventType.INCIDENT_CREATED, "b", title="ingress returns 503",
                                   description="TLS handshake errors at the edge"))  # fmt: skip
        await store.write(conn, ev(EventType.DIAGNOSED, "a", diagnosis={"rootCause": "memory limit too low",
                                                                        "confidence": 80}))  # fmt: skip
        found = await incidents.similar(conn, "pods killed, out of memory", 2, None, embedder)
        assert found[0].uid == "a" and found[0].root_cause == "memory limit too low" and found[0].rank > 0
        assert await incidents.catch_up(conn, embedder) == 0  # nothing changed since
        await store.write(conn, ev(EventType.FEEDBACK, "a", correct=False, comment="it was a leak in v2.3"))
        assert await incidents.catch_up(conn, embedder) == 1
        found = await incidents.similar(conn, "pods killed, out of memory", 2, "a", embedder)
        assert [p.uid for p in found] == ["b"]  # the incident at hand is left out
        hits = await search(conn, "leak in v2.3", kinds={"incident"}, k=1, embedder=embedder)
        assert hits[0].key == "a" and "INCORRECT" in hits[0].excerpt

    run(dsn, go)
