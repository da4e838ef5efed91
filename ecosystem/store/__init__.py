"""Stores: where sessions, ports and events live."""

from __future__ import annotations

from ecosystem.errors import ConfigError
from ecosystem.settings import Settings
from ecosystem.store.base import Store

SHARED_STORES = ("postgres", "supabase")
"""Stores that hosts share (and sessions fail over and move through); SQLite is one
host's alone."""


def open_store(settings: Settings) -> Store:
    """The store the settings select: SUPABASE_URL → supabase, ZAPVISOR_DATABASE_URL →
    postgres, neither → the embedded SQLite. Each client library is imported only when
    its store is selected, so the CLI stays quick on the default store."""
    kind = settings.store_kind
    if kind == "sqlite":
        from ecosystem.store.sqlite import SQLiteStore

        return SQLiteStore(settings.home / "zapvisor.db")
    if kind == "postgres":
        return open_postgres(settings)
    if kind == "supabase":
        from ecosystem.store.supabase import SupabaseStore

        key = settings.supabase_service_role_key
        return SupabaseStore(str(settings.supabase_url), key.get_secret_value() if key else "")
    raise ConfigError(f"unknown store {kind!r}")  # pragma: no cover - store_kind is closed


def open_postgres(settings: Settings) -> Store:
    """The postgres store of ZAPVISOR_DATABASE_URL, whatever store is selected (`zapvisor
    db migrate` uses it for a Supabase project, whose REST API cannot change schemas)."""
    if settings.database_url is None:
        raise ConfigError(
            "ZAPVISOR_DATABASE_URL is not set: set it to a PostgreSQL connection string "
            "(postgresql://user:password@host:5432/dbname)"
        )
    from ecosystem.store.postgres import PostgresStore

    return PostgresStore(settings.database_url.get_secret_value())


__all__ = ["SHARED_STORES", "Store", "open_postgres", "open_store"]
