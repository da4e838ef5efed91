-- Webhooks (mirrors sqlite/0002_webhooks.sql): which events a session subscribes to, and
-- the durable outbox. Every event is written here before its first delivery attempt, so
-- a runner killed at any moment loses none; rows stay (delivered for a while, dead until
-- replayed) for operators. As in 0001, the functions below are the only writers, called
-- by the postgres store (psycopg) and the supabase store (PostgREST RPC) alike.
-- Times come from the caller (the runner's clock), as on SQLite.

ALTER TABLE whatsapp_sessions ADD COLUMN webhook_events jsonb
    CHECK (webhook_events IS NULL OR jsonb_typeof(webhook_events) = 'array');

CREATE TABLE webhook_outbox (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id         text NOT NULL CONSTRAINT webhook_outbox_event_id_key UNIQUE,
    session_name     text COLLATE "C" NOT NULL
                     REFERENCES whatsapp_sessions (session_name) ON DELETE CASCADE,
    event            text NOT NULL,
    payload          jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    created_at       timestamptz NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    last_attempt_at  timestamptz,
    last_status      integer,
    last_error       text,
    delivered_at     timestamptz
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (session_name, state, next_attempt_at);

-- 0001's version knew nothing of webhook_events: the same function, one column more.
CREATE OR REPLACE FUNCTION zapvisor_update_session(
    p_name text,
    p_changes jsonb,
    p_actor text,
    p_action text,
    p_detail jsonb
) RETURNS whatsapp_sessions
LANGUAGE plpgsql AS $$
DECLARE
    v_old whatsapp_sessions;
    v_new whatsapp_sessions;
BEGIN
    SELECT * INTO v_old FROM whatsapp_sessions WHERE session_name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no session named %', p_name USING ERRCODE = 'ZV004';
    END IF;
    v_new := jsonb_populate_record(v_old,
        p_changes - ARRAY['id', 'session_name', 'host', 'port', 'created_at', 'updated_at']);
    UPDATE whatsapp_sessions SET
        description = v_new.description,
        connector = v_new.connector,
        desired_state = v_new.desired_state,
        status = v_new.status,
        phone = v_new.phone,
        qr_payload = v_new.qr_payload,
        qr_expires_at = v_new.qr_expires_at,
        webhook_url = v_new.webhook_url,
        webhook_events = v_new.webhook_events,
        ai_config = v_new.ai_config,
        timing_config = v_new.timing_config,
        messages_sent = v_new.messages_sent,
        messages_received = v_new.messages_received,
        last_error = v_new.last_error,
        api_token_hash = v_new.api_token_hash,
        connected_at = v_new.connected_at,
        last_activity_at = v_new.last_activity_at,
        updated_at = clock_timestamp()
    WHERE id = v_old.id
    RETURNING * INTO v_new;
    IF p_action IS NOT NULL THEN
        INSERT INTO session_events (session_name, actor, action, detail)
        VALUES (p_name, p_actor, p_action, coalesce(p_detail, '{}'));
    END IF;
    IF v_old.status IS DISTINCT FROM v_new.status THEN
        INSERT INTO session_events (session_name, actor, action, from_status, to_status, detail)
        VALUES (p_name, p_actor, 'status', v_old.status, v_new.status,
                CASE WHEN v_new.last_error IS NULL THEN '{}'::jsonb
                     ELSE jsonb_build_object('last_error', v_new.last_error) END);
    END IF;
    RETURN v_new;
END $$;

-- Insert an event (a webhook_outbox row as JSON); an event_id already there is left as
-- it is. Errors: ZV004 the session is gone.
CREATE FUNCTION zapvisor_enqueue_webhook(p_event jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_outbox (event_id, session_name, event, payload, created_at, state,
        attempts, next_attempt_at, last_attempt_at, last_status, last_error, delivered_at)
    SELECT r.event_id, r.session_name, r.event, r.payload, r.created_at,
        coalesce(r.state, 'pending'), coalesce(r.attempts, 0), r.next_attempt_at,
        r.last_attempt_at, r.last_status, r.last_error, r.delivered_at
    FROM jsonb_populate_record(NULL::webhook_outbox, p_event) AS r
    ON CONFLICT (event_id) DO NOTHING;
EXCEPTION WHEN foreign_key_violation THEN
    RAISE EXCEPTION 'no session named %', p_event ->> 'session_name' USING ERRCODE = 'ZV004';
END $$;

-- Claim a session's due events: pending, next_attempt_at not after p_now, oldest due
-- first, at most p_limit. Each claimed row's next_attempt_at moves to p_lease_until, so
-- another runner (another process, another host) calling at the same moment skips it
-- (SKIP LOCKED) and does not see it again before the lease ends; recording the attempt
-- sets the real next time. A claimer killed mid-delivery loses nothing: the row is due
-- again when its lease ends.
CREATE FUNCTION zapvisor_claim_webhooks(
    p_session text,
    p_now timestamptz,
    p_limit integer,
    p_lease_until timestamptz
) RETURNS SETOF webhook_outbox
LANGUAGE sql AS $$
    WITH due AS (
        SELECT id, next_attempt_at AS due_at FROM webhook_outbox
        WHERE session_name = p_session AND state = 'pending' AND next_attempt_at <= p_now
        ORDER BY next_attempt_at, id
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE webhook_outbox o SET next_attempt_at = p_lease_until
        FROM due WHERE o.id = due.id
        RETURNING o AS row, due.due_at
    )
    SELECT (c.row).* FROM claimed c ORDER BY c.due_at, (c.row).id
$$;

-- When the earliest pending event of a session is due (NULL when none is pending).
CREATE FUNCTION zapvisor_next_webhook_due(p_session text) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT min(next_attempt_at) FROM webhook_outbox
    WHERE session_name = p_session AND state = 'pending'
$$;

-- The outcome of one delivery attempt; delivered_at is p_at when delivered, and
-- next_attempt_at changes only when given. Errors: ZV005 no such event.
CREATE FUNCTION zapvisor_record_webhook_attempt(
    p_event_id text,
    p_state text,
    p_attempts integer,
    p_at timestamptz,
    p_next_attempt_at timestamptz,
    p_status integer,
    p_error text
) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE webhook_outbox SET
        state = p_state,
        attempts = p_attempts,
        last_attempt_at = p_at,
        next_attempt_at = coalesce(p_next_attempt_at, next_attempt_at),
        last_status = p_status,
        last_error = p_error,
        delivered_at = CASE WHEN p_state = 'delivered' THEN p_at END
    WHERE event_id = p_event_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'webhook event % is not in the outbox', p_event_id
            USING ERRCODE = 'ZV005', DETAIL = p_event_id;
    END IF;
END $$;

-- A session's rows, newest first (one state only when p_state is not NULL).
CREATE FUNCTION zapvisor_list_webhooks(p_session text, p_state text, p_limit integer)
RETURNS SETOF webhook_outbox
LANGUAGE sql STABLE AS $$
    SELECT * FROM webhook_outbox
    WHERE session_name = p_session AND (p_state IS NULL OR state = p_state)
    ORDER BY id DESC
    LIMIT p_limit
$$;

CREATE FUNCTION zapvisor_webhook_counts(p_session text)
RETURNS TABLE (state text, count bigint)
LANGUAGE sql STABLE AS $$
    SELECT o.state, count(*) FROM webhook_outbox o
    WHERE o.session_name = p_session GROUP BY o.state
$$;

-- Dead letters back to pending, due p_now, attempts reset; returns how many.
CREATE FUNCTION zapvisor_replay_webhooks(p_session text, p_now timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_count integer;
BEGIN
    UPDATE webhook_outbox SET state = 'pending', attempts = 0, next_attempt_at = p_now
    WHERE session_name = p_session AND state = 'dead';
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END $$;

-- Delete rows delivered before p_before; returns how many.
CREATE FUNCTION zapvisor_prune_webhooks(p_session text, p_before timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_count integer;
BEGIN
    DELETE FROM webhook_outbox
    WHERE session_name = p_session AND state = 'delivered' AND delivered_at < p_before;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END $$;

-- Dead letters of a host's sessions (the health monitor's webhook_dead_letters alert).
CREATE FUNCTION zapvisor_count_dead_letters(p_host text) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT count(*)::integer FROM webhook_outbox o
    JOIN whatsapp_sessions s ON s.session_name = o.session_name
    WHERE s.host = p_host AND o.state = 'dead'
$$;

-- `zapvisor db copy`: one JSON document of rows ({"sessions", "events", "hosts",
-- "outbox"}, each an array; 0003 adds "health" and "alerts"), every field as it was,
-- all or nothing. One jsonb argument, so later migrations extend it in place.
-- A name already here is ZV001 (nothing is copied).
DROP FUNCTION zapvisor_import(jsonb, jsonb, jsonb);

CREATE FUNCTION zapvisor_import(p_rows jsonb) RETURNS integer
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
    RETURN v_count;
END $$;

-- Row level security and rights, as in 0001: outbox rows hold message payloads and are
-- the service role's only.
ALTER TABLE webhook_outbox ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON FUNCTION zapvisor_enqueue_webhook(jsonb),
    zapvisor_claim_webhooks(text, timestamptz, integer, timestamptz),
    zapvisor_next_webhook_due(text),
    zapvisor_record_webhook_attempt(text, text, integer, timestamptz, timestamptz, integer, text),
    zapvisor_list_webhooks(text, text, integer),
    zapvisor_webhook_counts(text),
    zapvisor_replay_webhooks(text, timestamptz),
    zapvisor_prune_webhooks(text, timestamptz),
    zapvisor_count_dead_letters(text),
    zapvisor_import(jsonb)
FROM PUBLIC;

DO $$
DECLARE
    v_role text;
    v_functions constant text := 'zapvisor_enqueue_webhook(jsonb), '
        'zapvisor_claim_webhooks(text, timestamptz, integer, timestamptz), '
        'zapvisor_next_webhook_due(text), '
        'zapvisor_record_webhook_attempt(text, text, integer, timestamptz, timestamptz, '
        'integer, text), '
        'zapvisor_list_webhooks(text, text, integer), '
        'zapvisor_webhook_counts(text), '
        'zapvisor_replay_webhooks(text, timestamptz), '
        'zapvisor_prune_webhooks(text, timestamptz), '
        'zapvisor_count_dead_letters(text), '
        'zapvisor_import(jsonb)';
BEGIN
    FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
            EXECUTE format('REVOKE ALL ON webhook_outbox FROM %I', v_role);
            EXECUTE format('REVOKE ALL ON SEQUENCE webhook_outbox_id_seq FROM %I', v_role);
            EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %I', v_functions, v_role);
        END IF;
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_outbox TO service_role;
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO service_role', v_functions);
        CREATE POLICY service_role_all ON webhook_outbox FOR ALL TO service_role
            USING (true) WITH CHECK (true);
    END IF;
END $$;

-- PostgREST (the supabase store's way in) caches the functions it can call: have it read
-- them again at commit (Supabase does this by itself; a no-op without a PostgREST).
NOTIFY pgrst, 'reload schema';
