"""SQL migrations shipped with the package, one folder per database dialect."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ecosystem.errors import StoreError

_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load(dialect: str) -> list[Migration]:
    """The migrations of ``dialect`` (``sqlite``, ``postgres``), oldest first.

    Their folders sit beside this module in every install (a checkout, a wheel installed
    into a venv), so they are read as files: importing importlib.resources (zipfile,
    tempfile) cost a few ms of every command that opens the SQLite store."""
    found = []
    for entry in (Path(__file__).parent / dialect).iterdir():
        match = _FILE.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    return found


def pending(dialect: str, applied: set[int]) -> list[Migration]:
    """The shipped migrations not in ``applied``, oldest first: by the set, not by the
    newest version, since a migration may ship after a newer one was applied."""
    return [m for m in load(dialect) if m.version not in applied]


def sqlite_statements(script: str) -> Iterator[str]:
    """Split a migration into statements with SQLite's own notion of "complete"."""
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                yield buf
            buf = ""
    if buf.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buf.splitlines()
    ):
        raise StoreError(f"incomplete statement in a migration: {buf.strip()[:80]}")
