-- zapvisor on PostgreSQL (any server, or a Supabase project's own database).
-- Tables and names mirror sqlite/0001_init.sql; the functions below are the only way
-- sessions are created, changed and deleted, so the postgres store (psycopg) and the
-- supabase store (PostgREST RPC) share one implementation of every rule.
-- Applied by `zapvisor db migrate` inside one transaction, with the version recorded in
-- zapvisor_schema_migrations.

-- session_name sorts bytewise (COLLATE "C"), as in SQLite, whatever the database's
-- locale: `list` shows the same order on every store.
CREATE TABLE whatsapp_sessions (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_name       text COLLATE "C" NOT NULL
                       CONSTRAINT whatsapp_sessions_session_name_key UNIQUE,
    description        text NOT NULL DEFAULT '',
    host               text NOT NULL,
    port               integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    connector          text NOT NULL,
    desired_state      text NOT NULL DEFAULT 'running'
                       CHECK (desired_state IN ('running', 'stopped')),
    status             text NOT NULL DEFAULT 'initializing'
                       CHECK (status IN ('initializing', 'waiting_scan', 'connected',
                                         'disconnected', 'phone_disconnected', 'error',
                                         'reconnecting')),
    phone              text,
    qr_payload         text,
    qr_expires_at      timestamptz,
    webhook_url        text,
    ai_config          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(ai_config) = 'object'),
    timing_config      jsonb NOT NULL DEFAULT '{}'
                       CHECK (jsonb_typeof(timing_config) = 'object'),
    messages_sent      bigint NOT NULL DEFAULT 0,
    messages_received  bigint NOT NULL DEFAULT 0,
    last_error         text,
    api_token_hash     text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    connected_at       timestamptz,
    last_activity_at   timestamptz,
    CONSTRAINT whatsapp_sessions_host_port_key UNIQUE (host, port)
);
CREATE INDEX whatsapp_sessions_by_host ON whatsapp_sessions (host, session_name);

CREATE TABLE session_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts            timestamptz NOT NULL DEFAULT now(),
    session_name  text,
    actor         text NOT NULL,
    action        text NOT NULL,
    from_status   text,
    to_status     text,
    detail        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX session_events_by_session ON session_events (session_name, id);

CREATE TABLE hosts (
    host_id     text PRIMARY KEY,
    address     text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Live updates: every change to a session row wakes the TUIs that LISTEN.
CREATE FUNCTION zapvisor_notify_session_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r whatsapp_sessions;
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    PERFORM pg_notify('zapvisor_sessions',
        json_build_object('op', lower(TG_OP), 'session', r.session_name, 'host', r.host)::text);
    RETURN NULL;
END $$;

CREATE TRIGGER whatsapp_sessions_notify
AFTER INSERT OR UPDATE OR DELETE ON whatsapp_sessions
FOR EACH ROW EXECUTE FUNCTION zapvisor_notify_session_change();

-- Create a session and reserve its port in one transaction.
-- The port is the lowest of p_port_first..p_port_last that no session of the host holds
-- and that is not in p_exclude (ports some process binds). Concurrent callers for one
-- host queue on an advisory lock held until commit, so the next one's queries see the
-- row just inserted: two operators on two machines never get the same port.
-- Errors: ZV001 name taken, ZV002 MAX_SESSIONS reached, ZV003 no free port (DETAIL: the
-- excluded ports in the range, a JSON array).
CREATE FUNCTION zapvisor_create_session(
    p_session jsonb,
    p_port_first integer,
    p_port_last integer,
    p_exclude integer[],
    p_max_sessions integer,
    p_actor text
) RETURNS whatsapp_sessions
LANGUAGE plpgsql AS $$
DECLARE
    v_name text := p_session ->> 'session_name';
    v_host text := p_session ->> 'host';
    v_held integer[];
    v_port integer;
    v_busy integer[];
    v_row whatsapp_sessions;
    v_constraint text;
BEGIN
    IF v_name IS NULL OR v_host IS NULL THEN
        RAISE EXCEPTION 'session_name and host are required' USING ERRCODE = '22023';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('zapvisor.ports:' || v_host, 0));
    IF EXISTS (SELECT 1 FROM whatsapp_sessions WHERE session_name = v_name) THEN
        RAISE EXCEPTION 'a session named % already exists', v_name USING ERRCODE = 'ZV001';
    END IF;
    SELECT coalesce(array_agg(port), '{}') INTO v_held
    FROM whatsapp_sessions WHERE host = v_host;
    IF cardinality(v_held) >= p_max_sessions THEN
        RAISE EXCEPTION 'MAX_SESSIONS (%) reached on host %', p_max_sessions, v_host
            USING ERRCODE = 'ZV002';
    END IF;
    SELECT min(p) INTO v_port
    FROM generate_series(p_port_first, p_port_last) AS p
    WHERE p <> ALL (v_held) AND p <> ALL (coalesce(p_exclude, '{}'));
    IF v_port IS NULL THEN
        SELECT coalesce(array_agg(p ORDER BY p), '{}') INTO v_busy
        FROM generate_series(p_port_first, p_port_last) AS p
        WHERE p = ANY (coalesce(p_exclude, '{}')) AND p <> ALL (v_held);
        RAISE EXCEPTION 'no free port in %-% on host %', p_port_first, p_port_last, v_host
            USING ERRCODE = 'ZV003', DETAIL = to_jsonb(v_busy)::text;
    END IF;
    BEGIN
        INSERT INTO whatsapp_sessions (session_name, description, host, port, connector,
            desired_state, webhook_url, ai_config, timing_config, api_token_hash)
        SELECT v_name, coalesce(r.description, ''), v_host, v_port, r.connector,
            coalesce(r.desired_state, 'running'), r.webhook_url,
            coalesce(r.ai_config, '{}'), coalesce(r.timing_config, '{}'), r.api_token_hash
        FROM jsonb_populate_record(NULL::whatsapp_sessions, p_session) AS r
        RETURNING * INTO v_row;
    EXCEPTION WHEN unique_violation THEN
        -- the same name created at this instant on another host (another lock)
        GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
        IF v_constraint = 'whatsapp_sessions_session_name_key' THEN
            RAISE EXCEPTION 'a session named % already exists', v_name USING ERRCODE = 'ZV001';
        END IF;
        RAISE;
    END;
    INSERT INTO session_events (session_name, actor, action, detail)
    VALUES (v_name, p_actor, 'create',
            jsonb_build_object('port', v_port, 'connector', v_row.connector));
    RETURN v_row;
END $$;

-- Change a session's fields (the caller decides which fields it may change) and record
-- the operator's action and any status transition, in one transaction.
-- Errors: ZV004 no such session.
CREATE FUNCTION zapvisor_update_session(
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

-- Delete a session (freeing its port); the audit trail keeps the deletion.
CREATE FUNCTION zapvisor_delete_session(p_name text, p_actor text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_port integer;
BEGIN
    DELETE FROM whatsapp_sessions WHERE session_name = p_name RETURNING port INTO v_port;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no session named %', p_name USING ERRCODE = 'ZV004';
    END IF;
    INSERT INTO session_events (session_name, actor, action, detail)
    VALUES (p_name, p_actor, 'delete', jsonb_build_object('port', v_port));
END $$;

-- `zapvisor db copy`: rows from another store, every field as it was (timestamps,
-- token hash, JSON), all or nothing. A name already here is ZV001 (nothing is copied).
CREATE FUNCTION zapvisor_import(p_sessions jsonb, p_events jsonb, p_hosts jsonb)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_taken text;
    v_count integer;
BEGIN
    SELECT string_agg(s.session_name, ', ' ORDER BY s.session_name) INTO v_taken
    FROM jsonb_populate_recordset(NULL::whatsapp_sessions, p_sessions) AS s
    JOIN whatsapp_sessions w USING (session_name);
    IF v_taken IS NOT NULL THEN
        RAISE EXCEPTION 'sessions already in this store: %', v_taken
            USING ERRCODE = 'ZV001', DETAIL = v_taken;
    END IF;
    INSERT INTO whatsapp_sessions (session_name, description, host, port, connector,
        desired_state, status, phone, qr_payload, qr_expires_at, webhook_url, ai_config,
        timing_config, messages_sent, messages_received, last_error, api_token_hash,
        created_at, updated_at, connected_at, last_activity_at)
    SELECT session_name, description, host, port, connector, desired_state, status, phone,
        qr_payload, qr_expires_at, webhook_url, ai_config, timing_config, messages_sent,
        messages_received, last_error, api_token_hash, created_at, updated_at, connected_at,
        last_activity_at
    FROM jsonb_populate_recordset(NULL::whatsapp_sessions, p_sessions);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    INSERT INTO session_events (ts, session_name, actor, action, from_status, to_status, detail)
    SELECT e.ts, e.session_name, e.actor, e.action, e.from_status, e.to_status,
        coalesce(e.detail, '{}')
    FROM jsonb_array_elements(coalesce(p_events, '[]')) WITH ORDINALITY AS j(value, n),
        LATERAL jsonb_populate_record(NULL::session_events, j.value) AS e
    ORDER BY j.n;
    INSERT INTO hosts (host_id, address, created_at)
    SELECT host_id, address, coalesce(created_at, now())
    FROM jsonb_populate_recordset(NULL::hosts, coalesce(p_hosts, '[]'))
    ON CONFLICT (host_id) DO NOTHING;
    RETURN v_count;
END $$;

-- Row level security, the Supabase way. Every table has RLS on: the anon and
-- authenticated roles (the anon key) get no policy, so they read nothing, not even by
-- accident after a broad GRANT; and their table and function rights are revoked.
-- service_role (the service role key, which PostgREST switches to) may do everything.
-- The DSN's own user owns the tables, so the postgres store is not affected by RLS.
ALTER TABLE whatsapp_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE session_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE hosts ENABLE ROW LEVEL SECURITY;
-- created by the migrator before the first migration runs
ALTER TABLE zapvisor_schema_migrations ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON FUNCTION zapvisor_create_session(jsonb, integer, integer, integer[], integer, text),
    zapvisor_update_session(text, jsonb, text, text, jsonb),
    zapvisor_delete_session(text, text),
    zapvisor_import(jsonb, jsonb, jsonb)
FROM PUBLIC;

DO $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
            EXECUTE format('REVOKE ALL ON whatsapp_sessions, session_events, hosts, '
                           'zapvisor_schema_migrations FROM %I', v_role);
            EXECUTE format('REVOKE ALL ON FUNCTION '
                'zapvisor_create_session(jsonb, integer, integer, integer[], integer, text), '
                'zapvisor_update_session(text, jsonb, text, text, jsonb), '
                'zapvisor_delete_session(text, text), '
                'zapvisor_import(jsonb, jsonb, jsonb) FROM %I', v_role);
        END IF;
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON whatsapp_sessions, session_events, hosts
            TO service_role;
        GRANT SELECT ON zapvisor_schema_migrations TO service_role;
        GRANT EXECUTE ON FUNCTION
            zapvisor_create_session(jsonb, integer, integer, integer[], integer, text),
            zapvisor_update_session(text, jsonb, text, text, jsonb),
            zapvisor_delete_session(text, text),
            zapvisor_import(jsonb, jsonb, jsonb)
        TO service_role;
        -- Supabase's service_role bypasses RLS; these make that explicit for a
        -- service_role created without BYPASSRLS.
        CREATE POLICY service_role_all ON whatsapp_sessions FOR ALL TO service_role
            USING (true) WITH CHECK (true);
        CREATE POLICY service_role_all ON session_events FOR ALL TO service_role
            USING (true) WITH CHECK (true);
        CREATE POLICY service_role_all ON hosts FOR ALL TO service_role
            USING (true) WITH CHECK (true);
        CREATE POLICY service_role_read ON zapvisor_schema_migrations FOR SELECT
            TO service_role USING (true);
    END IF;
END $$;
