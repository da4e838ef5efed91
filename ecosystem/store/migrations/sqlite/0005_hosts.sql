-- The fleet's hosts registry; names match the PostgreSQL schema (postgres/0005_hosts.sql).
-- (There is no sqlite 0004: that PostgreSQL migration only revokes rights.) `zapvisor
-- hosts add` refuses on SQLite, which one machine alone uses; the table is here so every
-- store keeps the same rows (and `zapvisor db copy` has nothing to lose).
ALTER TABLE hosts ADD COLUMN ssh_user TEXT;
ALTER TABLE hosts ADD COLUMN ssh_port INTEGER NOT NULL DEFAULT 22
    CHECK (ssh_port BETWEEN 1 AND 65535);
ALTER TABLE hosts ADD COLUMN identity_file TEXT;
ALTER TABLE hosts ADD COLUMN base_port INTEGER CHECK (base_port BETWEEN 1 AND 65535);
ALTER TABLE hosts ADD COLUMN max_sessions INTEGER CHECK (max_sessions >= 1);
ALTER TABLE hosts ADD COLUMN zapvisor_path TEXT;
ALTER TABLE hosts ADD COLUMN version TEXT;
ALTER TABLE hosts ADD COLUMN host_key TEXT;
ALTER TABLE hosts ADD COLUMN added_by TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN last_seen TEXT;
