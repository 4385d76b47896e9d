-- The notifications outbox (aiops.notify.outbox): one row per notice and channel, delivered at least once.
-- UNIQUE (notice_key, channel) makes enqueueing idempotent. While a row is `sending`, next_attempt_at is the
-- end of the sender's lease: past it (the sender died mid-send) the row is due again.

CREATE TABLE notification_outbox (
    id              bigserial PRIMARY KEY,
    incident        text NOT NULL,         -- namespace/name
    incident_uid    text NOT NULL,
    channel         text NOT NULL,         -- the configured channel's name
    notice_key      text NOT NULL,         -- Notice.key: incident uid, stage, detail
    stage           text NOT NULL,
    payload         jsonb NOT NULL,        -- the Notice, as channels render it
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'sent', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,  -- sends started, counted when a sender claims the row
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    ref             text,                  -- the channel's handle on the sent message (Slack channel and ts)
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    UNIQUE (notice_key, channel)
);
-- What senders claim, per channel, soonest first.
CREATE INDEX notification_outbox_due ON notification_outbox (channel, next_attempt_at)
    WHERE state IN ('pending', 'sending');
-- An incident's notices on one channel go out in order; the latest sent one's ref is handed to the next.
CREATE INDEX notification_outbox_incident ON notification_outbox (incident_uid, channel, id);
CREATE INDEX notification_outbox_dead ON notification_outbox (created_at) WHERE state = 'dead';
