-- The health monitor's memory per session, and the alerts it raises.
-- Depends only on 0001 (whatsapp_sessions); names match the PostgreSQL schema.
CREATE TABLE session_health (
    session_name         TEXT PRIMARY KEY
                         REFERENCES whatsapp_sessions (session_name) ON DELETE CASCADE,
    restarts             INTEGER NOT NULL DEFAULT 0,
    exits                INTEGER NOT NULL DEFAULT 0,
    recent_exits         TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(recent_exits)),
    last_exit_status     INTEGER,
    last_exit_at         TEXT,
    last_restart_at      TEXT,
    last_restart_reason  TEXT,
    next_restart_at      TEXT,
    parked_at            TEXT,
    why_down             TEXT,
    stderr_tail          TEXT,
    updated_at           TEXT NOT NULL
);

CREATE TABLE alerts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    host           TEXT NOT NULL,
    key            TEXT NOT NULL,
    kind           TEXT NOT NULL,
    severity       TEXT NOT NULL CHECK (severity IN ('warning', 'critical')),
    message        TEXT NOT NULL,
    session_name   TEXT,
    value          REAL,
    raised_at      TEXT NOT NULL,
    cleared_at     TEXT,
    raise_sent_at  TEXT,
    clear_sent_at  TEXT
);
-- At most one active alert per host and key: raising it again is a no-op.
CREATE UNIQUE INDEX alerts_one_active ON alerts (host, key) WHERE cleared_at IS NULL;
CREATE INDEX alerts_by_host ON alerts (host, id);
