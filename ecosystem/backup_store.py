"""What a backup takes from the store besides the session rows, and gives back on
restore: the auth rows of sessions whose WhatsApp auth lives in the store (so they come
back paired on a fresh store, without a new QR) and the webhook events not delivered
yet, streamed one at a time both ways (backups.py does the rest)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ecosystem.backup_archive import ArchiveError, Contents
from ecosystem.errors import StoreUnsupported
from ecosystem.lease import AuthKind, SimDevice
from ecosystem.session import Session
from ecosystem.store import Store
from ecosystem.webhook_events import DeliveryState, WebhookEvent

ALL_ROWS = 10**9
EVENT_BATCH = 500
"""Events restored per store call: a bounded document, whatever the backlog."""
SIM = "sim"
"""The auth row kind of the sim connector (its table sim_devices)."""


# -- backup ------------------------------------------------------------------------------


def store_auth_rows(store: Store, sessions: Sequence[Session]) -> list[dict[str, Any]]:
    """The auth rows the store keeps for the sim sessions whose auth lives there
    (neonize's are whatsmeow's own tables: ecosystem/whatsmeow_dump.py)."""
    out: list[dict[str, Any]] = []
    for s in sessions:
        if s.auth != AuthKind.STORE or s.connector != SIM:
            continue
        device = store.sim_auth(s.name)
        if device is not None:
            out.append({"kind": SIM, **device.model_dump(mode="json")})
    return out


def undelivered(store: Store, sessions: Sequence[Session]) -> Iterator[dict[str, Any]]:
    """Each session's pending events then its dead letters, oldest first, one at a time
    (a store without an outbox has none)."""
    for s in sessions:
        for state in (DeliveryState.PENDING, DeliveryState.DEAD):
            try:
                rows = store.list_webhooks(s.name, state, ALL_ROWS)
            except StoreUnsupported:
                return
            for row in reversed(rows):
                yield row.model_dump(mode="json")


# -- restore: everything checked before anything changes ----------------------------------


def checked_store_auth(contents: Contents, sessions: Sequence[Session]) -> list[SimDevice]:
    """The archive's store auth rows, each for one session of it whose auth lives in
    the store, at most one each."""
    by_name = {s.name: s for s in sessions}
    out: list[SimDevice] = []
    for i, row in enumerate(contents.store_auth):
        kind = row.get("kind")
        if kind != SIM:
            raise ArchiveError(
                f"auth row {i + 1} of the backup is of kind {kind!r}, which this zapvisor "
                "does not know: restore it with a newer zapvisor"
            )
        try:
            device = SimDevice.model_validate({k: v for k, v in row.items() if k != "kind"})
        except ValueError as exc:
            raise ArchiveError(f"auth row {i + 1} of the backup is not valid: {exc}") from None
        session = by_name.get(device.session_name)
        if session is None or session.auth != AuthKind.STORE:
            raise ArchiveError(
                f"auth row {i + 1} of the backup belongs to no session of it whose auth "
                "lives in the store: refused"
            )
        if not device.device or not device.phone:
            raise ArchiveError(f"the auth of {device.session_name} in the backup is empty")
        if any(d.session_name == device.session_name for d in out):
            raise ArchiveError(f"the auth of {device.session_name} appears twice in the backup")
        out.append(device)
    return out


def _events(contents: Contents, names: set[str]) -> Iterator[WebhookEvent]:
    for row in contents.webhook_rows():
        try:
            event = WebhookEvent.model_validate(row)
        except ValueError as exc:
            raise ArchiveError(f"a webhook event of the backup is not valid: {exc}") from None
        if event.session_name not in names:
            raise ArchiveError(f"webhook event {event.event_id} belongs to no session in it")
        yield event


def count_events(contents: Contents, names: set[str]) -> int:
    """Every event checked, one at a time; how many."""
    return sum(1 for _ in _events(contents, names))


# -- restore: the writes ---------------------------------------------------------------


def import_events(store: Store, contents: Contents, names: set[str], *, actor: str) -> None:
    """The events into the store, EVENT_BATCH at a time (their sessions are there)."""
    batch: list[WebhookEvent] = []
    for event in _events(contents, names):
        batch.append(event)
        if len(batch) >= EVENT_BATCH:
            store.import_rows([], [], actor=actor, outbox=batch)
            batch = []
    if batch:
        store.import_rows([], [], actor=actor, outbox=batch)


def restore_store_auth(store: Store, devices: Sequence[SimDevice]) -> None:
    for device in devices:
        store.save_sim_auth(device.session_name, device.device, device.phone)
