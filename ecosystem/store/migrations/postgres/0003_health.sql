-- The health monitor's memory per session, and the alerts it raises (mirrors
-- sqlite/0003_health.sql). Depends only on 0001 (whatsapp_sessions). The monitor is the
-- only writer, through the functions below (the postgres store calls them over psycopg,
-- the supabase store through PostgREST RPC); times come from the caller's clock, as on
-- SQLite, so `pending_alert_notices(since)` compares times of one clock.

CREATE TABLE session_health (
    session_name         text COLLATE "C" PRIMARY KEY
                         REFERENCES whatsapp_sessions (session_name) ON DELETE CASCADE,
    restarts             integer NOT NULL DEFAULT 0,
    exits                integer NOT NULL DEFAULT 0,
    recent_exits         timestamptz[] NOT NULL DEFAULT '{}',
    last_exit_status     integer,
    last_exit_at         timestamptz,
    last_restart_at      timestamptz,
    last_restart_reason  text,
    next_restart_at      timestamptz,
    parked_at            timestamptz,
    why_down             text,
    stderr_tail          text,
    updated_at           timestamptz NOT NULL
);

CREATE TABLE alerts (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host           text NOT NULL,
    key            text NOT NULL,
    kind           text NOT NULL,
    severity       text NOT NULL CHECK (severity IN ('warning', 'critical')),
    message        text NOT NULL,
    session_name   text,
    value          double precision,
    raised_at      timestamptz NOT NULL,
    cleared_at     timestamptz,
    raise_sent_at  timestamptz,
    clear_sent_at  timestamptz
);
-- At most one active alert per host and key: raising it again is a no-op, also when two
-- monitors race (the second insert waits for the first and then does nothing).
CREATE UNIQUE INDEX alerts_one_active ON alerts (host, key) WHERE cleared_at IS NULL;
CREATE INDEX alerts_by_host ON alerts (host, id);

-- A session's record: no row when the monitor saved none. Errors: ZV004 no such session.
CREATE FUNCTION zapvisor_get_health(p_name text) RETURNS SETOF session_health
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM whatsapp_sessions WHERE session_name = p_name) THEN
        RAISE EXCEPTION 'no session named %', p_name USING ERRCODE = 'ZV004';
    END IF;
    RETURN QUERY SELECT * FROM session_health WHERE session_name = p_name;
END $$;

-- Saved records, of one host's sessions when p_host is not NULL.
CREATE FUNCTION zapvisor_list_health(p_host text) RETURNS SETOF session_health
LANGUAGE sql STABLE AS $$
    SELECT h.* FROM session_health h
    JOIN whatsapp_sessions s ON s.session_name = h.session_name
    WHERE p_host IS NULL OR s.host = p_host
$$;

-- Insert or replace a record (a session_health row as JSON). Errors: ZV004 the session
-- is gone.
CREATE FUNCTION zapvisor_save_health(p_health jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO session_health AS t (session_name, restarts, exits, recent_exits,
        last_exit_status, last_exit_at, last_restart_at, last_restart_reason,
        next_restart_at, parked_at, why_down, stderr_tail, updated_at)
    SELECT r.session_name, coalesce(r.restarts, 0), coalesce(r.exits, 0),
        coalesce(r.recent_exits, '{}'), r.last_exit_status, r.last_exit_at,
        r.last_restart_at, r.last_restart_reason, r.next_restart_at, r.parked_at,
        r.why_down, r.stderr_tail, coalesce(r.updated_at, now())
    FROM jsonb_populate_record(NULL::session_health, p_health) AS r
    ON CONFLICT (session_name) DO UPDATE SET
        restarts = excluded.restarts,
        exits = excluded.exits,
        recent_exits = excluded.recent_exits,
        last_exit_status = excluded.last_exit_status,
        last_exit_at = excluded.last_exit_at,
        last_restart_at = excluded.last_restart_at,
        last_restart_reason = excluded.last_restart_reason,
        next_restart_at = excluded.next_restart_at,
        parked_at = excluded.parked_at,
        why_down = excluded.why_down,
        stderr_tail = excluded.stderr_tail,
        updated_at = excluded.updated_at;
EXCEPTION WHEN foreign_key_violation THEN
    RAISE EXCEPTION 'no session named %', p_health ->> 'session_name' USING ERRCODE = 'ZV004';
END $$;

-- Record an alert (an alerts row as JSON) raised at p_at, unless one with its host and
-- key is active: then nothing is returned.
CREATE FUNCTION zapvisor_raise_alert(p_alert jsonb, p_at timestamptz) RETURNS SETOF alerts
LANGUAGE sql AS $$
    INSERT INTO alerts (host, key, kind, severity, message, session_name, value, raised_at)
    SELECT r.host, r.key, r.kind, coalesce(r.severity, 'warning'), r.message,
        r.session_name, r.value, p_at
    FROM jsonb_populate_record(NULL::alerts, p_alert) AS r
    ON CONFLICT (host, key) WHERE cleared_at IS NULL DO NOTHING
    RETURNING *
$$;

-- Clear the active alert with that host and key at p_at; nothing when none is active.
CREATE FUNCTION zapvisor_clear_alert(p_host text, p_key text, p_at timestamptz)
RETURNS SETOF alerts
LANGUAGE sql AS $$
    UPDATE alerts SET cleared_at = p_at
    WHERE host = p_host AND key = p_key AND cleared_at IS NULL
    RETURNING *
$$;

-- Newest first; p_host NULL = every host; p_active NULL = all, true = active only,
-- false = cleared only.
CREATE FUNCTION zapvisor_list_alerts(p_host text, p_active boolean, p_limit integer)
RETURNS SETOF alerts
LANGUAGE sql STABLE AS $$
    SELECT * FROM alerts
    WHERE (p_host IS NULL OR host = p_host)
      AND (p_active IS NULL OR (cleared_at IS NULL) = p_active)
    ORDER BY id DESC
    LIMIT p_limit
$$;

-- Raises (or clears) at or after p_since not delivered to the alert webhook yet, oldest
-- first.
CREATE FUNCTION zapvisor_pending_alert_notices(p_host text, p_since timestamptz)
RETURNS SETOF alerts
LANGUAGE sql STABLE AS $$
    SELECT * FROM alerts
    WHERE host = p_host AND (
        (raise_sent_at IS NULL AND raised_at >= p_since)
        OR (cleared_at IS NOT NULL AND clear_sent_at IS NULL AND cleared_at >= p_since))
    ORDER BY id
$$;

-- The p_phase ('raised' or 'cleared') notice of an alert was delivered at p_at.
CREATE FUNCTION zapvisor_mark_alert_sent(p_id bigint, p_phase text, p_at timestamptz)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_phase = 'raised' THEN
        UPDATE alerts SET raise_sent_at = p_at WHERE id = p_id;
    ELSIF p_phase = 'cleared' THEN
        UPDATE alerts SET clear_sent_at = p_at WHERE id = p_id;
    ELSE
        RAISE EXCEPTION 'phase must be ''raised'' or ''cleared'', got %', p_phase
            USING ERRCODE = '22023';
    END IF;
END $$;

-- `zapvisor db copy` copies health records and alerts too (0002's function, extended).
CREATE OR REPLACE FUNCTION zapvisor_import(p_rows jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_taken text;
    v_count integer;
BEGIN
    SELECT string_agg(s.session_name, ', ' ORDER BY s.session_name) INTO v_taken
    FROM jsonb_populate_recordset(NULL::whatsapp_sessions, p_rows -> 'sessions') AS s
    JOIN whatsapp_sessions w USING (session_name);
    IF v_taken IS NOT NULL THEN
        RAISE EXCEPTION 'sessions already in this store: %', v_taken
            USING ERRCODE = 'ZV001', DETAIL = v_taken;
    END IF;
    INSERT INTO whatsapp_sessions (session_name, description, host, port, connector,
        desired_state, status, phone, qr_payload, qr_expires_at, webhook_url, webhook_events,
        ai_config, timing_config, messages_sent, messages_received, last_error,
        api_token_hash, created_at, updated_at, connected_at, last_activity_at)
    SELECT session_name, description, host, port, connector, desired_state, status, phone,
        qr_payload, qr_expires_at, webhook_url, webhook_events, ai_config, timing_config,
        messages_sent, messages_received, last_error, api_token_hash, created_at,
        updated_at, connected_at, last_activity_at
    FROM jsonb_populate_recordset(NULL::whatsapp_sessions, coalesce(p_rows -> 'sessions', '[]'));
    GET DIAGNOSTICS v_count = ROW_COUNT;
    INSERT INTO session_events (ts, session_name, actor, action, from_status, to_status, detail)
    SELECT e.ts, e.session_name, e.actor, e.action, e.from_status, e.to_status,
        coalesce(e.detail, '{}')
    FROM jsonb_array_elements(coalesce(p_rows -> 'events', '[]')) WITH ORDINALITY AS j(value, n),
        LATERAL jsonb_populate_record(NULL::session_events, j.value) AS e
    ORDER BY j.n;
    INSERT INTO hosts (host_id, address, created_at)
    SELECT host_id, address, coalesce(created_at, now())
    FROM jsonb_populate_recordset(NULL::hosts, coalesce(p_rows -> 'hosts', '[]'))
    ON CONFLICT (host_id) DO NOTHING;
    INSERT INTO webhook_outbox (event_id, session_name, event, payload, created_at, state,
        attempts, next_attempt_at, last_attempt_at, last_status, last_error, delivered_at)
    SELECT o.event_id, o.session_name, o.event, o.payload, o.created_at, o.state,
        o.attempts, o.next_attempt_at, o.last_attempt_at, o.last_status, o.last_error,
        o.delivered_at
    FROM jsonb_array_elements(coalesce(p_rows -> 'outbox', '[]')) WITH ORDINALITY AS j(value, n),
        LATERAL jsonb_populate_record(NULL::webhook_outbox, j.value) AS o
    ORDER BY j.n;
    INSERT INTO session_health (session_name, restarts, exits, recent_exits,
        last_exit_status, last_exit_at, last_restart_at, last_restart_reason,
        next_restart_at, parked_at, why_down, stderr_tail, updated_at)
    SELECT h.session_name, coalesce(h.restarts, 0), coalesce(h.exits, 0),
        coalesce(h.recent_exits, '{}'), h.last_exit_status, h.last_exit_at, h.last_restart_at,
        h.last_restart_reason, h.next_restart_at, h.parked_at, h.why_down, h.stderr_tail,
        coalesce(h.updated_at, now())
    FROM jsonb_populate_recordset(NULL::session_health, coalesce(p_rows -> 'health', '[]')) AS h;
    -- an alert already active here for the same host and key stays the one that counts
    INSERT INTO alerts (host, key, kind, severity, message, session_name, value, raised_at,
        cleared_at, raise_sent_at, clear_sent_at)
    SELECT a.host, a.key, a.kind, a.severity, a.message, a.session_name, a.value,
        a.raised_at, a.cleared_at, a.raise_sent_at, a.clear_sent_at
    FROM jsonb_array_elements(coalesce(p_rows -> 'alerts', '[]')) WITH ORDINALITY AS j(value, n),
        LATERAL jsonb_populate_record(NULL::alerts, j.value) AS a
    ORDER BY j.n
    ON CONFLICT DO NOTHING;
    RETURN v_count;
END $$;

-- Row level security and rights, as in 0001.
ALTER TABLE session_health ENABLE ROW LEVEL SECURITY;
ALTER TABLE alerts ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON FUNCTION zapvisor_get_health(text),
    zapvisor_list_health(text),
    zapvisor_save_health(jsonb),
    zapvisor_raise_alert(jsonb, timestamptz),
    zapvisor_clear_alert(text, text, timestamptz),
    zapvisor_list_alerts(text, boolean, integer),
    zapvisor_pending_alert_notices(text, timestamptz),
    zapvisor_mark_alert_sent(bigint, text, timestamptz)
FROM PUBLIC;

DO $$
DECLARE
    v_role text;
    v_functions constant text := 'zapvisor_get_health(text), '
        'zapvisor_list_health(text), '
        'zapvisor_save_health(jsonb), '
        'zapvisor_raise_alert(jsonb, timestamptz), '
        'zapvisor_clear_alert(text, text, timestamptz), '
        'zapvisor_list_alerts(text, boolean, integer), '
        'zapvisor_pending_alert_notices(text, timestamptz), '
        'zapvisor_mark_alert_sent(bigint, text, timestamptz)';
BEGIN
    FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
            EXECUTE format('REVOKE ALL ON session_health, alerts FROM %I', v_role);
            EXECUTE format('REVOKE ALL ON SEQUENCE alerts_id_seq FROM %I', v_role);
            EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %I', v_functions, v_role);
        END IF;
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON session_health, alerts TO service_role;
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO service_role', v_functions);
        CREATE POLICY service_role_all ON session_health FOR ALL TO service_role
            USING (true) WITH CHECK (true);
        CREATE POLICY service_role_all ON alerts FOR ALL TO service_role
            USING (true) WITH CHECK (true);
    END IF;
END $$;

-- PostgREST (the supabase store's way in) caches the functions it can call: have it read
-- them again at commit (Supabase does this by itself; a no-op without a PostgREST).
NOTIFY pgrst, 'reload schema';
