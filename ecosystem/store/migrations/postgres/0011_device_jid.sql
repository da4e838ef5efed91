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

-- `zapvisor db copy` carries device_jid through 0013's zapvisor_import, which inserts
-- whichever columns the rows carry.

NOTIFY pgrst, 'reload schema';
