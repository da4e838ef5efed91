"""A real PostgreSQL server for the tests, from the machine's own binaries.

initdb runs into a temp dir owned by the `postgres` user (PostgreSQL refuses root), the
server listens on a free loopback port with password (scram) authentication, and it is
stopped by its pid. `./scripts/test` installs the `postgresql` package when missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TypedDict
from urllib.parse import quote

import psycopg

SUPERUSER = "postgres"
PASSWORD = "zv-test-pw-7c1e"
"""The superuser's password; tests check it never shows in a message."""

AUTHENTICATOR_PASSWORD = "zv-auth-pw-93b2"


def find_bin() -> Path | None:
    """The newest /usr/lib/postgresql/*/bin holding initdb and postgres."""
    found = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for candidate in reversed(found):
        if (candidate / "initdb").exists() and (candidate / "postgres").exists():
            return candidate
    return None


class _Demote(TypedDict, total=False):
    user: str
    group: str
    extra_groups: list[str]


def _demote() -> _Demote:
    """Popen arguments that run the child as the postgres user when we are root."""
    if os.geteuid() != 0:
        return {}
    return {"user": SUPERUSER, "group": SUPERUSER, "extra_groups": []}


class PgServer:
    """One PostgreSQL cluster in a private temp dir."""

    def __init__(self, port: int, bindir: Path | None = None, max_connections: int = 200) -> None:
        found = bindir or find_bin()
        if found is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bin = found
        self.port = port
        self.max_connections = max_connections
        self.root = Path(tempfile.mkdtemp(prefix="zv-pg-", dir="/tmp"))
        self.data = self.root / "data"
        self.proc: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam(SUPERUSER)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.root.chmod(0o700)
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            os.chown(pwfile, pwd.getpwnam(SUPERUSER).pw_uid, -1)
        subprocess.run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "--pwfile",
                str(pwfile),
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--locale",
                "C.UTF-8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
            **_demote(),
        )
        pwfile.unlink()

    def dsn(self, dbname: str = "postgres", user: str = SUPERUSER, password: str = PASSWORD) -> str:
        return f"postgresql://{quote(user)}:{quote(password)}@127.0.0.1:{self.port}/{quote(dbname)}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def start(self, timeout: float = 60.0, max_connections: int | None = None) -> None:
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [
                str(self.bin / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                f"max_connections={max_connections or self.max_connections}",
                "-c",
                "shared_buffers=32MB",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **_demote(),
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited at start: {self.log_tail()}")
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postgres did not answer: {self.log_tail()}") from None
                time.sleep(0.1)

    def stop(self, timeout: float = 60.0) -> None:
        """Fast shutdown (SIGINT: clients are disconnected), by pid."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 10) -> str:
        try:
            text = (self.root / "server.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.splitlines()[-lines:])

    def execute(self, sql: str, dbname: str = "postgres") -> None:
        with psycopg.connect(self.dsn(dbname), autocommit=True) as conn:
            conn.execute(sql.encode())

    def add_supabase_roles(self) -> None:
        """The roles a Supabase project has: `anon` and `authenticated` (the anon key),
        `service_role` (the service role key, BYPASSRLS), and `authenticator`, the login
        PostgREST uses to switch to one of them per request."""
        self.execute(
            "CREATE ROLE anon NOLOGIN NOINHERIT;"
            "CREATE ROLE authenticated NOLOGIN NOINHERIT;"
            "CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;"
            f"CREATE ROLE authenticator LOGIN NOINHERIT PASSWORD '{AUTHENTICATOR_PASSWORD}';"
            "GRANT anon, authenticated, service_role TO authenticator;"
        )

    def supabase_like_database(self, dbname: str) -> None:
        """A database set up as Supabase sets up `postgres`: the API roles may use the
        public schema, and get every right on what is created there by default (so only
        row level security and our revokes stand between the anon key and the data)."""
        self.execute(f'CREATE DATABASE "{dbname}"')
        self.execute(
            "GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;"
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public"
            " GRANT ALL ON TABLES TO anon, authenticated, service_role;"
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public"
            " GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;"
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public"
            " GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;",
            dbname,
        )
