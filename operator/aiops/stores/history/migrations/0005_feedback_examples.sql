-- Feedback with a corrected root cause is a labelled example (aiops.stores.history.examples): the model is shown
-- it on similar incidents, and `aiops export feedback` writes it out for fine-tuning.

ALTER TABLE feedback ADD COLUMN root_cause text;
ALTER TABLE feedback ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('english', coalesce(root_cause, '') || ' ' || coalesce(comment, ''))
) STORED;
CREATE INDEX feedback_search ON feedback USING gin (search);
