-- History of incidents, their diagnoses, SOP actions and feedback, and an append-only audit log.
-- Writes are idempotent: an incident is keyed by its uid, an analysis and a feedback by (uid, generation),
-- an SOP action by (uid, step, action, at), an audit entry by the event's fingerprint.

CREATE TABLE incidents (
    uid          text PRIMARY KEY,
    key          text NOT NULL,                -- namespace/name
    generation   bigint,
    title        text NOT NULL DEFAULT '',
    description  text NOT NULL DEFAULT '',
    severity     text,
    source       text,
    cluster      text,
    target       jsonb,
    alert        jsonb,
    stub         boolean NOT NULL DEFAULT false,  -- known only from a later event (history was off at creation)
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,  -- the latest event about it; retention goes by this
    search       tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(title, '')), 'A')
        || setweight(to_tsvector('english', coalesce(description, '')), 'D')
    ) STORED
);
CREATE INDEX incidents_updated_at ON incidents (updated_at);
CREATE INDEX incidents_key ON incidents (key);
CREATE INDEX incidents_search ON incidents USING gin (search);

CREATE TABLE analyses (
    incident_uid     text NOT NULL REFERENCES incidents (uid) ON DELETE CASCADE,
    generation       bigint NOT NULL,
    event_id         text NOT NULL,
    at               timestamptz NOT NULL,
    root_cause       text NOT NULL DEFAULT '',
    confidence       integer,
    execution_status text,
    model            text,
    prompt_version   text,
    suspects         jsonb NOT NULL DEFAULT '[]',
    suspects_text    text NOT NULL DEFAULT '',
    diagnosis        jsonb NOT NULL,
    search           tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(root_cause, '')), 'B')
        || setweight(to_tsvector('english', coalesce(suspects_text, '')), 'C')
    ) STORED,
    PRIMARY KEY (incident_uid, generation)
);
CREATE INDEX analyses_at ON analyses (at);
CREATE INDEX analyses_search ON analyses USING gin (search);

CREATE TABLE sop_actions (
    incident_uid text NOT NULL REFERENCES incidents (uid) ON DELETE CASCADE,
    sop          text,
    step         text NOT NULL,
    action       text NOT NULL,
    at           timestamptz NOT NULL,
    target       text,
    approved_by  text,
    dry_run      text,
    before       text,
    after        text,
    outcome      text,
    event_id     text NOT NULL,
    PRIMARY KEY (incident_uid, step, action, at)
);

CREATE TABLE feedback (
    incident_uid text NOT NULL REFERENCES incidents (uid) ON DELETE CASCADE,
    generation   bigint NOT NULL,
    at           timestamptz NOT NULL,
    correct      boolean NOT NULL,
    by_whom      text,
    comment      text,
    model        text,
    sop          text,
    event_id     text NOT NULL,
    PRIMARY KEY (incident_uid, generation)
);

-- Every event the operator published, once. Rows are never changed; only the retention job deletes,
-- inside a transaction that sets aiops.retention = 'on'.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    fingerprint text NOT NULL UNIQUE,
    event_id    text NOT NULL,
    type        text NOT NULL,
    key         text NOT NULL,
    uid         text,
    generation  bigint,
    at          timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    data        jsonb NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_key ON audit_log (key, at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('aiops.retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
