-- The bot's conversations (mirrors sqlite/0010_conversations.sql): one per session and
-- contact, with its messages in order, so a reply can send the recent history. They go
-- with their session. What the bot last did there (a reply, an error) is kept on the
-- conversation, for `show`. As in 0001, the functions below are the only writers,
-- called by the postgres store (psycopg) and the supabase store (PostgREST RPC) alike.
-- Depends on 0001 only, so it applies the same before or after 0005/0006.

CREATE TABLE conversations (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_name     text COLLATE "C" NOT NULL
                     REFERENCES whatsapp_sessions (session_name) ON DELETE CASCADE,
    contact          text NOT NULL,
    created_at       timestamptz NOT NULL,
    last_message_at  timestamptz NOT NULL,
    last_reply_at    timestamptz,
    last_error       text,
    last_error_at    timestamptz,
    CONSTRAINT conversations_session_contact_key UNIQUE (session_name, contact)
);

CREATE TABLE messages (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id  bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role             text NOT NULL CHECK (role IN ('user', 'assistant')),
    body             text NOT NULL,
    created_at       timestamptz NOT NULL,
    wa_id            text
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, id);

-- The conversation of (p_session, p_contact), created on first use. Errors: ZV004.
CREATE FUNCTION zapvisor_conversation_id(p_session text, p_contact text, p_at timestamptz)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    INSERT INTO conversations (session_name, contact, created_at, last_message_at)
    VALUES (p_session, p_contact, p_at, p_at)
    ON CONFLICT (session_name, contact) DO UPDATE
        SET last_message_at = greatest(conversations.last_message_at, excluded.last_message_at)
    RETURNING id INTO v_id;
    RETURN v_id;
EXCEPTION WHEN foreign_key_violation THEN
    RAISE EXCEPTION 'no session named %', p_session USING ERRCODE = 'ZV004';
END $$;

CREATE FUNCTION zapvisor_add_message(
    p_session text,
    p_contact text,
    p_role text,
    p_body text,
    p_at timestamptz,
    p_wa_id text
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint := zapvisor_conversation_id(p_session, p_contact, p_at);
BEGIN
    INSERT INTO messages (conversation_id, role, body, created_at, wa_id)
    VALUES (v_id, p_role, p_body, p_at, p_wa_id);
    IF p_role = 'assistant' THEN
        UPDATE conversations SET last_reply_at = p_at WHERE id = v_id;
    END IF;
END $$;

-- The last p_limit messages of a conversation, oldest first.
CREATE FUNCTION zapvisor_recent_messages(p_session text, p_contact text, p_limit integer)
RETURNS TABLE (role text, body text, created_at timestamptz, wa_id text)
LANGUAGE sql STABLE AS $$
    SELECT r.role, r.body, r.created_at, r.wa_id FROM (
        SELECT m.id, m.role, m.body, m.created_at, m.wa_id
        FROM messages m JOIN conversations c ON c.id = m.conversation_id
        WHERE c.session_name = p_session AND c.contact = p_contact
        ORDER BY m.id DESC LIMIT greatest(p_limit, 0)
    ) r ORDER BY r.id
$$;

CREATE FUNCTION zapvisor_record_bot_error(
    p_session text,
    p_contact text,
    p_error text,
    p_at timestamptz
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    -- taken first: called inside the UPDATE's WHERE it would run per row scanned, and
    -- the row it inserts would not be visible to that UPDATE
    v_id bigint := zapvisor_conversation_id(p_session, p_contact, p_at);
BEGIN
    UPDATE conversations SET last_error = p_error, last_error_at = p_at WHERE id = v_id;
END $$;

CREATE FUNCTION zapvisor_list_conversations(p_session text, p_limit integer)
RETURNS TABLE (
    session_name text,
    contact text,
    created_at timestamptz,
    last_message_at timestamptz,
    last_reply_at timestamptz,
    last_error text,
    last_error_at timestamptz,
    messages bigint
)
LANGUAGE sql STABLE AS $$
    SELECT c.session_name, c.contact, c.created_at, c.last_message_at, c.last_reply_at,
        c.last_error, c.last_error_at,
        (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)
    FROM conversations c WHERE c.session_name = p_session
    ORDER BY c.last_message_at DESC, c.id DESC LIMIT p_limit
$$;

CREATE FUNCTION zapvisor_bot_activity(p_session text)
RETURNS TABLE (last_reply_at timestamptz, last_error text, last_error_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT (SELECT max(c.last_reply_at) FROM conversations c WHERE c.session_name = p_session),
        e.last_error, e.last_error_at
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL (
        SELECT c.last_error, c.last_error_at FROM conversations c
        WHERE c.session_name = p_session AND c.last_error_at IS NOT NULL
        ORDER BY c.last_error_at DESC LIMIT 1
    ) e ON true
$$;

-- `zapvisor db copy`: conversations with their messages, in one call (p_rows: a list
-- of conversations, each with its "messages" oldest first). Returns how many.
CREATE FUNCTION zapvisor_import_conversations(p_rows jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_row jsonb;
    v_id bigint;
    v_count integer := 0;
BEGIN
    FOR v_row IN SELECT value FROM jsonb_array_elements(coalesce(p_rows, '[]')) LOOP
        INSERT INTO conversations (session_name, contact, created_at, last_message_at,
            last_reply_at, last_error, last_error_at)
        SELECT c.session_name, c.contact, c.created_at, c.last_message_at, c.last_reply_at,
            c.last_error, c.last_error_at
        FROM jsonb_populate_record(NULL::conversations, v_row) AS c
        RETURNING id INTO v_id;
        INSERT INTO messages (conversation_id, role, body, created_at, wa_id)
        SELECT v_id, m.role, m.body, m.created_at, m.wa_id
        FROM jsonb_array_elements(coalesce(v_row -> 'messages', '[]'))
            WITH ORDINALITY AS j(value, n),
            LATERAL jsonb_populate_record(NULL::messages, j.value) AS m
        ORDER BY j.n;
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END $$;

-- Row level security and rights, as in 0001 and 0003.
ALTER TABLE conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON FUNCTION zapvisor_conversation_id(text, text, timestamptz),
    zapvisor_add_message(text, text, text, text, timestamptz, text),
    zapvisor_recent_messages(text, text, integer),
    zapvisor_record_bot_error(text, text, text, timestamptz),
    zapvisor_list_conversations(text, integer),
    zapvisor_bot_activity(text),
    zapvisor_import_conversations(jsonb)
FROM PUBLIC;

DO $$
DECLARE
    v_role text;
    v_functions constant text := 'zapvisor_conversation_id(text, text, timestamptz), '
        'zapvisor_add_message(text, text, text, text, timestamptz, text), '
        'zapvisor_recent_messages(text, text, integer), '
        'zapvisor_record_bot_error(text, text, text, timestamptz), '
        'zapvisor_list_conversations(text, integer), '
        'zapvisor_bot_activity(text), '
        'zapvisor_import_conversations(jsonb)';
BEGIN
    FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
            EXECUTE format('REVOKE ALL ON conversations, messages FROM %I', v_role);
            EXECUTE format('REVOKE ALL ON SEQUENCE %s, %s FROM %I',
                pg_get_serial_sequence('conversations', 'id'),
                pg_get_serial_sequence('messages', 'id'), v_role);
            EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %I', v_functions, v_role);
        END IF;
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON conversations, messages TO service_role;
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO service_role', v_functions);
        CREATE POLICY service_role_all ON conversations FOR ALL TO service_role
            USING (true) WITH CHECK (true);
        CREATE POLICY service_role_all ON messages FOR ALL TO service_role
            USING (true) WITH CHECK (true);
    END IF;
END $$;

NOTIFY pgrst, 'reload schema';
