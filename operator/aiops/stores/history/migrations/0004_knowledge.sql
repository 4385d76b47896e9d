-- The knowledge index (aiops.knowledge.index): documents (an SOP step, a past incident, a postmortem, a document,
-- a feedback) cut into chunks, each with its full-text vector and its embedding. A document is replaced whole in
-- one transaction when its content hash changes; chunks go with their document.
-- Embeddings are real[] (exact top-k in the operator); where the server has pgvector, knowledge_chunks gets a
-- `vec vector` column too and the top-k runs in SQL.

CREATE TABLE knowledge_documents (
    kind         text NOT NULL,
    key          text NOT NULL,
    title        text NOT NULL,
    meta         jsonb NOT NULL DEFAULT '{}',
    content_hash text NOT NULL,   -- of kind, key, title, text, meta and the embedding model
    model        text NOT NULL,   -- the embedder's name: vectors of other models are not compared
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, key)
);

CREATE TABLE knowledge_chunks (
    kind      text NOT NULL,
    key       text NOT NULL,
    ordinal   integer NOT NULL,
    text      text NOT NULL,
    embedding real[] NOT NULL,
    search    tsvector NOT NULL,  -- title (weight A) and the chunk's text (B), written with the row
    PRIMARY KEY (kind, key, ordinal),
    FOREIGN KEY (kind, key) REFERENCES knowledge_documents (kind, key) ON DELETE CASCADE
);
CREATE INDEX knowledge_chunks_search ON knowledge_chunks USING gin (search);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
        CREATE EXTENSION IF NOT EXISTS vector;
        ALTER TABLE knowledge_chunks ADD COLUMN vec vector;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'pgvector is available but this role cannot create the extension: exact top-k in the operator';
END $$;
