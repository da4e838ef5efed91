-- Webhooks: which events a session subscribes to, and the durable outbox. Every event
-- is written here before its first delivery attempt, so a runner killed at any moment
-- loses none; rows stay (delivered for a while, dead until replayed) for operators.
ALTER TABLE whatsapp_sessions ADD COLUMN webhook_events TEXT
    CHECK (webhook_events IS NULL OR json_valid(webhook_events));

CREATE TABLE webhook_outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id         TEXT NOT NULL UNIQUE,
    session_name     TEXT NOT NULL
                     REFERENCES whatsapp_sessions (session_name) ON DELETE CASCADE,
    event            TEXT NOT NULL,
    payload          TEXT NOT NULL CHECK (json_valid(payload)),
    created_at       TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_attempt_at  TEXT,
    last_status      INTEGER,
    last_error       TEXT,
    delivered_at     TEXT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (session_name, state, next_attempt_at);
