"""Stores: where sessions, ports and events live."""

from __future__ import annotations

from ecosystem.errors import ConfigError
from ecosystem.settings import Settings
from ecosystem.store.base import Store


def open_store(settings: Settings) -> Store:
    """The store the settings select: Supabase, PostgreSQL, or the embedded SQLite."""
    kind = settings.store_kind
    if kind == "sqlite":
        from ecosystem.store.sqlite import SQLiteStore

        return SQLiteStore(settings.home / "zapvisor.db")
    raise ConfigError(
        f"the {kind} store is not available in this version; unset "
        f"{'SUPABASE_URL' if kind == 'supabase' else 'ZAPVISOR_DATABASE_URL'} "
        "to use the embedded SQLite store"
    )


__all__ = ["Store", "open_store"]
