"""A session's webhook signing secret, for a session whose auth lives in the store: the
store keeps it too, so the host that takes the session over signs with the same secret
and receivers keep verifying (the file in `secrets/` stays the copy runners read).

The store's copy wins: a host that finds a different file (a stale one from before the
session moved away and back) replaces it.
"""

from __future__ import annotations

import contextlib

from ecosystem import webhook_events
from ecosystem.errors import SchemaMissing, StoreUnsupported, ZapvisorError
from ecosystem.paths import StatePaths
from ecosystem.store import Store


def shared_secret(store: Store, paths: StatePaths, name: str) -> str:
    """The secret the fleet signs ``name``'s webhooks with, written to this host's file;
    made (or taken from the file) and kept in the store when it has none yet."""
    kept = store.webhook_secret(name)
    if kept is not None:
        try:
            local = webhook_events.read_secret(paths, name)
        except ZapvisorError:
            local = None
        if local != kept:
            webhook_events.save_secret(paths, name, kept)
        return kept
    secret = webhook_events.ensure_secret(paths, name)
    store.save_webhook_secret(name, secret)
    return secret


def share(store: Store, name: str, secret: str) -> None:
    """Keep a new secret in the store (a create, a rotation); nothing when the store has
    no place for it (an older schema, SQLite)."""
    with contextlib.suppress(StoreUnsupported, SchemaMissing):
        store.save_webhook_secret(name, secret)
