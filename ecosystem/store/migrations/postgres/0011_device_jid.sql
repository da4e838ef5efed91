-- The whatsmeow device a neonize session whose auth lives in the store opens (mirrors
-- sqlite/0011_device_jid.sql): "user:device@server" as whatsmeow writes it in
-- whatsmeow_device.jid. NULL: not paired yet (or logged out). A runner writes it with its
-- other reports (zapvisor_update_session), so the fence of 0009 guards it like them.
ALTER TABLE whatsapp_sessions ADD COLUMN device_jid text;

-- 0002's function, one column more.
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
        device_jid = v_new.device_jid,
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

-- `zapvisor db copy` carries the device and where the auth lives (0003's function, with
-- 0009's auth and failover, which it left at their defaults, and device_jid).
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
        api_token_hash, created_at, updated_at, connected_at, last_activity_at, auth, failover,
        device_jid)
    SELECT session_name, description, host, port, connector, desired_state, status, phone,
        qr_payload, qr_expires_at, webhook_url, webhook_events, ai_config, timing_config,
        messages_sent, messages_received, last_error, api_token_hash, created_at,
        updated_at, connected_at, last_activity_at, coalesce(auth, 'local'),
        coalesce(failover, true), device_jid
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

NOTIFY pgrst, 'reload schema';
