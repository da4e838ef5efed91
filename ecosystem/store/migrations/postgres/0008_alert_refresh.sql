-- An active alert whose figure moves keeps saying the current one: the dead-letter
-- alert said "1 webhook event(s)" while 4 were dead. Its message and value are updated
-- in place: no new alert, no new notice to the alert webhook.
CREATE FUNCTION zapvisor_refresh_alert(
    p_host text, p_key text, p_message text, p_value double precision
) RETURNS SETOF alerts
LANGUAGE sql AS $$
    UPDATE alerts SET message = p_message, value = p_value
    WHERE host = p_host AND key = p_key AND cleared_at IS NULL
        AND (message IS DISTINCT FROM p_message OR value IS DISTINCT FROM p_value)
    RETURNING *
$$;

REVOKE ALL ON FUNCTION zapvisor_refresh_alert(text, text, text, double precision) FROM PUBLIC;

DO $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
            EXECUTE format(
                'REVOKE ALL ON FUNCTION zapvisor_refresh_alert(text, text, text, '
                'double precision) FROM %I',
                v_role
            );
        END IF;
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        GRANT EXECUTE ON FUNCTION zapvisor_refresh_alert(text, text, text, double precision)
            TO service_role;
    END IF;
END $$;

NOTIFY pgrst, 'reload schema';
