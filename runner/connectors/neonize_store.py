"""Where a neonize client keeps its WhatsApp auth, and which device of that store it opens.

neonize 0.5.2 (checked in its source): ``NewAClient(name, jid=None, props=None, uuid=None,
new_device=False)``. ``name`` is a SQLite file, or, when it starts with ``postgres``, the
DSN of whatsmeow's PostgreSQL store (there is no ``database=`` keyword). Without ``jid``
whatsmeow opens the *first* device of that database (``GetFirstDevice``): in a database
that holds every session of a fleet that can be another session's WhatsApp account. So
a session whose auth lives in the store always opens its own saved device JID, and
asks for ``new_device=True`` only to pair, when it has no device yet. A session that
was paired but whose JID is not known is refused, never opened blind.

Two more traps of that call: with a ``jid`` neonize names the client by the JID's user
(its ``uuid`` argument is then ignored), so two clients of one device in one process
share a name inside its Go side; and whatsmeow's store needs advisory locks and
prepared statements, which Supabase's transaction pooler (port 6543) does not keep.

whatsmeow reaches PostgreSQL through Go's lib/pq, not libpq: the same DSN can mean two
things. lib/pq (1.12.3 in neonize 0.5.2's wheel) takes a DSN without ``sslmode`` as
``require`` and fails with "pq: SSL is not enabled on the server" where psycopg (libpq's
``prefer``) connects fine. So ``whatsmeow_dsn`` (ecosystem/whatsmeow_dsn.py, as a
restore uses it too) settles it before whatsmeow sees the DSN:
an ``sslmode`` in the DSN (or PGSSLMODE in the environment, which both drivers read) is
kept as it is; without one, a loopback or unix-socket host gets ``sslmode=disable``
(nothing to protect on the machine itself), any other host ``sslmode=prefer``: libpq's
default, so whatsmeow does what the fleet's own connection does with the same DSN (TLS
when the server offers it). An operator who wants TLS enforced says ``sslmode=require``
or ``verify-full`` in ZAPVISOR_DATABASE_URL, and both drivers then enforce it.

neonize_client.new_client opens what ``client_store`` chose; runner/connectors/
neonize_auth.py reads the session's device JID, checks whatsmeow still holds that device
(it crashes the process on a JID it does not know) and keeps the JID a pairing gives in
the session's row. WhatsApp cannot be reached from here: tests/test_neonize_store.py
checks the arguments a real NewAClient gets (built, never connected) and the refusals.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ecosystem.errors import InvalidValue, RunnerError
from ecosystem.lease import AuthKind
from ecosystem.whatsmeow_dsn import whatsmeow_dsn

__all__ = ["ClientStore", "client_store", "parse_jid", "whatsmeow_dsn"]

TRANSACTION_POOLER_PORT = 6543


@dataclass(frozen=True)
class ClientStore:
    """The arguments of NewAClient that choose the store and the device."""

    name: str
    """A SQLite file, or a PostgreSQL DSN (a secret: never logged)."""
    jid: str | None = None
    """The device to open ("user:device@server"); None with a SQLite file of its own."""
    new_device: bool = False
    """Pair a new device (a QR) rather than open a saved one."""

    def kwargs(self) -> dict[str, Any]:
        """NewAClient's keyword arguments (``jid`` as neonize's JID message)."""
        out: dict[str, Any] = {"new_device": self.new_device}
        if self.jid is not None:
            out["jid"] = parse_jid(self.jid)
        return out


def client_store(
    session: str,
    auth: AuthKind,
    auth_db: Path,
    *,
    dsn: str | None,
    device_jid: str | None,
    paired: bool,
) -> ClientStore:
    """The store and device a session's neonize client opens.

    ``local``: the session's own SQLite file (one device in it: the first is its own).
    ``store``: whatsmeow's PostgreSQL store at ``dsn`` (the fleet's database), opening
    ``device_jid``; with none, a new device to pair, unless the session was ``paired``
    (its phone is known): then opening the store without a JID could drive another
    session's account, and it is refused."""
    if auth == AuthKind.LOCAL:
        return ClientStore(str(auth_db))
    if not dsn or not dsn.startswith("postgres"):
        raise InvalidValue(
            f"session {session} keeps its WhatsApp auth in the store, which for neonize "
            "must be PostgreSQL (ZAPVISOR_DATABASE_URL=postgresql://...)"
        )
    if urlsplit(dsn).port == TRANSACTION_POOLER_PORT:
        raise InvalidValue(
            f"session {session}: whatsmeow's store cannot use Supabase's transaction "
            f"pooler (port {TRANSACTION_POOLER_PORT}: no advisory locks, no prepared "
            "statements); use the direct connection or the session pooler (port 5432)"
        )
    dsn = whatsmeow_dsn(dsn)
    if device_jid:
        parse_jid(device_jid)  # a malformed JID is refused before neonize sees it
        return ClientStore(dsn, jid=device_jid)
    if paired:
        raise RunnerError(
            f"session {session} is paired but its device JID is not in the store: "
            "opening the shared auth store without it would take its first device, "
            f"maybe another session's account; `zapvisor logout {session}` and pair again"
        )
    return ClientStore(dsn, new_device=True)


def parse_jid(text: str) -> Any:
    """neonize's JID message for "user[.agent][:device]@server" (what Jid2String
    writes), or InvalidValue."""
    user, at, server = text.partition("@")
    user, _, device = user.partition(":")
    user, _, agent = user.partition(".")
    if not (at and user and server) or not all(p.isdigit() for p in (device, agent) if p):
        raise InvalidValue(f"not a WhatsApp device JID: {text!r} (user:device@server)")
    from neonize.proto.Neonize_pb2 import JID

    return JID(
        User=user,
        RawAgent=int(agent or 0),
        Device=int(device or 0),
        Integrator=0,
        IsEmpty=False,
        Server=server,
    )
