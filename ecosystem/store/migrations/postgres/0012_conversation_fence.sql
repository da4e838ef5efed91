-- The bot's conversations are fenced like the rest of a runner's writes (mirrors
-- sqlite/0012_conversation_fence.sql): a runner whose lease has another holder or a
-- newer epoch can no longer add a message or touch a conversation (ZV006), so a runner
-- that froze and wakes up after its session moved cannot write into the history the
-- new holder replies from. Connections without a fence (the operator's commands,
-- `zapvisor db copy`, a restore) write as before. Depends on 0009 (the fence) and
-- 0010 (the conversations); it leaves 0011 to another change.

-- The fence check, for a session named explicitly: zapvisor_fence_guard (0009) now calls
-- it too, so there is one check, and a table that reaches its session through another
-- row (messages) uses the same.
CREATE FUNCTION zapvisor_fence_check(p_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_fence text := zapvisor_fence();
    v_epoch bigint;
    v_holder text;
    v_lease session_leases;
BEGIN
    IF v_fence IS NULL THEN
        RETURN;
    END IF;
    v_epoch := split_part(v_fence, ':', 1)::bigint;
    v_holder := substr(v_fence, length(split_part(v_fence, ':', 1)) + 2);
    -- FOR SHARE, as in zapvisor_fence_guard: a claim waits for this write to commit
    SELECT * INTO v_lease FROM session_leases WHERE session_name = p_name FOR SHARE;
    IF NOT FOUND OR v_lease.holder IS DISTINCT FROM v_holder OR v_lease.epoch <> v_epoch THEN
        RAISE EXCEPTION 'the lease of % is no longer %''s (epoch %)', p_name, v_holder, v_epoch
            USING ERRCODE = 'ZV006',
            DETAIL = jsonb_build_object('session', p_name, 'holder', v_lease.holder,
                                        'epoch', v_lease.epoch)::text;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION zapvisor_fence_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- NEW is NULL in a DELETE trigger and OLD in an INSERT's: never read the wrong one
    IF TG_OP = 'DELETE' THEN
        PERFORM zapvisor_fence_check(OLD.session_name);
        RETURN OLD;
    END IF;
    PERFORM zapvisor_fence_check(NEW.session_name);
    RETURN NEW;
END $$;

-- A message names its conversation, not its session.
CREATE FUNCTION zapvisor_message_fence_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF zapvisor_fence() IS NOT NULL THEN
        PERFORM zapvisor_fence_check(
            (SELECT c.session_name FROM conversations c WHERE c.id = NEW.conversation_id));
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER conversations_fence BEFORE INSERT OR UPDATE ON conversations
FOR EACH ROW EXECUTE FUNCTION zapvisor_fence_guard();
CREATE TRIGGER messages_fence BEFORE INSERT OR UPDATE ON messages
FOR EACH ROW EXECUTE FUNCTION zapvisor_message_fence_guard();

-- Rights, as in 0009.
DO $$
DECLARE
    v_role text;
    v_functions constant text := 'zapvisor_fence_check(text), zapvisor_message_fence_guard()';
BEGIN
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', v_functions);
    FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
            EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %I', v_functions, v_role);
        END IF;
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO service_role', v_functions);
    END IF;
END $$;

NOTIFY pgrst, 'reload schema';
