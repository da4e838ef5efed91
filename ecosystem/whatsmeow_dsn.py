"""The DSN whatsmeow's PostgreSQL store gets: whatsmeow reaches PostgreSQL through Go's
lib/pq, which reads a DSN without ``sslmode`` as ``require`` where libpq (psycopg)
prefers; runner/connectors/neonize_store.py's docstring tells the whole story. Here (no
psycopg import: a runner with local auth never loads it) so that the runner and a
restore, which has whatsmeow create its tables, give whatsmeow the same DSN."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit


def whatsmeow_dsn(dsn: str, environ: Mapping[str, str] | None = None) -> str:
    """``dsn`` with the ``sslmode`` lib/pq needs to do what libpq does with it (see the
    module's docstring): unchanged when it says one or PGSSLMODE is set; else
    ``disable`` for a loopback or unix-socket host, ``prefer`` for any other."""
    env = os.environ if environ is None else environ
    parts = urlsplit(dsn)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(k == "sslmode" for k, _ in query) or env.get("PGSSLMODE"):
        return dsn
    host = parts.hostname or dict(query).get("host") or env.get("PGHOST") or "localhost"
    mode = "disable" if _on_this_machine(host) else "prefer"
    # by hand: urlunsplit would drop the empty host of "postgresql:///db?host=/run/pg"
    base, hash_, fragment = dsn.partition("#")
    sep = "" if base.endswith(("?", "&")) else "&" if "?" in base else "?"
    return f"{base}{sep}sslmode={mode}{hash_}{fragment}"


def _on_this_machine(host: str) -> bool:
    if host.startswith("/") or host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
