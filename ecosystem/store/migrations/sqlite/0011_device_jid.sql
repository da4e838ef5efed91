-- The whatsmeow device a neonize session whose auth lives in the store opens (mirrors
-- postgres/0011_device_jid.sql). SQLite is one host: its neonize sessions keep their
-- auth in local files, so this stays NULL there; it is here so one Session model and
-- `zapvisor db copy` read the same columns on every store.
ALTER TABLE whatsapp_sessions ADD COLUMN device_jid TEXT;
