"""Where a neonize session's WhatsApp auth lives, for its connector: the session's own
SQLite file (auth ``local``), or whatsmeow's PostgreSQL store in the fleet's database
(auth ``store``: any host opens the same device, so the session can fail over or move).

With the store, the device a client opens is the JID in the session's row
(``device_jid``), read once per runner once it holds the lease (the previous holder is
done with it then), and checked against whatsmeow's tables before every client: a JID
whatsmeow does not hold (the device was logged out elsewhere, or its rows deleted)
would crash the process in neonize's Go side, over and over under supervisord. It ends
in status ``error`` instead, saying how to pair again. A pairing's JID is kept in the
row with the ``connected`` report itself (one write, fenced by the runner's lease like
its other writes), so a row never says "paired" without naming its device.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ecosystem.errors import ZapvisorError
from ecosystem.lease import AuthKind
from ecosystem.settings import Settings
from runner.connectors.base import ConnectorEvents
from runner.connectors.context import ConnectorContext
from runner.connectors.neonize_pump import CallGate
from runner.connectors.neonize_store import ClientStore, client_store

log = logging.getLogger("runner.neonize")


class AuthUnusable(ZapvisorError):
    """The session's auth cannot be opened as it is: status ``error`` until the operator
    acts (logout, or a fixed setting), never a retry loop."""


class NeonizeAuth:
    def __init__(
        self, session: str, settings: Settings, context: ConnectorContext | None, db: Path
    ) -> None:
        self.session = session
        self.settings = settings
        self.context = context
        self.db = db
        self.jid: str | None = None
        """The device this session's client opens (auth ``store``), once known."""
        self.paired = False
        self._loaded = False

    @property
    def in_store(self) -> bool:
        return self.context is not None and self.context.auth == AuthKind.STORE

    async def where(self) -> ClientStore | None:
        """The store and device of the next client; None for the session's own file.
        Raises AuthUnusable (see the class), StoreError when the store does not answer
        (the connector retries)."""
        if not self.in_store:
            return None
        assert self.context is not None
        if not self._loaded:
            row = await self.context.call(self.context.store.get_session, self.session)
            self.jid, self.paired = row.device_jid, bool(row.phone)
            self._loaded = True
        secret = self.settings.database_url
        dsn = secret.get_secret_value() if secret is not None else None
        try:
            where = client_store(
                self.session,
                AuthKind.STORE,
                self.db,
                dsn=dsn,
                device_jid=self.jid,
                paired=self.paired,
            )
        except ZapvisorError as exc:
            raise AuthUnusable(str(exc)) from None
        from ecosystem.whatsmeow_devices import device_present  # psycopg: store auth only

        jid = where.jid
        if jid is not None and not await self.context.call(device_present, where.name, jid):
            raise AuthUnusable(
                f"device {jid} not in the auth store (logged out elsewhere, or its rows "
                f"deleted): pair again with `zapvisor logout {self.session}`"
            )
        return where

    def linked(self, device: Any) -> str | None:
        """The JID to keep in the session's row now that a client is linked as
        ``device`` (neonize's JID): when the auth is in the store and the row does not
        name that device yet."""
        if not self.in_store:
            return None
        jid = jid_text(device)
        self.paired = True
        if jid is None or jid == self.jid:
            return None
        self.jid = jid
        return jid

    async def pair_success(self, device: Any, events: ConnectorEvents) -> None:
        """whatsmeow saved a new device (PairSuccess, before it connects again as it):
        the row names it at once, so a runner that dies before Connected is reported
        opens that device next time rather than pairing another one."""
        jid = self.linked(device)
        if jid is not None:
            await events.device_linked(jid)

    def forget(self) -> None:
        """Logged out or unlinked: the next client pairs a new device."""
        self.jid = None
        self.paired = False
        self._loaded = True  # the row is cleared by the logout's own report


def jid_text(jid: Any) -> str | None:
    """neonize's JID as whatsmeow writes it in whatsmeow_device.jid (``Jid2String``:
    "user:device@server"); None for none."""
    if jid is None or not jid.User:
        return None
    from neonize.utils.jid import Jid2String

    return str(Jid2String(jid))


async def own_device(client: Any, gate: CallGate) -> Any:
    """The client's own Device (neonize's): the one whatsmeow sends before Connected,
    which neonize keeps as ``client.me``, else asked of the Go side; None when it cannot
    say."""
    me = getattr(client, "me", None)
    if me is not None and me.HasField("JID") and me.JID.User:
        return me
    try:
        async with gate.call():
            me = await client.get_me()
    except Exception as exc:
        log.warning("cannot read own number: %s", exc, extra={"event": "get_me_failed"})
        return None
    return me if me.HasField("JID") else None
