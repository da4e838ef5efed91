"""Making neonize's client, and the few neonize helpers the connector shares.

`new_client` is the one place a NewAClient is built: a store (whatsmeow's SQLite file
in `tokens/<name>/`, or its PostgreSQL store and a device JID, see neonize_store.py) is
chosen here.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from runner.connectors.base import Recipient
from runner.connectors.neonize_store import ClientStore

PAIR_DISPLAY = "Chrome (Linux)"
"""How a pairing-code login presents itself on the phone. whatsmeow accepts only
common `Browser (OS)` names; neonize builds this one from ClientType.CHROME."""


def without_the_sync_client() -> None:
    """Let neonize's modules be imported without its package's __init__, which imports
    its synchronous client (neonize.client, with its events and multiprocessing: ~0.8 MB
    of each runner) only to re-export it; this connector uses neonize.aioze, whose
    modules import what they need themselves. The package is registered as found, and
    its __init__ runs, whole, the first time anything asks it for a name it would have
    set (neonize.NewClient, neonize.__version__, …). Nothing inside neonize is changed.
    Call before anything imports neonize; once it is imported this does nothing."""
    if "neonize" in sys.modules:
        return
    spec = importlib.util.find_spec("neonize")
    if spec is None or spec.loader is None:
        return  # not installed: the import that follows says so
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def init_on_demand(name: str) -> Any:
        del package.__dict__["__getattr__"]
        loader.exec_module(package)
        return getattr(package, name)

    package.__dict__["__getattr__"] = init_on_demand
    sys.modules["neonize"] = package


def register_events(
    client: Any,
    on_qr: Callable[[Any, bytes], Awaitable[None]],
    on_event: Callable[[Any, Any], Awaitable[None]],
) -> None:
    """Hand the QR codes and every event the connector acts on to its handlers."""
    from neonize.aioze import events as ev

    client.event.qr(on_qr)
    for kind in (
        ev.ConnectedEv,
        ev.MessageEv,
        ev.ReceiptEv,
        ev.DisconnectedEv,
        ev.LoggedOutEv,
        ev.ConnectFailureEv,
        ev.StreamReplacedEv,
        ev.TemporaryBanEv,
        ev.KeepAliveTimeoutEv,
        ev.KeepAliveRestoredEv,
        ev.ClientOutdatedEv,
        ev.StreamErrorEv,
        ev.PairStatusEv,
    ):
        client.event(kind)(on_event)


def quiet_neonize_logging() -> None:
    """whatsmeow's debug chatter and neonize's ffmpeg warning (we send no media that
    needs ffmpeg) stay out of the log; its INFO and above stay in."""
    logging.getLogger("whatsmeow").setLevel(logging.INFO)
    logging.getLogger("neonize.utils.log").setLevel(logging.INFO)
    logging.getLogger("neonize.utils.ffmpeg").setLevel(logging.ERROR)


def new_client(db: str, uuid: str, session: str, where: ClientStore | None = None) -> Any:
    """A neonize client on the store ``db``, listed on the phone as "zapvisor <name>".

    ``uuid`` names this client generation inside neonize's Go side (its registry of
    clients is keyed by it), so an old generation's late calls never reach a new one.
    ``where``: the store and device to open when the auth lives in the shared store
    (neonize_store.client_store: always with the session's own device JID, or
    ``new_device`` to pair); None for the session's own SQLite file ``db``."""
    from neonize.aioze.client import NewAClient
    from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps

    where = where or ClientStore(db)
    props = DeviceProps(os=f"zapvisor {session}", platformType=DeviceProps.DESKTOP)
    client = NewAClient(where.name, props=props, uuid=uuid, **where.kwargs())
    if where.jid is not None:
        _name_generation(client, uuid)
    return client


def _name_generation(client: Any, uuid: str) -> None:
    """Give a client opened by JID its generation's name back: neonize names it after
    the JID's user instead, the same for every generation of the device, so an old
    generation's late call, or its finalizer (neonize's Stop by name when the Python
    object is collected), would reach the current one. The Go side keys its registry
    of clients by this name alone; the device comes from the JID it is given apart."""
    from neonize.aioze.client import ChatSettingsStore, ContactStore, NewAClient, gocode

    client._stop_finalizer.detach()
    client.uuid = uuid.encode()
    client.contact = ContactStore(client.uuid)
    client.chat_settings = ChatSettingsStore(client.uuid)
    client._stop_finalizer = weakref.finalize(
        client,
        NewAClient._release_ffi,
        client.uuid,
        gocode,
    )


async def pair_phone(client: Any, phone: str) -> str:
    """Ask for a pairing code for ``phone`` (digits), presented as ``PAIR_DISPLAY``:
    without ``client_type`` neonize derives it from the device's DESKTOP platform and
    sends "Electron (Linux)", which WhatsApp does not list."""
    from neonize.utils.enum import ClientName, ClientType

    code: str = await client.PairPhone(
        phone, True, client_name=ClientName.LINUX, client_type=ClientType.CHROME
    )
    return code


def jid(to: Recipient) -> Any:
    from neonize.utils.jid import build_jid

    return build_jid(to.user, "g.us" if to.group else "s.whatsapp.net")


def lid_jid(user: str) -> Any:
    from neonize.utils.jid import build_jid

    return build_jid(user, "lid")
