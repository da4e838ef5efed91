-- Failover: one owner per session by lease, host heartbeats, claims of the sessions of a
-- silent host, planned moves, and the sim connector's auth and its simulated WhatsApp
-- server (mirrors sqlite/0009_failover.sql, where only the local lease and the fence
-- exist: SQLite is one host). Depends on 0001-0003 only; 0005 (the hosts registry) is
-- another migration's, so heartbeats live in a table of their own.
--
-- Every time here is the database's clock (now()), never a host's: two hosts whose
-- clocks disagree still agree on who holds a lease and until when.
--
-- The epoch is a fencing token. A runner's connection carries "epoch:host" (psycopg:
-- the transaction-local setting zapvisor.fence; PostgREST: the X-Zapvisor-Fence header,
-- which it exposes as request.headers), and a trigger refuses every write it makes to
-- its session's row, its webhook outbox or its sim auth once the lease has another
-- holder or a newer epoch: a runner that froze, or lost the store, and wakes up after
-- its session moved can no longer write anything (ZV006).

ALTER TABLE whatsapp_sessions
    ADD COLUMN auth text NOT NULL DEFAULT 'local' CHECK (auth IN ('local', 'store')),
    ADD COLUMN failover boolean NOT NULL DEFAULT true;

-- One row per session that a runner has run under a lease. holder is NULL once a
-- planned move handed the session over (offered_to may then claim it).
CREATE TABLE session_leases (
    session_name       text COLLATE "C" PRIMARY KEY
                       REFERENCES whatsapp_sessions (session_name) ON DELETE CASCADE,
    holder             text,
    epoch              bigint NOT NULL DEFAULT 0,
    expires_at         timestamptz NOT NULL,
    acquired_at        timestamptz,
    renewed_at         timestamptz,
    move_to            text,
    move_requested_at  timestamptz,
    move_requested_by  text,
    offered_to         text
);

-- Each host's health monitor says it is alive, and what it offers, every few seconds.
CREATE TABLE host_heartbeats (
    host_id           text PRIMARY KEY,
    beat_at           timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    started_at        timestamptz,
    accepts_failover  boolean NOT NULL DEFAULT true,
    base_port         integer,
    max_sessions      integer,
    mem_available_mb  integer,
    ram_floor_mb      integer,
    version           text
);

-- The sim connector's auth for sessions whose auth lives in the store.
CREATE TABLE sim_devices (
    session_name  text COLLATE "C" PRIMARY KEY
                  REFERENCES whatsapp_sessions (session_name) ON DELETE CASCADE,
    device        text NOT NULL,
    phone         text NOT NULL,
    paired_at     timestamptz NOT NULL DEFAULT now()
);

-- The simulated WhatsApp server's connections: one device, one open link; a second
-- link of the same device closes the first ("replaced"). overlap marks a replacement
-- while the first link was still in use (it had beaten within the live window): two
-- hosts driving one device, which must never happen.
CREATE TABLE sim_links (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device        text NOT NULL,
    session_name  text NOT NULL,
    host          text NOT NULL,
    pid           integer,
    epoch         bigint,
    opened_at     timestamptz NOT NULL,
    seen_at       timestamptz NOT NULL,
    closed_at     timestamptz,
    close_reason  text,
    replaced_by   bigint,
    overlap       boolean NOT NULL DEFAULT false
);
CREATE INDEX sim_links_open ON sim_links (device) WHERE closed_at IS NULL;
CREATE INDEX sim_links_by_session ON sim_links (session_name, id);

-- 0001's create, with the two new columns taken from p_session too.
CREATE OR REPLACE FUNCTION zapvisor_create_session(
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
            desired_state, webhook_url, webhook_events, ai_config, timing_config,
            api_token_hash, auth, failover)
        SELECT v_name, coalesce(r.description, ''), v_host, v_port, r.connector,
            coalesce(r.desired_state, 'running'), r.webhook_url, r.webhook_events,
            coalesce(r.ai_config, '{}'), coalesce(r.timing_config, '{}'), r.api_token_hash,
            coalesce(r.auth, 'local'), coalesce(r.failover, true)
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
            jsonb_build_object('port', v_port, 'connector', v_row.connector,
                               'auth', v_row.auth));
    RETURN v_row;
END $$;

-- Change where a session's auth lives (only while no phone is linked: the auth itself
-- does not move between files and the store) and its failover switch. NULL keeps a
-- value. Errors: ZV004; ZV010 (DETAIL 'linked') a phone is linked.
CREATE FUNCTION zapvisor_set_failover(p_name text, p_auth text, p_failover boolean,
    p_actor text)
RETURNS whatsapp_sessions
LANGUAGE plpgsql AS $$
DECLARE
    v_old whatsapp_sessions;
    v_new whatsapp_sessions;
BEGIN
    SELECT * INTO v_old FROM whatsapp_sessions WHERE session_name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no session named %', p_name USING ERRCODE = 'ZV004';
    END IF;
    IF p_auth IS NOT NULL AND p_auth <> v_old.auth AND v_old.phone IS NOT NULL THEN
        RAISE EXCEPTION 'session % is linked to a phone', p_name
            USING ERRCODE = 'ZV010', DETAIL = 'linked';
    END IF;
    UPDATE whatsapp_sessions SET auth = coalesce(p_auth, auth),
        failover = coalesce(p_failover, failover), updated_at = clock_timestamp()
    WHERE id = v_old.id
    RETURNING * INTO v_new;
    INSERT INTO session_events (session_name, actor, action, detail)
    VALUES (p_name, p_actor, 'configure',
        jsonb_strip_nulls(jsonb_build_object('auth', p_auth, 'failover', p_failover)));
    RETURN v_new;
END $$;

-- The webhook signing secret of a session whose auth lives in the store: it moves with
-- the session, so receivers keep verifying signatures after a failover.
CREATE TABLE session_secrets (
    session_name    text COLLATE "C" PRIMARY KEY
                    REFERENCES whatsapp_sessions (session_name) ON DELETE CASCADE,
    webhook_secret  text NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION zapvisor_webhook_secret(p_name text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT webhook_secret FROM session_secrets WHERE session_name = p_name
$$;

CREATE FUNCTION zapvisor_save_webhook_secret(p_name text, p_secret text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO session_secrets AS s (session_name, webhook_secret, updated_at)
    VALUES (p_name, p_secret, now())
    ON CONFLICT (session_name) DO UPDATE SET webhook_secret = excluded.webhook_secret,
        updated_at = excluded.updated_at;
EXCEPTION WHEN foreign_key_violation THEN
    RAISE EXCEPTION 'no session named %', p_name USING ERRCODE = 'ZV004';
END $$;

-- -- the fence -------------------------------------------------------------------------

CREATE FUNCTION zapvisor_fence() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        nullif(current_setting('zapvisor.fence', true), ''),
        nullif(current_setting('request.headers', true), '')::json ->> 'x-zapvisor-fence')
$$;

CREATE FUNCTION zapvisor_fence_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_fence text := zapvisor_fence();
    v_name text;
    v_epoch bigint;
    v_holder text;
    v_lease session_leases;
BEGIN
    IF v_fence IS NULL THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP = 'DELETE' THEN v_name := OLD.session_name; ELSE v_name := NEW.session_name; END IF;
    v_epoch := split_part(v_fence, ':', 1)::bigint;
    v_holder := substr(v_fence, length(split_part(v_fence, ':', 1)) + 2);
    -- FOR SHARE: a claim (which updates the lease) waits until this write commits, and
    -- a write that comes after the claim sees the new holder.
    SELECT * INTO v_lease FROM session_leases WHERE session_name = v_name FOR SHARE;
    IF NOT FOUND OR v_lease.holder IS DISTINCT FROM v_holder OR v_lease.epoch <> v_epoch THEN
        RAISE EXCEPTION 'the lease of % is no longer %''s (epoch %)', v_name, v_holder, v_epoch
            USING ERRCODE = 'ZV006',
            DETAIL = jsonb_build_object('session', v_name, 'holder', v_lease.holder,
                                        'epoch', v_lease.epoch)::text;
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;

CREATE TRIGGER whatsapp_sessions_fence BEFORE UPDATE ON whatsapp_sessions
FOR EACH ROW EXECUTE FUNCTION zapvisor_fence_guard();
CREATE TRIGGER webhook_outbox_fence BEFORE INSERT OR UPDATE ON webhook_outbox
FOR EACH ROW EXECUTE FUNCTION zapvisor_fence_guard();
CREATE TRIGGER sim_devices_fence BEFORE INSERT OR UPDATE OR DELETE ON sim_devices
FOR EACH ROW EXECUTE FUNCTION zapvisor_fence_guard();
CREATE TRIGGER session_secrets_fence BEFORE INSERT OR UPDATE ON session_secrets
FOR EACH ROW EXECUTE FUNCTION zapvisor_fence_guard();

-- -- leases ----------------------------------------------------------------------------

CREATE FUNCTION zapvisor_lease_json(l session_leases) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN l.session_name IS NULL THEN NULL ELSE
        to_jsonb(l) || jsonb_build_object('now', now()) END
$$;

-- A runner starting on p_host takes its session's lease: a new epoch each time (a
-- runner that outlived its restart can then write nothing more), valid p_ttl seconds.
-- Errors: ZV004 no such session; ZV007 the session runs on another host (DETAIL its
-- host); ZV008 another host holds it, or it is being moved (DETAIL the lease as JSON).
CREATE FUNCTION zapvisor_lease_acquire(p_name text, p_host text, p_ttl double precision)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_session whatsapp_sessions;
    v_lease session_leases;
BEGIN
    SELECT * INTO v_session FROM whatsapp_sessions WHERE session_name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no session named %', p_name USING ERRCODE = 'ZV004';
    END IF;
    IF v_session.host <> p_host THEN
        RAISE EXCEPTION 'session % runs on host %, not %', p_name, v_session.host, p_host
            USING ERRCODE = 'ZV007', DETAIL = v_session.host;
    END IF;
    SELECT * INTO v_lease FROM session_leases WHERE session_name = p_name FOR UPDATE;
    IF FOUND AND (v_lease.move_to IS NOT NULL OR v_lease.offered_to IS NOT NULL
                  OR (v_lease.holder IS DISTINCT FROM p_host AND v_lease.expires_at > now())) THEN
        RAISE EXCEPTION 'the lease of % is held by % until % (move to: %)', p_name,
            v_lease.holder, v_lease.expires_at, v_lease.move_to
            USING ERRCODE = 'ZV008', DETAIL = zapvisor_lease_json(v_lease)::text;
    END IF;
    INSERT INTO session_leases AS l (session_name, holder, epoch, expires_at, acquired_at,
        renewed_at)
    VALUES (p_name, p_host, 1, now() + make_interval(secs => p_ttl), now(), now())
    ON CONFLICT (session_name) DO UPDATE SET
        holder = excluded.holder,
        epoch = l.epoch + 1,
        expires_at = excluded.expires_at,
        acquired_at = excluded.acquired_at,
        renewed_at = excluded.renewed_at,
        offered_to = NULL
    RETURNING * INTO v_lease;
    RETURN zapvisor_lease_json(v_lease);
END $$;

-- The holder extends its lease by p_ttl seconds from now. Also after it expired, as long
-- as nobody took it meanwhile (same holder, same epoch). Errors: ZV006 lost.
CREATE FUNCTION zapvisor_lease_renew(p_name text, p_host text, p_epoch bigint,
    p_ttl double precision)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_lease session_leases;
BEGIN
    UPDATE session_leases SET expires_at = now() + make_interval(secs => p_ttl),
        renewed_at = now()
    WHERE session_name = p_name AND holder = p_host AND epoch = p_epoch
    RETURNING * INTO v_lease;
    IF NOT FOUND THEN
        SELECT * INTO v_lease FROM session_leases WHERE session_name = p_name;
        RAISE EXCEPTION 'the lease of % is no longer %''s (epoch %)', p_name, p_host, p_epoch
            USING ERRCODE = 'ZV006',
            DETAIL = jsonb_build_object('session', p_name, 'holder', v_lease.holder,
                                        'epoch', v_lease.epoch)::text;
    END IF;
    RETURN zapvisor_lease_json(v_lease);
END $$;

-- A runner that stops lets its lease end now (a no-op when it is no longer its own).
CREATE FUNCTION zapvisor_lease_release(p_name text, p_host text, p_epoch bigint)
RETURNS boolean
LANGUAGE sql AS $$
    WITH done AS (
        UPDATE session_leases SET expires_at = least(expires_at, now())
        WHERE session_name = p_name AND holder = p_host AND epoch = p_epoch
        RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM done)
$$;

-- The lease of a session (NULL when none was ever taken), with its host's heartbeat.
CREATE FUNCTION zapvisor_lease_info(p_name text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('now', now(), 'lease', to_jsonb(l), 'heartbeat',
        CASE WHEN h.host_id IS NOT NULL THEN to_jsonb(h)
            || jsonb_build_object('host', h.host_id, 'live', h.expires_at > now()) END)
    FROM whatsapp_sessions s
    LEFT JOIN session_leases l ON l.session_name = s.session_name
    LEFT JOIN host_heartbeats h ON h.host_id = s.host
    WHERE s.session_name = p_name
$$;

-- -- host heartbeats -------------------------------------------------------------------

-- p_host is alive for p_ttl seconds more; p_info: what it offers (accepts_failover,
-- base_port, max_sessions, mem_available_mb, ram_floor_mb, version). Returns now().
CREATE FUNCTION zapvisor_host_beat(p_host text, p_ttl double precision, p_info jsonb)
RETURNS timestamptz
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO host_heartbeats AS h (host_id, beat_at, expires_at, started_at,
        accepts_failover, base_port, max_sessions, mem_available_mb, ram_floor_mb, version)
    VALUES (p_host, now(), now() + make_interval(secs => p_ttl),
        (p_info ->> 'started_at')::timestamptz,
        coalesce((p_info ->> 'accepts_failover')::boolean, true),
        (p_info ->> 'base_port')::integer, (p_info ->> 'max_sessions')::integer,
        (p_info ->> 'mem_available_mb')::integer, (p_info ->> 'ram_floor_mb')::integer,
        p_info ->> 'version')
    ON CONFLICT (host_id) DO UPDATE SET
        beat_at = excluded.beat_at,
        expires_at = excluded.expires_at,
        started_at = coalesce(excluded.started_at, h.started_at),
        accepts_failover = excluded.accepts_failover,
        base_port = excluded.base_port,
        max_sessions = excluded.max_sessions,
        mem_available_mb = excluded.mem_available_mb,
        ram_floor_mb = excluded.ram_floor_mb,
        version = excluded.version;
    RETURN now();
END $$;

-- What every monitor looks at once per check: the hosts (heartbeats and session
-- counts), the sessions that a silent host left behind (lease expired, desired running,
-- run under a lease at least once: a host on an older zapvisor takes no lease, and its
-- sessions are never taken from it), the sessions handed over to a host, and the
-- planned moves waiting for their holder.
CREATE FUNCTION zapvisor_fleet_state() RETURNS jsonb
LANGUAGE sql STABLE AS $$
    WITH counts AS (
        SELECT host, count(*)::integer AS sessions FROM whatsapp_sessions GROUP BY host
    ), hosts AS (
        SELECT coalesce(h.host_id, c.host) AS host, h.beat_at, h.expires_at, h.started_at,
            coalesce(h.expires_at > now(), false) AS live,
            coalesce(h.accepts_failover, false) AS accepts_failover, h.base_port,
            h.max_sessions, h.mem_available_mb, h.ram_floor_mb, h.version,
            coalesce(c.sessions, 0) AS sessions
        FROM host_heartbeats h FULL JOIN counts c ON c.host = h.host_id
    ), sessions AS (
        SELECT s.session_name, s.host, s.port, s.auth, s.failover, s.connector,
            s.desired_state, l.holder, l.epoch, l.expires_at AS lease_expires_at,
            l.offered_to, l.move_to, l.move_requested_at, l.move_requested_by,
            h.beat_at AS host_beat_at,
            coalesce(h.expires_at > now(), false) AS host_live,
            greatest(l.expires_at, h.expires_at) AS claimable_since
        FROM whatsapp_sessions s
        JOIN session_leases l ON l.session_name = s.session_name
        -- who must run it: its host, or the host a planned move handed it to
        LEFT JOIN host_heartbeats h ON h.host_id = coalesce(l.offered_to, s.host)
    )
    SELECT jsonb_build_object(
        'now', now(),
        'hosts', (SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.host), '[]') FROM hosts x),
        'orphans', (SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.session_name), '[]')
                    FROM sessions x
                    WHERE x.lease_expires_at <= now() AND NOT x.host_live
                      AND x.desired_state = 'running'),
        'offers', (SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.session_name), '[]')
                   FROM sessions x WHERE x.offered_to IS NOT NULL AND x.host_live),
        'moves', (SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.session_name), '[]')
                  FROM sessions x WHERE x.move_to IS NOT NULL))
$$;

-- -- claims and moves ------------------------------------------------------------------

-- p_host takes the session over: a failover (its host is silent, its lease expired, its
-- auth is in the store and failover is on) or the end of a planned move (it was offered
-- to p_host). The session gets the lowest free port of p_host's range (p_port_first..
-- p_port_last, none in p_exclude), under the same per-host lock as create; its lease
-- goes to p_host with a new epoch; the audit trail says what moved, from where, why.
-- Returns NULL when the session is not (or no longer) claimable by p_host: another
-- host won the race, its host came back, or it was deleted. Errors: ZV002, ZV003 (as
-- create).
CREATE FUNCTION zapvisor_claim_session(
    p_name text,
    p_host text,
    p_port_first integer,
    p_port_last integer,
    p_exclude jsonb,
    p_max_sessions integer,
    p_ttl double precision,
    p_actor text
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_exclude integer[] := ARRAY(SELECT jsonb_array_elements_text(coalesce(p_exclude, '[]'))::integer);
    v_session whatsapp_sessions;
    v_lease session_leases;
    v_beat host_heartbeats;
    v_kind text;
    v_held integer[];
    v_port integer;
    v_busy integer[];
    v_silent_since timestamptz;
    v_silent_host text;
    v_message text;
    v_detail jsonb;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('zapvisor.ports:' || p_host, 0));
    SELECT * INTO v_session FROM whatsapp_sessions WHERE session_name = p_name FOR UPDATE;
    IF NOT FOUND OR v_session.host = p_host THEN
        RETURN NULL;
    END IF;
    SELECT * INTO v_lease FROM session_leases WHERE session_name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    -- who must run it: its host, or the host a planned move handed it to; a failover
    -- happens when that one is silent (a pending move_to of a silent host is moot)
    SELECT * INTO v_beat FROM host_heartbeats
    WHERE host_id = coalesce(v_lease.offered_to, v_session.host);
    IF v_lease.offered_to = p_host THEN
        v_kind := 'move';
    ELSIF v_lease.expires_at <= now()
        AND (v_beat.host_id IS NULL OR v_beat.expires_at <= now())
        AND v_session.desired_state = 'running'
        AND v_session.auth = 'store' AND v_session.failover THEN
        v_kind := 'failover';
        v_silent_host := coalesce(v_lease.offered_to, v_session.host);
        v_silent_since := coalesce(v_beat.beat_at, v_lease.renewed_at, v_lease.expires_at);
    ELSE
        RETURN NULL;
    END IF;
    SELECT coalesce(array_agg(port), '{}') INTO v_held
    FROM whatsapp_sessions WHERE host = p_host;
    IF cardinality(v_held) >= p_max_sessions THEN
        RAISE EXCEPTION 'MAX_SESSIONS (%) reached on host %', p_max_sessions, p_host
            USING ERRCODE = 'ZV002';
    END IF;
    SELECT min(p) INTO v_port
    FROM generate_series(p_port_first, p_port_last) AS p
    WHERE p <> ALL (v_held) AND p <> ALL (v_exclude);
    IF v_port IS NULL THEN
        SELECT coalesce(array_agg(p ORDER BY p), '{}') INTO v_busy
        FROM generate_series(p_port_first, p_port_last) AS p
        WHERE p = ANY (v_exclude) AND p <> ALL (v_held);
        RAISE EXCEPTION 'no free port in %-% on host %', p_port_first, p_port_last, p_host
            USING ERRCODE = 'ZV003', DETAIL = to_jsonb(v_busy)::text;
    END IF;
    -- what the old host's runner last reported is not true here (yet): the new runner
    -- reports its own
    UPDATE whatsapp_sessions SET host = p_host, port = v_port, status = 'initializing',
        qr_payload = NULL, qr_expires_at = NULL, updated_at = clock_timestamp()
    WHERE id = v_session.id;
    UPDATE session_leases SET holder = p_host, epoch = v_lease.epoch + 1,
        expires_at = now() + make_interval(secs => p_ttl), acquired_at = now(),
        renewed_at = now(), offered_to = NULL, move_to = NULL, move_requested_at = NULL,
        move_requested_by = NULL
    WHERE session_name = p_name
    RETURNING * INTO v_lease;
    IF v_kind = 'failover' THEN
        v_message := format('failover of %s from %s to %s: %s silent since %s', p_name,
            v_session.host, p_host, v_silent_host,
            to_char(v_silent_since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC');
    ELSE
        v_message := format('move of %s from %s to %s', p_name, v_session.host, p_host);
    END IF;
    v_detail := jsonb_build_object('from', v_session.host, 'to', p_host,
        'from_port', v_session.port, 'to_port', v_port, 'epoch', v_lease.epoch,
        'silent_since', v_silent_since, 'message', v_message);
    INSERT INTO session_events (session_name, actor, action, detail)
    VALUES (p_name, p_actor, v_kind, v_detail);
    IF v_session.status <> 'initializing' THEN
        INSERT INTO session_events (session_name, actor, action, from_status, to_status, detail)
        VALUES (p_name, p_actor, 'status', v_session.status, 'initializing',
                jsonb_build_object('reason', v_kind));
    END IF;
    RETURN v_detail || jsonb_build_object('session', p_name, 'kind', v_kind);
END $$;

-- An operator asks for p_name to move to p_to. The target must be alive (a fresh
-- heartbeat) with room; the auth must be in the store. When nothing runs the session
-- (stopped, or its host is silent and its lease expired) it is offered to p_to at
-- once; otherwise its holder's monitor stops it and hands it over (zapvisor_hand_over).
-- Errors: ZV004; ZV009 target silent or unknown (DETAIL JSON); ZV010 cannot move
-- (DETAIL the reason); ZV002 target full.
CREATE FUNCTION zapvisor_request_move(p_name text, p_to text, p_actor text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_session whatsapp_sessions;
    v_lease session_leases;
    v_target host_heartbeats;
    v_source host_heartbeats;
    v_count integer;
    v_state text;
    v_leased boolean;
BEGIN
    SELECT * INTO v_session FROM whatsapp_sessions WHERE session_name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no session named %', p_name USING ERRCODE = 'ZV004';
    END IF;
    IF v_session.host = p_to THEN
        RAISE EXCEPTION 'session % already runs on %', p_name, p_to
            USING ERRCODE = 'ZV010', DETAIL = 'same host';
    END IF;
    IF v_session.auth <> 'store' THEN
        RAISE EXCEPTION 'session % keeps its WhatsApp auth in files on %', p_name,
            v_session.host USING ERRCODE = 'ZV010', DETAIL = 'local auth';
    END IF;
    SELECT * INTO v_target FROM host_heartbeats WHERE host_id = p_to;
    IF NOT FOUND OR v_target.expires_at <= now() THEN
        RAISE EXCEPTION 'host % is not answering', p_to
            USING ERRCODE = 'ZV009', DETAIL = jsonb_build_object('host', p_to,
                'beat_at', v_target.beat_at, 'now', now())::text;
    END IF;
    SELECT count(*) INTO v_count FROM whatsapp_sessions WHERE host = p_to;
    IF v_target.max_sessions IS NOT NULL AND v_count >= v_target.max_sessions THEN
        RAISE EXCEPTION 'MAX_SESSIONS (%) reached on host %', v_target.max_sessions, p_to
            USING ERRCODE = 'ZV002';
    END IF;
    SELECT * INTO v_lease FROM session_leases WHERE session_name = p_name FOR UPDATE;
    v_leased := FOUND;
    IF v_leased AND (v_lease.offered_to IS NOT NULL OR v_lease.move_to IS NOT NULL) THEN
        RAISE EXCEPTION 'session % is already being moved to %', p_name,
            coalesce(v_lease.offered_to, v_lease.move_to)
            USING ERRCODE = 'ZV010', DETAIL = 'moving';
    END IF;
    SELECT * INTO v_source FROM host_heartbeats WHERE host_id = v_session.host;
    -- Nothing runs it when it is stopped and its lease (if any) ended, or when its
    -- host is silent and its lease ended. A session never run under a lease may be
    -- running on a host of an older zapvisor: only its own host can hand it over.
    IF (NOT v_leased AND v_session.desired_state = 'stopped')
        OR (v_leased AND v_lease.expires_at <= now()
            AND (v_session.desired_state = 'stopped' OR v_source.host_id IS NULL
                 OR v_source.expires_at <= now())) THEN
        -- nothing runs it: offer it to p_to now, with a new epoch (fences a late writer)
        INSERT INTO session_leases AS l (session_name, holder, epoch, expires_at, offered_to,
            move_requested_at, move_requested_by)
        VALUES (p_name, NULL, 1, now(), p_to, now(), p_actor)
        ON CONFLICT (session_name) DO UPDATE SET holder = NULL, epoch = l.epoch + 1,
            expires_at = least(l.expires_at, now()), offered_to = p_to, move_to = NULL,
            move_requested_at = now(), move_requested_by = p_actor;
        v_state := 'offered';
    ELSE
        UPDATE session_leases SET move_to = p_to, move_requested_at = now(),
            move_requested_by = p_actor
        WHERE session_name = p_name;
        v_state := 'requested';
    END IF;
    INSERT INTO session_events (session_name, actor, action, detail)
    VALUES (p_name, p_actor, 'move_requested', jsonb_build_object('from', v_session.host,
        'to', p_to, 'state', v_state));
    RETURN jsonb_build_object('session', p_name, 'from', v_session.host, 'to', p_to,
        'state', v_state, 'now', now());
END $$;

-- The holder p_host stopped the session for a planned move: the lease ends now with a
-- new epoch (whatever the old runner still tries to write is refused) and is offered to
-- the move's target. NULL when no move is pending for p_host.
CREATE FUNCTION zapvisor_hand_over(p_name text, p_host text, p_actor text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_session whatsapp_sessions;
    v_lease session_leases;
    v_to text;
BEGIN
    SELECT * INTO v_session FROM whatsapp_sessions WHERE session_name = p_name FOR UPDATE;
    IF NOT FOUND OR v_session.host <> p_host THEN
        RETURN NULL;
    END IF;
    SELECT * INTO v_lease FROM session_leases WHERE session_name = p_name FOR UPDATE;
    IF NOT FOUND OR v_lease.move_to IS NULL THEN
        RETURN NULL;
    END IF;
    v_to := v_lease.move_to;
    UPDATE session_leases SET holder = NULL, epoch = epoch + 1,
        expires_at = least(expires_at, now()), offered_to = v_to, move_to = NULL
    WHERE session_name = p_name
    RETURNING * INTO v_lease;
    INSERT INTO session_events (session_name, actor, action, detail)
    VALUES (p_name, p_actor, 'hand_over', jsonb_build_object('from', p_host, 'to', v_to,
        'epoch', v_lease.epoch));
    RETURN jsonb_build_object('session', p_name, 'from', p_host, 'to', v_to);
END $$;

-- Withdraw a planned move its holder has not handed over yet; false when there was none
-- (or it was already handed over).
CREATE FUNCTION zapvisor_cancel_move(p_name text, p_actor text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE session_leases SET move_to = NULL, move_requested_at = NULL,
        move_requested_by = NULL
    WHERE session_name = p_name AND move_to IS NOT NULL;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO session_events (session_name, actor, action, detail)
    VALUES (p_name, p_actor, 'move_cancelled', '{}');
    RETURN true;
END $$;

-- -- the sim connector: its auth in the store, its simulated WhatsApp server -------------

CREATE FUNCTION zapvisor_sim_auth(p_name text) RETURNS SETOF sim_devices
LANGUAGE sql STABLE AS $$
    SELECT * FROM sim_devices WHERE session_name = p_name
$$;

CREATE FUNCTION zapvisor_sim_auth_save(p_name text, p_device text, p_phone text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sim_devices AS d (session_name, device, phone, paired_at)
    VALUES (p_name, p_device, p_phone, now())
    ON CONFLICT (session_name) DO UPDATE SET device = excluded.device,
        phone = excluded.phone, paired_at = excluded.paired_at;
EXCEPTION WHEN foreign_key_violation THEN
    RAISE EXCEPTION 'no session named %', p_name USING ERRCODE = 'ZV004';
END $$;

CREATE FUNCTION zapvisor_sim_auth_delete(p_name text) RETURNS boolean
LANGUAGE sql AS $$
    WITH gone AS (DELETE FROM sim_devices WHERE session_name = p_name RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM gone)
$$;

-- A device connects: its open link, if any, is closed as replaced (overlap when that
-- link had beaten within p_live seconds: it was in use), and the replacement is in the
-- audit trail. Returns the new link's id and what it replaced.
CREATE FUNCTION zapvisor_sim_open(p_device text, p_session text, p_host text,
    p_pid integer, p_epoch bigint, p_live double precision)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
    v_old sim_links;
    v_replaced jsonb := '[]';
    v_live boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('zapvisor.sim:' || p_device, 0));
    INSERT INTO sim_links (device, session_name, host, pid, epoch, opened_at, seen_at)
    VALUES (p_device, p_session, p_host, p_pid, p_epoch, clock_timestamp(), clock_timestamp())
    RETURNING id INTO v_id;
    FOR v_old IN SELECT * FROM sim_links
                 WHERE device = p_device AND closed_at IS NULL AND id <> v_id FOR UPDATE LOOP
        v_live := v_old.seen_at > clock_timestamp() - make_interval(secs => p_live);
        UPDATE sim_links SET closed_at = clock_timestamp(),
            close_reason = CASE WHEN v_live THEN 'replaced' ELSE 'expired' END,
            replaced_by = v_id, overlap = v_live
        WHERE id = v_old.id;
        v_replaced := v_replaced || jsonb_build_object('id', v_old.id, 'host', v_old.host,
            'pid', v_old.pid, 'live', v_live);
        INSERT INTO session_events (session_name, actor, action, detail)
        VALUES (p_session, 'sim', CASE WHEN v_live THEN 'sim_replaced' ELSE 'sim_expired' END,
            jsonb_build_object('device', p_device, 'old_host', v_old.host,
                'old_pid', v_old.pid, 'new_host', p_host, 'new_pid', p_pid,
                'old_seen_at', v_old.seen_at));
    END LOOP;
    RETURN jsonb_build_object('id', v_id, 'replaced', v_replaced);
END $$;

-- A link in use says so; returns whether it is still open, and if not why.
CREATE FUNCTION zapvisor_sim_beat(p_id bigint) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_link sim_links;
BEGIN
    UPDATE sim_links SET seen_at = clock_timestamp()
    WHERE id = p_id AND closed_at IS NULL
    RETURNING * INTO v_link;
    IF NOT FOUND THEN
        SELECT * INTO v_link FROM sim_links WHERE id = p_id;
        RETURN jsonb_build_object('open', false, 'reason', v_link.close_reason,
            'by', (SELECT host FROM sim_links WHERE id = v_link.replaced_by));
    END IF;
    RETURN jsonb_build_object('open', true);
END $$;

CREATE FUNCTION zapvisor_sim_close(p_id bigint, p_reason text) RETURNS void
LANGUAGE sql AS $$
    UPDATE sim_links SET closed_at = clock_timestamp(), close_reason = p_reason
    WHERE id = p_id AND closed_at IS NULL
$$;

-- A session's links, newest first (tests and the audit read them).
CREATE FUNCTION zapvisor_sim_links(p_name text, p_limit integer) RETURNS SETOF sim_links
LANGUAGE sql STABLE AS $$
    SELECT * FROM sim_links WHERE p_name IS NULL OR session_name = p_name
    ORDER BY id DESC LIMIT p_limit
$$;

-- -- rights, as in 0001 ------------------------------------------------------------------

ALTER TABLE session_leases ENABLE ROW LEVEL SECURITY;
ALTER TABLE host_heartbeats ENABLE ROW LEVEL SECURITY;
ALTER TABLE sim_devices ENABLE ROW LEVEL SECURITY;
ALTER TABLE sim_links ENABLE ROW LEVEL SECURITY;
ALTER TABLE session_secrets ENABLE ROW LEVEL SECURITY;

DO $$
DECLARE
    v_role text;
    v_functions constant text := 'zapvisor_fence(), zapvisor_fence_guard(), '
        'zapvisor_set_failover(text, text, boolean, text), '
        'zapvisor_webhook_secret(text), zapvisor_save_webhook_secret(text, text), '
        'zapvisor_lease_json(session_leases), '
        'zapvisor_lease_acquire(text, text, double precision), '
        'zapvisor_lease_renew(text, text, bigint, double precision), '
        'zapvisor_lease_release(text, text, bigint), '
        'zapvisor_lease_info(text), '
        'zapvisor_host_beat(text, double precision, jsonb), '
        'zapvisor_fleet_state(), '
        'zapvisor_claim_session(text, text, integer, integer, jsonb, integer, '
        'double precision, text), '
        'zapvisor_request_move(text, text, text), '
        'zapvisor_hand_over(text, text, text), '
        'zapvisor_cancel_move(text, text), '
        'zapvisor_sim_auth(text), '
        'zapvisor_sim_auth_save(text, text, text), '
        'zapvisor_sim_auth_delete(text), '
        'zapvisor_sim_open(text, text, text, integer, bigint, double precision), '
        'zapvisor_sim_beat(bigint), '
        'zapvisor_sim_close(bigint, text), '
        'zapvisor_sim_links(text, integer)';
BEGIN
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', v_functions);
    FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
            EXECUTE format('REVOKE ALL ON session_leases, host_heartbeats, sim_devices, '
                           'sim_links, session_secrets FROM %I', v_role);
            EXECUTE format('REVOKE ALL ON SEQUENCE sim_links_id_seq FROM %I', v_role);
            EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %I', v_functions, v_role);
        END IF;
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON session_leases, host_heartbeats, sim_devices,
            sim_links, session_secrets TO service_role;
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO service_role', v_functions);
        CREATE POLICY service_role_all ON session_leases FOR ALL TO service_role
            USING (true) WITH CHECK (true);
        CREATE POLICY service_role_all ON host_heartbeats FOR ALL TO service_role
            USING (true) WITH CHECK (true);
        CREATE POLICY service_role_all ON sim_devices FOR ALL TO service_role
            USING (true) WITH CHECK (true);
        CREATE POLICY service_role_all ON sim_links FOR ALL TO service_role
            USING (true) WITH CHECK (true);
        CREATE POLICY service_role_all ON session_secrets FOR ALL TO service_role
            USING (true) WITH CHECK (true);
    END IF;
END $$;

NOTIFY pgrst, 'reload schema';
