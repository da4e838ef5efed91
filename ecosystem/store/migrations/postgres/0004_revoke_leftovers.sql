-- The anon key gets nothing at all: not the identity sequences of whatsapp_sessions and
-- session_events (which Supabase's default privileges grant to anon and authenticated,
-- letting them read or reset the counters), nor the notify trigger function (which
-- PostgreSQL lets PUBLIC execute). Nothing secret sat behind either, but "nothing" is
-- the rule that is easy to check.
REVOKE ALL ON FUNCTION zapvisor_notify_session_change() FROM PUBLIC;

DO $$
DECLARE
    v_role text;
    v_seq text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
            FOREACH v_seq IN ARRAY ARRAY[
                pg_get_serial_sequence('whatsapp_sessions', 'id'),
                pg_get_serial_sequence('session_events', 'id')
            ] LOOP
                IF v_seq IS NOT NULL THEN
                    EXECUTE format('REVOKE ALL ON SEQUENCE %s FROM %I', v_seq, v_role);
                END IF;
            END LOOP;
            EXECUTE format(
                'REVOKE ALL ON FUNCTION zapvisor_notify_session_change() FROM %I', v_role
            );
        END IF;
    END LOOP;
END $$;
