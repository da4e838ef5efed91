"""A PostgreSQL DSN in URL form, whatever form the operator wrote it in.

libpq (psycopg) reads both ``postgresql://user:pw@host/db`` and the key=value form
(``host=db1 user=zv password=... dbname=zv``); whatsmeow, behind neonize, reads a URL
only: neonize takes a name that does not start with ``postgres`` for a SQLite file
path, and would make a file named after the DSN, password and all. So the setting is
turned into a URL once, when it is read, and every reader gets the same database.
"""

from __future__ import annotations

import re
from urllib.parse import quote

URL_SCHEMES = ("postgresql://", "postgres://")

_PAIR = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^'\\]|\\.)*'|(?:[^\s'\\]|\\.)*)")


def is_url(dsn: str) -> bool:
    return dsn.startswith(URL_SCHEMES)


def parse_pairs(dsn: str) -> dict[str, str]:
    """libpq's key=value form as a dict, or ValueError (never quoting the text: it may
    hold a password)."""
    pairs: dict[str, str] = {}
    pos = 0
    while dsn[pos:].strip():
        match = _PAIR.match(dsn, pos)
        if match is None or match.end() == pos:
            raise ValueError(
                "is neither a postgresql:// URL nor key=value pairs "
                "(host=... port=... user=... password=... dbname=...)"
            )
        raw = match[2]
        if raw.startswith("'"):
            raw = raw[1:-1]
        pairs[match[1]] = re.sub(r"\\(.)", r"\1", raw)
        pos = match.end()
    if not pairs:
        raise ValueError("is empty")
    return pairs


def as_url(dsn: str) -> str:
    """``dsn`` as a ``postgresql://`` URL that libpq reads as the same connection: a URL
    is given back as it is."""
    if is_url(dsn):
        return dsn
    pairs = parse_pairs(dsn)
    user = pairs.pop("user", None)
    password = pairs.pop("password", None)
    dbname = pairs.pop("dbname", None)
    host = pairs.get("host", "")
    netloc = ""
    if host and not host.startswith("/") and "," not in host:
        del pairs["host"]
        netloc = f"[{host}]" if ":" in host else quote(host, safe="")
        port = pairs.get("port", "")
        if port.isdigit():
            del pairs["port"]
            netloc += f":{port}"
    if user is not None or password is not None:
        userinfo = quote(user or "", safe="")
        if password is not None:
            userinfo += ":" + quote(password, safe="")
        netloc = f"{userinfo}@{netloc}"
    path = "/" + quote(dbname, safe="") if dbname is not None else ""
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs.items())
    return f"postgresql://{netloc}{path}" + (f"?{query}" if query else "")
