-- Failover's pieces that make sense on one host (mirrors postgres/0009_failover.sql):
-- each session's auth kind and failover switch, the local lease a runner takes (so the
-- same runner code runs on every store, and a stray runner's writes are fenced by its
-- epoch), the sim connector's auth and its simulated WhatsApp server. No heartbeats and
-- no claims: SQLite is one host, failover needs PostgreSQL or Supabase.
-- Times are this host's clock (there is only one host).
ALTER TABLE whatsapp_sessions ADD COLUMN auth TEXT NOT NULL DEFAULT 'local'
    CHECK (auth IN ('local', 'store'));
ALTER TABLE whatsapp_sessions ADD COLUMN failover INTEGER NOT NULL DEFAULT 1
    CHECK (failover IN (0, 1));

CREATE TABLE session_leases (
    session_name       TEXT PRIMARY KEY
                       REFERENCES whatsapp_sessions (session_name) ON DELETE CASCADE,
    holder             TEXT,
    epoch              INTEGER NOT NULL DEFAULT 0,
    expires_at         TEXT NOT NULL,
    acquired_at        TEXT,
    renewed_at         TEXT,
    move_to            TEXT,
    move_requested_at  TEXT,
    move_requested_by  TEXT,
    offered_to         TEXT
);

CREATE TABLE sim_devices (
    session_name  TEXT PRIMARY KEY
                  REFERENCES whatsapp_sessions (session_name) ON DELETE CASCADE,
    device        TEXT NOT NULL,
    phone         TEXT NOT NULL,
    paired_at     TEXT NOT NULL
);

CREATE TABLE session_secrets (
    session_name    TEXT PRIMARY KEY
                    REFERENCES whatsapp_sessions (session_name) ON DELETE CASCADE,
    webhook_secret  TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

CREATE TABLE sim_links (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    device        TEXT NOT NULL,
    session_name  TEXT NOT NULL,
    host          TEXT NOT NULL,
    pid           INTEGER,
    epoch         INTEGER,
    opened_at     TEXT NOT NULL,
    seen_at       TEXT NOT NULL,
    closed_at     TEXT,
    close_reason  TEXT,
    replaced_by   INTEGER,
    overlap       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sim_links_open ON sim_links (device) WHERE closed_at IS NULL;
CREATE INDEX sim_links_by_session ON sim_links (session_name, id);
