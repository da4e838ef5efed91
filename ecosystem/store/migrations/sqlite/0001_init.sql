-- Sessions, their ports and the audit trail. Names match the PostgreSQL schema.
CREATE TABLE whatsapp_sessions (
    id                 INTEGER PRIMARY KEY,
    session_name       TEXT NOT NULL UNIQUE,
    description        TEXT NOT NULL DEFAULT '',
    host               TEXT NOT NULL,
    port               INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    connector          TEXT NOT NULL,
    desired_state      TEXT NOT NULL DEFAULT 'running'
                       CHECK (desired_state IN ('running', 'stopped')),
    status             TEXT NOT NULL DEFAULT 'initializing'
                       CHECK (status IN ('initializing', 'waiting_scan', 'connected',
                                         'disconnected', 'phone_disconnected', 'error',
                                         'reconnecting')),
    phone              TEXT,
    qr_payload         TEXT,
    qr_expires_at      TEXT,
    webhook_url        TEXT,
    ai_config          TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(ai_config)),
    timing_config      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(timing_config)),
    messages_sent      INTEGER NOT NULL DEFAULT 0,
    messages_received  INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT,
    api_token_hash     TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    connected_at       TEXT,
    last_activity_at   TEXT,
    UNIQUE (host, port)
);

CREATE TABLE session_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    ts            TEXT NOT NULL,
    session_name  TEXT,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    from_status   TEXT,
    to_status     TEXT,
    detail        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(detail))
);
CREATE INDEX session_events_by_session ON session_events (session_name, id);

CREATE TABLE hosts (
    host_id     TEXT PRIMARY KEY,
    address     TEXT,
    created_at  TEXT NOT NULL
);
