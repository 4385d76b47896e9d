-- Model trials (aiops.stores.history.trials): one row per diagnosis a model version made or was asked to make,
-- keyed by (incident uid, generation, version, role), for `aiops models compare` (docs/model-rollouts.md).
-- A version is <catalogue model>/<served model>@<prompt version> (AIOPS_LLM for the operator-level endpoint).
-- Rows go with their incident (retention), whose row is a stub until history hears of it.

CREATE TABLE model_trials (
    incident_uid      text NOT NULL REFERENCES incidents (uid) ON DELETE CASCADE,
    generation        bigint NOT NULL,
    version           text NOT NULL,
    role              text NOT NULL CHECK (role IN ('primary', 'shadow', 'canary', 'suite')),
    at                timestamptz NOT NULL,
    status            text NOT NULL,  -- the gateway's: completed | invalid | unreachable; error: the trial broke
    latency_s         double precision NOT NULL,
    prompt_tokens     integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0,
    cost              double precision,  -- at the catalogue's prices then; NULL without a price
    top_resource      text,  -- the top suspect (Kind/name) and failure mode of the diagnosis this version made
    top_failure_mode  text,  -- (a primary's: of the diagnosis the Incident showed)
    root_cause        text,
    agrees            boolean,  -- shadow: same top suspect and failure mode as the primary's diagnosis
    correct           boolean,  -- suite: the scenario's known cause ranked first
    error             text,
    PRIMARY KEY (incident_uid, generation, version, role)
);
CREATE INDEX model_trials_at ON model_trials (at);
