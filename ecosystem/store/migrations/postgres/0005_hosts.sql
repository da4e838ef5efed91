-- The fleet's hosts registry (mirrors sqlite/0005_hosts.sql): what `zapvisor hosts add`
-- records about a machine the control side reaches over SSH. The row's host_id is that
-- machine's ZAPVISOR_HOST_ID, the `host` of its sessions. Rows written before this
-- migration (host_id and address only) are not fleet hosts: the functions skip them.
-- Every write is one of the functions below (psycopg for the postgres store, PostgREST
-- RPC for the supabase store); each operator action is recorded in session_events with
-- no session name. Times come from the caller's clock, as on SQLite.
-- Errors: ZVH01 a host with that name exists, ZVH02 no such host, ZVH03 the host still
-- holds sessions (DETAIL: their names, comma separated).

ALTER TABLE hosts
    ADD COLUMN ssh_user       text,
    ADD COLUMN ssh_port       integer NOT NULL DEFAULT 22 CHECK (ssh_port BETWEEN 1 AND 65535),
    ADD COLUMN identity_file  text,
    ADD COLUMN base_port      integer CHECK (base_port BETWEEN 1 AND 65535),
    ADD COLUMN max_sessions   integer CHECK (max_sessions >= 1),
    ADD COLUMN zapvisor_path  text,
    ADD COLUMN version        text,
    ADD COLUMN host_key       text,
    ADD COLUMN added_by       text NOT NULL DEFAULT '',
    ADD COLUMN last_seen      timestamptz;

CREATE FUNCTION zapvisor_list_hosts() RETURNS SETOF hosts
LANGUAGE sql STABLE AS $$
    SELECT * FROM hosts WHERE ssh_user IS NOT NULL ORDER BY host_id COLLATE "C"
$$;

CREATE FUNCTION zapvisor_get_host(p_name text) RETURNS SETOF hosts
LANGUAGE sql STABLE AS $$
    SELECT * FROM hosts WHERE host_id = p_name AND ssh_user IS NOT NULL
$$;

-- A hosts row as JSON (created_at: when, by the caller's clock).
CREATE FUNCTION zapvisor_add_host(p_host jsonb, p_actor text, p_detail jsonb) RETURNS hosts
LANGUAGE plpgsql AS $$
DECLARE
    v_row hosts;
BEGIN
    INSERT INTO hosts (host_id, address, created_at, ssh_user, ssh_port, identity_file,
        base_port, max_sessions, zapvisor_path, version, host_key, added_by, last_seen)
    SELECT r.host_id, r.address, coalesce(r.created_at, now()), r.ssh_user,
        coalesce(r.ssh_port, 22), r.identity_file, r.base_port, r.max_sessions,
        r.zapvisor_path, r.version, r.host_key, p_actor, r.last_seen
    FROM jsonb_populate_record(NULL::hosts, p_host) AS r
    RETURNING * INTO v_row;
    INSERT INTO session_events (ts, session_name, actor, action, detail)
    VALUES (v_row.created_at, NULL, p_actor, 'host_add', coalesce(p_detail, '{}'));
    RETURN v_row;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'a host named % already exists', p_host ->> 'host_id'
        USING ERRCODE = 'ZVH01';
END $$;

-- Change a host's fields (not its name, nor when and by whom it was added); with an
-- action, record it.
CREATE FUNCTION zapvisor_update_host(
    p_name text,
    p_changes jsonb,
    p_actor text,
    p_action text,
    p_detail jsonb
) RETURNS hosts
LANGUAGE plpgsql AS $$
DECLARE
    v_old hosts;
    v_new hosts;
BEGIN
    SELECT * INTO v_old FROM hosts
    WHERE host_id = p_name AND ssh_user IS NOT NULL FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no host named %', p_name USING ERRCODE = 'ZVH02';
    END IF;
    v_new := jsonb_populate_record(v_old,
        p_changes - ARRAY['host_id', 'created_at', 'added_by']);
    UPDATE hosts SET
        address = v_new.address,
        ssh_user = v_new.ssh_user,
        ssh_port = v_new.ssh_port,
        identity_file = v_new.identity_file,
        base_port = v_new.base_port,
        max_sessions = v_new.max_sessions,
        zapvisor_path = v_new.zapvisor_path,
        version = v_new.version,
        host_key = v_new.host_key,
        last_seen = v_new.last_seen
    WHERE host_id = p_name
    RETURNING * INTO v_new;
    IF p_action IS NOT NULL THEN
        INSERT INTO session_events (session_name, actor, action, detail)
        VALUES (NULL, p_actor, p_action, coalesce(p_detail, '{}'));
    END IF;
    RETURN v_new;
END $$;

-- Remove a host that holds no session. It takes the host's port lock (the one
-- zapvisor_create_session holds), so a session created on it at this instant either
-- commits first (and the removal is refused) or finds the host gone.
CREATE FUNCTION zapvisor_remove_host(p_name text, p_actor text, p_detail jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_sessions text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('zapvisor.ports:' || p_name, 0));
    IF NOT EXISTS (SELECT 1 FROM hosts WHERE host_id = p_name AND ssh_user IS NOT NULL) THEN
        RAISE EXCEPTION 'no host named %', p_name USING ERRCODE = 'ZVH02';
    END IF;
    SELECT string_agg(session_name, ',' ORDER BY session_name) INTO v_sessions
    FROM whatsapp_sessions WHERE host = p_name;
    IF v_sessions IS NOT NULL THEN
        RAISE EXCEPTION 'host % still holds sessions', p_name
            USING ERRCODE = 'ZVH03', DETAIL = v_sessions;
    END IF;
    DELETE FROM hosts WHERE host_id = p_name;
    INSERT INTO session_events (session_name, actor, action, detail)
    VALUES (NULL, p_actor, 'host_remove', coalesce(p_detail, '{}'));
END $$;

-- Rights, as in 0001: the service role only.
REVOKE ALL ON FUNCTION zapvisor_list_hosts(),
    zapvisor_get_host(text),
    zapvisor_add_host(jsonb, text, jsonb),
    zapvisor_update_host(text, jsonb, text, text, jsonb),
    zapvisor_remove_host(text, text, jsonb)
FROM PUBLIC;

DO $$
DECLARE
    v_role text;
    v_functions constant text := 'zapvisor_list_hosts(), '
        'zapvisor_get_host(text), '
        'zapvisor_add_host(jsonb, text, jsonb), '
        'zapvisor_update_host(text, jsonb, text, text, jsonb), '
        'zapvisor_remove_host(text, text, jsonb)';
BEGIN
    FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
            EXECUTE format('REVOKE ALL ON hosts FROM %I', v_role);
            EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %I', v_functions, v_role);
        END IF;
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO service_role', v_functions);
    END IF;
END $$;

NOTIFY pgrst, 'reload schema';
