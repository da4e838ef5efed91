-- `zapvisor db copy` and `zapvisor restore` keep every column of a session row: 0003's
-- zapvisor_import named the columns of its day, so a session copied into PostgreSQL or
-- Supabase lost where its auth lives and its failover switch (0009), and with them the
-- way back without a new QR. It now inserts whichever of the table's columns the rows
-- carry, so a column a later migration adds comes along too. The rest is 0003's.

CREATE OR REPLACE FUNCTION zapvisor_import(p_rows jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_taken text;
    v_count integer;
    v_columns text;
BEGIN
    SELECT string_agg(s.session_name, ', ' ORDER BY s.session_name) INTO v_taken
    FROM jsonb_populate_recordset(NULL::whatsapp_sessions, p_rows -> 'sessions') AS s
    JOIN whatsapp_sessions w USING (session_name);
    IF v_taken IS NOT NULL THEN
        RAISE EXCEPTION 'sessions already in this store: %', v_taken
            USING ERRCODE = 'ZV001', DETAIL = v_taken;
    END IF;
    -- every column the rows name that the table has (auth and failover since 0009, and
    -- any a later migration adds), so a copy or a restore keeps them all
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO v_columns
    FROM pg_attribute a
    WHERE a.attrelid = 'whatsapp_sessions'::regclass AND a.attnum > 0
        AND NOT a.attisdropped AND a.attidentity = '' AND a.attgenerated = ''
        AND a.attname IN (
            SELECT DISTINCT k FROM jsonb_array_elements(coalesce(p_rows -> 'sessions', '[]')) r,
                LATERAL jsonb_object_keys(r) AS k);
    v_count := 0;
    IF v_columns IS NOT NULL THEN
        EXECUTE format('INSERT INTO whatsapp_sessions (%1$s) SELECT %1$s '
                       'FROM jsonb_populate_recordset(NULL::whatsapp_sessions, $1)', v_columns)
        USING p_rows -> 'sessions';
        GET DIAGNOSTICS v_count = ROW_COUNT;
    END IF;
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
